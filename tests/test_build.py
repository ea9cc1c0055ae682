"""The build pipeline's outputs: determinism, the committed reference module, standalone imports, the CLI."""

import inspect
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import symcompile
from symcompile.cli import main
from symcompile.mlp import mlp_model
from symcompile.pipeline import build, generate
from symcompile.seed import seed_model
from symcompile.writer import load_module

REPO = Path(__file__).resolve().parents[1]
COMMITTED_SEED = REPO / "generated" / "seed_mlp.py"
SEED_REBUILD = "python -m symcompile build"


def _provenance(source):
    return next(line for line in source.splitlines() if line.startswith("# Provenance:"))


def test_builds_are_byte_for_byte_reproducible():
    first = generate(seed_model(), rebuild_command=SEED_REBUILD).text
    second = generate(seed_model(), rebuild_command=SEED_REBUILD).text
    assert first == second


def test_committed_seed_module_is_what_build_writes():
    regenerated = generate(seed_model(), rebuild_command=SEED_REBUILD).text
    committed = COMMITTED_SEED.read_text(encoding="utf-8")
    if _provenance(committed) != _provenance(regenerated) and committed != regenerated:
        pytest.skip(f"library versions differ from the committed module's ({_provenance(committed)}); rebuild it")
    assert committed == regenerated


def test_unchanged_module_is_not_rewritten(tmp_path):
    first = build(seed_model(), tmp_path)
    mtime = first.path.stat().st_mtime_ns
    second = build(seed_model(), tmp_path)
    assert first.changed and not second.changed
    assert second.path.stat().st_mtime_ns == mtime


def _run_python(code, cwd):
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True)


@pytest.mark.slow
def test_generated_module_is_standalone_and_cached(tmp_path):
    """A fresh process imports the module with symcompile's runtime alone (no SymPy, no Jinja, none of the compiler),
    and a second one compiles nothing: neither the model's kernels nor the runtime's loop. (The seed's one sample
    trains in the module's loop that calls the straight-line sweep.)"""
    build(seed_model(), tmp_path)
    probe = (
        "import sys, json, seed_mlp as m\n"
        "import numpy as np\n"
        "from symcompile.runtime import loops\n"
        "m.train(max_iter=1); m.loss_and_grad(); m.forward()\n"
        "m.train(X=np.r_[m.X, m.X], Y=np.r_[m.Y, m.Y], max_iter=1, batch_size=1, optimizer='adam')\n"
        "kernels = (m._loss_and_grad_kernel, m._forward_kernel, m._train_one_sample_sweep_kernel, m._accuracy_kernel,\n"
        "           loops.train_mini_batches.dispatcher)\n"
        "print(json.dumps({'leaked': sorted(k for k in sys.modules if k.split('.')[0] in ('sympy', 'jinja2')\n"
        "                                   or k.startswith('symcompile.') and not k.startswith('symcompile.runtime')),\n"
        "  'hits': [sum(k.stats.cache_hits.values()) for k in kernels],\n"
        "  'misses': [sum(k.stats.cache_misses.values()) for k in kernels]}))"
    )
    first = json.loads(_run_python(probe, tmp_path).stdout)
    second = json.loads(_run_python(probe, tmp_path).stdout)
    assert first["leaked"] == [] and second["leaked"] == []
    assert first["misses"][:3] == [1, 1, 1] and first["hits"][:3] == [0, 0, 0]  # (the runtime's may be cached)
    assert second["misses"] == [0] * 5 and second["hits"][:3] == [1, 1, 1] and second["hits"][4] == 1


def test_cli_build_reports_stages_and_writes_module(tmp_path, capsys):
    assert main(["build", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for stage in ("rewrite", "differentiate", "optimize", "emit", "write", "total"):
        assert stage in out
    assert "operations after CSE" in out
    assert (tmp_path / "seed_mlp.py").is_file()


@pytest.mark.slow
def test_cli_train_prints_the_blog_result(tmp_path, capsys):
    assert main(["train", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "output 0.649864477526152" in out
    assert "output 0.999453185534" in out
    assert "iterations 999" in out


def test_cli_bad_input_is_one_line_and_nonzero(tmp_path, capsys):
    assert main(["train", "--out-dir", str(tmp_path), "--max-iter", "-3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("symcompile: error:") and "max_iter" in err and "\n" not in err


@pytest.mark.slow
def test_python_dash_m_entry_point_reports_its_startup_and_stages(tmp_path):
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "symcompile", "build", "--out-dir", str(tmp_path)], capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    assert "seed_mlp" in done.stdout
    seconds = {line.split()[0]: float(line.split()[1]) for line in done.stdout.splitlines()[1:]}
    assert list(seconds) == ["startup", "model", "rewrite", "differentiate", "optimize", "emit", "write", "total"]
    total = seconds.pop("total")
    assert total == pytest.approx(sum(seconds.values()), abs=0.0005 * len(seconds))  # rows rounded to 1 ms
    # The startup counts from the process's start (in 10 ms clock ticks), which came after `started`.
    assert 0 < seconds["startup"] and total <= wall + 0.011


# --- the header's Contract -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def contract_modules(seed_module, tmp_path_factory):
    """Modules of every shape the Contract varies with: the seed (scalar kernels, binary classifier, Hessian); a
    dense network with mean squared error and its data in a file (threads; residuals that say why they are not
    there); a standardized residual model (least_squares, X_MEAN)."""
    folder = tmp_path_factory.mktemp("contract")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1100, 3))  # more values than a module holds inline
    network = mlp_model("contract_dense", [3, 4, 1], output_activation="identity", loss="mean_squared_error",
                        X=X, Y=X[:, :1] - X[:, 1:2])  # fmt: skip
    a, b, x, y = sp.symbols("a b x y")
    line = symcompile.compile_model(a * x + b, None, [a, b], [x], [y], name="contract_line", X=[1.0, 2.0, 4.0],
                                    Y=[1.0, 3.0, 2.0], residual=a * x + b - y, standardize=True, out_dir=folder)  # fmt: skip
    dense_module = load_module(build(network, folder, kernels="dense").path)
    assert (folder / "contract_dense.npz").is_file()  # X and Y read from a file: `X, Y = _default_data(...)`
    return {"seed": seed_module, "dense": dense_module, "line": line}


def _contract(module):
    """The header's Contract as entries: continuation lines (indented 8) joined to their entry (indented 4)."""
    text = module.__doc__.partition("every other name starts with an underscore):\n")[2]
    entries = []
    for line in text.splitlines():
        if line.startswith("        "):
            entries[-1] += " " + line.strip()
        elif line.startswith("    "):
            entries.append(line.strip())
    return entries


def _parameters(function, skip_self=False):
    """`a, b, *, c`: a function's parameter names, as the Contract writes them."""
    names, star = [], False
    for p in list(inspect.signature(function).parameters.values())[1 if skip_self else 0 :]:
        if p.kind is p.KEYWORD_ONLY and not star:
            names.append("*")
        star = star or p.kind in (p.KEYWORD_ONLY, p.VAR_POSITIONAL)
        names.append({p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name)
    return ", ".join(names)


@pytest.mark.parametrize("which", ["seed", "dense", "line"])
def test_the_contract_lists_every_public_name_of_a_built_module_and_nothing_else(contract_modules, which):
    module = contract_modules[which]
    constants, *entries = _contract(module)
    listed = constants.split(", ")
    for name in listed:
        assert hasattr(module, name), name
    for entry in entries:
        name, kind, rest = re.match(r"(\w+)(\(|: )(.*)", entry).groups()
        listed.append(name)
        if kind == "(":  # a function: its parameters
            assert rest == _parameters(getattr(module, name)) + ")", entry
        else:  # a class: its fields; its methods with their parameters
            cls = getattr(module, name)
            fields, _, methods = rest.partition("; ")
            assert fields.split(", ") == list(cls._fields)
            for method in methods.split("), ") if methods else ():
                method_name, _, parameters = method.rstrip(")").partition("(")
                assert parameters == _parameters(getattr(cls, method_name), skip_self=True), method
    public = [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and getattr(value, "__module__", module.__name__)
        in (module.__name__, "symcompile.runtime.least_squares", "symcompile.runtime.model")
    ]  # fmt: skip  (FitResult is the runtime's class, MODEL a runtime Model)
    assert sorted(listed) == sorted(public)


def test_the_contract_names_the_trainers_options(seed_module):
    train = next(entry for entry in _contract(seed_module) if entry.startswith("train("))
    for name in ("optimizer", "batch_size", "X_val", "Y_val", "patience", "record_every", "progress", "threads"):
        assert f" {name}," in train or f" {name})" in train, name
    assert "predict(X), save(path)" in _contract(seed_module)[1] and "best_w" in _contract(seed_module)[1]
