"""Ten bounded fits with bounds active at the solution: symcompile's lmder through the bound transform against
SciPy's least_squares(method="trf"), given the same residuals and exact Jacobian (the module's).

    python benchmarks/bounded_fits.py            # a Markdown table: agreement, evaluations, time per fit

Both run at tight tolerances (1e-15, up to 2,000 evaluations) and at their defaults (ours 1e-10, SciPy's 1e-8).
Columns: the largest |w - w_trf| (relative to max(1, |w_trf|)), the relative cost difference, and the
evaluations of the residuals (nfev) and of the Jacobian (njev) of each; time per fit (median of 5 runs).
"""

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import sympy as sp
from scipy.optimize import least_squares as scipy_least_squares

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the checkout: benchmarks.bench, and the tests' references
os.environ.setdefault("SYMCOMPILE_CACHE_DIR", tempfile.mkdtemp(prefix="bounded-fits-"))

from references.nist_strd import MISRA1A  # noqa: E402
from symcompile.module_cache import cached_module  # noqa: E402
from symcompile.model import make_model  # noqa: E402

x, y = sp.symbols("x y")
TIGHT = 1e-15


def formula(expression, names):
    params = sp.symbols(names)
    model = sp.sympify(expression, locals={"x": x, **{str(p): p for p in params}})
    return cached_module(make_model("bounded", model, None, list(params), [x], [y], residual=model - y))


def noisy(f, X, scale, seed):
    return f(X) + scale * np.random.default_rng(seed).standard_normal(X.size)


def problems():
    """(name, module, X, Y, w0, lower, upper): each with a bound that the unbounded fit would cross."""
    decay = formula("a*exp(-b*x) + c", "a b c")
    misra = formula("b1*(1 - exp(-b2*x))", "b1 b2")
    peak = formula("a*exp(-(x - mu)**2/(2*s**2)) + d", "a mu s d")
    michaelis = formula("vmax*x/(km + x)", "vmax km")
    logistic = formula("L/(1 + exp(-k*(x - x0)))", "L k x0")
    power = formula("a*x**b", "a b")
    two_exp = formula("a1*exp(-k1*x) + a2*exp(-k2*x)", "a1 k1 a2 k2")
    t = np.linspace(0, 4, 40)
    decay_y = noisy(lambda s: 2 * np.exp(-1.3 * s) + 0.5, t, 0.02, 0)
    mx, my = np.array(MISRA1A.x), np.array(MISRA1A.y)
    px = np.linspace(-3, 3, 60)
    peak_y = noisy(lambda s: 3 * np.exp(-((s - 0.4) ** 2) / (2 * 0.7**2)) + 0.2, px, 0.05, 1)
    sx = np.array([0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0])
    mm_y = noisy(lambda s: 5 * s / (1.5 + s), sx, 0.05, 2)
    lx = np.linspace(-5, 5, 50)
    log_y = noisy(lambda s: 4 / (1 + np.exp(-1.2 * (s - 0.5))), lx, 0.05, 3)
    wx = np.linspace(0.5, 10, 30)
    pow_y = noisy(lambda s: 1.5 * s**0.6, wx, 0.03, 4)
    ex = np.linspace(0, 6, 60)
    two_y = noisy(lambda s: 2 * np.exp(-2.5 * s) + 1 * np.exp(-0.3 * s), ex, 0.01, 5)
    inf = np.inf
    return [
        ("decay: c >= 0.6", decay, t, decay_y, [1, 1, 0.7], [0, 0, 0.6], [10, 10, 1]),
        ("decay: b <= 1.1", decay, t, decay_y, [1, 0.5, 0], [-inf, 0, -inf], [inf, 1.1, inf]),
        ("misra1a: b1 <= 200", misra, mx, my, [150, 1e-3], [0, 0], [200, 1]),
        ("misra1a: b2 >= 6e-4", misra, mx, my, [500, 1e-3], [-inf, 6e-4], [inf, inf]),
        ("peak: s <= 0.5", peak, px, peak_y, [2, 0, 0.3, 0], [0, -3, 0.05, -1], [10, 3, 0.5, 1]),
        ("peak: mu <= 0, d >= 0.3", peak, px, peak_y, [2, -1, 1, 0.5], [-inf, -inf, -inf, 0.3], [inf, 0, inf, inf]),
        ("michaelis: km <= 1", michaelis, sx, mm_y, [1, 0.5], [0, 0], [100, 1]),
        ("logistic: L <= 3.5, k >= 1.5", logistic, lx, log_y, [3, 2, 0], [0, 1.5, -inf], [3.5, 10, inf]),
        ("power: b >= 0.7", power, wx, pow_y, [1, 1], [-inf, 0.7], [inf, 2]),
        ("two exponentials: k1 <= 2, a2 <= 0.9", two_exp, ex, two_y, [1, 1, 0.5, 0.1], [0, 0, 0, 0], [5, 2, 0.9, 5]),
    ]


def compare(name, module, X, Y, w0, lower, upper, tol):
    w0 = np.array(w0, dtype=np.float64)
    settings = {"max_iter": 2000, "xtol": tol, "ftol": tol, "gtol": tol} if tol else {}
    ours = module.least_squares(w0, X, Y, bounds=(lower, upper), **settings)
    scipy_tol = {"xtol": tol, "ftol": tol, "gtol": tol, "max_nfev": 2000} if tol else {}

    def trf():
        return scipy_least_squares(lambda w: module.residuals(w, X, Y), w0, jac=lambda w: module.jacobian(w, X, Y),
                                   bounds=(lower, upper), method="trf", **scipy_tol)  # fmt: skip

    theirs = trf()
    difference = np.max(np.abs(ours.w - theirs.x) / np.maximum(1.0, np.abs(theirs.x)))
    ours_s = median_time(lambda: module.least_squares(w0, X, Y, bounds=(lower, upper), **settings))
    theirs_s = median_time(trf)
    active = int(np.count_nonzero(theirs.active_mask))
    return (f"| {name} | {active} | {difference:.1e} | {abs(ours.cost - theirs.cost) / theirs.cost:.1e} | "
            f"{ours.status} | {ours.iterations} / {_njev(module, X, Y, w0, lower, upper, settings)} | "
            f"{theirs.nfev} / {theirs.njev} | {ours_s * 1e6:.0f} | {theirs_s * 1e6:.0f} |")  # fmt: skip


def _njev(module, X, Y, w0, lower, upper, settings):
    """Our Jacobian evaluations (FitResult counts residual evaluations; lmder's njev comes from the solver)."""
    from symcompile.runtime import fit_options, least_squares

    options = fit_options.checked_options(w0, X.size, bounds=(lower, upper))
    tol = settings.get("xtol", 1e-10)
    kernel = module._residuals_and_jacobian
    X2, Y2 = np.ascontiguousarray(X.reshape(-1, 1)), np.ascontiguousarray(Y.reshape(-1, 1))
    return least_squares.lm_solve_options(kernel, 1, w0, X2, Y2, settings.get("max_iter", 200), tol, tol, tol,
                                          options)[2]  # fmt: skip


def median_time(fit, repeats=5):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fit()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    cases = problems()
    header = ("| problem | active (trf) | max rel. w diff | rel. cost diff | our status | ours nfev / njev | "
              "trf nfev / njev | ours us/fit | trf us/fit |\n|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    for title, tol in (("tight tolerances (1e-15)", TIGHT), ("default tolerances (ours 1e-10, SciPy's 1e-8)", None)):
        print(f"\n### {title}\n\n{header}")
        for case in cases:
            print(compare(*case, tol))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
