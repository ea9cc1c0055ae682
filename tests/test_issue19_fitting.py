"""Issue 19, fitting and building: stable rewrites of hand-written forms (8), flat sums (9), fit --many that keeps
every good fit (13), --dask addresses and fit_many's batch (16), least_squares's arguments (17), fit of a
larger MSE network and of examples/decay.toml (19).

References: mpmath at 60 digits (values and derivatives of the formulas as written), SymPy for the parsed
sums, the parameters the synthetic curves were drawn from, and SciPy's least_squares.
"""

import csv
import http.server
import math
import os
import signal
import socket
import threading
import time
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy as sp

from symcompile import cli_dask
from symcompile.cli import main
from symcompile.errors import SymcompileError
from symcompile.expression import ExpressionParser
from symcompile.rewrite import REWRITES
from symcompile.spec import load_spec
from benchmarks.bench.peer_forms import peer_functions

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MISRA = str(EXAMPLES / "misra1a.toml")

# ----------------------------------------------------------------------------- 8: hand-written unstable forms

u, v = sp.symbols("u v", real=True)
HAND_WRITTEN = [
    "log(exp(u) + exp(v))",
    "log(exp(u) + exp(v)) - u",
    "log(1 + exp(u) + exp(v))",
    "log(2*exp(u) + exp(-v))",
    "(exp(u) - exp(-u))/(exp(u) + exp(-u))",
    "(e**u - e**(-u))/(e**u + e**(-u))",
    "v*(exp(u) - exp(-u))/(exp(u) + exp(-u))",
    "(exp(2*u) - 1)/(exp(2*u) + 1)",
    "(1 - exp(-2*u))/(1 + exp(-2*u))",
    "(exp(v) - exp(u))/(exp(u) + exp(v))",
    "1/(1 + exp(-u))",
    "exp(u)/(exp(u) + 1)",
    "log(1 + exp(u))",
    "log(1/(1 + exp(-v)))",
]
POINTS = [(1000.0, 3.0), (-1000.0, 3.0), (1000.0, 999.0), (-1000.0, -1001.0), (800.0, -800.0), (0.5, -0.25)]


def _rewritten(expr):
    for rule in REWRITES:
        expr = rule(expr)
    return expr


@pytest.mark.parametrize("text", HAND_WRITTEN)
def test_hand_written_exp_forms_are_rewritten_to_stable_ones_equal_to_mpmath(text):
    """The rewritten formula and its derivatives, in float64 (the registry's math forms, which equal its Numba
    helpers), against the formula as written, evaluated exactly: finite where float64 as written is inf/NaN."""
    written = ExpressionParser({"u": u, "v": v}).parse(text)
    stable = _rewritten(written)
    in_float64 = sp.lambdify(
        (u, v), [stable, sp.diff(stable, u), sp.diff(stable, v)], [peer_functions("math", math), "math"]
    )
    exact = sp.lambdify((u, v), [written, sp.diff(written, u), sp.diff(written, v)], "mpmath")
    for point in POINTS:
        got = in_float64(*point)
        with mpmath.workdps(60):
            want = exact(*map(mpmath.mpf, point))
        for k, (g, w) in enumerate(zip(got, want)):
            assert math.isfinite(g) and abs(g - w) <= 1e-13 * max(1.0, abs(w)), (text, point, k, g, float(w))


def test_a_built_module_of_hand_written_forms_is_finite_and_exact_at_1000(tmp_path):
    """End to end: a module whose outputs are log-add-exp and tanh written with exp, at +-1000."""
    from symcompile import compile_model

    a, x, y = sp.symbols("a x y")
    parse = ExpressionParser({"a": a, "x": x, "y": y}).parse
    outputs = [parse("log(exp(a*x) + exp(2*x))"), parse("(exp(a*x) - exp(-a*x))/(exp(a*x) + exp(-a*x))")]
    loss = (outputs[0] - y) ** 2 + (outputs[1] - y) ** 2
    module = compile_model(outputs, loss, [a], [x], [y], name="hand_written", init=[1.0], out_dir=tmp_path)
    X, Y = np.array([[1000.0], [-1000.0], [0.3]]), np.array([[1.0], [-2.0], [0.5]])
    got_outputs = module.forward(np.array([1.0]), X)
    loss_value, grad = module.loss_and_grad(np.array([1.0]), X, Y)
    exact = sp.lambdify((a, x, y), [*outputs, loss, sp.diff(loss, a)], "mpmath")
    with mpmath.workdps(60):
        rows = [exact(mpmath.mpf(1), mpmath.mpf(float(xi)), mpmath.mpf(float(yi))) for xi, yi in zip(X[:, 0], Y[:, 0])]
    for n, row in enumerate(rows):
        for k in range(2):
            assert abs(got_outputs[n, k] - row[k]) <= 1e-13 * max(1, abs(row[k]))
    exact_loss, exact_grad = (sum(row[i] for row in rows) / 3 for i in (2, 3))
    assert abs(loss_value - exact_loss) <= 1e-13 * abs(exact_loss)
    assert abs(grad[0] - exact_grad) <= 1e-12 * abs(exact_grad)


# ----------------------------------------------------------------------------- 9: flat sums are not nesting


def test_a_flat_sum_of_a_thousand_terms_parses_as_sympy_adds_it():
    x, y = sp.symbols("x y")
    parse = ExpressionParser({"x": x, "y": y}).parse
    assert parse("+".join(["x"] * 1000)) == 1000 * x
    terms = [f"{k}*x**{k % 7}*y" for k in range(1, 1001)]
    assert parse(" - ".join(terms)) == sp.expand(2 * sp.sympify(terms[0]) - sum(sp.sympify(t) for t in terms))
    assert parse("*".join(["x"] * 1000) + "/y") == x**1000 / y
    assert parse("2 - 3*x/4 + x**2**3 - 5") == -3 - sp.Rational(3, 4) * x + x**8  # precedence and ** to the right


def test_real_nesting_is_still_refused_in_one_line():
    parse = ExpressionParser({"x": sp.Symbol("x")}).parse
    for text in ["-" * 3000 + "x", "exp(" * 400 + "x" + ")" * 400]:
        with pytest.raises(SymcompileError) as refused:
            parse(text)
        assert "\n" not in str(refused.value) and len(str(refused.value)) < 300  # one line, not the expression
    with pytest.raises(SymcompileError, match="division by zero"):
        parse("+".join(["x"] * 50) + "/(1 - 1)")


def test_a_spec_with_a_thousand_term_residual_loads(tmp_path):
    spec = tmp_path / "flat.toml"
    spec.write_text('kind = "expression"\nparams = ["a"]\ninputs = ["x"]\ntargets = ["y"]\noutput = "a*x"\n'
                    f'residual = "{"+".join(["a*x"] * 1000)} - y"\n')  # fmt: skip
    a, x, y = sp.symbols("a x y", real=True)
    assert load_spec(spec).residuals == (1000 * a * x - y,)


# ----------------------------------------------------------------------------- 13: fit --many keeps every good fit

NIST_X = np.array([77.6, 114.9, 141.1, 190.8, 239.9, 289.0, 332.8, 378.4, 434.8, 477.3, 536.8, 593.1, 689.1, 760.0])


def write_good_curve(path, rng):
    """A Misra1a-like curve y = b1 (1 - exp(-b2 x)) + noise; returns its (b1, b2)."""
    b1, b2 = 240.0 * rng.uniform(0.9, 1.1), 5.5e-4 * rng.uniform(0.9, 1.1)
    y = b1 * (1 - np.exp(-b2 * NIST_X)) + 0.01 * rng.standard_normal(NIST_X.size)
    path.write_text("x,y\n" + "".join(f"{a!r},{b!r}\n" for a, b in zip(NIST_X.tolist(), y.tolist())))
    return b1, b2


# kind -> (how to make the file at a path, words its reason holds)
BAD_KINDS = {
    "nan": (lambda p: p.write_text("x,y\n1,2\n2,nan\n3,4\n"), "NaN"),
    "inf": (lambda p: p.write_text("x,y\n1,2\ninf,3\n3,4\n"), "infinity"),
    "empty": (lambda p: p.write_text(""), "needs a header line"),
    "header_only": (lambda p: p.write_text("x,y\n"), "needs a header line"),
    "text": (lambda p: p.write_text("x,y\n1,2\n2,abc\n"), "'abc' is not a number"),
    "missing_column": (lambda p: p.write_text("x,z\n1,2\n2,3\n"), "no column 'y'"),
    "too_few_rows": (lambda p: p.write_text("x,y\n1,2\n"), "cannot determine 2 weights"),
    "dangling_link": (lambda p: p.symlink_to(p.parent / "nowhere"), "a link to nothing"),
    "folder": (lambda p: p.mkdir(), "a folder"),
    "fifo": (lambda p: os.mkfifo(p), "not a regular file"),
}


def make_fit_folder(folder, good, seed=0):
    """`good` curve files and one file of each kind in BAD_KINDS, their names spread among the good ones' (the
    last bad file sorts after every good one). Returns ({good name: (b1, b2)}, {bad name: reason's words})."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    truths = {f"curve{i:04d}.csv": write_good_curve(folder / f"curve{i:04d}.csv", rng) for i in range(good)}
    bad = {}
    for k, (kind, (make, reason)) in enumerate(BAD_KINDS.items()):
        name = f"curve{k * good // len(BAD_KINDS):04d}_{kind}.csv" if k < len(BAD_KINDS) - 1 else f"zz_{kind}.csv"
        make(folder / name)
        bad[name] = reason
    return truths, bad


def _within(seconds, function, *arguments):
    """function(*arguments), failing the test if it has not returned within `seconds` (a hang)."""

    def too_long(signum, frame):
        raise AssertionError(f"no answer within {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(seconds)
    try:
        return function(*arguments)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_fit_many(folder, out, fit_dir, capsys):
    argv = ["fit", MISRA, "--many", str(folder), "--out", str(out), "--out-dir", str(fit_dir)]
    start = time.perf_counter()
    code = _within(120, main, argv)  # a FIFO among the files that were opened would wait forever: fail instead
    seconds = time.perf_counter() - start
    captured = capsys.readouterr()
    return code, list(csv.DictReader(out.open())), captured, seconds


def check_fit_rows(rows, captured, truths, bad):
    assert sorted(r["file"] for r in rows) == sorted([*truths, *bad]) == [r["file"] for r in rows]
    for row in rows:
        if row["file"] in bad:
            assert row["status"] == "skipped" and bad[row["file"]] in row["reason"], row
            assert f"symcompile: skipped {row['file']}: " in captured.err
        else:
            b1, b2 = truths[row["file"]]
            assert row["reason"] == "" and row["status"] in ("ftol", "xtol", "ftol+xtol", "gtol"), row
            assert abs(float(row["b1"]) / b1 - 1) < 1e-2 and abs(float(row["b2"]) / b2 - 1) < 1e-2, (
                row
            )  # noise 0.01: ~1e-3
    assert captured.err.count("\n") == len(bad) and "Traceback" not in captured.err
    assert f"{len(truths)} fitted" in captured.out and f"{len(bad)} skipped" in captured.out


def test_fit_many_skips_each_bad_file_in_one_line_and_keeps_every_fit(misra, fit_dir, tmp_path, capsys):
    truths, bad = make_fit_folder(tmp_path / "data", good=12)
    out = tmp_path / "data" / "fits.csv"  # in the folder itself: a second run must not read it as data
    code, rows, captured, _ = run_fit_many(tmp_path / "data", out, fit_dir, capsys)
    assert code == cli_dask.EXIT_SOME_SKIPPED == 1
    check_fit_rows(rows, captured, truths, bad)
    code, again, captured, _ = run_fit_many(tmp_path / "data", out, fit_dir, capsys)
    assert code == 1 and again == rows  # fits.csv is not among the files
    check_fit_rows(again, captured, truths, bad)


def test_fit_many_of_good_files_only_exits_0(misra, fit_dir, tmp_path, capsys):
    folder = tmp_path / "good"
    folder.mkdir()
    rng = np.random.default_rng(3)
    truths = {f"c{i}.csv": write_good_curve(folder / f"c{i}.csv", rng) for i in range(3)}
    code, rows, captured, _ = run_fit_many(folder, tmp_path / "fits.csv", fit_dir, capsys)
    assert code == 0
    check_fit_rows(rows, captured, truths, {})


@pytest.mark.slow
@pytest.mark.measurement
def test_fit_many_over_a_thousand_good_files_and_ten_bad_ones(misra, fit_dir, tmp_path, capsys):
    truths, bad = make_fit_folder(tmp_path / "data", good=1000, seed=1)
    code, rows, captured, seconds = run_fit_many(tmp_path / "data", tmp_path / "fits.csv", fit_dir, capsys)
    assert code == 1
    check_fit_rows(rows, captured, truths, bad)
    print(f"\n1,000 + 10 files: {seconds:.2f} s; {captured.out.strip()}")


@pytest.mark.cluster
def test_fit_many_on_dask_keeps_the_fits_beside_a_refused_data_set(misra):
    distributed = pytest.importorskip("distributed", reason="needs the dask extra (pip install '.[dask]')")
    from symcompile import distributed as sd

    rng = np.random.default_rng(4)
    datasets = []
    for _ in range(4):
        b1, b2 = 240.0 * rng.uniform(0.9, 1.1), 5.5e-4 * rng.uniform(0.9, 1.1)
        datasets.append((NIST_X.copy(), b1 * (1 - np.exp(-b2 * NIST_X))))
    datasets[1] = (NIST_X.copy(), np.full(NIST_X.size, np.nan))
    datasets[3] = (NIST_X[:1].copy(), datasets[3][1][:1])
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client:
        results = sd.fit_many(misra, datasets, client=client, batch=3, errors="return")
        with pytest.raises(SymcompileError, match="data set 1: .*NaN"):
            sd.fit_many(misra, datasets, client=client, batch=3)
    assert "NaN" in results[1] and "cannot determine 2 weights" in results[3]
    for k in (0, 2):
        reference = misra.least_squares(X=datasets[k][0], Y=datasets[k][1])
        np.testing.assert_array_equal(results[k].w, reference.w)


# ----------------------------------------------------------------------------- 16: --dask addresses, fit_many's batch


@pytest.mark.cluster
@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("http://127.0.0.1:8787", "tcp://HOST:PORT"),
        ("inproc://x", "tcp://HOST:PORT"),
        ("tcp://", "tcp://HOST:PORT"),
        ("tcp://host:99999", "tcp://HOST:PORT"),
        ("localhost", "tcp://HOST:PORT"),
        ("local:0", "positive number of workers"),
    ],
)
def test_bad_dask_addresses_are_one_line_before_anything_runs(address, message, capsys, tmp_path):
    pytest.importorskip("distributed", reason="needs the dask extra: without it --dask is refused first")
    assert main(["train", "--dask", address, "--update", "simultaneous", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())  # refused before building


def test_local_workers_are_bounded_by_the_cpus():
    # Checked on the function: before the bound, the command line started the 1,000 processes.
    with pytest.raises(SymcompileError, match=f"up to this machine's {os.cpu_count()} CPUs"):
        cli_dask.scheduler_address(f"local:{os.cpu_count() + 1}")
    assert cli_dask.scheduler_address(f"local:{os.cpu_count()}") == (None, os.cpu_count())


def test_good_dask_addresses_parse():
    assert cli_dask.scheduler_address("tcp://10.0.0.1:8786") == ("10.0.0.1", 8786)
    assert cli_dask.scheduler_address("sched.example:8786") == ("sched.example", 8786)
    assert cli_dask.scheduler_address("tcp://[::1]:8786") == ("::1", 8786)
    assert cli_dask.scheduler_address("local:1") == (None, 1)


def _serve(handler):
    """A TCP server on a free local port that runs `handler(connection)` per connection, in a thread."""
    server = socket.create_server(("127.0.0.1", 0))
    held = []

    def accept():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            held.append(connection)
            threading.Thread(target=handler, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server, held


@pytest.mark.slow
def test_a_port_that_accepts_and_never_answers_is_an_error_within_the_connect_limit(monkeypatch):
    monkeypatch.setattr(cli_dask, "CONNECT_SECONDS", 1.0)
    server, held = _serve(lambda connection: None)
    start = time.monotonic()
    with server, pytest.raises(SymcompileError, match="did not answer as a Dask scheduler within 1 s"):
        cli_dask.probe_scheduler("127.0.0.1", server.getsockname()[1])
    assert time.monotonic() - start < 3


@pytest.mark.slow
def test_a_web_server_is_not_taken_for_a_scheduler():
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        with pytest.raises(SymcompileError, match="Dask scheduler"):
            cli_dask.probe_scheduler("127.0.0.1", web.server_address[1], seconds=1.0)
        # one that answers first, with what a web server would say
        server, _ = _serve(lambda connection: connection.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n"))
        with server, pytest.raises(SymcompileError, match="is not a Dask scheduler"):
            cli_dask.probe_scheduler("127.0.0.1", server.getsockname()[1], seconds=1.0)
    finally:
        web.shutdown()


def test_a_closed_port_is_one_line():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    with pytest.raises(SymcompileError, match="cannot reach the Dask scheduler"):
        cli_dask.probe_scheduler("127.0.0.1", port, seconds=1.0)


@pytest.mark.cluster
def test_a_real_scheduler_passes_the_probe():
    distributed = pytest.importorskip("distributed", reason="needs the dask extra (pip install '.[dask]')")
    with distributed.LocalCluster(n_workers=0, processes=False, protocol="tcp", dashboard_address=None) as cluster:
        host, port = cli_dask.scheduler_address(cluster.scheduler_address)
        cli_dask.probe_scheduler(host, port, seconds=5.0)


@pytest.mark.cluster
@pytest.mark.parametrize("batch", [-1, 0, 2.5, True, "2"])
def test_fit_many_batch_must_be_a_positive_integer(batch):
    pytest.importorskip("distributed", reason="needs the dask extra (pip install '.[dask]')")
    from symcompile import distributed as sd

    with pytest.raises(SymcompileError, match="batch must be a positive integer"):
        sd.fit_many(object(), [], batch=batch)


# ----------------------------------------------------------------------------- 17: least_squares's arguments


@pytest.mark.parametrize(
    ("keywords", "error", "message"),
    [
        ({"max_iter": 2.5}, TypeError, "max_iter must be an integer"),
        ({"max_iter": True}, TypeError, "max_iter must be an integer"),
        ({"max_iter": "10"}, TypeError, "max_iter must be an integer"),
        ({"max_iter": math.inf}, TypeError, "max_iter must be an integer"),
        ({"max_iter": 10**30}, ValueError, "max_iter must be an integer from 1 to 2\\*\\*62"),
        ({"max_iter": 0}, ValueError, "max_iter must be"),
        ({"ftol": "a"}, TypeError, "ftol must be a finite number"),
        ({"xtol": -1.0}, ValueError, "xtol must be a finite number >= 0"),
        ({"gtol": math.inf}, ValueError, "gtol must be"),
        ({"gtol": math.nan}, ValueError, "gtol must be"),
        ({"xtol": 10**400}, ValueError, "xtol must be"),
        ({"ftol": False}, TypeError, "ftol must be"),
    ],
)
def test_least_squares_arguments_are_errors_naming_them(misra, keywords, error, message):
    with pytest.raises(error, match=message):
        misra.least_squares(**keywords)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tol", "-1"], "--tol must be a finite number >= 0, not -1.0"),
        (["--tol", "nan"], "--tol must be"),
        (["--tol", "inf"], "--tol must be"),
        (["--max-iter", "0"], "--max-iter must be an integer from 1"),
        (["--max-iter", str(10**30)], "--max-iter must be an integer from 1"),
    ],
)
def test_fit_flags_are_named_in_their_errors(flags, message, capsys, tmp_path):
    assert main(["fit", MISRA, *flags, "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "xtol" not in err
    assert not list(tmp_path.iterdir())  # refused before building


# ----------------------------------------------------------------------------- 19: fit of a larger network, decay.toml

MLP_SPEC = """kind = "mlp"
layers = [1, 6, 1]
hidden_activation = "tanh"
output_activation = "identity"
loss = "mean_squared_error"
seed = 0

[data]
X = {x}
Y = {y}
"""


def _mlp_spec(tmp_path):
    x = np.linspace(-1.0, 1.0, 40)
    spec = tmp_path / "mlp19.toml"
    spec.write_text(MLP_SPEC.format(x=[[float(a)] for a in x], y=np.sin(2 * x).round(12).tolist()))
    return spec


@pytest.mark.slow
def test_an_mse_network_above_16_parameters_gets_the_scalar_kernels_fit_needs(tmp_path, capsys):
    from symcompile.cli import _least_squares_module, resolve_model

    spec = _mlp_spec(tmp_path)
    model, command = resolve_model(str(spec))
    assert model.n_params == 19
    assert main(["build", str(spec), "--out-dir", str(tmp_path)]) == 0  # train's choice: dense kernels
    module = _least_squares_module(model, command, tmp_path)
    assert "building it with scalar kernels" in capsys.readouterr().out
    assert hasattr(module, "_residuals_and_jacobian") and not hasattr(module, "_dense_call")
    w = np.linspace(-0.5, 0.5, 19)
    J, h = module.jacobian(w), 1e-6
    central = [(module.residuals(w + h * e) - module.residuals(w - h * e)) / (2 * h) for e in np.eye(19)]
    np.testing.assert_allclose(J, np.column_stack(central), rtol=1e-6, atol=1e-8)


@pytest.mark.slow
def test_fit_of_an_mse_network_above_16_parameters_fits_it(tmp_path, capsys):
    """fit runs least squares on the 1-6-1 network; its printed weights, put into the network written in NumPy
    (neurons numbered inputs first: x is 1, the hidden units 2..7, the output 8), give the printed sum of
    squares, far below the start's."""
    spec = _mlp_spec(tmp_path)
    assert main(["fit", str(spec), "--out-dir", str(tmp_path), "--max-iter", "2000"]) == 0
    printed = capsys.readouterr().out
    assert "building it with scalar kernels" in printed
    w = {line.split()[0]: float(line.split()[1]) for line in printed.splitlines() if "(standard error)" in line}
    x = np.linspace(-1.0, 1.0, 40)
    f = w["b8"] + sum(w[f"w{j}_8"] * np.tanh(w[f"b{j}"] + w[f"w1_{j}"] * x) for j in range(2, 8))
    rss = float(printed.split("residual sum of squares ")[1].split()[0])
    assert len(w) == 19 and rss == pytest.approx(np.sum((f - np.sin(2 * x).round(12)) ** 2), rel=1e-6, abs=1e-15)
    assert rss < 1e-6 * np.sum(np.sin(2 * x) ** 2)


def test_decay_example_is_the_residual_model_the_readme_calls_a_curve_fit():
    from symcompile.cli import _check_least_squares

    model = load_spec(EXAMPLES / "decay.toml")
    _check_least_squares(model)  # no error: fit takes it
    a, b, c, x, y = sp.symbols("a b c x y", real=True)
    assert model.residuals == (a * sp.exp(-b * x) + c - y,)
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    assert "python -m symcompile fit examples/decay.toml" in readme


@pytest.mark.peers
@pytest.mark.slow
def test_fit_of_decay_equals_scipy(tmp_path, capsys):
    scipy_optimize = pytest.importorskip("scipy.optimize", reason="needs the test extra (pip install '.[test]')")
    assert main(["fit", str(EXAMPLES / "decay.toml"), "--out-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    model = load_spec(EXAMPLES / "decay.toml")
    x, y = model.X[:, 0], model.Y[:, 0]
    reference = scipy_optimize.least_squares(lambda w: w[0] * np.exp(-w[1] * x) + w[2] - y, model.init, method="lm",
                                             xtol=1e-10, ftol=1e-10, gtol=1e-10)  # fmt: skip
    for name, value in zip("abc", reference.x):
        fitted = float(printed.split(f"\n  {name}  ")[1].split()[0])
        assert abs(fitted - value) <= 1e-6 * abs(value)


@pytest.mark.slow
def test_fit_many_with_train_reads_max_iter_and_tol(misra, fit_dir, tmp_path, capsys):
    """--max-iter and --tol were silently dropped with --method train: each file now trains that many iterations."""
    folder = tmp_path / "data"
    folder.mkdir()
    write_good_curve(folder / "c0.csv", np.random.default_rng(5))
    out = tmp_path / "fits.csv"
    argv = ["fit", MISRA, "--many", str(folder), "--out", str(out), "--out-dir", str(fit_dir), "--method", "train"]
    assert main([*argv, "--max-iter", "3"]) == 0
    assert [r["iterations"] for r in csv.DictReader(out.open())] == ["3"]
    assert main([*argv, "--max-iter", "0"]) == 2
    assert "--max-iter must be an integer from 1" in capsys.readouterr().err
