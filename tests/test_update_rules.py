"""The update-rule registry: adding a rule is one compiled step and one `register(...)`, without generating code.

Each toy rule is checked against a NumPy re-implementation of the same rule,
whose gradients come from central finite differences of a NumPy loss (not
from symcompile).
"""

import numba
import numpy as np
import pytest
import sympy as sp

from symcompile.errors import SymcompileError
from symcompile.model import make_model
from symcompile.names import NameTable
from symcompile.options import training_settings
from symcompile.pipeline import build, generate
from symcompile.runtime import rules
from symcompile.runtime.rules import LEARNING_RATE, STEP, Hyperparameter, UpdateRule
from symcompile.writer import load_module


@numba.njit(STEP.signature, cache=True, error_model="numpy")
def sign_descent_step(w, grad, state, t, hyperparameters, previous, steps):
    for j in range(w.shape[0]):
        steps[j] = hyperparameters[rules.LR] * np.sign(grad[j])
        previous[j] = w[j]
        w[j] -= steps[j]


SIGN_DESCENT = UpdateRule(
    "sign_descent", "Sign descent: each weight moves lr against the sign of its derivative", (LEARNING_RATE,),
    sign_descent_step,
)  # fmt: skip

# A hyperparameter of its own takes the first slot after the built-in ones.
BETA = Hyperparameter("beta", 0.5, 0.0, 1.0, "momentum: the velocity's decay")
BETA_SLOT = 7


@numba.njit(STEP.signature, cache=True, error_model="numpy")
def heavy_ball_step(w, grad, state, t, hyperparameters, previous, steps):
    velocity = state[0]
    for j in range(w.shape[0]):
        velocity[j] = hyperparameters[BETA_SLOT] * velocity[j] + grad[j]
        steps[j] = hyperparameters[rules.LR] * velocity[j]
        previous[j] = w[j]
        w[j] -= steps[j]


# A rule with a hyperparameter of its own and state kept across iterations: the shape momentum and Adam take.
HEAVY_BALL = UpdateRule(
    "heavy_ball", "Gradient descent with heavy-ball momentum", (LEARNING_RATE, BETA), heavy_ball_step, n_state=1
)


@pytest.fixture
def registered():
    """The toy rules registered for one test; the registry is restored afterwards (in place: every stage reads it)."""
    saved = dict(rules.RULES)
    rules.register(SIGN_DESCENT)
    rules.register(HEAVY_BALL)
    assert rules.slots()["beta"] == BETA_SLOT
    yield
    rules.RULES.clear()
    rules.RULES.update(saved)


X_DATA = np.array([[0.0], [0.5], [1.0], [1.5], [2.0]])
Y_DATA = np.array([[1.1], [0.8], [0.55], [0.45], [0.3]])
INIT = np.array([0.5, 0.5, 0.1])


def _decay_model():
    a, b, c, x, y = sp.symbols("a b c x y")
    output = a * sp.exp(-b * x) + c
    return make_model("toy_rules", output, (output - y) ** 2, (a, b, c), (x,), (y,), init=INIT, X=X_DATA, Y=Y_DATA)


def _numpy_loss(w):
    a, b, c = w
    return float(np.mean((a * np.exp(-b * X_DATA[:, 0]) + c - Y_DATA[:, 0]) ** 2))


def _numpy_grad(w, h=1e-6):
    return np.array([(_numpy_loss(w + h * e) - _numpy_loss(w - h * e)) / (2 * h) for e in np.eye(len(w))])


@pytest.fixture
def module(registered, tmp_path):
    return load_module(build(_decay_model(), tmp_path).path)


def test_a_registered_rule_trains_as_its_numpy_form(module):
    w = INIT.copy()
    for _ in range(20):
        w = w - 0.01 * np.sign(_numpy_grad(w))
    result = module.train(lr=0.01, max_iter=20, update="sign_descent")
    np.testing.assert_allclose(result.w, w, rtol=0, atol=1e-12)
    assert result.loss_history[-1] < result.loss_history[0]


def test_a_rule_with_state_and_its_own_hyperparameter(module):
    w, velocity = INIT.copy(), np.zeros(3)
    for _ in range(30):
        velocity = 0.7 * velocity + _numpy_grad(w)
        w = w - 0.05 * velocity
    result = module.train(lr=0.05, beta=0.7, max_iter=30, update="heavy_ball")
    np.testing.assert_allclose(result.w, w, rtol=1e-6, atol=1e-8)


@pytest.mark.slow
def test_the_built_in_rules_still_train_beside_new_ones(module):
    w = INIT.copy()
    for _ in range(5):
        w = w - 0.1 * _numpy_grad(w)
    np.testing.assert_allclose(module.train(lr=0.1, max_iter=5, update="simultaneous").w, w, rtol=1e-6)
    with pytest.raises(ValueError, match="choose one of sequential, simultaneous, .*sign_descent, heavy_ball"):
        module.train(update="lbfgs")


def test_registered_rules_are_valid_settings_and_reserve_their_names(registered):
    assert training_settings({"update": "sign_descent"}).update == "sign_descent"
    source = generate(_decay_model()).text
    assert "beta=0.5, " in source  # a keyword of train
    assert "sign_descent" not in source and "velocity" not in source  # no code generated for a rule
    beta, velocity = sp.symbols("beta velocity")
    code_names = NameTable([beta]).code
    assert code_names[beta] != "beta" and NameTable([velocity]).code[velocity] == "velocity"


def test_a_module_built_before_the_rule_trains_with_it(tmp_path):
    module = load_module(build(_decay_model(), tmp_path).path)
    saved = dict(rules.RULES)
    try:
        rules.register(SIGN_DESCENT)
        w = INIT.copy()
        for _ in range(20):
            w = w - 0.01 * np.sign(_numpy_grad(w))
        np.testing.assert_allclose(
            module.train(lr=0.01, max_iter=20, optimizer="sign_descent").w, w, rtol=0, atol=1e-12
        )
    finally:
        rules.RULES.clear()
        rules.RULES.update(saved)


def test_without_the_registration_the_rule_is_unknown():
    with pytest.raises(SymcompileError, match="unknown update rule 'sign_descent'"):
        training_settings({"update": "sign_descent"})
