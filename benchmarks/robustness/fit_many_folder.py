"""Issue 19, item 13: `fit examples/misra1a.toml --many DIR --out FITS` over a folder of 1,000 good CSV files
(misra1a's model with noise) and 10 bad ones of the kinds the issue lists, placed among the good ones by name.

    python benchmarks/robustness/fit_many_folder.py [--good 1000]   # the figures; exit 1 if a check fails

Checks: the command ends (no hang on the FIFO) with exit status 1 (README.md or docs/: "1 when some were skipped"); the
output holds one row per file, every good file fitted and each bad one `skipped` with its reason; stderr holds
one line per bad file and nothing else; every fit agrees with SciPy's least_squares (MINPACK's lm, the same
start and exact Jacobian) to 1e-6 relative; and a second run whose --out lies in DIR does not read its own
output as data. Three runs: fresh (empty module folder and Numba cache: the build and the compile are in its
time), then twice warm with --out DIR/fits.csv.
"""

import argparse
import csv
import os
import re
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np
from _common import EXAMPLES, documented, start, table, uptime
from scipy.optimize import least_squares

SPEC = EXAMPLES / "misra1a.toml"
TIMEOUT = 600  # seconds: a run that takes longer hangs (a FIFO that is opened blocks forever)
AGREEMENT = 1e-6


def good_files(folder, count):
    """{name: (x, y)} of `count` misra1a-like files: 14 points from its x range, b1 in [200, 280], b2 in
    [4e-4, 7e-4], Gaussian noise of 0.1."""
    rng = np.random.default_rng(13)
    files = {}
    for i in range(count):
        x = np.sort(rng.uniform(77.6, 760.0, 14))
        b1, b2 = rng.uniform(200, 280), rng.uniform(4e-4, 7e-4)
        y = b1 * (1 - np.exp(-b2 * x)) + rng.normal(0, 0.1, x.size)
        name = f"c{i:04}.csv"
        np.savetxt(folder / name, np.column_stack([x, y]), delimiter=",", header="x,y", comments="")
        files[name] = (x, y)
    return files


def bad_files(folder, count):
    """{name: kind} of the ten bad kinds, each named to sort among the good files (after some were fitted)."""
    spots = np.linspace(0, count - 1, 10).astype(int)
    kinds = ["NaN cell", "empty file", "header only", "text cell", "missing column", "too few rows (1)",
             "dangling symlink", "folder named .csv", "FIFO", "ragged row"]  # fmt: skip
    made = {}
    for spot, kind in zip(spots, kinds):
        path = folder / f"c{spot:04}_{re.sub(r'[^a-z0-9]+', '_', kind.lower()).strip('_')}.csv"
        ok = "x,y\n77.6,10.07\n114.9,14.73\n141.1,17.94\n"
        if kind == "NaN cell":
            path.write_text(ok + "190.8,nan\n")
        elif kind == "empty file":
            path.write_text("")
        elif kind == "header only":
            path.write_text("x,y\n")
        elif kind == "text cell":
            path.write_text(ok + "190.8,twenty\n")
        elif kind == "missing column":
            path.write_text(ok.replace("x,y", "x,z"))
        elif kind == "too few rows (1)":
            path.write_text("x,y\n77.6,10.07\n")
        elif kind == "dangling symlink":
            path.symlink_to(folder / "no-such-file.csv")
        elif kind == "folder named .csv":
            path.mkdir()
        elif kind == "FIFO":
            os.mkfifo(path)
        elif kind == "ragged row":
            path.write_text(ok + "190.8\n")
        made[path.name] = kind
    return made


def fit_many(folder, data, out):
    """Run fit --many: (exit status, stdout, stderr, seconds, whether it hung)."""
    started = time.perf_counter()
    process = start(["fit", str(SPEC), "--many", str(data), "--out", str(out)], folder)
    try:
        out_text, err = process.communicate(timeout=TIMEOUT)
        hung = False
    except Exception:  # noqa: BLE001 (TimeoutExpired: the hang is the finding)
        process.kill()
        out_text, err = process.communicate()
        hung = True
    return process.returncode, out_text, err, time.perf_counter() - started, hung


def scipy_fits(goods):
    """SciPy's least_squares (method lm, MINPACK) from misra1a's start, with the exact Jacobian."""
    init = tomllib.loads(SPEC.read_text())["init"]
    fits = {}
    for name, (x, y) in goods.items():
        residuals = lambda b, x=x, y=y: b[0] * (1 - np.exp(-b[1] * x)) - y
        jacobian = lambda b, x=x: np.column_stack([1 - np.exp(-b[1] * x), b[0] * x * np.exp(-b[1] * x)])
        fits[name] = least_squares(residuals, init, jac=jacobian, method="lm", xtol=1e-10, ftol=1e-10, gtol=1e-10).x
    return fits


def checked(run, goods, bads, reference):
    """(figures, the failed checks) of one run."""
    status, out, err, seconds, hung = run["result"]
    problems = []
    if hung:
        return {"seconds": seconds}, [f"hung past {TIMEOUT} s"]
    rows = list(csv.DictReader(run["out"].read_text().splitlines())) if run["out"].exists() else []
    by_name = {row["file"]: row for row in rows}
    fitted = {n: r for n, r in by_name.items() if r["status"] != "skipped"}
    skipped = {n: r for n, r in by_name.items() if r["status"] == "skipped"}
    if status != 1:
        problems.append(f"exit status {status}, not 1")
    if len(rows) != len(goods) + len(bads) or set(by_name) != set(goods) | set(bads):
        problems.append(
            f"{len(rows)} rows, not one per file ({len(goods) + len(bads)}); extra: {sorted(set(by_name) - set(goods) - set(bads))}"
        )
    if set(fitted) != set(goods):
        problems.append(f"fitted {len(fitted)} files, not the {len(goods)} good ones")
    if set(skipped) != set(bads) or not all(r["reason"] for r in skipped.values()):
        problems.append("the skipped rows are not the bad files, each with its reason")
    err_lines = err.splitlines()
    if sorted(err_lines) != sorted(f"symcompile: skipped {n}: {skipped[n]['reason']}" for n in skipped):
        problems.append(f"stderr is not one line per skipped file: {err_lines[:3]}")
    worst = max((np.max(np.abs(np.array([float(r["b1"]), float(r["b2"])]) - reference[n]) / np.abs(reference[n]))
                 for n, r in fitted.items()), default=np.nan)  # fmt: skip
    if not worst <= AGREEMENT:
        problems.append(f"fits differ from SciPy's by {worst:.2g} relative")
    summary = next((line for line in out.splitlines() if line.startswith("symcompile fit:")), "")
    statuses = {}
    for r in fitted.values():
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    figures = {"seconds": seconds, "status": status, "rows": len(rows), "fitted": len(fitted), "skipped": len(skipped),
               "statuses": statuses, "worst": worst, "summary": summary, "skipped_rows": skipped}  # fmt: skip
    return figures, problems


def readme_exit_status():
    """Where the documentation states fit --many's exit status, and the sentence, or None."""
    return documented(r"\*\*Exit status: 0 when every file was fitted[^*]*\*\*")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--good", type=int, default=1000)
    args = parser.parse_args()
    print(f"load before: {uptime()}", flush=True)
    failures = []
    with tempfile.TemporaryDirectory(prefix="symcompile-fit-many-") as scratch:
        scratch = Path(scratch)
        data = scratch / "data"
        data.mkdir()
        goods, bads = good_files(data, args.good), bad_files(data, args.good)
        reference = scipy_fits(goods)
        folder = scratch / "work"  # its module folder and Numba cache start empty: the first run builds and compiles
        runs = [{"label": "fresh, --out outside DIR", "out": scratch / "fits.csv"},
                {"label": "warm, --out DIR/fits.csv", "out": data / "fits.csv"},
                {"label": "warm again, DIR/fits.csv there", "out": data / "fits.csv"}]  # fmt: skip
        rows = []
        for run in runs:
            run["result"] = fit_many(folder, data, run["out"])
            figures, problems = checked(run, goods, bads, reference)
            failures += [f"{run['label']}: {p}" for p in problems]
            rows.append([run["label"], figures.get("status"), f"{figures['seconds']:.1f} s", figures.get("rows"),
                         figures.get("fitted"), figures.get("skipped"), f"{figures.get('worst', np.nan):.1e}",
                         "ok" if not problems else "FAIL"])  # fmt: skip
            print(f"{run['label']}: {figures.get('summary')}", flush=True)
        print()
        print(table(["run", "exit", "wall", "rows", "fitted", "skipped", "max rel. diff. to SciPy", "check"], rows))
        print(f"\nstatuses of the fitted rows (last run): {figures['statuses']}")
        print("\nthe skipped rows (last run): file | kind made | reason")
        for name, row in sorted(figures["skipped_rows"].items()):
            print(f"  {name} | {bads.get(name)} | {row['reason']}")
    sentence = readme_exit_status()
    print(f"\nthe documentation on the exit status: {': '.join(map(str, sentence)) if sentence else 'MISSING'}")
    if sentence is None:
        failures.append("neither README.md nor docs/ states fit --many's exit status")
    print(f"load after: {uptime()}")
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
