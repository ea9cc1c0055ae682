"""The fit of `python -m symcompile fit examples/misra1a.toml`, written as a SciPy user would write it.

The peer of benchmarks/startup/bench.py's misra1a cases: the whole process (import SciPy, fit, report) is what
the bench times. NIST StRD Misra1a, y = b1*(1 - exp(-b2*x)), from NIST's Start 1 (b1 = 500, b2 = 1e-4), by
`scipy.optimize.curve_fit` (MINPACK's Levenberg-Marquardt, lmdif, with forward-difference derivatives) at
symcompile fit's tolerances (xtol = ftol = gtol = 1e-10). The data and start are read from the spec, so both
sides fit the same numbers; the certified values are b1 = 238.94212918, b2 = 5.5015643181e-4.
"""

import time
import tomllib
from pathlib import Path

import numpy as np
from scipy.optimize import curve_fit

SPEC = Path(__file__).resolve().parents[2] / "examples" / "misra1a.toml"
TOLERANCE = 1e-10


def misra1a(x, b1, b2):
    return b1 * (1 - np.exp(-b2 * x))


def main():
    with open(SPEC, "rb") as f:
        spec = tomllib.load(f)
    x, y = np.array(spec["data"]["X"]), np.array(spec["data"]["Y"])
    start = time.perf_counter()
    b, covariance, info, _, _ = curve_fit(
        misra1a, x, y, p0=spec["init"], full_output=True, xtol=TOLERANCE, ftol=TOLERANCE, gtol=TOLERANCE
    )
    seconds = time.perf_counter() - start
    errors = np.sqrt(np.diag(covariance))
    print("misra1a_curve_fit: misra1a by scipy.optimize.curve_fit (MINPACK lmdif)")
    for name, value, error in zip(("b1", "b2"), b, errors):
        print(f"  {name}  {value:<22.15g} +- {error:.6g} (standard error)")
    print(f"  residual sum of squares {np.sum(info['fvec'] ** 2):.15g}")
    print(f"  evaluations {info['nfev']}")
    print(f"  wall time  {seconds * 1e3:.3f} ms for the fit")


if __name__ == "__main__":
    main()
