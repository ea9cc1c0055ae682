"""Issue 19, item 10: Ctrl-C (SIGINT) at moments spread over the start, build, Numba compile and run of `train`,
`fit` and `fit --many`, each in a fresh process. Every case must exit 130 with exactly one line on stderr, no
traceback, within 120 s of the signal.

    python benchmarks/robustness/ctrl_c.py          # a Markdown table, one row per case; exit 1 if any fails

"fresh" cases run with an empty Numba cache and module folder, so the build and the compile really happen;
"warm" ones with a folder a complete run has filled (the run itself is then reached sooner). A moment is
`delay` seconds after the stdout line holding `marker` (or after the process's start); when the command has
ended before it, the case is tried again with the delay cut by a fifth. Column `file after`: train writes
--save W.npz (kept after Ctrl-C in the run, nothing while building or compiling); fit --many writes --out
over a previous file "old": what is there after Ctrl-C ("old" unchanged, or the number of result rows; 0 rows,
an empty table in place of the previous results, fails the case).
"""

import csv
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import (
    EXAMPLES,
    run,
    seconds_to_line,
    seconds_to_lines,
    start,
    table,
    uptime,
)

TRAIN = ["train", str(EXAMPLES / "xor.toml"), "--max-iter", "30000000", "--no-progress"]  # a run of 20 s or more
FIT = ["fit", str(EXAMPLES / "misra1a.toml")]
MANY_FILES = 1000
OLD_FITS = "file,b1,b2\nold.csv,1.0,2.0\n"  # fit --many's previous output, which Ctrl-C must not lose for nothing
SIGNAL_TIMEOUT = 120  # seconds a command may take to end after Ctrl-C before it counts as a hang


def curves(folder, count):
    """`count` misra1a-like CSV files (14 points, its model with noise)."""
    folder.mkdir()
    rng = np.random.default_rng(19)
    x = np.linspace(77.6, 760.0, 14)
    for i in range(count):
        b1, b2 = rng.uniform(200, 280), rng.uniform(4e-4, 7e-4)
        y = b1 * (1 - np.exp(-b2 * x)) + rng.normal(0, 0.1, x.size)
        np.savetxt(folder / f"c{i:04}.csv", np.column_stack([x, y]), delimiter=",", header="x,y", comments="")
    return folder


def fresh(scratch):
    return Path(tempfile.mkdtemp(dir=scratch))


def interrupted_at(argv, folder_of, marker, delay, prepare=None):
    """SIGINT `delay` s after the stdout line holding `marker` (None: after the start), in a fresh process.
    (the delay used, exit status, stderr, whether it hung)."""
    while True:
        folder = folder_of()
        if prepare:
            prepare()
        process = start(argv, folder)
        seen = time.perf_counter()
        if marker is not None:
            for line in process.stdout:
                if marker in line:
                    seen = time.perf_counter()
                    break
            else:
                raise SystemExit(f"{' '.join(argv)}: no line {marker!r} on stdout ({process.wait()})")
        time.sleep(max(0.0, seen + delay - time.perf_counter()))
        if process.poll() is None:  # still at work: the moment is inside the command
            break
        process.communicate()
        delay *= 0.8
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=SIGNAL_TIMEOUT)
        return delay, process.returncode, err, False
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        return delay, process.returncode, err, True


def weights_file(path):
    if not path.exists():
        return "none"
    try:
        with np.load(path) as data:
            return f"saved ({len(data['w'])} weights)"
    except Exception as exc:  # noqa: BLE001 (any failure to read it is the finding)
        return f"UNREADABLE: {type(exc).__name__}"


def fits_file(path):
    if not path.exists():
        return "none"
    text = path.read_text()
    if text == OLD_FITS:
        return "old"
    return f"{len(list(csv.reader(text.splitlines()))) - 1} rows"


def cases(scratch):
    """(command, fresh or warm, marker, delay, argv, folder maker, the file to inspect, its reader, prepare)."""
    warm = fresh(scratch)
    data = curves(scratch / "curves", MANY_FILES)
    fits = scratch / "fits.csv"
    many = ["fit", str(EXAMPLES / "misra1a.toml"), "--many", str(data), "--out", str(fits)]
    weights = scratch / "w.npz"
    save = [*TRAIN, "--save", str(weights)]
    # Calibration: a complete fresh run of each, from the line its phase starts at
    compiling, compiled = seconds_to_lines(TRAIN[:3] + ["2000"], fresh(scratch), "symcompile train:", "  compile ")
    train_compile = compiled - compiling
    building, fitted = seconds_to_lines(FIT, fresh(scratch), "not built yet", "iterations")
    fit_work = fitted - building
    for _ in range(2):  # the warm folder: every module built and compiled, twice to time a warm run
        run(TRAIN[:3] + ["2000"], warm)
        many_run = seconds_to_line(many, warm, None)
        many_train_run = seconds_to_line([*many, "--method", "train", "--max-iter", "20000"], warm, None)
    fit_start = seconds_to_line(FIT, warm, "iterations")
    print(f"calibration: train's compile {train_compile:.2f} s, fit's build and compile {fit_work:.2f} s (fresh); "
          f"warm: fit {fit_start:.2f} s, fit --many over {MANY_FILES} files {many_run:.2f} s, with --method train "
          f"{many_train_run:.2f} s", flush=True)  # fmt: skip

    def new():
        return fresh(scratch)

    def same():
        return warm

    def no_weights():
        weights.unlink(missing_ok=True)

    def old_fits():
        fits.write_text(OLD_FITS)

    train = [("fresh", None, 0.3), ("fresh", "not built yet", 0.05), ("fresh", "symcompile train:", 0.0),
             ("fresh", "symcompile train:", 0.3 * train_compile), ("fresh", "symcompile train:", 0.7 * train_compile),
             ("fresh", "  compile ", 0.2), ("warm", "  compile ", 0.0), ("warm", "  compile ", 1.0),
             ("warm", "  compile ", 4.0), ("warm", "  compile ", 10.0)]  # fmt: skip
    for kind, marker, delay in train:
        yield (
            "train --save",
            kind,
            marker,
            delay,
            save,
            new if kind == "fresh" else same,
            weights,
            weights_file,
            no_weights,
        )
    fit = [("fresh", None, 0.3)] + [
        ("fresh", "not built yet", fit_work * f) for f in (0.02, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9)
    ]
    fit += [("warm", None, 0.5 * fit_start), ("warm", None, 0.9 * fit_start)]
    for kind, marker, delay in fit:
        yield "fit", kind, marker, delay, FIT, new if kind == "fresh" else same, None, None, None
    for kind, marker, delay in [
        ("fresh", "not built yet", fit_work * f) for f in (0.05, 0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9)
    ]:
        yield "fit --many --out", kind, marker, delay, many, new, fits, fits_file, old_fits
    # --method train: each file's fit is a training run of 20,000 iterations, so the loop over the files lasts
    # seconds (least squares fits the 1,000 files in a third of a second)
    many_train = [*many, "--method", "train", "--max-iter", "20000"]
    moments = [("fresh", "not built yet", 0.5 * fit_work)]
    moments += [("warm", None, many_train_run * f) for f in (0.4, 0.6, 0.8)]
    for kind, marker, delay in moments:
        yield (
            "fit --many --method train",
            kind,
            marker,
            delay,
            many_train,
            new if kind == "fresh" else same,
            fits,
            fits_file,
            old_fits,
        )


def file_kept(text):
    """After Ctrl-C the --out of fit --many is the previous file, or the fits reached (not an empty table over
    the previous results); train's --save is its weights or nothing."""
    return text != "0 rows"


def checked_rows(scratch):
    """Each case run and checked, as it is done: (its table row, whether it passed). tests/test_issue19_signals.py
    runs these as its slow test."""
    for name, kind, marker, delay, argv, folder_of, path, read, prepare in cases(scratch):
        used, status, err, hung = interrupted_at(argv, folder_of, marker, delay, prepare)
        lines = err.splitlines()
        after = read(path) if read else ""
        ok = (status == 130 and len(lines) == 1 and lines[0].startswith("symcompile: interrupted")
              and "Traceback" not in err and not hung and file_kept(after))  # fmt: skip
        moment = f"{used:.2f} s after " + (repr(marker.strip()) if marker else "start")
        shown = lines[0][:90] if len(lines) == 1 else f"{len(lines)} lines: {' / '.join(lines[-2:])[:120]}"
        yield [name, kind, moment, status, "hang" if hung else "", shown, after, "ok" if ok else "FAIL"], ok


def main():
    load = uptime()
    print(f"load before: {load}", flush=True)
    rows, failures = [], 0
    with tempfile.TemporaryDirectory(prefix="symcompile-ctrl-c-") as scratch:
        for row, ok in checked_rows(Path(scratch)):
            failures += not ok
            rows.append(row)
            print(table(["command", "cache", "moment", "exit", "", "stderr", "file after", ""], rows[-1:]).splitlines()[-1],
                  flush=True)  # fmt: skip
    print()
    print(table(["command", "cache", "moment", "exit", "hang", "stderr", "file after", "check"], rows))
    print(f"\n{len(rows) - failures} of {len(rows)} cases exit 130 with one line and no traceback")
    print(f"load after: {uptime()}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
