"""Fitting bench: the compiled Levenberg-Marquardt against SciPy's, per NIST StRD problem and start.

    python -m benchmarks --scenario fitting [--repeats 20] [--json PATH]
    python -m benchmarks.bench.lm_bench [--repeats 20] [--tol 1e-15] [--max-iter 1000] [--json PATH]

Per fit, median of repeats: `least_squares` of the module that symcompile
builds from the problem's formula (`compile_model(..., residual=model - y)`,
tests/references/nist_compiled.py: residuals and Jacobian from the compiler's
kernel, the solver loop compiled), `scipy.optimize.least_squares(method="lm",
jac=...)` and `scipy.optimize.curve_fit(method="lm", jac=...)` (both MINPACK's
lmder, curve_fit also computing the covariance), SciPy's two given the same
SymPy Jacobian (lambdified with CSE), all three the same tolerances and the
same evaluation budget. Beside each time: the significant digits shared with
NIST's certified parameters; a fit "solves" the problem at 6 digits or more.
SciPy is needed for its columns only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from references.nist_compiled import build_problem_modules, problem_data
from references.nist_fit_module import jacobian_columns, jacobian_function, numpy_functions
from references.nist_strd import PROBLEMS
from benchmarks.bench.timing import format_seconds, load_average, machine, measure

SOLVED_DIGITS = 6
SOLVERS = ("compiled", "scipy least_squares", "scipy curve_fit")


@dataclass
class Fit:
    seconds: float | None  # median per fit; None where the solver is not installed
    digits: float | None  # significant digits shared with the certified parameters
    evaluations: int | None


@dataclass
class Case:
    problem: str
    level: str
    start: int
    fits: dict  # solver -> Fit


def digits(found, certified):
    found, certified = np.asarray(found, dtype=np.float64), np.asarray(certified)
    if not np.all(np.isfinite(found)):
        return 0.0
    return float(np.min(-np.log10(np.abs(found - certified) / np.abs(certified) + 1e-16)))


def compiled_fit(module, problem, w0, settings):
    X, Y = problem_data(problem)
    run = lambda: module.least_squares(w0, X, Y, **settings)  # noqa: E731
    result = run()
    return run, result.w, result.iterations


def scipy_fits(problem, w0, settings):
    """{solver: (run, w, evaluations)} for SciPy's two MINPACK entry points; {} without SciPy."""
    try:
        from scipy.optimize import curve_fit, least_squares
    except ImportError:
        return {}
    residuals, jacobian = jacobian_function(problem)
    curve, gradient = numpy_functions(problem)
    x, y = np.asarray(problem.x), np.asarray(problem.y)

    def curve_jac(xs, *b):
        return jacobian_columns(gradient(xs, *b), xs.size)

    tol = {"xtol": settings["xtol"], "ftol": settings["ftol"], "gtol": settings["gtol"]}

    def run_least_squares():
        return least_squares(
            residuals, w0, jac=jacobian, method="lm", x_scale="jac", max_nfev=settings["max_iter"], **tol
        )

    def run_curve_fit():
        return curve_fit(
            curve, x, y, p0=w0, jac=curve_jac, method="lm", maxfev=settings["max_iter"], full_output=True, **tol
        )

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        ls = run_least_squares()
        try:
            popt, _, info, _, _ = run_curve_fit()
            curve_result = (popt, info["nfev"])
        except RuntimeError:  # curve_fit raises where lmder stops without converging
            curve_result = (np.full(w0.shape, np.nan), settings["max_iter"])
    return {
        "scipy least_squares": (run_least_squares, ls.x, ls.nfev),
        "scipy curve_fit": (_quiet(_tolerant(run_curve_fit)), *curve_result),
    }


def _tolerant(run):
    def call():
        try:
            return run()
        except RuntimeError:
            return None

    return call


def _quiet(run):
    def call():
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return run()

    return call


def compiled_modules(folder, problems=PROBLEMS):
    """({problem name: module}, seconds of build, seconds of Numba compile at the first fits), the modules
    built by symcompile into `folder`: one per distinct formula."""
    start = time.perf_counter()
    modules = build_problem_modules(problems, folder)
    built = time.perf_counter() - start
    start = time.perf_counter()
    for module in {id(m): m for m in modules.values()}.values():
        module.least_squares()  # the module's own data and Start 1
    return modules, built, time.perf_counter() - start


def bench_cases(modules, settings, repeats, problems=PROBLEMS):
    """One Case per problem and start; `modules` maps each problem's name to its compiled module."""
    cases = []
    for problem in problems:
        for number, start_values in ((1, problem.start1), (2, problem.start2)):
            w0 = np.array(start_values, dtype=np.float64)
            compiled = compiled_fit(modules[problem.name], problem, w0, settings)
            runs = {"compiled": compiled, **scipy_fits(problem, w0, settings)}
            fits = {}
            for solver in SOLVERS:
                if solver not in runs:
                    fits[solver] = Fit(None, None, None)
                    continue
                run, w, evaluations = runs[solver]
                timing = measure(_quiet(run), repeats=repeats)
                fits[solver] = Fit(timing.median, digits(w, problem.certified), int(evaluations))
            cases.append(Case(problem.name, problem.level, number, fits))
    return cases


def table_lines(cases):
    head = (
        "| problem | level | start | "
        + " | ".join(f"{s}: time, digits, nfev" for s in SOLVERS)
        + " | speed-up vs least_squares |"
    )
    lines = [head, "|" + " --- |" * (4 + len(SOLVERS))]
    for case in cases:
        cells = []
        for solver in SOLVERS:
            fit = case.fits[solver]
            cells.append(
                "not installed"
                if fit.seconds is None
                else f"{format_seconds(fit.seconds)}, {fit.digits:.1f}, {fit.evaluations}"
            )
        ours, theirs = case.fits["compiled"], case.fits["scipy least_squares"]
        ratio = f"{theirs.seconds / ours.seconds:.0f}x" if theirs.seconds else "-"
        lines.append(f"| {case.problem} | {case.level} | {case.start} | " + " | ".join(cells) + f" | {ratio} |")
    return lines


def solved_line(cases):
    parts = []
    for solver in SOLVERS:
        fits = [case.fits[solver] for case in cases if case.fits[solver].seconds is not None]
        if fits:
            solved = sum(fit.digits >= SOLVED_DIGITS for fit in fits)
            parts.append(f"{solver} {solved}/{len(fits)}")
    return f"solved (parameters to {SOLVED_DIGITS} significant digits): " + ", ".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench.lm_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed fits per solver and case (median)")
    parser.add_argument("--tol", type=float, default=1e-15, help="xtol = ftol = gtol for every solver")
    parser.add_argument("--max-iter", type=int, default=1000, help="evaluations of the residuals at most (maxfev)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    settings = {"max_iter": args.max_iter, "xtol": args.tol, "ftol": args.tol, "gtol": args.tol}
    report = run_fitting(settings, args.repeats)
    report.print()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report.as_dict(), f, indent=1)
    return 0


DEFAULT_SETTINGS = {"max_iter": 1000, "xtol": 1e-15, "ftol": 1e-15, "gtol": 1e-15}


@dataclass
class FittingReport:
    """The fitting scenario's table and tally, as `python -m benchmarks` prints and saves reports."""

    settings: dict
    cases: list
    build_seconds: float
    compile_seconds: float
    n_modules: int
    load_start: float | None
    load_end: float | None = None

    def print(self, out=print):
        tol = self.settings["xtol"]
        out(f"symcompile bench fitting: NIST StRD, {len({c.problem for c in self.cases})} problems x 2 starts; "
            f"tolerances {tol:g}, max_iter {self.settings['max_iter']}  (load average {self.load_start} at start, "
            f"{self.load_end} at end)")  # fmt: skip
        out(f"compiled: {self.n_modules} modules built by symcompile in {self.build_seconds:.1f} s, Numba compile at "
            f"their first fits {self.compile_seconds:.1f} s (neither in the times below)")  # fmt: skip
        for line in table_lines(self.cases):
            out(line)
        out(solved_line(self.cases))
        where = machine()
        versions = ", ".join(f"{k} {v}" for k, v in where["versions"].items() if k in ("numba", "numpy", "scipy"))
        out(f"{where['cpus']} x {where['cpu']}; {versions}")

    def as_dict(self):
        return {"scenario": "fitting", **{k: v for k, v in asdict(self).items() if k != "cases"},
                "cases": [asdict(c) for c in self.cases]}  # fmt: skip


def run_fitting(settings=None, repeats=20, problems=PROBLEMS):
    """Build the NIST modules in a temporary folder, fit each problem from both starts with every solver."""
    settings = settings or DEFAULT_SETTINGS
    load_start = load_average()
    with tempfile.TemporaryDirectory(prefix="symcompile-lm-bench-") as folder:
        modules, build_seconds, compile_seconds = compiled_modules(folder, problems)
        cases = bench_cases(modules, settings, repeats, problems)
    n_modules = len({id(m) for m in modules.values()})
    return FittingReport(settings, cases, build_seconds, compile_seconds, n_modules, load_start, load_average())


if __name__ == "__main__":
    sys.exit(main())
