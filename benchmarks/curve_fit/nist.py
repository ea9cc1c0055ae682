"""The 27 NIST StRD nonlinear regression problems, read from NIST's own .dat files in nist_strd/.

The .dat files are NIST's text verbatim (https://www.itl.nist.gov/div898/strd/nls/nls_main.shtml), as copied in
lmfit-py's NIST_STRD folder (commit fe389bbb): data, both starts, certified parameters and standard deviations and
the certified residual sum of squares are read from them, nothing retyped. Only the model formulas are written
here, in symcompile's formula syntax over x (Nelson: x1, x2; its response is log(y), as NIST's model says).
"""

from pathlib import Path
from typing import NamedTuple

import numpy as np

FOLDER = Path(__file__).resolve().parent / "nist_strd"

FORMULAS = {
    "Misra1a": "b1*(1 - exp(-b2*x))",
    "Chwirut2": "exp(-b1*x)/(b2 + b3*x)",
    "Chwirut1": "exp(-b1*x)/(b2 + b3*x)",
    "Lanczos3": "b1*exp(-b2*x) + b3*exp(-b4*x) + b5*exp(-b6*x)",
    "Gauss1": "b1*exp(-b2*x) + b3*exp(-(x - b4)**2/b5**2) + b6*exp(-(x - b7)**2/b8**2)",
    "Gauss2": "b1*exp(-b2*x) + b3*exp(-(x - b4)**2/b5**2) + b6*exp(-(x - b7)**2/b8**2)",
    "DanWood": "b1*x**b2",
    "Misra1b": "b1*(1 - (1 + b2*x/2)**(-2))",
    "Kirby2": "(b1 + b2*x + b3*x**2)/(1 + b4*x + b5*x**2)",
    "Hahn1": "(b1 + b2*x + b3*x**2 + b4*x**3)/(1 + b5*x + b6*x**2 + b7*x**3)",
    "Nelson": "b1 - b2*x1*exp(-b3*x2)",
    "MGH17": "b1 + b2*exp(-x*b4) + b3*exp(-x*b5)",
    "Lanczos1": "b1*exp(-b2*x) + b3*exp(-b4*x) + b5*exp(-b6*x)",
    "Lanczos2": "b1*exp(-b2*x) + b3*exp(-b4*x) + b5*exp(-b6*x)",
    "Gauss3": "b1*exp(-b2*x) + b3*exp(-(x - b4)**2/b5**2) + b6*exp(-(x - b7)**2/b8**2)",
    "Misra1c": "b1*(1 - (1 + 2*b2*x)**(-0.5))",
    "Misra1d": "b1*b2*x*((1 + b2*x)**(-1))",
    "Roszman1": "b1 - b2*x - atan(b3/(x - b4))/pi",
    "ENSO": "b1 + b2*cos(2*pi*x/12) + b3*sin(2*pi*x/12) + b5*cos(2*pi*x/b4) + b6*sin(2*pi*x/b4)"
    " + b8*cos(2*pi*x/b7) + b9*sin(2*pi*x/b7)",
    "MGH09": "b1*(x**2 + x*b2)/(x**2 + x*b3 + b4)",
    "Thurber": "(b1 + b2*x + b3*x**2 + b4*x**3)/(1 + b5*x + b6*x**2 + b7*x**3)",
    "BoxBOD": "b1*(1 - exp(-b2*x))",
    "Rat42": "b1/(1 + exp(b2 - b3*x))",
    "MGH10": "b1*exp(b2/(x + b3))",
    "Eckerle4": "(b1/b2)*exp(-0.5*((x - b3)/b2)**2)",
    "Rat43": "b1/((1 + exp(b2 - b3*x))**(1/b4))",
    "Bennett5": "b1*(b2 + x)**(-1/b3)",
}  # NIST's order: lower, average, then higher difficulty


class Problem(NamedTuple):
    name: str
    formula: str
    x: np.ndarray  # (N,), or (k, N) for k predictors: curve_fit's xdata
    y: np.ndarray
    starts: tuple  # (start 1, start 2)
    certified: np.ndarray
    certified_stderr: np.ndarray
    certified_rss: float

    @property
    def params(self):
        """b1, ..., bP: the order of NIST's starts (MGH17 and ENSO use them in another order: curve_fit's params=)."""
        return [f"b{i + 1}" for i in range(len(self.certified))]

    def numpy_function(self):
        """The formula as f(x, *b) over NumPy, for SciPy: SymPy's lambdify of symcompile's parse of it."""
        import sympy as sp

        from symcompile.expression import ExpressionParser

        inputs = sp.symbols("x1 x2") if "x1" in self.formula else (sp.Symbol("x"),)
        params = tuple(sp.symbols(self.params))
        g = sp.lambdify([*inputs, *params], ExpressionParser({s.name: s for s in inputs + params}).parse(self.formula))
        return lambda x, *b: g(*(x if len(inputs) > 1 else [x]), *b)


def load(name) -> Problem:
    lines = (FOLDER / f"{name}.dat").read_text().splitlines()
    rows = [line.split() for line in lines]
    parameters = [row for row in rows if len(row) == 6 and row[0].startswith("b") and row[1] == "="]
    starts = tuple(np.array([float(row[2 + i]) for row in parameters]) for i in (0, 1))
    certified = np.array([float(row[4]) for row in parameters])
    stderr = np.array([float(row[5]) for row in parameters])
    rss = next(float(row[-1]) for row in rows if row[:3] == ["Residual", "Sum", "of"])
    first = next(i for i, row in enumerate(rows) if row[:2] == ["Data:", "y"]) + 1
    data = np.array([[float(v) for v in row] for row in rows[first:] if row])
    y, x = data[:, 0], data[:, 1:].T
    if name == "Nelson":  # NIST's model is log[y] = b1 - b2*x1 * exp[-b3*x2]
        y = np.log(y)
    return Problem(name, FORMULAS[name], x[0] if len(x) == 1 else x, y, starts, certified, stderr, rss)


def problems():
    return [load(name) for name in FORMULAS]
