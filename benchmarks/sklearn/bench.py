"""symcompile.sklearn against scikit-learn: fit times, a grid search, NIST fits (benchmarks/sklearn/README.md).

    python benchmarks/sklearn/bench.py [--rounds 3] [--max-iter 50] [--quick]

Fit time of MLPClassifier and MLPRegressor, symcompile's and scikit-learn's with the same settings (adam, batch
min(200, n), alpha 1e-4, Glorot init, shuffling, tol=0 so both run max_iter epochs: the two runs are the same
run, to rounding), on digits and on a 20,000 x 20 make_classification (make_regression for the regressor):
the first fit in a fresh process with an empty module cache and Numba cache (compiling included), then later
fits, rounds interleaved, medians. Then GridSearchCV (5 folds x 4 alphas x 2 learning rates) on digits: total
time and the modules compiled. Then ExpressionRegressor on NIST StRD problems against the certified values.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

# One fit in a fresh process (argv: estimator, dataset, max_iter): prints the seconds of import + fit as JSON
FIRST_FIT = r"""
import json, sys, time, warnings
started = time.perf_counter()
sys.path.insert(0, sys.argv[4])
from bench import estimator, dataset
X, y = dataset(sys.argv[2])
warnings.simplefilter("ignore")
estimator(sys.argv[1], int(sys.argv[3])).fit(X, y)
print(json.dumps(time.perf_counter() - started))
"""

ESTIMATORS = ("symcompile MLPClassifier", "sklearn MLPClassifier", "symcompile MLPRegressor", "sklearn MLPRegressor")


def dataset(name):
    """(X, y), standardized: digits, or 20,000 x 20 synthetic problems (classification and regression)."""
    from sklearn import datasets
    from sklearn.preprocessing import StandardScaler

    if name == "digits":
        X, y = datasets.load_digits(return_X_y=True)
    elif name == "classification":
        X, y = datasets.make_classification(20_000, 20, n_informative=10, n_classes=4, random_state=0)
    else:
        X, y = datasets.make_regression(20_000, 20, n_informative=10, noise=5.0, random_state=0)
        y = (y - y.mean()) / y.std()
    return StandardScaler().fit_transform(X), y


def estimator(name, max_iter, **settings):
    import sklearn.neural_network as reference

    import symcompile.sklearn as ours

    library, kind = name.split()
    cls = getattr(ours if library == "symcompile" else reference, kind)
    return cls(hidden_layer_sizes=(100,), max_iter=max_iter, tol=0.0, random_state=0, **settings)


def datasets_for(name):
    return ("digits", "classification") if "Classifier" in name else ("digits", "regression")


def first_fits(name, data, max_iter):
    """Seconds of a fresh process's imports and first fit: with empty module and Numba caches (compiling the
    runtime's loops, once per machine, and the network's module), then in a second fresh process that finds them."""
    seconds = []
    with tempfile.TemporaryDirectory() as cache:
        env = {
            **os.environ,
            "SYMCOMPILE_CACHE_DIR": os.path.join(cache, "modules"),
            "NUMBA_CACHE_DIR": os.path.join(cache, "numba"),
        }
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", FIRST_FIT, name, data, str(max_iter), os.path.dirname(os.path.abspath(__file__))],
                                 env=env, check=True, capture_output=True, text=True)  # fmt: skip
            seconds.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return seconds


def later_fits(rounds, max_iter):
    """Median seconds of a fit in this (warm) process, each pair's two estimators interleaved."""
    times = {}
    for data_name in ("digits", "classification", "regression"):
        X, y = dataset(data_name)
        names = [n for n in ESTIMATORS if data_name in datasets_for(n)]
        for name in names:  # warm: the module compiled and loaded
            estimator(name, 1).fit(X, y)
        for _ in range(rounds):
            for name in names:
                started = time.perf_counter()
                estimator(name, max_iter).fit(X, y)
                times.setdefault((name, data_name), []).append(time.perf_counter() - started)
    return {key: float(np.median(values)) for key, values in times.items()}


def grid_search(max_iter):
    """GridSearchCV on digits, 5 folds x 4 alphas x 2 learning rates (40 fits and the refit), for each library:
    (seconds, modules compiled into an empty cache)."""
    from sklearn.model_selection import GridSearchCV

    from symcompile import module_cache

    X, y = dataset("digits")
    grid = {"alpha": [1e-5, 1e-4, 1e-3, 1e-2], "learning_rate_init": [1e-3, 1e-2]}
    results = {}
    for name in ("symcompile MLPClassifier", "sklearn MLPClassifier"):
        with tempfile.TemporaryDirectory() as cache:
            os.environ[module_cache.ENVIRONMENT_VARIABLE] = cache
            started = time.perf_counter()
            GridSearchCV(estimator(name, max_iter), grid, cv=5).fit(X, y)
            seconds = time.perf_counter() - started
            modules = len([f for f in os.listdir(cache) if f.endswith(".py")])
        results[name] = (seconds, modules)
    del os.environ[module_cache.ENVIRONMENT_VARIABLE]
    return results


def nist_fits():
    """ExpressionRegressor from NIST's Start 2 on each problem: significant digits of agreement with the
    certified parameters and standard errors, and the residual sum of squares against the certified one."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))  # the tests' references: NIST's data
    from references.nist_strd import PROBLEMS
    from symcompile.sklearn import ExpressionRegressor

    rows = []
    for problem in PROBLEMS:
        X, y = np.array(problem.x).reshape(len(problem.y), -1), np.array(problem.y)
        model = ExpressionRegressor(problem.model, params=dict(zip(problem.parameters, problem.start2)), max_iter=1000,
                                    xtol=1e-15, ftol=1e-15, gtol=1e-15)  # fmt: skip
        started = time.perf_counter()
        model.fit(X, y)  # the first fit compiles the formula's module (and, once, the solver)
        first = time.perf_counter() - started
        started = time.perf_counter()
        model.fit(X, y)
        seconds = (first, time.perf_counter() - started)
        digits = lambda ours, certified: float(
            np.min(-np.log10(np.abs(np.subtract(ours, certified)) / np.abs(certified) + 1e-16))
        )  # noqa: E731
        rows.append((problem.name, digits(list(model.params_.values()), problem.certified),
                     digits(list(model.stderr_.values()), problem.certified_stderr),
                     2 * model.cost_ / problem.certified_rss - 1, seconds))  # fmt: skip
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-iter", type=int, default=50, help="epochs of each fit (tol=0: every fit runs them all)")
    parser.add_argument("--grid-max-iter", type=int, default=50)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(f"# load before: {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs; max_iter={args.max_iter}, hidden (100,)")
    print("\n## First fit in a fresh process (imports, compile, fit), then later fits (median of rounds)\n")
    print("| estimator | data | first fit, empty caches (s) | first fit, new process (s) | later fit (s) |")
    print("|---|---|---:|---:|---:|")
    later = later_fits(args.rounds, args.max_iter)
    for name in ESTIMATORS:
        for data_name in datasets_for(name):
            cold, warm = first_fits(name, data_name, args.max_iter)
            print(f"| {name} | {data_name} | {cold:.2f} | {warm:.2f} | {later[name, data_name]:.3f} |")
    print(f"\n## GridSearchCV on digits: 5 folds x 4 alphas x 2 learning rates, max_iter={args.grid_max_iter}\n")
    print("| estimator | total (s) | modules compiled |\n|---|---:|---:|")
    for name, (seconds, modules) in grid_search(args.grid_max_iter).items():
        print(f"| {name} | {seconds:.1f} | {modules if name.startswith('symcompile') else '-'} |")
    print("\n## ExpressionRegressor on NIST StRD (from Start 2)\n")
    print("| problem | digits of params | digits of stderr | RSS / certified - 1 | first fit, compiling (s) | refit |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, params, stderr, rss, (first, refit) in nist_fits():
        print(f"| {name} | {params:.1f} | {stderr:.1f} | {rss:.1e} | {first:.2f} | {refit * 1e3:.2f} ms |")
    print(f"\n# load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
