"""symcompile.curve_fit against scipy.optimize.curve_fit: NIST StRD, first call of a new formula, 1,000 fits.

    python benchmarks/curve_fit/bench.py [nist] [first] [loop] [--rounds 5] [--json PATH]

nist:  the 27 NIST StRD problems from both starts through both curve_fits (the same call, tolerances 1e-15,
       maxfev 10,000; SciPy's own finite-difference Jacobian, as its users call it): digits of the parameters
       and standard errors against the certified values, solved = parameters to 6 and standard errors to 4.
first: a formula never seen before, its first curve_fit in a fresh process (empty module cache, empty Numba cache
       but the runtime's solver compiled before, as after any earlier fit), the whole process timed, several rounds.
loop:  1,000 fits of that formula on different data: symcompile's curve_fit loop and SciPy's, interleaved rounds,
       medians and the ratio.
--json PATH also writes each part's figures (seconds, counts) and the load average as JSON.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nist  # noqa: E402

TIGHT = {"xtol": 1e-15, "ftol": 1e-15, "gtol": 1e-15, "maxfev": 10_000}


def digits(found, certified):
    """Significant digits shared: -log10 of the largest relative error."""
    found, certified = np.asarray(found, dtype=float), np.asarray(certified, dtype=float)
    with np.errstate(all="ignore"):
        return float(np.min(-np.log10(np.abs(found - certified) / np.abs(certified) + 1e-16)))


def nist_outcome(fit, problem, start):
    """(parameter digits, standard error digits, seconds) of one curve_fit, (nan, nan, s) where it raised."""
    began = time.perf_counter()
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            popt, pcov = fit(problem, problem.starts[start - 1])
    except (RuntimeError, ValueError, np.linalg.LinAlgError):
        return float("nan"), float("nan"), time.perf_counter() - began
    seconds = time.perf_counter() - began
    return digits(popt, problem.certified), digits(np.sqrt(np.diag(pcov)), problem.certified_stderr), seconds


def nist_sweep(rounds):
    from scipy.optimize import curve_fit as scipy_curve_fit

    from symcompile.curve_fitting import curve_fit

    def ours(p, p0):
        return curve_fit(p.formula, p.x, p.y, p0, params=p.params, **TIGHT)

    theirs_functions = {}

    def theirs(p, p0):
        f = theirs_functions.setdefault(p.name, p.numpy_function())
        return scipy_curve_fit(f, p.x, p.y, p0, **TIGHT)

    left, right = "symcompile: digits b, se; time", "SciPy curve_fit: digits b, se; time"
    print(f"{'problem':10} start  {left:34} {right:36} ratio")
    counts = {"symcompile": 0, "SciPy": 0}
    for problem in nist.problems():
        for start in (1, 2):
            nist_outcome(ours, problem, start)  # the first call builds or loads the module
            rows = {"symcompile": [], "SciPy": []}
            for _ in range(rounds):  # interleaved
                rows["symcompile"].append(nist_outcome(ours, problem, start))
                rows["SciPy"].append(nist_outcome(theirs, problem, start))
            cells = []
            for name, outcomes in rows.items():
                b, se, _ = outcomes[0]
                seconds = statistics.median(o[2] for o in outcomes)
                solved = b >= 6 and se >= 4
                counts[name] += solved
                verdict = "solved" if solved else "------"
                cells.append((f"{b:4.1f}, {se:4.1f}; {seconds * 1e6:8.0f} us {verdict}", seconds))
            ratio = cells[1][1] / cells[0][1]
            print(f"{problem.name:10} {start:5}  {cells[0][0]:34} {cells[1][0]:36} {ratio:5.1f}x")
    print(f"solved (parameters to 6 digits and standard errors to 4), of 54: symcompile {counts['symcompile']}, "
          f"SciPy {counts['SciPy']}")  # fmt: skip
    return {"solved": counts, "of": 54}


# --- a new formula: first call, then 1,000 fits ---------------------------------------------------------------

FIRST_CALL = """
import time, numpy as np
began = time.perf_counter()
from symcompile.curve_fitting import curve_fit
x = np.linspace(0, 4, 40)
popt, pcov = curve_fit({formula!r}, x, 2.5 * np.exp(-1.3 * x) + {offset} + 0.01 * np.cos(7 * x), [1, 1, 1])
print(time.perf_counter() - began)
"""


def fresh_formula():
    """A formula no cache has seen: a constant drawn anew each time makes it another module."""
    offset = round(0.5 + np.random.default_rng().random(), 9)
    return f"a*exp(-b*x) + c + {offset}*0", offset


def first_call(rounds):
    """Fresh processes, each on a formula never seen, with fresh module and Numba caches in which the runtime's
    solver is compiled first (by a fit of another formula in an earlier process)."""
    whole, inside, cpu = [], [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as folder:
            env = {**os.environ, "SYMCOMPILE_CACHE_DIR": f"{folder}/modules", "NUMBA_CACHE_DIR": f"{folder}/numba"}
            warm_up = FIRST_CALL.format(formula="a*exp(-b*x) + c", offset=0.5)
            _python(warm_up, env)
            formula, offset = fresh_formula()
            began, used = time.perf_counter(), _children_cpu()
            done = _python(FIRST_CALL.format(formula=formula, offset=offset), env)
            whole.append(time.perf_counter() - began)
            cpu.append(_children_cpu() - used)
            inside.append(float(done.stdout.split()[-1]))
    print(f"first curve_fit of a new formula, whole fresh process: median {statistics.median(whole):.2f} s "
          f"(min {min(whole):.2f}, max {max(whole):.2f}, {rounds} rounds); from the import to the result: "
          f"{statistics.median(inside):.2f} s; its CPU time (user + system, less sensitive to the machine's load) "
          f"{statistics.median(cpu):.2f} s; target 1.5 s")  # fmt: skip
    return {"whole_process_seconds": whole, "import_to_result_seconds": inside, "cpu_seconds": cpu}


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _python(code, env):
    """A fresh interpreter running `code`; its error's last line where it fails."""
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"a fresh process failed: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    return done


def fit_loop(rounds, fits=1000):
    from scipy.optimize import curve_fit as scipy_curve_fit

    from symcompile.curve_fitting import curve_fit

    rng = np.random.default_rng(1)
    x = np.linspace(0, 4, 50)
    truth = rng.uniform([1, 0.5, 0], [3, 2, 1], size=(fits, 3))
    data = truth[:, :1] * np.exp(-truth[:, 1:2] * x) + truth[:, 2:] + 0.02 * rng.standard_normal((fits, x.size))

    def f(x, a, b, c):
        return a * np.exp(-b * x) + c

    def loop(fit):
        began = time.perf_counter()
        results = [fit(f, x, y, [1.0, 1.0, 1.0]) for y in data]
        return time.perf_counter() - began, results

    loop(curve_fit)  # compile or load the module first: the loop measures fits
    times = {"symcompile": [], "SciPy": []}
    for _ in range(rounds):
        for name, fit in (("symcompile", curve_fit), ("SciPy", scipy_curve_fit)):
            seconds, results = loop(fit)
            times[name].append(seconds)
            if name == "symcompile":
                ours = np.array([popt for popt, _ in results])
            else:
                difference = np.max(np.abs(ours - np.array([popt for popt, _ in results])) / np.abs(ours))
    ours, theirs = (statistics.median(times[k]) for k in ("symcompile", "SciPy"))
    print(f"1,000 fits of a*exp(-b*x) + c, 50 points, the same Python function f for both sides (interleaved, "
          f"{rounds} rounds):")  # fmt: skip
    print(f"  symcompile curve_fit {ours * 1e3:8.1f} ms  ({ours * 1e3:.1f} us a fit)   rounds: "
          + ", ".join(f"{t * 1e3:.0f}" for t in times["symcompile"]))  # fmt: skip
    print(f"  SciPy curve_fit      {theirs * 1e3:8.1f} ms  ({theirs * 1e3:.1f} us a fit)   rounds: "
          + ", ".join(f"{t * 1e3:.0f}" for t in times["SciPy"]))  # fmt: skip
    print(f"  ratio SciPy / symcompile: {theirs / ours:.2f}x (target >= 2); largest relative difference of popt "
          f"{difference:.1e}")  # fmt: skip
    return {"fits": fits, "seconds": times, "largest_relative_difference": float(difference)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", help="any of nist, first, loop (default: all three)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args()
    args.parts = args.parts or ["nist", "first", "loop"]
    if set(args.parts) - {"nist", "first", "loop"}:
        parser.error(f"unknown part(s) {sorted(set(args.parts) - {'nist', 'first', 'loop'})}: nist, first, loop")
    load_start = os.getloadavg()
    print(f"load average {load_start}, {os.cpu_count()} CPUs, run {uuid.uuid4().hex[:6]}")
    parts = {"nist": nist_sweep, "first": first_call, "loop": fit_loop}
    figures = {part: run(args.rounds) for part, run in parts.items() if part in args.parts}
    if args.json:
        figures["load_average"] = {"start": load_start[0], "end": os.getloadavg()[0]}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
