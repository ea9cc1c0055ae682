"""The command line's commands: --version, the --help listing, show (numbers compared with the Kernel's), train's
files (history CSV, plot, saved weights), predict's CSV round trip, and one-line errors."""

import csv
import signal
import time
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import symcompile
from symcompile import cli
from symcompile.optimize import optimize
from symcompile.differentiate import differentiate
from symcompile.rewrite import rewrite
from symcompile.seed import seed_model
from symcompile.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
XOR = ROOT / "examples" / "xor.toml"


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "symcompile", *args], cwd=ROOT, capture_output=True, text=True)


def test_version_is_the_package_version():
    done = run_cli("--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"symcompile {symcompile.__version__}")


def test_help_lists_every_command_with_one_line(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    listed = {line.split()[0]: line for line in out.splitlines() if line.startswith("    ") and line.split()}
    assert set(listed) == {"build", "train", "fit", "predict", "show", "bench"}, out
    assert all(len(line.split()) > 2 for line in listed.values())  # each with its one-line description


def _field(out, label):
    return next(line for line in out.splitlines() if line.strip().startswith(label)).split(None, 1)[1]


def test_show_prints_the_kernels_numbers(tmp_path, capsys):
    assert cli.main(["show", str(XOR), "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    model = load_spec(XOR)
    rewritten, _ = rewrite(model)
    kernel = optimize(differentiate(rewritten, "auto"))
    assert _field(out, "operations") == f"{kernel.ops_before} before CSE, {kernel.ops_after} after"
    assert _field(out, "parameters") == str(len(model.params)) == "13"
    assert _field(out, "layout") == "unrolled"
    assert _field(out, "module") == f"{tmp_path / 'xor.py'} (not built yet)"
    assert f"output = {rewritten.outputs[0]}".replace(" ", "")[:40] in out.replace(" ", "").replace("\n", "")
    assert list(tmp_path.iterdir()) == []  # show writes nothing


def test_show_of_the_seed_names_its_rewrites(capsys):
    assert cli.main(["show"]) == 0
    out = capsys.readouterr().out
    assert "formula after rewrites (float_e_powers_to_exp, logistic_to_sigmoid" in out
    assert _field(out, "operations") == "563 before CSE, 79 after"  # the seed's figures (README)
    assert _field(out, "module") == "generated/seed_mlp.py (built and current)"


def test_show_of_a_dense_model_prints_its_per_unit_code_and_weight_layout(tmp_path, capsys):
    """softmax3 (2-4-3, 27 parameters) builds dense kernels: show prints what SymPy derived per unit, and where each
    layer's numbers sit in the flat vector, checked against symcompile.mlp's parameter names."""
    from symcompile.mlp import param_names

    softmax3 = ROOT / "examples" / "softmax3.toml"
    assert cli.main(["show", str(softmax3), "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    model = load_spec(softmax3)
    assert "hidden units: a = " in out and "d loss/dz = -y + ysum*_vexp(-lse + z)" in out  # softmax cross-entropy
    assert _field(out, "parameters") == str(model.n_params) == "27"
    assert _field(out, "layout") == "dense kernels, block=64 samples"
    names = param_names(model.network.shape.layers, model.network.shape.bias)
    covered = 0
    for part in _field(out, "weights").split(", "):
        label, _, span = part.rpartition(" w[")
        start, stop = (int(n) for n in span.rstrip("]").split(":"))
        assert start == covered and all(name[0] == label[0].lower() for name in names[start:stop]), part
        covered = stop
    assert covered == len(names)
    assert _field(out, "module") == f"{tmp_path / 'softmax3.py'} (not built yet)"
    assert list(tmp_path.iterdir()) == []  # show writes nothing


@pytest.fixture(scope="module")
def trained_xor(tmp_path_factory):
    """xor trained from the command line with every output file; the module's trainer must save weights."""
    folder = tmp_path_factory.mktemp("xor_run")
    files = {name: folder / name for name in ("w.npz", "loss.csv")}
    assert cli.main(["build", str(XOR), "--out-dir", str(folder / "out")]) == 0
    if not hasattr(cli.load_module(folder / "out" / "xor.py"), "load_weights"):
        return None, folder, files
    code = cli.main(["train", str(XOR), "--out-dir", str(folder / "out"), "--max-iter", "50",
                     "--save", str(files["w.npz"]), "--history", str(files["loss.csv"])])  # fmt: skip
    return code, folder, files


def _needs_trainer(folder):
    module = cli.load_module(folder / "out" / "xor.py")
    if not hasattr(module, "load_weights"):
        pytest.skip("the generated module's save and load_weights come with the trainer (branch issue-12trainer)")
    return module


@pytest.mark.slow
def test_train_writes_the_loss_history(trained_xor):
    code, folder, files = trained_xor
    module = _needs_trainer(folder)
    assert code == 0
    with open(files["loss.csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["iteration", "loss"]
    result = module.train(module.INIT, module.X, module.Y, max_iter=50)
    np.testing.assert_array_equal([float(r["loss"]) for r in rows], result.loss_history)  # repr round-trips
    assert [int(r["iteration"]) for r in rows] == list(range(51))


@pytest.mark.slow
def test_predict_round_trips_through_csv(trained_xor, tmp_path, capsys):
    _, folder, files = trained_xor
    module = _needs_trainer(folder)
    new = tmp_path / "new.csv"
    new.write_text("x2,x1\n0,1\n1,1\n0.25,0.5\n")  # columns found by name, in any order
    out = tmp_path / "predictions.csv"
    assert cli.main(["predict", str(XOR), "--weights", str(files["w.npz"]), "--data", str(new), "--out", str(out),
                     "--out-dir", str(folder / "out")]) == 0  # fmt: skip
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    w = module.load_weights(files["w.npz"])
    expected = module.forward(w, np.array([[1, 0], [1, 1], [0.5, 0.25]]))
    np.testing.assert_array_equal([float(r["y"]) for r in rows], expected)
    capsys.readouterr()
    assert cli.main(["predict", str(XOR), "--weights", str(files["w.npz"]), "--data", str(new),
                     "--out-dir", str(folder / "out")]) == 0  # fmt: skip
    assert capsys.readouterr().out == out.read_text()  # without --out: the same CSV on stdout


@pytest.mark.slow
def test_predict_refuses_weights_of_another_model_in_one_line(trained_xor, tmp_path, capsys):
    _, folder, files = trained_xor
    _needs_trainer(folder)
    new = tmp_path / "new.csv"
    new.write_text("x1,x2\n0,1\n")
    args = ["--data", str(new), "--out-dir", str(folder / "out")]
    assert cli.main(["predict", str(ROOT / "examples" / "softmax3.toml"), "--weights", str(files["w.npz"]), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot load weights from {files['w.npz']}: " in err and "another model" in err, (
        err
    )
    assert cli.main(["predict", str(XOR), "--weights", str(tmp_path / "none.npz"), *args]) == 2
    assert "cannot load weights from" in capsys.readouterr().err


def test_predict_needs_the_models_input_columns(tmp_path, capsys):
    new = tmp_path / "new.csv"
    new.write_text("a,x1\n0,1\n")
    assert cli.main(["predict", str(XOR), "--weights", "w.npz", "--data", str(new), "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{new} has no column 'x2' (for the model's inputs; columns: a, x1)" in err, err


def test_plot_without_matplotlib_is_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    assert cli.main(["train", str(XOR), "--out-dir", str(tmp_path / "out"), "--plot", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert err == "symcompile: error: --plot needs matplotlib: pip install 'symcompile[plot]'\n"
    assert not (tmp_path / "out").exists()  # refused before building


@pytest.mark.parametrize(
    "args, message",
    [
        (["--optimizer", "rmsprop"], "argument --optimizer: unknown optimizer 'rmsprop'; choose one of gd, "),
        (["--batch-size", "0"], "error: batch_size must be an integer of at least 1, not 0"),
        (["--validation-split", "1"], "error: validation_split must be a number in [0, 1), not 1.0"),
        (["--patience", "3"], "error: patience needs validation data: set validation_split above 0"),
        (["--nesterov"], "error: nesterov does not apply to optimizer 'gd' (it reads lr, weight_decay)"),
        (["--optimizer", "adam", "--momentum", "0.9"], "error: momentum does not apply to optimizer 'adam'"),
        (["--history", "/no/such/folder/loss.csv"], "error: cannot write /no/such/folder/loss.csv: No such file"),
    ],
)
def test_bad_training_options_are_one_line_and_build_nothing(tmp_path, capsys, args, message):
    try:
        code = cli.main(["train", str(XOR), "--out-dir", str(tmp_path / "out"), *args])
    except SystemExit as exit:  # argparse's own errors: the usage, then one line
        code = exit.code
    last_line = capsys.readouterr().err.splitlines()[-1]
    assert code == 2 and message in last_line, last_line
    assert not (tmp_path / "out").exists()


def test_seed_model_show_counts_match_its_kernel():
    kernel = optimize(differentiate(rewrite(seed_model())[0], "auto"))
    assert (kernel.ops_before, kernel.ops_after) == (563, 79)


@pytest.mark.slow
def test_ctrl_c_prints_the_weights_reached_and_exits_130(trained_xor):
    """A run of minutes gets SIGINT once its loop has started: it stops within 2 s, weights printed, status 130."""
    _, folder, _ = trained_xor
    _needs_trainer(folder)  # the module's loop stops itself on Ctrl-C
    command = [sys.executable, "-u", "-m", "symcompile", "train", str(XOR), "--out-dir", str(folder / "out"),
               "--max-iter", "100000000", "--no-progress"]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.strip().startswith("compile"):  # printed after the warm-up, as the timed run starts
            break
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    sent = time.perf_counter()
    out, err = process.communicate(timeout=30)
    assert time.perf_counter() - sent < 2.0
    assert process.returncode == 130, err
    assert "(interrupted)" in out and "weights    w1_3=" in out and "interrupted by Ctrl-C" in out, out


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--dask", "local:2"],
        [
            "fit",
            str(ROOT / "examples" / "misra1a.toml"),
            "--many",
            str(ROOT / "examples" / "data" / "curves"),
            "--dask",
            "local:2",
        ],
    ],
)
def test_dask_options_without_dask_say_how_to_install_it(argv, tmp_path, capsys):
    import importlib.util

    if importlib.util.find_spec("distributed") is not None:
        pytest.skip("Dask is installed here (tests/test_distributed.py runs it)")
    assert cli.main([*argv, "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == "symcompile: error: symcompile.distributed needs Dask: pip install 'symcompile[dask]'\n"
    assert not list(tmp_path.iterdir())  # refused before anything was built


def test_a_refused_run_leaves_no_output_file(tmp_path, monkeypatch, capsys):
    """--out is checked writable before the work; when the run then fails, no empty file stays behind."""
    monkeypatch.chdir(tmp_path)
    argv = ["fit", str(ROOT / "examples" / "misra1a.toml"), "--many", str(tmp_path / "missing"), "--out-dir", "gen"]
    assert cli.main(argv) == 2
    assert "symcompile: error:" in capsys.readouterr().err
    assert not (tmp_path / "fits.csv").exists()
