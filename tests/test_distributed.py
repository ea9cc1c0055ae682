"""symcompile.distributed on a LocalCluster of 2 worker processes (skipped without Dask).

References: the generated module's own `train`/`least_squares` on the same data in memory (the in-process
compiled code, independent of the partitioning, the shipping and the scheduler), a textbook Adam loop
(Kingma and Ba's bias-corrected form) over `module.loss_and_grad`, and for the mini-batch scheme across
partitions, the in-memory module trained one partition's epoch at a time. One cluster for the session;
the worker-kill tests run last in this file.
"""

import csv
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

pytestmark = pytest.mark.cluster
distributed = pytest.importorskip("distributed", reason="needs the dask extra (pip install '.[dask]')")
da = pytest.importorskip("dask.array", reason="needs the dask extra (pip install '.[dask]')")

from symcompile import SymcompileError, compile_model  # noqa: E402
from symcompile import distributed as sd  # noqa: E402
from symcompile.cli import main  # noqa: E402

RTOL = 1e-12
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
START = [1.0, 1.0]  # the curves' fits start here (misra1a's own start suits its NIST data, not these curves)


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


def curve_parameters(count, seed):
    rng = np.random.default_rng(seed)
    return rng, rng.uniform(0.5, 2, count), rng.uniform(0.3, 1.5, count)


def curves(count, points=12, seed=0):
    """Synthetic saturation curves y = b1 (1 - exp(-b2 x)) with noise (misra1a's formula), each its own b1, b2."""
    rng, b1s, b2s = curve_parameters(count, seed)
    x = np.linspace(0.0, 4.0, points)
    return [(x.copy(), b1 * (1 - np.exp(-b2 * x)) + 0.01 * rng.standard_normal(points)) for b1, b2 in zip(b1s, b2s)]


def samples(n=400, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    Y = (X[:, :1] + 0.5 * X[:, 1:] + 0.3 * rng.normal(size=(n, 1)) > 0).astype(float)
    return X, Y


def partitioned(X, Y, partitions=4):
    rows = -(-len(X) // partitions)
    return da.from_array(X, chunks=(rows, X.shape[1])), da.from_array(Y, chunks=(rows, Y.shape[1]))


def assert_same_training(result, reference, rtol=RTOL):
    assert result.status == reference.status and result.iterations == reference.iterations
    np.testing.assert_allclose(result.w, reference.w, rtol=rtol, atol=0)
    np.testing.assert_allclose(result.loss_history, reference.loss_history, rtol=rtol, atol=0)


@pytest.mark.slow
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


@pytest.mark.slow
def test_adam_on_four_partitions_equals_training_in_memory(client, seed_module):
    X, Y = samples()
    settings = {"optimizer": "adam", "lr": 0.05, "max_iter": 50, "tol": 0.0}
    result = sd.train(seed_module, *partitioned(X, Y), client=client, **settings)
    assert_same_training(result, seed_module.train(seed_module.INIT, X, Y, **settings))
    w, history = textbook_adam(seed_module, X, Y, lr=0.05, steps=50)
    np.testing.assert_allclose(result.w, w, rtol=1e-9, atol=0)  # another order of operations: rounding differs
    np.testing.assert_allclose(result.loss_history, history, rtol=1e-9, atol=0)


@pytest.mark.parametrize(
    "settings",
    [
        {"optimizer": "momentum", "momentum": 0.9, "nesterov": True, "weight_decay": 0.01, "lr": 0.2},
        {"optimizer": "adamw", "weight_decay": 0.1, "lr": 0.05, "record_every": 3},
    ],
)
def test_other_rules_on_partitions_equal_training_in_memory(client, seed_module, settings):
    X, Y = samples(n=120)
    settings = {**settings, "max_iter": 10}
    result = sd.train(seed_module, *partitioned(X, Y, 3), client=client, **settings)
    assert_same_training(result, seed_module.train(seed_module.INIT, X, Y, **settings))


def test_dataframe_partitions_train_as_the_array(client, seed_module):
    dd = pytest.importorskip(
        "dask.dataframe", reason="needs the dask, and dask[dataframe] extra (pip install '.[dask]')"
    )
    pd = pytest.importorskip("pandas", reason="needs the dask, and dask[dataframe] extra (pip install '.[dask]')")
    X, Y = samples(n=120)
    frame = dd.from_pandas(pd.DataFrame({"x1": X[:, 0], "x2": X[:, 1], "y": Y[:, 0]}), npartitions=3)
    settings = {"lr": 0.5, "max_iter": 3, "tol": 0.0, "update": "simultaneous"}
    result = sd.train(seed_module, frame, client=client, **settings)
    assert_same_training(result, seed_module.train(seed_module.INIT, X, Y, **settings))


# ---- mini-batches ----------------------------------------------------------------------------------------------

MINI_BATCH = {"optimizer": "adam", "lr": 0.05, "max_iter": 4, "batch_size": 32, "seed": 3}


def test_mini_batches_on_one_partition_are_training_in_memory(client, seed_module):
    X, Y = samples()
    result = sd.train(seed_module, *partitioned(X, Y, 1), client=client, **MINI_BATCH)
    reference = seed_module.train(seed_module.INIT, X, Y, **MINI_BATCH)
    np.testing.assert_array_equal(result.w, reference.w)  # the same compiled epochs, the same shuffles
    assert_same_training(result, reference)


@pytest.mark.slow
def test_mini_batches_on_partitions_follow_the_seed(client, seed_module):
    X, Y = samples()
    runs = [sd.train(seed_module, *partitioned(X, Y), client=client, **MINI_BATCH | {"seed": s}) for s in (3, 3, 4)]
    np.testing.assert_array_equal(runs[0].w, runs[1].w)
    np.testing.assert_array_equal(runs[0].loss_history, runs[1].loss_history)
    assert not np.array_equal(runs[0].w, runs[2].w)  # another seed, other batches
    assert runs[0].loss_history[-1] < 0.9 * runs[0].loss_history[0]


def test_mini_batches_without_shuffling_are_each_partitions_epoch_in_turn(client, seed_module):
    """The scheme, by hand: with shuffle=False and plain descent (no state), an epoch is the in-memory module's
    epoch over partition 0's rows, then partition 1's, ..., and its loss their losses weighted by rows."""
    X, Y = samples(n=100)
    settings = {"update": "simultaneous", "lr": 0.5, "batch_size": 8, "shuffle": False}
    result = sd.train(seed_module, *partitioned(X, Y, 4), client=client, max_iter=3, **settings)
    w, history = seed_module.INIT.copy(), []
    for _ in range(3):
        total = 0.0
        for rows in np.array_split(np.arange(100), 4):
            epoch = seed_module.train(w, X[rows], Y[rows], max_iter=1, **settings)
            w, total = epoch.w, total + epoch.loss_history[0] * len(rows)
        history.append(total / 100)
    np.testing.assert_array_equal(result.w, w)
    np.testing.assert_allclose(result.loss_history, [*history, seed_module.loss(w, X, Y)], rtol=RTOL, atol=0)


# ---- many fits --------------------------------------------------------------------------------------------------


def fit_in_memory(module, method, datasets, **kwargs):
    return [getattr(module, method)(X=X, Y=Y, **kwargs) for X, Y in datasets]


def assert_same_fits(results, references):
    assert len(results) == len(references)
    for result, reference in zip(results, references):
        assert type(result) is type(reference)
        for got, want in zip(result, reference):  # the same compiled code on the same numbers: equal bits
            assert type(got) is type(want)
            np.testing.assert_array_equal(got, want)


def test_fit_many_equals_the_fits_in_memory(client, misra):
    datasets = curves(200)
    references = fit_in_memory(misra, "least_squares", datasets, w=START)  # first: workers load what compiles here
    assert_same_fits(sd.fit_many(misra, datasets, client=client, w=START), references)
    assert sum(r.converged for r in references) == 200
    _, b1s, b2s = curve_parameters(200, seed=0)
    assert np.median(np.abs([r.w for r in references] - np.column_stack([b1s, b2s]))) < 0.05  # the curves' own


def test_fit_many_takes_a_bag(client, misra):
    db = pytest.importorskip("dask.bag", reason="needs the dask extra (pip install '.[dask]')")
    datasets = curves(12, seed=3)
    results = sd.fit_many(misra, db.from_sequence(datasets, npartitions=3), client=client, w=START)
    assert_same_fits(results, fit_in_memory(misra, "least_squares", datasets, w=START))


def test_fit_many_names_a_data_set_the_module_refuses(client, misra):
    datasets = curves(3)
    datasets[2] = (datasets[2][0], np.full(12, np.nan))
    with pytest.raises(SymcompileError, match="data set 2: Y .* NaN"):
        sd.fit_many(misra, datasets, client=client, w=START, batch=2)


def test_workers_load_the_module_from_their_own_folder_once(client, seed_module):
    digest = sd.ship(client, seed_module)
    files = client.run(lambda: sd.module_on_worker(digest).__file__)
    assert all(f.startswith(os.environ[sd.WORKER_DIR_VARIABLE]) for f in files.values())
    before = client.run(lambda: id(sd.module_on_worker(digest)))
    sd.ship(client, seed_module)  # shipping again imports nothing again
    assert client.run(lambda: id(sd.module_on_worker(digest))) == before


def test_workers_load_the_kernels_the_client_compiled_from_its_numba_cache(client, misra):
    """The fit_many test ran the fit here first: the workers' residual kernel came from the files shipped with it
    (the solver is the runtime's, compiled once per machine)."""
    fit_in_memory(misra, "least_squares", curves(2), w=START)  # compiled (or loaded) here first, as that test does
    sd.fit_many(misra, curves(2), client=client, w=START)
    digest = sd.ship(client, misra)
    for stats in client.run(lambda: sd.module_on_worker(digest)._residuals_and_jacobian.stats).values():
        assert sum(stats.cache_misses.values()) == 0 and sum(stats.cache_hits.values()) >= 1


def test_a_module_edited_or_rebuilt_from_another_model_is_refused(tmp_path, seed_module):
    edited = tmp_path / "seed_mlp.py"
    edited.write_text(open(seed_module.__file__).read().replace("0.8, 0.6", "0.8, 0.7"))
    module = type(seed_module)("seed_mlp")
    module.__file__, module.__doc__ = str(edited), seed_module.__doc__
    with pytest.raises(SymcompileError, match="changed after it was generated"):
        sd.package(module)
    a, x, y = sp.symbols("a x y")
    other = compile_model(a * x, (a * x - y) ** 2, [a], [x], [y], name="seed_mlp", init=[1.0], out_dir=tmp_path / "o")
    rebuilt = type(seed_module)(seed_module.__name__)  # the seed module, whose file now holds another model
    rebuilt.__dict__.update({k: v for k, v in vars(seed_module).items() if k.isupper()})
    rebuilt.__file__, rebuilt.__doc__ = other.__file__, seed_module.__doc__
    with pytest.raises(SymcompileError, match="rebuilt from another model"):
        sd.package(rebuilt)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"update": "sequential"}, "not 'sequential'"),
        ({"optimizer": "newton"}, "optimizer 'newton' is not available: this module was built without the Hessian"),
        ({"update": "simultaneous", "patience": 3}, "does not take patience"),
        ({"optimizer": "adamw", "momentum": 0.5}, "momentum does not apply to optimizer 'adamw'"),
        ({"update": "simultaneous", "lr": float("nan")}, "lr must be"),
        ({"update": "simultaneous", "batch_size": 0}, "batch_size must be"),
    ],
)
def test_settings_distributed_training_cannot_honour_are_refused_in_one_line(client, seed_module, settings, message):
    X, Y = partitioned(*samples(n=8))
    with pytest.raises(SymcompileError, match=message):
        sd.train(seed_module, X, Y, client=client, **settings)


# ---- the command line -------------------------------------------------------------------------------------------


def test_cli_fit_many_writes_one_row_per_file_equal_to_the_fit_in_memory(client, misra, fit_dir, tmp_path, capsys):
    data = tmp_path / "curves"
    data.mkdir()
    datasets = curves(5, seed=7)
    for i, (x, y) in enumerate(datasets):
        (data / f"sensor{i}.csv").write_text("x,y\n" + "".join(f"{float(a)!r},{float(b)!r}\n" for a, b in zip(x, y)))
    out = tmp_path / "fits.csv"
    argv = ["fit", str(EXAMPLES / "misra1a.toml"), "--many", str(data), "--out", str(out), "--out-dir", str(fit_dir)]
    assert main([*argv, "--dask", client.scheduler.address]) == 0
    printed = capsys.readouterr().out
    assert "5 files" in printed and "building" not in printed  # the module is built: the workers have it
    rows = list(csv.DictReader(out.open()))
    assert [r["file"] for r in rows] == [f"sensor{i}.csv" for i in range(5)]
    for row, reference in zip(rows, fit_in_memory(misra, "least_squares", datasets)):  # from the spec's start
        assert [float(row[p]) for p in misra.PARAMS] == list(reference.w)
        assert [float(row[f"stderr_{p}"]) for p in misra.PARAMS] == list(reference.stderr)
        assert float(row["cost"]) == reference.cost and row["status"] == reference.status


def test_cli_train_on_dask_prints_the_in_memory_result(client, seed_module, capsys):
    argv = ["train", "--dask", client.scheduler.address, "--update", "simultaneous", "--max-iter", "20"]
    assert main([*argv, "--partitions", "1", "--out-dir", str(Path(seed_module.__file__).parent)]) == 0
    module = seed_module
    reference = module.train(module.INIT, module.X, module.Y, lr=0.3, max_iter=20, tol=0.0, update="simultaneous")
    printed = capsys.readouterr().out
    assert "1 partitions" in printed
    assert f"final      loss {reference.loss_history[-1]:.15g}" in printed


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fit", str(EXAMPLES / "misra1a.toml"), "--many", "/nonexistent"], "holds no .csv files"),
        (["train", "--dask", "local:x", "--update", "simultaneous"], "positive number of workers"),
        (["train", "--dask", "local:1", "--validation-split", "0.5"], "without a validation split"),
        (["fit", str(EXAMPLES / "misra1a.toml"), "--method", "train"], "--method applies to fit --many"),
    ],
)
def test_cli_dask_mistakes_are_one_line(fit_dir, capsys, argv, message):
    assert main([*argv, "--out-dir", str(fit_dir)]) == 2
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


@pytest.mark.slow
def test_a_worker_killed_during_fit_many_loses_and_duplicates_nothing(client, misra):
    datasets = curves(40, seed=5)
    settings = {"w": START, "lr": 0.05, "max_iter": 20000, "tol": 0.0, "update": "simultaneous"}
    references = fit_in_memory(misra, "train", datasets, **settings)  # first: the workers load what compiles here
    thread, running, outcome = run_in_thread(
        lambda: sd.fit_many(misra, datasets, client=client, method="train", batch=2, **settings)
    )
    killed = kill_a_busy_worker(client, running)
    thread.join(timeout=300)
    assert killed, "the fits ended before a worker could be killed"
    assert_same_fits(outcome["result"], references)
    client.wait_for_workers(2, timeout=120)


@pytest.mark.slow
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
