"""What the robustness scripts share: running `python -m symcompile` in a fresh process with its own Numba cache
and module folder, reading its stdout line by line with the time each line came, and printing a table."""

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def environment(folder):
    """The environment of a command whose Numba cache and module cache live in `folder` (empty: all compiled)."""
    return dict(os.environ, NUMBA_CACHE_DIR=str(folder / "numba"), SYMCOMPILE_CACHE_DIR=str(folder / "modules"),
                PYTHONUNBUFFERED="1")  # fmt: skip


def command(argv, folder):
    """`python -m symcompile ARGV --out-dir FOLDER/out`."""
    return [sys.executable, "-m", "symcompile", *argv, "--out-dir", str(folder / "out")]


def start(argv, folder, **popen):
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True} | popen
    return subprocess.Popen(command(argv, folder), cwd=ROOT, env=environment(folder), **popen)


def run(argv, folder, timeout=600):
    """Run to the end: (exit status, stdout, stderr, seconds from the start to each stdout line)."""
    started = time.perf_counter()
    process = start(argv, folder)
    lines, times = [], []
    for line in process.stdout:
        lines.append(line)
        times.append(time.perf_counter() - started)
    err = process.stderr.read()
    process.wait(timeout=timeout)
    return process.returncode, "".join(lines), err, times


def seconds_to_lines(argv, folder, *markers):
    """Run to the end; for each marker, the seconds from the start to the first stdout line holding it (None: the
    last line)."""
    status, out, err, times = run(argv, folder)
    if status not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed ({status}): {err.strip()}")
    lines = out.splitlines()
    found = [len(lines) - 1 if m is None else next(i for i, line in enumerate(lines) if m in line) for m in markers]
    return [times[i] for i in found]


def seconds_to_line(argv, folder, marker):
    return seconds_to_lines(argv, folder, marker)[0]


def documented(pattern):
    """(the file, the text) where the user documentation (README.md, then docs/*.md) first matches the regular
    expression `pattern` (its lines joined), or None."""
    import re

    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        match = re.search(pattern, " ".join(path.read_text().split()))
        if match:
            return path.relative_to(ROOT), match.group(0)
    return None


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def table(header, rows):
    """A Markdown table, columns as wide as their widest cell."""
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths)) + " |"]
    lines.append("| " + " | ".join("-" * w for w in widths) + " |")
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    return "\n".join(lines)
