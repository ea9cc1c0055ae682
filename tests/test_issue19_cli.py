"""Issue 19, the command line's robustness: Ctrl-C (item 10), atomic outputs (11), weight files (14), paths (15),
CLI odds (18), make_data.py and fit --plot's title (19). The Ctrl-C and kill -9 must-shows, which start many fresh
processes, are in tests/test_issue19_signals.py (slow)."""

import io
import os
import signal
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from symcompile import cli

ROOT = Path(__file__).resolve().parents[1]
XOR = ROOT / "examples" / "xor.toml"
MISRA = ROOT / "examples" / "misra1a.toml"


def _run(argv, capsys):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def xor_run(tmp_path_factory):
    """xor built once in a fresh folder, and its weights saved by `train --save W` (no extension)."""
    folder = tmp_path_factory.mktemp("xor")
    status = cli.main(
        ["train", str(XOR), "--out-dir", str(folder / "out"), "--max-iter", "50", "--save", str(folder / "W")]
    )
    assert status == 0
    return folder, cli.load_module(folder / "out" / "xor.py")


# --- item 11: every output whole or not at all ------------------------------------------------------------------


def test_write_atomically_keeps_the_old_file_when_the_writer_fails(tmp_path):
    from symcompile.writer import write_atomically  # the one helper every output goes through

    path = tmp_path / "results.csv"
    path.write_text("old\n")

    def half_then_fail(f):
        f.write(b"new, half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, half_then_fail)
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["results.csv"]  # no temporary left
    write_atomically(path, lambda f: f.write(b"new\n"))
    assert path.read_text() == "new\n" and os.listdir(tmp_path) == ["results.csv"]


@pytest.mark.slow
def test_cli_outputs_are_renamed_into_place_not_written_there(xor_run, tmp_path, capsys, monkeypatch):
    """Each output reaches its name by os.replace from a temporary in the same folder (before: open(path, "w"))."""
    pytest.importorskip("matplotlib", reason="needs the plot extra (matplotlib): the run writes a plot")
    folder, _ = xor_run
    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (renamed.append((Path(a).parent, Path(b))), real_replace(a, b))[1])
    outputs = {name: tmp_path / name for name in ("w.npz", "h.csv", "p.png", "pred.csv")}
    status, _, err = _run(["train", XOR, "--out-dir", folder / "out", "--max-iter", "20", "--save", outputs["w.npz"],
                           "--history", outputs["h.csv"], "--plot", outputs["p.png"]], capsys)  # fmt: skip
    assert status == 0, err
    data = tmp_path / "new.csv"
    data.write_text("x1,x2\n0,1\n")
    status, _, err = _run(["predict", XOR, "--out-dir", folder / "out", "--weights", outputs["w.npz"], "--data", data,
                           "--out", outputs["pred.csv"]], capsys)  # fmt: skip
    assert status == 0, err
    assert {(tmp_path, path) for path in outputs.values()} <= set(renamed)
    assert sorted(os.listdir(tmp_path)) == sorted([*outputs, "new.csv"])


def test_a_killed_writes_temporary_is_removed_by_the_next_write(tmp_path):
    """kill -9 during a write leaves `.<name>.<pid>.<random>.tmp` (benchmarks/robustness/kill_writes.py: 20 of them
    after 60 kills; a predict --out's holds megabytes), which nothing removed. The next write of that output removes
    those of ended processes and leaves a running process's own."""
    from symcompile import cli_dask
    from symcompile.outputs import write_text

    ended = subprocess.Popen([sys.executable, "-c", ""])  # its process id, once it has ended
    ended.wait()
    for name, write in (("p.csv", lambda path: write_text(path, "y\n1.0\n")),
                        ("fits.csv", lambda path: cli_dask.write_results(path, _FakeModule, "train", [("a.csv", "bad")]))):  # fmt: skip
        stale = tmp_path / f".{name}.{ended.pid}.0badf00d.tmp"
        running = tmp_path / f".{name}.{os.getpid()}.0c0ffee0.tmp"  # this process's: a write under way
        stale.write_text("half"), running.write_text("half")
        write(tmp_path / name)
        assert not stale.exists() and running.exists() and (tmp_path / name).is_file(), name
        running.unlink()


class _FakeModule:  # what write_results reads of a module
    PARAMS = ("b1", "b2")


# --- item 14: weight files ----------------------------------------------------------------------------------------


def _npz(path, compressed=False, **arrays):
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


def _bad_weight_files(module, folder):
    params, digest, w = np.array(module.PARAMS), np.array(module.MODEL_DIGEST), module.INIT
    np.save(folder / "w.npy", w)
    (folder / "empty.npz").write_bytes(b"")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, w=w, params=params, model=digest)
    corrupt = bytearray(buffer.getvalue())
    start = corrupt.index(b"w.npy") + 40  # inside w's deflate stream
    corrupt[start : start + 16] = b"\xff" * 16
    (folder / "corrupt.npz").write_bytes(bytes(corrupt))
    os.mkfifo(folder / "fifo.npz")
    return {
        "a .npy file": folder / "w.npy",
        "an empty file": folder / "empty.npz",
        "a corrupt compressed stream": folder / "corrupt.npz",
        "weights as strings": _npz(folder / "strings.npz", w=w.astype(str), params=params, model=digest),
        "params as a 0-d array": _npz(folder / "zerod.npz", w=w, params=np.array(module.PARAMS[0]), model=digest),
        "a FIFO": folder / "fifo.npz",
        "a folder": folder,
    }


@pytest.mark.slow
def test_every_bad_weight_file_is_a_value_error_naming_it(xor_run, tmp_path):
    _, module = xor_run
    for what, path in _bad_weight_files(module, tmp_path).items():
        with pytest.raises(ValueError) as raised:
            module.load_weights(path)  # before: BadZipFile, EOFError, zlib.error, IndexError, a hang (FIFO)
        assert str(path) in str(raised.value) and "\n" not in str(raised.value), what


@pytest.mark.slow
def test_a_small_file_claiming_a_huge_array_allocates_nothing(xor_run, tmp_path):
    """1 MB of compressed zeros whose header says 2^27 float64 values (1 GiB): the header is read first."""
    _, module = xor_run
    path = _npz(tmp_path / "huge.npz", compressed=True, w=np.zeros(2**27), params=np.array(module.PARAMS),
                model=np.array(module.MODEL_DIGEST))  # fmt: skip
    assert path.stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"huge\.npz.*w is float64 of shape \(134217728,\)"):
            module.load_weights(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak  # np.load allocated 1 GiB here


def test_bad_weights_on_the_command_line_are_one_line_and_status_2(xor_run, tmp_path, capsys):
    folder, module = xor_run
    data = tmp_path / "new.csv"
    data.write_text("x1,x2\n0,1\n")
    for what, path in _bad_weight_files(
        module, tmp_path / "bad" if (tmp_path / "bad").mkdir() is None else None
    ).items():
        status, _, err = _run(["predict", XOR, "--out-dir", folder / "out", "--weights", path, "--data", data], capsys)
        assert status == 2 and err.count("\n") == 1 and str(path) in err, (what, err)


# --- item 15: paths -------------------------------------------------------------------------------------------------


def test_save_writes_the_name_given_and_predict_reads_it(xor_run, tmp_path, capsys):
    folder, module = xor_run
    assert (folder / "W").is_file() and not (folder / "W.npz").exists()  # before: W.npz, announced as W
    with zipfile.ZipFile(folder / "W") as saved:
        assert sorted(saved.namelist()) == ["model.npy", "params.npy", "w.npy"]
    data = tmp_path / "new.csv"
    data.write_text("x1,x2\n0,1\n1,1\n")
    status, out, err = _run(
        ["predict", XOR, "--out-dir", folder / "out", "--weights", folder / "W", "--data", data], capsys
    )
    assert status == 0, err
    w = module.load_weights(folder / "W")
    expected = module.forward(w, np.array([[0.0, 1.0], [1.0, 1.0]]))  # the module's forward at the saved weights
    assert np.allclose([float(v) for v in out.split()[1:]], expected.ravel(), rtol=1e-15)


@pytest.mark.parametrize(
    "plot, problem", [("lossplot", "no extension"), ("loss.xyz", "extension .xyz"), (".", "it is a folder")]
)
def test_a_bad_plot_path_is_refused_before_any_work(plot, problem, tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib", reason="needs the plot extra (matplotlib): without it --plot is refused first")
    monkeypatch.chdir(tmp_path)
    for argv in (["train", XOR, "--plot", plot], ["fit", MISRA, "--plot", plot]):
        status, out, err = _run([*argv, "--out-dir", tmp_path / "out"], capsys)
        assert status == 2 and problem in err and err.count("\n") == 1, err
        assert out == "" and not (tmp_path / "out").exists()  # nothing built: checked first
    assert sorted(os.listdir(tmp_path)) == []


def test_fit_plot_title_names_the_model(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib", reason="needs the plot extra (matplotlib)")
    import matplotlib.figure

    titles = []
    real_savefig = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        lambda figure, *a, **k: (titles.append(figure.axes[0].get_title()), real_savefig(figure, *a, **k))[1])  # fmt: skip
    status, out, err = _run(["fit", MISRA, "--out-dir", tmp_path / "out", "--plot", tmp_path / "fit.png"], capsys)
    assert status == 0, err
    assert titles and titles[0].startswith("misra1a: b1=") and "_symcompile_" not in titles[0]
    assert f"plot       {tmp_path / 'fit.png'}" in out and (tmp_path / "fit.png").read_bytes()[:4] == b"\x89PNG"


# --- item 18: command-line odds -------------------------------------------------------------------------------------


def test_a_seed_beyond_uint64_is_refused_before_building(tmp_path, capsys):
    status, out, err = _run(["train", XOR, "--out-dir", tmp_path / "out", "--seed", str(2**64)], capsys)
    assert status == 2 and "seed must be an integer from 0 to 18446744073709551615" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_predict_reads_a_spec_from_a_pipe_once(xor_run, tmp_path):
    """`predict <(cat spec)`: the second read of the pipe was empty ("not valid TOML")."""
    folder, _ = xor_run
    data = tmp_path / "new.csv"
    data.write_text("x1,x2\n0,1\n")
    read_end, write_end = os.pipe()
    os.write(write_end, XOR.read_bytes())
    os.close(write_end)
    try:
        done = subprocess.run([sys.executable, "-m", "symcompile", "predict", f"/dev/fd/{read_end}", "--out-dir",
                               str(folder / "out"), "--weights", str(folder / "W"), "--data", str(data)],
                              pass_fds=(read_end,), capture_output=True, text=True, timeout=120, cwd=ROOT)  # fmt: skip
    finally:
        os.close(read_end)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "y" and len(done.stdout.splitlines()) == 2


def test_a_fifo_nobody_writes_is_refused_not_waited_on(tmp_path, capsys, monkeypatch):
    from symcompile import spec

    monkeypatch.setattr(spec, "PIPE_WAIT_SECONDS", 0.2)
    os.mkfifo(tmp_path / "fifo.toml")
    status, _, err = _run(["train", tmp_path / "fifo.toml", "--out-dir", tmp_path / "out"], capsys)
    assert status == 2 and "FIFO or pipe that nothing wrote to" in err and err.count("\n") == 1


def test_an_error_about_1000_inputs_names_a_few(tmp_path, capsys):
    path = tmp_path / "big.toml"
    path.write_text('kind = "mlp"\nlayers = [1000, 1000, 1]\n[data]\nX = [[1]]\nY = [1]\n')
    status, _, err = _run(["train", path, "--out-dir", tmp_path / "out"], capsys)
    assert status == 2 and "x1, x2, x3, x4, x5, x6, x7, x8, ... (1000 in all)" in err and len(err) < 300, err


@pytest.mark.slow
def test_output_cut_by_head_is_a_quiet_sigpipe_status(xor_run):
    folder, _ = xor_run
    command = f"{sys.executable} -m symcompile train {XOR} --out-dir {folder / 'out'} --max-iter 10 | head -1"
    done = subprocess.run(["bash", "-c", command + "; echo ${PIPESTATUS[0]} >&2"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)  # fmt: skip
    assert done.stdout.startswith("symcompile train: xor")
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.stderr.split()[-1] == str(128 + signal.SIGPIPE)


def test_predict_ignores_a_text_column(xor_run, tmp_path, capsys):
    folder, module = xor_run
    data = tmp_path / "new.csv"
    data.write_text("name,x1,x2\nfirst,0,1\nsecond,1,1\n")
    status, out, err = _run(
        ["predict", XOR, "--out-dir", folder / "out", "--weights", folder / "W", "--data", data], capsys
    )
    assert status == 0, err
    expected = module.forward(module.load_weights(folder / "W"), np.array([[0.0, 1.0], [1.0, 1.0]]))
    assert np.allclose([float(v) for v in out.split()[1:]], expected.ravel(), rtol=1e-15)
    data.write_text("name,x1,x2\nfirst,zero,1\n")  # a text cell in a column the model reads is still refused
    status, _, err = _run(
        ["predict", XOR, "--out-dir", folder / "out", "--weights", folder / "W", "--data", data], capsys
    )
    assert status == 2 and "'zero' is not a number" in err


# --- item 19: make_data.py ----------------------------------------------------------------------------------------


def test_make_data_without_scikit_learn_fails_in_one_line(tmp_path):
    """Run as the README does, with `import sklearn` failing: a non-zero status, so `... && train digits` stops."""
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text("import sys\nsys.modules['sklearn'] = None  # as if scikit-learn were not installed\n")
    copy = tmp_path / "examples" / "make_data.py"
    copy.parent.mkdir()
    copy.write_text((ROOT / "examples" / "make_data.py").read_text())
    environment = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    done = subprocess.run([sys.executable, str(copy)], capture_output=True, text=True, env=environment, timeout=120)
    assert done.returncode != 0 and done.stderr.count("\n") == 1 and "scikit-learn is not installed" in done.stderr
    assert sorted(p.name for p in (copy.parent / "data").iterdir()) == ["decay.csv", "students.csv", "three_blobs.csv"]


# --- item 10: Ctrl-C while Numba compiles (one process; the ten moments are in test_issue19_signals.py) -----------


@pytest.mark.slow
def test_ctrl_c_while_the_warm_up_compiles_ends_the_command_with_130(tmp_path):
    """The warm-up's "interrupted" was dropped and the full run followed (exit 0). A fresh module and Numba cache,
    SIGINT as soon as the header is printed (the warm-up compiles then)."""
    environment = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    command = [sys.executable, "-m", "symcompile", "train", str(XOR), "--out-dir", str(tmp_path / "out"),
               "--max-iter", "100000000", "--no-progress"]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    for line in process.stdout:
        if line.startswith("symcompile train:"):
            process.send_signal(signal.SIGINT)
            break
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, (out, err)
    assert err == "symcompile: interrupted while compiling xor's training loop (no iterations run)\n", err
    assert "iterations" not in out


def test_ctrl_c_while_finished_work_is_written_waits_for_it():
    """After the work, Ctrl-C is noted and the report and files are completed (then exit 130, in cli.main)."""
    from symcompile.interrupts import CtrlC

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (not a background job)
    try:
        ctrl_c, written = CtrlC(), []
        with ctrl_c.finishing("writing the files"):
            os.kill(os.getpid(), signal.SIGINT)  # Python runs the handler at once, in this (the main) thread
            written.append("all")
        assert ctrl_c.interrupted and written == ["all"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    finally:
        signal.signal(signal.SIGINT, previous)


# Runs `python -m symcompile ARGV` with Ctrl-C sent to itself as the AT-th fit of fit --many starts (the first
# fit compiles the solver or loads Numba's cache): a deterministic stand-in for Ctrl-C at that moment.
_CTRL_C_AT_FIT = """
import os, signal, sys
from symcompile import cli, cli_dask

AT, METHOD = int(sys.argv[1]), sys.argv[2]
real_command = cli_dask.fit_many_command

def fit_many_command(args, module, settings):
    solve, calls = getattr(module, METHOD), []
    def fit(**keywords):
        calls.append(keywords)
        if len(calls) == AT:
            os.kill(os.getpid(), signal.SIGINT)
        return solve(**keywords)
    setattr(module, METHOD, fit)
    return real_command(args, module, settings)

cli_dask.fit_many_command = fit_many_command
sys.exit(cli.main(sys.argv[3:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "at, method, message, rows",
    [
        (1, "least_squares", "interrupted while compiling misra1a's least_squares (no fit reached)", None),
        (1, "train", "interrupted while compiling misra1a's train (no fit reached)", None),
        (2, "least_squares", "interrupted after 2 of 3 files", 2),
    ],
)
def test_ctrl_c_in_fit_many_ends_at_once_before_a_fit_and_keeps_the_fits_after(tmp_path, at, method, message, rows):
    """Ctrl-C during fit --many's first fit (its compile): the process got a KeyboardInterrupt there, which LLVM's
    callbacks can swallow ("RuntimeError: no compiled object yet", exit 1), and wrote an empty table over the
    previous --out. Now it ends at once and leaves --out as it was. Later, the fit under way is finished and the
    fits reached are written (with --method train the runtime took a KeyboardInterrupt for that file's
    "interrupted" and the loop went on: exit 0)."""
    data = tmp_path / "data"
    data.mkdir()
    x = np.linspace(77.6, 760.0, 14)
    for i in range(3):
        y = (230 + i) * (1 - np.exp(-5.5e-4 * x))
        np.savetxt(data / f"c{i}.csv", np.column_stack([x, y]), delimiter=",", header="x,y", comments="")
    out = tmp_path / "fits.csv"
    out.write_text("file,b1,b2\nold.csv,1.0,2.0\n")  # the previous results
    argv = ["fit", str(MISRA), "--many", str(data), "--out", str(out), "--method", method, "--max-iter", "50",
            "--out-dir", str(tmp_path / "out")]  # fmt: skip
    done = subprocess.run([sys.executable, "-c", _CTRL_C_AT_FIT, str(at), method, *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 130 and done.stderr == f"symcompile: {message}\n", (done.returncode, done.stderr[-2000:])
    if rows is None:
        assert out.read_text() == "file,b1,b2\nold.csv,1.0,2.0\n"
    else:
        fitted = out.read_text().splitlines()[1:]
        assert [line.split(",")[0] for line in fitted] == ["c0.csv", "c1.csv"][:rows]
        assert all(",skipped," not in line for line in fitted)
