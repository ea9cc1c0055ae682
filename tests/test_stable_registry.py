"""The stable-function registry: each function's forms agree with its exact mpmath value, and a new stable
function is one class (one registration) that the compiler then differentiates, prints and ships as a helper.

References: mpmath at 50 digits, and central differences of the mpmath loss.
"""

import importlib
import math

import mpmath
import numpy as np
import pytest
import sympy as sp

from benchmarks.bench.peer_forms import FORMS
from symcompile.model import make_model
from symcompile.pipeline import build, generate
from symcompile.stable import DECLARED, StableFunction, sigmoid
from symcompile.writer import load_module


def _logcosh(z):
    """log(cosh(z)) = |z| + log1p(exp(-2|z|)) - log(2)."""
    a = abs(z)
    return a + math.log1p(math.exp(-2.0 * a)) - math.log(2.0)


class logcosh(StableFunction):  # noqa: N801
    """log(cosh(z)), a robust regression loss: cosh overflows once |z| passes 710, this never does."""

    nargs = 1

    def fdiff(self, argindex=1):
        return sp.tanh(self.args[0])

    @staticmethod
    def mpmath_value(z):
        return mpmath.log(mpmath.cosh(z))

    numba_helper = _logcosh


POINTS = [-30.0, -5.0, -1.0, -0.25, 0.5, 3.0, 20.0, 40.0]


def _library(name):
    if name in ("math", "numpy"):
        return importlib.import_module(name)
    module = pytest.importorskip(name)
    if name == "jax":
        module.config.update("jax_enable_x64", True)  # as the benchmarks' JAX peer runs
        importlib.import_module("jax.scipy.special")
    return module


def _scalar(library, name, value):
    """`value` as the library's float64 scalar."""
    if name == "torch":
        return library.tensor(value, dtype=library.float64)
    if name == "jax":
        return library.numpy.float64(value)
    return float(value)  # math, and NumPy's forms take Python floats as they take arrays


LIBRARIES = ["math", "numpy", "jax", "torch"]
SYMCOMPILES = [function for function in DECLARED if function.__module__ == "symcompile.stable"]


def test_the_benchmarks_peers_have_every_stable_function_in_every_library():
    """benchmarks/bench/peer_forms.py, where the peers' forms live: one per library for each of symcompile's."""
    assert {function.__name__: sorted(FORMS.get(function.__name__, {})) for function in SYMCOMPILES} == {
        function.__name__: sorted(LIBRARIES) for function in SYMCOMPILES
    }


@pytest.mark.slow
@pytest.mark.parametrize("library_name", LIBRARIES)
@pytest.mark.parametrize("function", SYMCOMPILES, ids=lambda f: f.__name__)
def test_every_form_of_every_stable_function_equals_its_mpmath_value(function, library_name):
    library = _library(library_name)
    form = FORMS[function.__name__][library_name](library)
    arity = 3 if function.nargs == sp.S.Naturals0 else 1  # logsumexp takes any number of arguments
    for k, z in enumerate(POINTS):
        args = [z + 7.0 * j for j in range(arity)] if arity > 1 else [z]
        got = float(form(*(_scalar(library, library_name, a) for a in args)))
        with mpmath.workdps(50):
            exact = function.mpmath_value(*map(mpmath.mpf, args))
        assert abs(got - exact) <= 1e-14 * abs(exact), (k, z, got, exact)


@pytest.mark.parametrize("function", DECLARED, ids=lambda f: f.__name__)
def test_every_numba_helper_run_as_plain_python_equals_its_mpmath_value(function):
    """The helpers are plain Python where they are written (symcompile.static_code pastes their source into the
    modules): run as Python, each is its function's exact value, far out where the naive formula overflows (and
    0 where the value is below float64's least subnormal, as at sigmoid(-800))."""
    arity = 3 if function.nargs == sp.S.Naturals0 else 1
    for k, z in enumerate(POINTS + [-800.0, 800.0]):
        args = [z + 7.0 * j for j in range(arity)] if arity > 1 else [z]
        got = function.numba_helper(tuple(args)) if function.helper_takes_tuple else function.numba_helper(*args)
        with mpmath.workdps(50):
            exact = function.mpmath_value(*map(mpmath.mpf, args))
        assert abs(got - exact) <= 1e-14 * abs(exact) + 5e-324, (k, z, got, exact)


# ----------------------------------------------------------------------------- a new stable function, end to end

a, b, x, y = sp.symbols("a b x y")
# Residuals from -20 to about 900: past 710, log(cosh(r)) in float64 is inf.
X = np.linspace(-2.0, 3.0, 7)
Y = np.array([0.3, -1.0, 2.0, 0.5, -700.0, 1.5, -0.2])


@pytest.fixture(scope="module")
def logcosh_model():
    return make_model("robust_line", a * x + b, logcosh(a * x + b - y), [a, b], [x], [y], init=[1.0, 0.5], X=X, Y=Y)


@pytest.fixture(scope="module")
def logcosh_module(logcosh_model, tmp_path_factory):
    return load_module(build(logcosh_model, tmp_path_factory.mktemp("logcosh")).path)


def _exact_mean_loss(w):
    """The mean of log(cosh(a x + b - y)) over the samples, in mpmath (the declaration's exact form)."""
    a_, b_ = w
    return mpmath.fsum(logcosh.mpmath_value(a_ * mpmath.mpf(xi) + b_ - mpmath.mpf(yi)) for xi, yi in zip(X, Y)) / len(X)


def test_a_new_stable_function_is_compiled_into_its_own_helper(logcosh_model):
    source = generate(logcosh_model, rebuild_command="x").text
    assert "def _logcosh(z):" in source and "_logcosh(" in source.split("def _logcosh(z):")[1]
    assert "def _sigmoid" not in source  # only the helpers the kernels call


@pytest.mark.parametrize("w", [(1.0, 0.5), (-2.5, 3.0), (400.0, -100.0)])
def test_a_new_stable_function_has_exact_value_and_gradient(logcosh_module, w):
    loss, grad = logcosh_module.loss_and_grad(np.array(w))
    with mpmath.workdps(50):
        point = [mpmath.mpf(v) for v in w]
        exact_loss = _exact_mean_loss(point)
        h = mpmath.mpf(10) ** -20
        exact_grad = [
            (_exact_mean_loss([p + h * (i == k) for i, p in enumerate(point)])
             - _exact_mean_loss([p - h * (i == k) for i, p in enumerate(point)])) / (2 * h)
            for k in range(2)
        ]  # fmt: skip
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert abs(loss - exact_loss) <= 1e-13 * abs(exact_loss)
    for got, exact in zip(grad, exact_grad):
        assert abs(got - exact) <= 1e-12 * max(abs(e) for e in exact_grad)


def test_a_new_stable_function_evaluates_and_differentiates_in_sympy():
    z = sp.Symbol("z", real=True)
    assert sp.diff(logcosh(2 * z), z) == 2 * sp.tanh(2 * z)
    assert logcosh(sp.Float(800)).evalf(30) == pytest.approx(800 - math.log(2), rel=1e-15)
    assert sigmoid(sp.Float(-800)).evalf(30) / sp.exp(-800).evalf(30) == pytest.approx(1, rel=1e-15)  # not 0
