"""symcompile.distributed on a LocalCluster of 2 worker processes (skipped without Dask).

References: the generated module's own `train`/`least_squares` on the same data in memory (the in-process
compiled code, independent of the partitioning, the shipping and the scheduler), and, for Adam where the
module has no `optimizer="adam"` yet, a textbook Adam loop (Kingma and Ba's bias-corrected form) over
`module.loss_and_grad`. One cluster for the session; the worker-kill tests run last in this file.
"""

import csv
import inspect
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

from symcompile import SymcompileError, build, compile_model  # noqa: E402
from symcompile import distributed as sd  # noqa: E402
from symcompile.cli import main  # noqa: E402
from symcompile.spec import load_spec  # noqa: E402
from symcompile.writer import load_module  # noqa: E402

RTOL = 1e-12
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="session")
def client(tmp_path_factory):
    """2 worker processes, one thread each; their modules and Numba caches in a temporary folder."""
    folder = tmp_path_factory.mktemp("workers")
    previous = os.environ.get(sd.WORKER_DIR_VARIABLE)
    os.environ[sd.WORKER_DIR_VARIABLE] = str(folder)  # the worker processes inherit it
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()
    if previous is None:
        del os.environ[sd.WORKER_DIR_VARIABLE]
    else:
        os.environ[sd.WORKER_DIR_VARIABLE] = previous


@pytest.fixture(scope="session")
def decay_spec(tmp_path_factory):
    """examples/decay.toml (y = a exp(-b x) + c) as a residual model (least_squares), training by simultaneous
    descent, whose loop compiles faster than the sequential one; the API and the CLI tests share its module."""
    folder = tmp_path_factory.mktemp("decay")
    (folder / "data").mkdir()
    shutil.copy(EXAMPLES / "data" / "decay.csv", folder / "data")
    text = (EXAMPLES / "decay.toml").read_text().replace("[training]\n", '[training]\nupdate = "simultaneous"\n')
    text = text.replace('loss = "(a*exp(-b*x) + c - y)**2"', 'residual = "a*exp(-b*x) + c - y"')
    (folder / "decay.toml").write_text(text)
    return folder / "decay.toml"


@pytest.fixture(scope="session")
def decay(decay_spec):
    return load_module(build(load_spec(decay_spec), decay_spec.parent).path)


def curves(count, points=12, seed=0):
    """Synthetic decay curves with noise: (x, y) pairs, each its own amplitude, rate and offset."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 4.0, points)
    return [
        (x.copy(), a * np.exp(-k * x) + c + 0.01 * rng.standard_normal(points))
        for a, k, c in zip(rng.uniform(0.5, 2, count), rng.uniform(0.3, 1.5, count), rng.uniform(-0.2, 0.2, count))
    ]


def samples(n=400, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    Y = (X[:, :1] + 0.5 * X[:, 1:] + 0.3 * rng.normal(size=(n, 1)) > 0).astype(float)
    return X, Y


def partitioned(X, Y, partitions=4):
    rows = -(-len(X) // partitions)
    return da.from_array(X, chunks=(rows, X.shape[1])), da.from_array(Y, chunks=(rows, Y.shape[1]))


def assert_same_training(result, reference):
    assert result.status == reference.status and result.iterations == reference.iterations
    np.testing.assert_allclose(result.w, reference.w, rtol=RTOL, atol=0)
    np.testing.assert_allclose(result.loss_history, reference.loss_history, rtol=RTOL, atol=0)


def test_gd_on_four_partitions_equals_training_in_memory(client, seed_module):
    X, Y = samples()
    settings = {"lr": 0.5, "max_iter": 50, "tol": 0.0, "update": "simultaneous"}
    reference = seed_module.train(seed_module.INIT, X, Y, **settings)  # first: workers load what compiles here
    result = sd.train(seed_module, *partitioned(X, Y), client=client, **settings)
    assert result.iterations == 50 and type(result) is seed_module.TrainResult
    assert_same_training(result, reference)
    assert reference.loss_history[-1] < 0.9 * reference.loss_history[0]  # it trained


def textbook_adam(module, X, Y, lr, steps, betas=(0.9, 0.999), eps=1e-8):
    """Kingma and Ba's Adam: bias-corrected moments, eps added to the root of the corrected second moment."""
    w, m, v = module.INIT.copy(), np.zeros(len(module.INIT)), np.zeros(len(module.INIT))
    history = []
    for t in range(1, steps + 1):
        loss, g = module.loss_and_grad(w, X, Y)
        history.append(loss)
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g**2
        w = w - lr * (m / (1 - betas[0] ** t)) / (np.sqrt(v / (1 - betas[1] ** t)) + eps)
    return w, np.array(history + [module.loss(w, X, Y)])


def test_adam_on_four_partitions_equals_training_in_memory(client, seed_module):
    X, Y = samples()
    result = sd.train(seed_module, *partitioned(X, Y), client=client, optimizer="adam", lr=0.05, max_iter=50, tol=0.0)
    if "optimizer" in inspect.signature(seed_module.train).parameters:
        reference = seed_module.train(seed_module.INIT, X, Y, optimizer="adam", lr=0.05, max_iter=50, tol=0.0)
        assert_same_training(result, reference)
    w, history = textbook_adam(seed_module, X, Y, lr=0.05, steps=50)
    np.testing.assert_allclose(result.w, w, rtol=RTOL, atol=0)
    np.testing.assert_allclose(result.loss_history, history, rtol=RTOL, atol=0)


def test_dataframe_partitions_train_as_the_array(client, seed_module):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, Y = samples(n=120)
    frame = dd.from_pandas(pd.DataFrame({"x1": X[:, 0], "x2": X[:, 1], "y": Y[:, 0]}), npartitions=3)
    settings = {"lr": 0.5, "max_iter": 3, "tol": 0.0, "update": "simultaneous"}
    result = sd.train(seed_module, frame, client=client, **settings)
    assert_same_training(result, seed_module.train(seed_module.INIT, X, Y, **settings))


def fit_in_memory(module, method, datasets, **kwargs):
    return [getattr(module, method)(X=X, Y=Y, **kwargs) for X, Y in datasets]


def assert_same_fits(results, references):
    assert len(results) == len(references)
    for result, reference in zip(results, references):
        assert type(result) is type(reference)
        for got, want in zip(result, reference):  # the same compiled code on the same numbers: equal bits
            np.testing.assert_array_equal(got, want)


def test_fit_many_equals_the_fits_in_memory(client, decay):
    datasets = curves(200)
    method = "least_squares"
    references = fit_in_memory(decay, method, datasets)  # first: the workers then load the kernels compiled here
    assert_same_fits(sd.fit_many(decay, datasets, client=client, method=method), references)
    assert np.median([abs(r.w[1] - 0.5) for r in references]) > 0.1  # the fits moved from the start (b = 0.5)


def test_fit_many_takes_a_bag(client, decay):
    db = pytest.importorskip("dask.bag")
    datasets = curves(12, seed=3)
    method = "least_squares"
    results = sd.fit_many(decay, db.from_sequence(datasets, npartitions=3), client=client, method=method)
    assert_same_fits(results, fit_in_memory(decay, method, datasets))


def test_workers_load_the_module_from_their_own_folder_once(client, seed_module):
    digest = sd.ship(client, seed_module)
    files = client.run(lambda: sd._module_on_worker(digest).__file__)
    assert all(f.startswith(os.environ[sd.WORKER_DIR_VARIABLE]) for f in files.values())
    assert len(set(client.run(lambda: id(sd._module_on_worker(digest))).values())) == len(files)
    before = client.run(lambda: id(sd._module_on_worker(digest)))
    sd.ship(client, seed_module)  # shipping again imports nothing again
    assert client.run(lambda: id(sd._module_on_worker(digest))) == before


def test_workers_load_the_kernels_the_client_compiled_from_its_numba_cache(client, decay):
    """The fit_many test ran the solver here first: the workers' solver came from the files shipped with it."""
    fit_in_memory(decay, "least_squares", curves(2))  # compiled (or loaded) here first, as that test does
    sd.fit_many(decay, curves(2), client=client)
    digest = sd.ship(client, decay)
    solver = lambda: sd._module_on_worker(digest)._lm_solve.stats  # noqa: E731
    for stats in client.run(solver).values():
        assert sum(stats.cache_misses.values()) == 0 and sum(stats.cache_hits.values()) >= 1


def test_a_module_edited_or_rebuilt_from_another_model_is_refused(tmp_path, seed_module):
    edited = tmp_path / "seed_mlp.py"
    edited.write_text(open(seed_module.__file__).read().replace("0.8, 0.6", "0.8, 0.7"))
    module = type(seed_module)("seed_mlp")
    module.__file__, module.__doc__ = str(edited), seed_module.__doc__
    with pytest.raises(SymcompileError, match="changed after it was generated"):
        sd.package(module)
    with pytest.raises(SymcompileError, match="rebuilt from another model"):
        sd.package(_looks_like(seed_module, other_file=_decay_source(tmp_path)))


def _decay_source(tmp_path):
    a, x, y = sp.symbols("a x y")
    return compile_model(a * x, (a * x - y) ** 2, [a], [x], [y], name="other", init=[1.0], out_dir=tmp_path).__file__


def _looks_like(module, other_file):
    """A module object whose file has since been rebuilt from another model."""
    fake = type(module)(module.__name__)
    fake.__dict__.update({k: v for k, v in vars(module).items() if k.isupper()})
    fake.__file__, fake.__doc__ = other_file, module.__doc__
    return fake


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"update": "sequential"}, "update='simultaneous'"),
        ({"update": "simultaneous", "batch_size": 8}, "mini-batches"),
        ({"update": "simultaneous", "patience": 3}, "does not take patience"),
        ({"optimizer": "newton"}, "not 'newton'"),
        ({"update": "simultaneous", "lr": float("nan")}, "lr must be"),
    ],
)
def test_settings_distributed_training_cannot_honour_are_refused_in_one_line(client, seed_module, settings, message):
    X, Y = partitioned(*samples(n=8))
    with pytest.raises(SymcompileError, match=message):
        sd.train(seed_module, X, Y, client=client, **settings)


def test_cli_fit_many_writes_one_row_per_file_equal_to_the_fit_in_memory(client, decay, decay_spec, tmp_path, capsys):
    data = tmp_path / "curves"
    data.mkdir()
    datasets = curves(5, seed=7)
    for i, (x, y) in enumerate(datasets):
        (data / f"sensor{i}.csv").write_text("x,y\n" + "".join(f"{float(a)!r},{float(b)!r}\n" for a, b in zip(x, y)))
    out = tmp_path / "fits.csv"
    argv = ["fit", str(decay_spec), "--many", str(data), "--method", "train", "--out", str(out)]
    references = fit_in_memory(decay, "train", datasets)  # first: the workers load the loop compiled here
    out_dir = Path(decay.__file__).parent  # the module is built: the workers have it already
    assert main([*argv, "--dask", client.scheduler.address, "--out-dir", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    assert "5 files" in printed and "building" not in printed
    rows = list(csv.DictReader(out.open()))
    assert [r["file"] for r in rows] == [f"sensor{i}.csv" for i in range(5)]
    for row, reference in zip(rows, references):
        assert [float(row[p]) for p in decay.PARAMS] == list(reference.w)
        assert float(row["loss"]) == reference.loss_history[-1] and row["status"] == reference.status


def test_cli_train_on_dask_prints_the_in_memory_result(client, seed_module, capsys):
    argv = ["train", "--dask", client.scheduler.address, "--update", "simultaneous", "--max-iter", "20"]
    assert main([*argv, "--out-dir", str(Path(seed_module.__file__).parent)]) == 0
    module = seed_module
    reference = module.train(module.INIT, module.X, module.Y, lr=0.3, max_iter=20, tol=0.0, update="simultaneous")
    assert f"final      loss {reference.loss_history[-1]:.15g}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fit", str(EXAMPLES / "decay.toml"), "--many", "/nonexistent", "--method", "train"], "holds no .csv files"),
        (["train", "--dask", "local:x", "--update", "simultaneous"], "positive number of workers"),
    ],
)
def test_cli_dask_mistakes_are_one_line(tmp_path, capsys, argv, message):
    assert main([*argv, "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


# ---- faults: these kill a worker process, so they run last ------------------------------------------------------


def kill_a_busy_worker(client, running):
    """SIGKILL the process of a worker that is running one of our tasks, while `running` is still set."""
    pids = client.run(os.getpid)
    deadline = time.monotonic() + 60
    while running.is_set() and time.monotonic() < deadline:
        busy = [worker for worker, tasks in client.processing().items() if tasks]
        if busy:
            os.kill(pids[busy[0]], signal.SIGKILL)
            return True
        time.sleep(0.005)
    return False


def run_in_thread(function):
    outcome, running = {}, threading.Event()
    running.set()

    def target():
        try:
            outcome["result"] = function()
        finally:
            running.clear()

    thread = threading.Thread(target=target)
    thread.start()
    return thread, running, outcome


def test_a_worker_killed_during_fit_many_loses_and_duplicates_nothing(client, decay):
    datasets = curves(40, seed=5)
    settings = {"lr": 0.05, "max_iter": 20000, "tol": 0.0}
    thread, running, outcome = run_in_thread(
        lambda: sd.fit_many(decay, datasets, client=client, method="train", batch=2, **settings)
    )
    killed = kill_a_busy_worker(client, running)
    thread.join(timeout=300)
    assert killed, "the fits ended before a worker could be killed"
    assert_same_fits(outcome["result"], fit_in_memory(decay, "train", datasets, **settings))
    client.wait_for_workers(2, timeout=120)


def test_a_worker_killed_during_training_changes_nothing(client, seed_module):
    X, Y = samples()
    settings = {"lr": 0.5, "max_iter": 25, "tol": 0.0, "update": "simultaneous"}
    thread, running, outcome = run_in_thread(
        lambda: sd.train(seed_module, *partitioned(X, Y), client=client, **settings)
    )
    time.sleep(0.5)  # a few steps in
    killed = kill_a_busy_worker(client, running)
    thread.join(timeout=300)
    assert killed, "training ended before a worker could be killed"
    assert_same_training(outcome["result"], seed_module.train(seed_module.INIT, X, Y, **settings))
    client.wait_for_workers(2, timeout=120)
