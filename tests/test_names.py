"""Any symbol name works: keywords, non-identifiers, non-ASCII, and the generated module's own names."""

import ast
import functools
import re

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import symcompile
from symcompile.model import make_model
from symcompile.names import TAKEN, NameTable, reserved_names
from symcompile.pipeline import generate
from symcompile.seed import seed_model

AWKWARD_PARAMS = ["lambda", "if", "w_{1,2}", "x'", "β", "np", "math", "exp", "w", "X"]
INJECTION = 'q"""\nraise SystemExit(3)  # \\N'  # would end the docstring, run code, or be a bad escape
# Inputs and targets named after the kernels' own locals and helpers, and a temporary's name.
INPUT_NAMES = ["n", "_sigmoid", "t0"]
TARGET_NAMES = ["grad"]


@pytest.fixture(scope="module")
def awkward(tmp_path_factory):
    params = tuple(sp.Symbol(name) for name in AWKWARD_PARAMS + [INJECTION])  # not sp.symbols, which parses "w_{1,2}"
    inputs = tuple(sp.Symbol(name) for name in INPUT_NAMES)
    targets = tuple(sp.Symbol(name) for name in TARGET_NAMES)
    lam, if_, w12, xp, beta, np_, math_, exp_, w, X, quoted = params
    n, sig, t0 = inputs
    output = (
        lam * n
        + if_ * sp.exp(-w12 * sig)
        + xp / (1 + sp.exp(-beta * t0))  # becomes a call to the module's own _sigmoid
        + np_ * math_
        + sp.log(1 + sp.exp(exp_ * n))
        + w**2 * X * t0
        + sp.sin(quoted)
    )
    loss = (output - targets[0]) ** 2 + sp.log(1 + sp.exp(w - X)) / 10
    rng = np.random.default_rng(0)
    data = dict(X=rng.uniform(-1, 1, (3, 3)), Y=rng.uniform(-1, 1, 3))
    module = symcompile.compile_model(
        output, loss, params, inputs, targets, name="awkward", init=rng.uniform(-1, 1, len(params)),
        out_dir=tmp_path_factory.mktemp("awkward"), description='a """description""" with \\ and \\N too', **data
    )  # fmt: skip
    return module, params, inputs, targets, output, loss


def test_names_are_kept_in_the_contract(awkward):
    module, *_ = awkward
    assert module.PARAMS == (*AWKWARD_PARAMS, INJECTION)
    assert module.INPUTS == tuple(INPUT_NAMES) and module.TARGETS == tuple(TARGET_NAMES)
    assert "description" in module.__doc__ and INJECTION.split("\n")[0] in module.__doc__


@pytest.mark.slow
def test_values_and_gradient_equal_sympy_subs(awkward):
    module, params, inputs, targets, output, loss = awkward
    w = np.random.default_rng(1).uniform(-1, 1, len(params))
    X, Y = module.X, module.Y
    at = [dict(zip(params + inputs + targets, (*w, *x, *y))) for x, y in zip(X, Y)]
    expected_output = [float(output.subs(point)) for point in at]
    expected_loss = np.mean([float(loss.subs(point)) for point in at])
    expected_grad = [np.mean([float(sp.diff(loss, p).subs(point)) for point in at]) for p in params]
    np.testing.assert_allclose(module.forward(w, X), expected_output, rtol=1e-13)
    value, grad = module.loss_and_grad(w, X, Y)
    assert value == pytest.approx(expected_loss, rel=1e-13)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-11, atol=1e-14)


@pytest.mark.slow
def test_training_runs_with_awkward_names(awkward):
    module, *_ = awkward
    result = module.train(max_iter=50, lr=0.01)
    assert result.status == "max_iter" and result.loss_history[-1] < result.loss_history[0]


def test_kernels_use_no_name_a_model_symbol_could_take():
    """Every name a kernel uses for itself is reserved (MODULE_NAMES, keywords, builtins) or starts with `_`.

    User symbols become kernel locals, so one that took such a name would
    shadow it; this keeps names.py's list in step with the template.
    """
    model = seed_model()
    source = generate(model).text
    own = {s.name for s in model.params + model.inputs + model.targets}
    # The training loops (_train_<rule>_kernel) hold no model code, only calls of the kernels that do.
    kernels = [
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef) and node.name.endswith("_kernel") and not node.name.startswith("_train_")
    ]
    assert len(kernels) >= 3
    used = {
        node.id if isinstance(node, ast.Name) else node.arg
        for kernel in kernels
        for node in ast.walk(kernel)
        if isinstance(node, (ast.Name, ast.arg))
    }
    # Temporaries (t0, t1, ...) and the sequential sweep's locals (step_w13, w13_new) are numbered or named
    # per model by NameTable, around that model's own names.
    per_model = r"t\d+|step_\w+|\w+_new(_\d+)?"
    unreserved = {
        name
        for name in used - own
        if not (name in reserved_names() or name.startswith("_") or re.fullmatch(per_model, name))
    }
    assert unreserved == set()


def _fuzz_model(names):
    p1, p2, x, y = (sp.Symbol(name) for name in names)
    output = p1 * x + sp.log(1 + sp.exp(p2 * x))
    return make_model("fuzzed", output, (output - y) ** 2, [p1, p2], [x], [y], description=" / ".join(names))


def _statement_kinds(tree):
    return [type(node).__name__ for node in tree.body]


@functools.cache
def _plain_statement_kinds():
    return _statement_kinds(ast.parse(generate(_fuzz_model(["a", "b", "x", "y"])).text))


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), min_size=4, max_size=4, unique=True))
def test_any_names_give_valid_python_that_keeps_them(names):
    """Any four distinct strings as two params, an input and a target: the source compiles, has the same
    statements as with plain names (nothing escaped into code), and records the names."""
    model = _fuzz_model(names)
    tree = ast.parse(generate(model).text)  # a SyntaxError if a name broke out of a string or comment
    assert _statement_kinds(tree) == _plain_statement_kinds()
    contract = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) in ("PARAMS", "INPUTS", "TARGETS")
    }
    assert contract == {"PARAMS": tuple(names[:2]), "INPUTS": (names[2],), "TARGETS": (names[3],)}
    code_names = list(NameTable(model.params + model.inputs + model.targets).code.values())
    assert all(n.isidentifier() and n.isascii() and n not in TAKEN and not n.startswith("_") for n in code_names)
    assert len(set(code_names)) == 4


# ----------------------------------------------------------------------------- module names (issue 9)

a_, x_, y_ = sp.symbols("a x y")


@pytest.mark.parametrize("name, words", [
    ("mpmath", "would shadow"), ("llvmlite", "would shadow"), ("__main__", "reserved"), ("m" * 300, "at most 100"),
])  # fmt: skip
def test_compile_model_refuses_names_that_would_shadow_or_replace(tmp_path, name, words):
    import sys

    before = dict(sys.modules)
    with pytest.raises(symcompile.SymcompileError, match=words):
        symcompile.compile_model(a_ * x_, (a_ * x_ - y_) ** 2, [a_], [x_], [y_], name=name, out_dir=tmp_path)
    assert sys.modules.get(name) is before.get(name) and list(tmp_path.iterdir()) == []


def test_compile_model_never_replaces_another_modules_entry(tmp_path, monkeypatch):
    import sys
    import types

    mine = types.ModuleType("my_fit")  # the caller's own module, named like the model
    monkeypatch.setitem(sys.modules, "my_fit", mine)
    m = symcompile.compile_model(a_ * x_, (a_ * x_ - y_) ** 2, [a_], [x_], [y_], name="my_fit", out_dir=tmp_path,
                                 init=[0.5], X=[1.0, 2.0], Y=[2.0, 4.0])  # fmt: skip
    assert sys.modules["my_fit"] is mine
    assert m.loss() == pytest.approx(((0.5 - 2) ** 2 + (1.0 - 4) ** 2) / 2, rel=1e-15)
    again = symcompile.compile_model(a_ * x_, (a_ * x_ - y_) ** 2, [a_], [x_], [y_], name="my_fit2", out_dir=tmp_path)
    rebuilt = symcompile.compile_model(a_ * x_, (a_ * x_ - y_) ** 2, [a_], [x_], [y_], name="my_fit2", out_dir=tmp_path)
    assert sys.modules["my_fit2"] is rebuilt and again is not rebuilt  # an earlier build of the same module gives way
