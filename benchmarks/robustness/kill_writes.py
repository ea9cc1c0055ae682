"""Issue 19, item 11: kill -9 at random moments while `train --save`, `predict --out` and `fit --many --out` run.
Before each kill the file holds a known previous version ("old", from a shorter run); after it the file must be
the old one or the complete new one (byte for byte a complete run's output, which loads or parses), never
missing, partial or empty.

    python benchmarks/robustness/kill_writes.py [--kills 20] [--seed 19]   # a table; exit 1 if any is bad

Half the kills fall at a moment drawn uniformly over the whole command (from its start to 0.1 s after the
moment a complete warm run printed its last line, which it prints once its file is written); the other half
while the file is being written: the script polls the folder and kills the command 0 to 2 ms after the
temporary it writes (`.<name>.<pid>.<random>.tmp`, renamed over the file when complete) appears. The
temporaries the kills leave behind are counted: each is a kill that fell inside a write (nothing removes them
for these outputs).
"""

import argparse
import csv
import io
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import EXAMPLES, ROOT, command, environment, seconds_to_line, table, uptime


def outputs(folder):
    """{name: (argv writing the new file, argv writing the old one, the file, its reader)}."""
    xor, misra = str(EXAMPLES / "xor.toml"), str(EXAMPLES / "misra1a.toml")
    weights, predictions, fits = folder / "w.npz", folder / "predictions.csv", folder / "fits.csv"
    rows = np.random.default_rng(0).uniform(0, 1, (200_000, 2))  # predictions of some MB: a write that takes a while
    np.savetxt(folder / "new.csv", rows, delimiter=",", header="x1,x2", comments="")
    np.savetxt(folder / "old.csv", rows[:10], delimiter=",", header="x1,x2", comments="")
    curves = folder / "curves"
    curves.mkdir()
    x = np.linspace(77.6, 760.0, 14)
    for i in range(300):
        y = (230 + i % 20) * (1 - np.exp(-5.5e-4 * x)) + np.random.default_rng(i).normal(0, 0.1, x.size)
        np.savetxt(curves / f"c{i:03}.csv", np.column_stack([x, y]), delimiter=",", header="x,y", comments="")
    predict = ["predict", xor, "--weights", str(weights), "--out", str(predictions)]
    return {
        "train --save": (["train", xor, "--max-iter", "2000", "--save", str(weights)],
                         ["train", xor, "--max-iter", "10", "--save", str(weights)], weights, read_weights),
        "predict --out": ([*predict, "--data", str(folder / "new.csv")], [*predict, "--data", str(folder / "old.csv")],
                          predictions, read_csv),
        "fit --many --out": (["fit", misra, "--many", str(curves), "--out", str(fits)],
                             ["fit", misra, "--many", str(curves), "--out", str(fits), "--max-iter", "2"], fits, read_csv),
    }  # fmt: skip


def read_weights(data):
    with np.load(io.BytesIO(data)) as npz:
        return {key: npz[key] for key in npz.files}


def read_csv(data):
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    if len(rows) < 2 or any(len(row) != len(rows[0]) for row in rows):
        raise ValueError("not a complete table")
    return rows


def popen(argv, folder):
    return subprocess.Popen(command(argv, folder), cwd=ROOT, env=environment(folder), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip


def temporaries(target):
    return set(target.parent.glob(f".{target.name}.*.tmp"))


def killed_at(argv, folder, seconds):
    """Start `argv`, kill -9 it `seconds` after its start; whether it was killed (not ended first)."""
    process = popen(argv, folder)
    time.sleep(seconds)
    process.kill()
    return process.wait() == -9


def killed_while_writing(argv, folder, target, delay):
    """Start `argv`, kill -9 it `delay` seconds after a new temporary of `target` appears (the folder polled);
    whether it was killed (not ended first)."""
    before = temporaries(target)
    process = popen(argv, folder)
    while process.poll() is None:
        if temporaries(target) - before:
            time.sleep(delay)
            process.kill()
            break
    return process.wait() == -9


def classify(found, old, new, read):
    """ "old", "new", or what else is there (missing, empty, partial, another complete file)."""
    if found is None:
        return "missing"
    if found == old:
        return "old"
    if found == new:
        return "new"
    if not found:
        return "empty"
    try:
        read(found)
    except Exception:  # noqa: BLE001 (any failure to read it is the finding)
        return "partial"
    return "other whole file"


def kill_rows(folder, kills, rng):
    rows = []
    for name, (new_argv, old_argv, target, read) in outputs(folder).items():
        seconds_to_line(new_argv, folder, None)  # builds and compiles: the timed runs below are warm
        written = seconds_to_line(new_argv, folder, None)  # the file is complete just before this line
        new = target.read_bytes()
        seconds_to_line(old_argv, folder, None)
        old = target.read_bytes()
        read(new), read(old)  # both load (an .npz of weights) or parse (a CSV of whole rows)
        assert old != new, name
        counts = {}
        before = temporaries(target)
        for k in range(kills):
            target.write_bytes(old)  # the previous version, byte for byte
            if k % 2 == 0:
                killed = killed_at(new_argv, folder, rng.uniform(0.0, written + 0.1))
                when = "random" if killed else "random (ended first)"
            else:
                killed = killed_while_writing(new_argv, folder, target, rng.uniform(0.0, 0.002))
                when = "writing" if killed else "writing (ended first)"
            found = target.read_bytes() if target.exists() else None
            outcome = classify(found, old, new, read)
            counts.setdefault(when, {}).setdefault(outcome, 0)
            counts[when][outcome] += 1
        left = len(temporaries(target) - before)
        total = {}
        for outcomes in counts.values():
            for outcome, count in outcomes.items():
                total[outcome] = total.get(outcome, 0) + count
        bad = kills - total.get("old", 0) - total.get("new", 0)
        by_moment = "; ".join(f"{when}: " + ", ".join(f"{n} {o}" for o, n in sorted(c.items()))
                              for when, c in sorted(counts.items()))  # fmt: skip
        rows.append([name, f"{written:.2f} s", kills, total.get("old", 0), total.get("new", 0), bad, by_moment, left])
        print(table(HEADER, rows[-1:]).splitlines()[-1], flush=True)
    return rows


HEADER = ["output", "complete run", "kills", "old", "new", "bad", "by moment", "temporaries left"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()
    print(f"load before: {uptime()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="symcompile-kills-") as scratch:
        rows = kill_rows(Path(scratch), args.kills, random.Random(args.seed))
    print()
    print(table(HEADER, rows))
    print(f"\nload after: {uptime()}")
    return 1 if any(row[5] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
