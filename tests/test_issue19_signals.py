"""Issue 19's must-shows for items 10 and 11, in fresh processes (slow: about 5 minutes on 2 busy cores).

- Ctrl-C at ten moments spread over the build, the Numba compile and the run of `train` and of `fit`, each in
  a fresh process with an empty --out-dir and Numba cache: every one exits 130, with one line on stderr and no
  traceback.
- kill -9 at 20 random moments during `train --save`, `predict --out` and `fit --many --out`: the file is
  always the old one or the new one, whole.

`python tests/test_issue19_signals.py` prints both tables.
"""

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MOMENTS = 10
KILLS = 20

TRAIN = ["train", str(EXAMPLES / "xor.toml"), "--max-iter", "30000000", "--no-progress"]  # a run of 10 s or more
FIT = ["fit", str(EXAMPLES / "misra1a.toml")]
BUILDING, COMPILING, RUNNING = "not built yet", "symcompile train:", "  compile "  # the lines each phase starts at
# train's moments: (the line, seconds after it), over its build, its warm-up's Numba compile and its run
TRAIN_MOMENTS = [(BUILDING, 0.1), (BUILDING, 0.5), (COMPILING, 0.0), (COMPILING, 0.3), (COMPILING, 0.7),
                 (RUNNING, 0.0), (RUNNING, 0.5), (RUNNING, 2.0), (RUNNING, 4.0), (RUNNING, 7.0)]  # fmt: skip


def _start(argv, folder):
    environment = dict(os.environ, NUMBA_CACHE_DIR=str(folder / "numba"), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "symcompile", *argv, "--out-dir", str(folder / "out")], cwd=ROOT,
                            env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _until(process, marker):
    """Read stdout up to the line holding `marker`; (the lines read, the time it came)."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if marker in line:
            break
    return lines, time.perf_counter()


def _fit_moments(scratch):
    """fit's moments: spread over 80% of the shortest of two uninterrupted runs (fresh folder and cache) from
    the build's line to the result's, so that each falls inside the work: the build, then the Numba compile
    (the fit itself takes milliseconds)."""
    spans = []
    for _ in range(2):
        process = _start(FIT, Path(tempfile.mkdtemp(dir=scratch)))
        _, seen = _until(process, BUILDING)
        _, done = _until(process, "iterations")
        process.communicate(timeout=600)
        assert process.returncode == 0
        spans.append(done - seen)
    return [(BUILDING, 0.8 * min(spans) * (k + 0.5) / MOMENTS) for k in range(MOMENTS)]


def ctrl_c_rows(scratch):
    """One row per (command, moment), as each is done: the moment, exit status, stderr, the last stdout line."""
    for name, argv, moments in (("train", TRAIN, TRAIN_MOMENTS), ("fit", FIT, _fit_moments(scratch))):
        for marker, delay in moments:
            yield name, *_interrupted_at(argv, marker, delay, scratch)


def _interrupted_at(argv, marker, delay, scratch):
    """SIGINT `delay` seconds after the line `marker`, in a fresh process; when the machine ran it faster than
    the calibration and it had ended already, again a fifth earlier."""
    while True:
        process = _start(argv, Path(tempfile.mkdtemp(dir=scratch)))
        lines, seen = _until(process, marker)
        time.sleep(max(0.0, seen + delay - time.perf_counter()))
        if process.poll() is None:  # still at work: the moment is inside the run
            break
        process.communicate()
        delay *= 0.8
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=600)
    last = (lines + out.splitlines(keepends=True))[-1].strip()
    return f"{delay:.2f} s after {marker.strip()!r}", process.returncode, err, last


def _kill_at_random(argv, folder, target, window, rng):
    """Start `argv`, kill -9 it at a random moment of `window` (seconds after its start); the target's bytes."""
    environment = dict(os.environ, NUMBA_CACHE_DIR=str(folder / "numba"))
    process = subprocess.Popen([sys.executable, "-m", "symcompile", *argv, "--out-dir", str(folder / "out")], cwd=ROOT,
                               env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(rng.uniform(*window))
    process.kill()
    process.wait()
    return target.read_bytes() if target.exists() else None


def _timed(argv, folder):
    """Run `argv` to its end; the seconds from its start to its last line on stdout (printed once its file is
    written)."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "symcompile", *argv, "--out-dir", str(folder / "out")], cwd=ROOT,
                               env=dict(os.environ, NUMBA_CACHE_DIR=str(folder / "numba"), PYTHONUNBUFFERED="1"),
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    last = start
    for _ in process.stdout:
        last = time.perf_counter()
    assert process.wait() in (0, 1)  # 1: fit --many skipped a file (none here)
    return last - start


def _outputs(folder):
    """The three outputs, each as (argv writing the new file, argv writing the old one, the file)."""
    xor = str(EXAMPLES / "xor.toml")
    weights, predictions, fits = folder / "w.npz", folder / "predictions.csv", folder / "fits.csv"
    rows = np.random.default_rng(0).uniform(0, 1, (200_000, 2))  # predictions of some MB: a write that takes a while
    np.savetxt(folder / "new.csv", rows, delimiter=",", header="x1,x2", comments="")
    np.savetxt(folder / "old.csv", rows[:10], delimiter=",", header="x1,x2", comments="")
    curves = folder / "curves"
    curves.mkdir()
    x = np.linspace(50, 800, 14)
    for i in range(300):
        y = (230 + i % 20) * (1 - np.exp(-5.5e-4 * x))
        np.savetxt(curves / f"c{i:03}.csv", np.column_stack([x, y]), delimiter=",", header="x,y", comments="")
    misra = str(EXAMPLES / "misra1a.toml")
    return {
        "train --save": (["train", xor, "--max-iter", "2000", "--save", str(weights)],
                         ["train", xor, "--max-iter", "10", "--save", str(weights)], weights),
        "predict --out": (["predict", xor, "--weights", str(weights), "--data", str(folder / "new.csv"), "--out", str(predictions)],
                          ["predict", xor, "--weights", str(weights), "--data", str(folder / "old.csv"), "--out", str(predictions)], predictions),
        "fit --many --out": (["fit", misra, "--many", str(curves), "--out", str(fits)],
                             ["fit", misra, "--many", str(curves), "--out", str(fits), "--max-iter", "2"], fits),
    }  # fmt: skip


def kill_rows(scratch, seed=19):
    """One row per output: kills, how many left the old file, the new one, anything else."""
    rng = random.Random(seed)
    folder = Path(tempfile.mkdtemp(dir=scratch))
    rows = []
    for name, (new_argv, old_argv, target) in _outputs(folder).items():
        _timed(new_argv, folder)
        written = _timed(new_argv, folder)  # the new file is written just before this
        new = target.read_bytes()
        window = (written - 0.3, written + 0.05)  # kills just before, during and just after the write
        _timed(old_argv, folder)
        old = target.read_bytes()
        assert old != new
        counts = {"old": 0, "new": 0, "other": 0}
        for _ in range(KILLS):
            found = _kill_at_random(new_argv, folder, target, window, rng)
            counts["old" if found == old else "new" if found == new else "other"] += 1
            _timed(old_argv, folder)  # the old file again, for the next kill
        leftovers = [p.name for p in target.parent.glob(f".{target.name}.*.tmp")]
        rows.append((name, counts, leftovers))
    return rows


@pytest.mark.slow
def test_ctrl_c_at_ten_moments_of_train_and_fit_exits_130_in_one_line(tmp_path):
    for name, delay, status, err, last in ctrl_c_rows(tmp_path):
        assert status == 130, (name, delay, status, err, last)
        assert err.count("\n") == 1 and err.startswith("symcompile: interrupted"), (name, delay, err)
        assert "Traceback" not in err and "Exception" not in err


@pytest.mark.slow
def test_kill_9_during_an_output_leaves_the_old_file_or_the_new_one(tmp_path):
    for name, counts, leftovers in kill_rows(tmp_path):
        assert counts["other"] == 0 and sum(counts.values()) == KILLS, (name, counts)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="symcompile-signals-") as scratch:
        print("Ctrl-C: command | moment | exit | stderr | last stdout line")
        for name, moment, status, err, last in ctrl_c_rows(Path(scratch)):
            print(f"{name} | {moment} | {status} | {err.strip()!r} | {last[:50]!r}", flush=True)
        print("\nkill -9: output | old | new | other | temporaries left (cleaned by nothing: a kill skips cleanup)")
        for name, counts, leftovers in kill_rows(Path(scratch)):
            print(f"{name} | {counts['old']} | {counts['new']} | {counts['other']} | {len(leftovers)}", flush=True)
