"""The benchmarks' peers compute what the compiled module computes, and the benchmarks run end to end: the
installed `python -m symcompile bench` (the seed comparison) and the checkout's `python -m benchmarks`.

Speed is never asserted: these tests check that the hand-written peers do the
same work as the generated module (so the benchmark compares like with like),
and that quick runs report every row with weights that agree.
"""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.bench import main as benchmarks_main
from benchmarks.bench import numba_seed
from benchmarks.bench.peers import missing_note
from benchmarks.bench.scenario_dataset import synthetic_data
from benchmarks.bench.scenario_seed import LambdifyLoop, is_seed
from references import numpy_mlp
from references.blog_loop import BlogLoop
from symcompile import seed
from symcompile.cli import main
from symcompile.mlp import mlp_model
from symcompile.pipeline import build, generate
from symcompile.rewrite import rewrite
from symcompile.seed_comparison import SubsLoop
from symcompile.writer import load_module

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("seed_value", [0, 1])
def test_hand_written_numba_backprop_is_the_generated_gradient(seed_module, seed_value):
    rng = np.random.default_rng(seed_value)
    w = rng.uniform(-2, 2, 7)
    X, Y = rng.uniform(-1, 1, (4, 2)), rng.integers(0, 2, (4, 1)).astype(float)
    grad = np.empty(7)
    loss = numba_seed.loss_and_grad(w, X, Y, grad)
    expected_loss, expected_grad = seed_module.loss_and_grad(w, X, Y)
    assert loss == pytest.approx(expected_loss, rel=1e-13)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-11, atol=1e-15)


def test_stable_hand_written_backprop_trains_as_the_module_does(seed_module):
    """seed_hand's peer: the hand loop with the module's stable sigmoid/softplus follows train(record_every=0) to the
    last bits over the blog's 999 simultaneous steps, and reaches the blog's f5 (DESIGN.md)."""
    w = np.asarray(seed_module.INIT, dtype=float).copy()
    X, Y = seed_module.X, seed_module.Y
    grad = np.empty(7)
    assert numba_seed.stable_loss_and_grad(w, X, Y, grad) == pytest.approx(seed_module.loss_and_grad(w)[0], rel=1e-14)
    numba_seed.train_stable(w, X, Y, 0.3, 999)
    want = seed_module.train(lr=0.3, max_iter=999, tol=0.0, update="simultaneous", record_every=0).w
    np.testing.assert_allclose(w, want, rtol=1e-12)
    assert seed_module.forward(w)[0] == pytest.approx(0.9994550920282003, rel=1e-13)
    bare = np.asarray(seed_module.INIT, dtype=float).copy()  # seed_hand's row of the module's kernel alone
    numba_seed.train_with_kernel(seed_module._loss_and_grad_kernel, bare, X, Y, 0.3, 999)
    np.testing.assert_array_equal(bare, want)  # the same kernel and update: bit for bit


def test_hand_written_numba_backprop_matches_the_blog_subs_derivatives():
    blog = BlogLoop()
    w = np.array([0.3, -0.7, 1.1, 0.4, -1.5, 0.9, -0.2])
    grad = np.empty(7)
    numba_seed.loss_and_grad(w, np.array([[0.35, 0.9]]), np.array([[1.0]]), grad)
    expected = [float(d.subs(dict(zip(blog.params, w)))) for d in blog.derivatives]
    np.testing.assert_allclose(grad, expected, rtol=1e-12)


@pytest.fixture(scope="module")
def small_mlp(tmp_path_factory):
    """A 2-2-2-1 sigmoid MLP with per-neuron biases on a few samples, compiled."""
    layers = [2, 2, 2, 1]
    X, Y = synthetic_data(2, 1, 8, seed=5)
    model = mlp_model("bench_small_mlp", layers, X=X, Y=Y, init="normal", seed=3)
    module = load_module(build(model, tmp_path_factory.mktemp("generated")).path)
    return layers, module


def test_hand_written_numpy_backprop_is_the_generated_gradient(small_mlp):
    layers, module = small_mlp
    layout = numpy_mlp.MlpLayout(layers, module.PARAMS)
    w = np.random.default_rng(8).normal(size=len(module.PARAMS))
    np.testing.assert_array_equal(layout.pack(layout.unpack(w)), w)
    loss, grads = numpy_mlp.loss_and_grad(layout.unpack(w), module.X, module.Y)
    expected_loss, expected_grad = module.loss_and_grad(w)
    assert loss == pytest.approx(expected_loss, rel=1e-13)
    np.testing.assert_allclose(layout.pack(grads), expected_grad, rtol=1e-10, atol=1e-15)


@pytest.mark.slow
def test_generic_subs_and_lambdify_loops_follow_the_compiled_module(seed_module):
    """The loops the seed scenario builds for any model, here on two samples (the compiled many-sample path)."""
    X, Y = np.array([[0.35, 0.9], [-0.4, 0.2]]), np.array([[1.0], [0.0]])
    model = dataclasses.replace(seed.seed_model(), X=X, Y=Y)
    assert not is_seed(model)

    def compiled(update, iterations):
        return seed_module.train(seed_module.INIT, X, Y, max_iter=iterations, update=update).w

    values = SubsLoop(model).iterate(model.init)
    np.testing.assert_allclose(values, compiled("sequential", 1), rtol=1e-12)
    loop = LambdifyLoop(rewrite(model)[0])
    np.testing.assert_allclose(loop.sequential(model.init, 3), compiled("sequential", 3), rtol=1e-12)
    np.testing.assert_allclose(loop.simultaneous(model.init, 3), compiled("simultaneous", 3), rtol=1e-12)


def test_mlp_layout_rejects_parameters_of_another_network(small_mlp):
    _, module = small_mlp
    with pytest.raises((ValueError, KeyError)):
        numpy_mlp.MlpLayout([2, 4, 1], module.PARAMS)


def _rows(report):
    return [row for table in report["tables"] for row in table["rows"]]


@pytest.mark.slow
def test_symcompile_bench_quick_runs_the_seed_comparison(tmp_path, capsys):
    """The installed entry: the subs loop against the compiled loop, the weights alike after the same iterations."""
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--out-dir", str(tmp_path), "--json", str(out)]) == 0
    assert "time per iteration" in capsys.readouterr().out
    report = json.loads(out.read_text())
    rows = {(r["name"], r["update"]): r for r in report["rows"]}
    subs = rows["SymPy subs loop (the blog's method)", "sequential"]
    assert subs["difference"] < 1e-12 and subs["ratio"] > 1.0 and subs["repeats"] == 1
    assert rows["compiled module train()", "simultaneous"]["repeats"] == 3
    assert (tmp_path / "seed_mlp.py").read_text() == generate(
        seed.seed_model(), rebuild_command="python -m symcompile build"
    ).text


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--scenario", "dataset"], "--scenario dataset: `bench` runs the seed comparison only"),
        (["--layers", "2-3-1"], "--layers belongs to the scenarios of python -m benchmarks"),
    ],
)
def test_symcompile_bench_points_at_the_benchmarks_for_the_rest(tmp_path, capsys, argv, words):
    assert main(["bench", *argv, "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert words in err and "benchmarks/README.md" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # every peer of the seed scenario, each in a fresh process: 12 s
def test_bench_seed_quick_run_compares_every_peer(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert benchmarks_main(["--quick", "--out-dir", str(tmp_path), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "time per iteration" in printed and "one-time costs" in printed
    (report,) = json.loads(out.read_text())["scenarios"]
    rows = {(r["name"], r["update"]): r for r in _rows(report)}
    for name, update in [
        ("blog subs loop (SymPy subs)", "sequential"),
        ("SymPy lambdify(cse=True), Python loop", "sequential"),
        ("SymPy lambdify(cse=True), Python loop", "simultaneous"),
        ("hand-written Numba backprop", "simultaneous"),
    ]:
        assert rows[name, update]["difference"] < 1e-12, name
    for name in (
        "JAX jit + lax.fori_loop",
        "  the same, plain exp/log formula",
        "PyTorch autograd (1 thread), Python loop",
    ):
        row = rows[name, "simultaneous"]
        assert row["note"] in (missing_note("jax"), missing_note("torch")) or row["difference"] < 1e-12
    assert rows["compiled module train()", "sequential"]["ratio"] == 1.0
    assert rows["blog subs loop (SymPy subs)", "sequential"]["ratio"] > 1.0
    warm = rows["fresh process, warm cache: first train()", ""]
    assert warm["note"].startswith("recompiled: no")
    for stage in ("rewrite", "differentiate", "optimize", "emit", "write"):
        assert rows[f"build: {stage}", ""]["timing"]["median"] >= 0
    # The module it measured is the one `build` writes, header included.
    assert (tmp_path / "seed_mlp.py").read_text() == generate(
        seed.seed_model(), rebuild_command="python -m symcompile build"
    ).text


@pytest.mark.slow
def test_benchmarks_dataset_quick_run_compares_every_peer(tmp_path):
    """`python -m benchmarks` as a checkout runs it (its own process, from the checkout's root)."""
    out = tmp_path / "bench.json"
    argv = ["--quick", "--scenario", "dataset", "--layers", "2-3-1", "--samples", "64", "--workloads", "small"]
    command = [sys.executable, "-m", "benchmarks", *argv, "--out-dir", str(tmp_path), "--json", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (report,) = json.loads(out.read_text())["scenarios"]
    rows = {r["name"]: r for r in _rows(report)}
    assert rows["hand-written NumPy backprop"]["difference"] < 1e-12
    for name in ("JAX jit + lax.fori_loop, default threads", "JAX jit + lax.fori_loop, 1 thread",
                 "PyTorch autograd (1 thread), Python loop"):  # fmt: skip
        if name in rows:  # JAX rows: one "JAX jit + lax.fori_loop" row says when JAX is missing
            assert rows[name]["note"] == missing_note("torch") or rows[name]["difference"] < 1e-12


def test_bench_rejects_bad_layer_sizes(capsys):
    with pytest.raises(SystemExit) as exit_info:
        benchmarks_main(["--scenario", "dataset", "--layers", "2-x-1"])
    assert exit_info.value.code == 2
    assert "layer sizes like 2-16-16-1 expected" in capsys.readouterr().err
