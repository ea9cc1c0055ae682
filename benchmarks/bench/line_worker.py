"""A peer in a process of its own, asked one command at a time: a JSON line on its stdin, answered by a JSON line
on its stdout (the JAX peers of benchmarks/epochs/compare.py and benchmarks/float32/compare.py, each started as
that script with `--worker`)."""

from __future__ import annotations

import json
import subprocess
import sys


def serve(answer):
    """The worker's side: `answer(command)` (a dict back) for each JSON line on stdin, one JSON line out each."""
    for line in sys.stdin:
        print(json.dumps(answer(json.loads(line))), flush=True)


class LineWorker:
    def __init__(self, script, *arguments, env=None):
        self.process = subprocess.Popen([sys.executable, script, "--worker", *arguments], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip

    def ask(self, **command):
        """The worker's answer to `command`, as a dict; a worker that stopped ends the benchmark in one line."""
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"compare: the JAX worker stopped (exit {self.process.wait()})")
        return json.loads(line)

    def close(self):
        self.process.stdin.close()
        self.process.wait()
