"""Every input has a size, and exceeding it is one line at once, not a hang or a MemoryError (README.md, Limits)."""

import subprocess
import sys

import numpy as np
import pytest

from symcompile.cli import main
from symcompile.model import MAX_PARAMS

MLP = 'kind = "mlp"\nlayers = [2, 1]\n'


def _refused_in_one_line(argv, capsys, *words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("symcompile: error: "), err
    for word in words:
        assert word in err
    return err


@pytest.mark.slow
def test_a_network_beyond_the_size_limit_is_refused_at_once(tmp_path):
    """[1000, 1000, 1] ran for a minute and 938 MiB with no output; with the scalar kernels it is now one line,
    in a fresh process (the timeout turns the old hang into a failure). The dense kernels, the default, build it."""
    spec = tmp_path / "big.toml"
    spec.write_text('kind = "mlp"\nlayers = [1000, 1000, 1]\n')
    done = subprocess.run(
        [sys.executable, "-m", "symcompile", "build", str(spec), "--kernels", "scalar", "--out-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "1,002,001 parameters" in done.stderr and f"{MAX_PARAMS:,}" in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_spec_or_csv_that_never_ends_is_refused(tmp_path, capsys):
    _refused_in_one_line(["build", "/dev/zero", "--out-dir", str(tmp_path)], capsys, "larger than 1 MiB")
    spec = tmp_path / "zero.toml"
    spec.write_text(MLP + '[data]\ncsv = "zero.csv"\n')
    (tmp_path / "zero.csv").symlink_to("/dev/zero")  # a link out of the spec's folder: refused as such ...
    _refused_in_one_line(["build", str(spec), "--out-dir", str(tmp_path)], capsys, "is outside")
    argv = ["build", str(spec), "--out-dir", str(tmp_path), "--data-root", "/"]  # ... and allowed, then read so far
    _refused_in_one_line(argv, capsys, "larger than 64 MiB")


def test_a_csv_line_beyond_the_limit_is_refused(tmp_path, capsys):
    spec = tmp_path / "wide.toml"
    spec.write_text(MLP + '[data]\ncsv = "wide.csv"\n')
    (tmp_path / "wide.csv").write_text("x1,x2,y\n" + "1," * (1 << 20) + "\n")
    _refused_in_one_line(["build", str(spec), "--out-dir", str(tmp_path)], capsys, "has a line of", "at most")


@pytest.mark.parametrize("opening, closing", [("[", "]"), ("{a = ", "}")])
def test_deeply_nested_toml_is_one_line(tmp_path, capsys, opening, closing):
    spec = tmp_path / "deep.toml"
    spec.write_text(MLP + "x = " + opening * 5000 + "1" + closing * 5000 + "\n")
    _refused_in_one_line(["build", str(spec), "--out-dir", str(tmp_path)], capsys, "nested more than")


@pytest.mark.parametrize("max_iter", [10**10, 2**62])
def test_a_huge_max_iter_costs_nothing_when_tol_stops_early(seed_module, max_iter):
    result = seed_module.train(max_iter=max_iter, tol=1.0)  # every step of the seed's first iteration is < 1
    assert result.status == "converged" and result.iterations == 1
    expected = seed_module.train(max_iter=1)
    np.testing.assert_array_equal(result.w, expected.w)
    np.testing.assert_array_equal(result.loss_history, expected.loss_history)


def test_the_loss_history_grows_through_long_runs(seed_module):
    m = seed_module
    long = m.train(max_iter=5000, tol=0, update="simultaneous")  # past the first allocation (1,024) twice
    short = m.train(max_iter=999, tol=0, update="simultaneous")
    assert long.iterations == 5000 and len(long.loss_history) == 5001
    np.testing.assert_array_equal(long.loss_history[:999], short.loss_history[:999])
    assert long.loss_history[-1] == m.loss(long.w)
    assert np.all(np.diff(long.loss_history) < 0)


def test_large_default_data_lives_in_a_checked_file_beside_the_module(tmp_path, capsys):
    """10,000 rows: the module stays small and reads <name>.npz, checked by digest; `train` rebuilds without it."""
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 4, 10_000)
    y = 2.0 * x + 0.5
    (tmp_path / "rows.csv").write_text("x,y\n" + "".join(f"{a!r},{b!r}\n" for a, b in zip(x.tolist(), y.tolist())))
    spec = tmp_path / "rows.toml"
    spec.write_text('kind = "expression"\nparams = ["a", "b"]\ninputs = ["x"]\ntargets = ["y"]\n'
                    'output = "a*x + b"\nloss = "(a*x + b - y)**2"\n[data]\ncsv = "rows.csv"\n')  # fmt: skip
    out_dir = tmp_path / "generated"
    assert main(["build", str(spec), "--out-dir", str(out_dir)]) == 0
    module_file, data_file = out_dir / "rows.py", out_dir / "rows.npz"
    # The module's code is about 60 KB (ten training loops); the 10,000 rows inline would add about 400 KB.
    assert module_file.stat().st_size < 100_000 and data_file.is_file()
    from symcompile.writer import load_module

    m = load_module(module_file)
    np.testing.assert_array_equal(m.X[:, 0], x)
    np.testing.assert_array_equal(m.Y[:, 0], y)
    assert m.loss([2.0, 0.5]) == 0.0

    elsewhere = tmp_path / "copy"
    elsewhere.mkdir()
    (elsewhere / "rows.py").write_bytes(module_file.read_bytes())
    with pytest.raises(ImportError, match="cannot read this module's default data"):
        load_module(elsewhere / "rows.py")
    np.savez(elsewhere / "rows.npz", X=m.X, Y=m.Y + 1.0)  # other data under the right name
    with pytest.raises(ImportError, match="not the data this module was built with"):
        load_module(elsewhere / "rows.py")

    data_file.unlink()
    capsys.readouterr()
    assert main(["train", str(spec), "--out-dir", str(out_dir), "--max-iter", "5"]) == 0
    assert "is missing its data file rows.npz" in capsys.readouterr().out and data_file.is_file()
