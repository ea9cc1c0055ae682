"""Beyond one machine: a generated module's kernels on a Dask cluster.

A generated module's `loss_and_grad(w, X, Y)` is a pure function of the weights
and a block of samples, and its solvers are pure functions of one data set, so
both workloads map onto Dask's `distributed` scheduler (no scheduler of ours):

- `train(module, X, Y, client=...)`: the samples stay partitioned by rows in
  the workers' memory; each step sends the weights to every partition, which
  returns its loss and gradient summed over its rows, and the client adds the
  partitions up (in partition order, so the result does not depend on which
  worker answered first) and applies the update rule.
- `fit_many(module, datasets, client=...)`: many independent fits, a batch of
  them per task, results in the datasets' order.

The generated module travels as text (`ModulePackage`): a worker plugin writes
it into a folder on each worker machine, named by the module's digest, imports
it from that file (so Numba's on-disk cache works and a restarted worker loads
the compiled kernels instead of compiling again) and keeps it for the process's
life; tasks name the module by its digest. Workers need symcompile's
dependencies (NumPy, Numba) and symcompile itself, as any Dask worker needs the
code of the functions it runs; they need no shared file system.

When a worker dies, Dask reruns its tasks (and recomputes the partitions it
held from their graph); results are gathered per task in order, so none is lost
or counted twice.

Dask is imported only here, and only when these functions run: `pip install
'symcompile[dask]'`.
"""

from __future__ import annotations

import ast
import contextlib
import math
import os
import tempfile
import weakref
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from symcompile.errors import SymcompileError
from symcompile.provenance import read_header, sha256, verify_module

WORKER_DIR_VARIABLE = "SYMCOMPILE_WORKER_DIR"  # where workers write modules (default: a folder in the temp dir)
FULL_BATCH_OPTIMIZERS = ("gd", "momentum", "adam", "adamw")
_TRAIN_SETTINGS = {
    "w", "lr", "max_iter", "tol", "update", "optimizer", "momentum", "nesterov", "betas", "eps", "weight_decay",
    "batch_size", "shuffle", "seed",
}  # fmt: skip


def _dask():
    """The `distributed` package, or a one-line error saying how to install it."""
    try:
        import dask.array  # noqa: F401 (checks the extra is complete)
        import distributed
    except ImportError:
        raise SymcompileError("symcompile.distributed needs Dask: pip install 'symcompile[dask]'") from None
    return distributed


def _client(client):
    distributed = _dask()
    if client is not None:
        return client
    try:
        return distributed.default_client()
    except ValueError:
        raise SymcompileError("no Dask client: pass client=, or create a distributed.Client first") from None


# ---- the module on the workers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModulePackage:
    """A generated module as workers receive it: its name, its source, the digest of its body (the key that
    tasks name it by, so a worker never runs a module of the same name built from another model), and the
    client's Numba cache files for it ({file name: bytes}), if the client has compiled any of its kernels."""

    name: str
    digest: str
    source: str
    numba_cache: dict = field(default_factory=dict)


def package(module) -> ModulePackage:
    """The module's file as a package; refused in one line when the file is not the module that was loaded."""
    path = Path(module.__file__)
    problem = verify_module(path)
    if problem:
        raise SymcompileError(f"{path} {problem}; rebuild it")
    source = path.read_text(encoding="utf-8")
    if not _same_model(module, source):
        raise SymcompileError(
            f"{path} was rebuilt from another model after {module.__name__} was imported; load the module again"
        )
    return ModulePackage(path.stem, read_header(path).body_digest, source, _numba_cache_files(path))


def _numba_cache_files(path):
    """The Numba cache files beside the module ({name: bytes}). Numba keys them by the source's content (a
    SHA-256, not its time stamp) and by the CPU, so a worker with the same CPU loads the kernels the client
    compiled instead of compiling them again (LM's solver takes tens of seconds to compile); on another CPU
    Numba finds no matching entry and compiles."""
    files = {}
    for cached in sorted((path.parent / "__pycache__").glob(f"{path.stem}.*.nb[ic]")):
        with contextlib.suppress(OSError):  # a file Numba is replacing right now: the worker compiles instead
            files[cached.name] = cached.read_bytes()
    return files


def _same_model(module, source) -> bool:
    """Whether the loaded module and the file's text describe one model: its formula (the docstring), names,
    initial weights, and MODEL_DIGEST where the module has one."""
    tree = ast.parse(source)
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("PARAMS", "INPUTS", "TARGETS", "MODEL_DIGEST"):
                constants[node.targets[0].id] = ast.literal_eval(node.value)
    same = ast.get_docstring(tree, clean=False) == module.__doc__
    return same and all(getattr(module, name, None) == value for name, value in constants.items())


_LOADED = {}  # in each worker process: digest -> the imported module


def worker_folder() -> Path:
    """Where this machine's workers write modules: one folder per module digest, Numba's cache beside each."""
    default = Path(tempfile.gettempdir()) / f"symcompile-workers-{os.getuid()}"
    return Path(os.environ.get(WORKER_DIR_VARIABLE) or default)


def load_package(package: ModulePackage):
    """Import the package on this process (once): written into the worker folder, imported from that file."""
    from symcompile.writer import load_module, write_module

    folder = worker_folder() / package.digest[:16]
    # Every time it is shipped: kernels the client compiled since are loaded, not compiled, at their first call.
    _add_numba_cache(folder / "__pycache__", package.numba_cache)
    if package.digest not in _LOADED:
        if sha256(read_header_text(package.source)) != package.digest:
            raise SymcompileError(f"module {package.name} arrived damaged (its body does not match its digest)")
        path, _ = write_module(package.source, folder, package.name)
        _LOADED[package.digest] = load_module(path)
    return _LOADED[package.digest]


def _add_numba_cache(folder, files):
    """Write the client's cache files where this machine's workers have none yet (each atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        target = folder / name
        if not target.exists():
            temporary = folder / f".{name}.{os.getpid()}.tmp"
            temporary.write_bytes(data)
            os.replace(temporary, target)


def read_header_text(source: str) -> str:
    """The body below a module's header (what its digest covers), from its text."""
    marker = "\n# Digest: sha256:"
    start = source.index(marker) + 1
    return source[source.index("\n", start) + 1 :].removeprefix("\n")


def _plugin_class():
    from distributed import WorkerPlugin

    class ModulePlugin(WorkerPlugin):
        """Loads one generated module on every worker, present and future (a restarted one too), at its start."""

        def __init__(self, package):
            self.package = package
            self.name = f"symcompile-{package.digest[:16]}"

        def setup(self, worker):
            load_package(self.package)

    return ModulePlugin


_SHIPPED = weakref.WeakKeyDictionary()  # client -> {digest: the Numba cache files' names and sizes sent with it}


def ship(client, module) -> str:
    """Load `module` on every worker of `client`; returns the digest that tasks name it by.

    The scheduler keeps the plugin and gives it to workers that join or restart later, so a module is
    registered again only when the client has compiled more of its kernels since (a round trip to every
    worker: see BENCHMARKS.md)."""
    shipped = package(module)
    cache = {name: len(data) for name, data in shipped.numba_cache.items()}
    sent = _SHIPPED.setdefault(client, {})
    if sent.get(shipped.digest) != cache:
        client.register_plugin(_plugin_class()(shipped))
        sent[shipped.digest] = cache
    return shipped.digest


def _module_on_worker(digest):
    try:
        return _LOADED[digest]
    except KeyError:
        raise SymcompileError(f"module {digest[:16]} is not loaded on this worker (ship it first)") from None


# ---- training on partitioned data --------------------------------------------------------------------------------


def train(module, X, Y=None, *, client=None, **train_kwargs):
    """`module.train` on samples partitioned by rows over a Dask cluster; returns the module's TrainResult.

    `X`, `Y`: dask arrays chunked by rows (Y's chunks are aligned to X's), or `X` a dask dataframe holding the
    module's INPUTS and TARGETS columns (then no `Y`). Full-batch optimizers only (gd with update="simultaneous",
    momentum, adam, adamw), with the module's formulas: the result equals `module.train` on the same samples in
    memory, to the rounding of the partitioned sum.
    """
    client = _client(client)
    settings = _train_settings(module, train_kwargs)
    digest = ship(client, module)
    partitions = _partitions(client, module, X, Y)

    def loss_and_grad(w):
        # One message for all the partitions' tasks, one for their results.
        sums = client.gather(client.map(partial(_partition_sums, digest, w), partitions, pure=False))
        total_loss, total_grad, total_rows = 0.0, np.zeros_like(w), 0
        for loss_sum, grad_sum, rows in sums:  # in partition order: the same sum whichever worker answered first
            total_loss, total_grad, total_rows = total_loss + loss_sum, total_grad + grad_sum, total_rows + rows
        return total_loss / total_rows, total_grad / total_rows

    return _run(module, loss_and_grad, settings)


def _partition_sums(digest, w, part):
    """(loss summed over the partition's rows, gradient summed likewise, rows): loss_and_grad returns means."""
    X, Y = part
    loss, grad = _module_on_worker(digest).loss_and_grad(w, X, Y)
    return loss * X.shape[0], grad * X.shape[0], X.shape[0]


def _partitions(client, module, X, Y):
    """One future per partition, holding its (X, Y) blocks in a worker's memory for the whole run."""
    import dask

    if Y is None:
        blocks = _frame_blocks(module, X)
    else:
        blocks = _array_blocks(module, X, Y)
    return client.compute([dask.delayed(_checked_block)(x, y) for x, y in blocks])


def _checked_block(X, Y):
    X, Y = _writable(X), _writable(Y)
    return X, Y.reshape(-1, 1) if Y.ndim == 1 else Y


def _writable(array):
    """A C-contiguous float64 array that may be written. Arrays that arrive in a task are often read-only views
    of the message, and Numba compiles every kernel once more for read-only arrays (a minute for LM's solver)."""
    return np.require(array, dtype=np.float64, requirements=["C", "W"])


def _array_blocks(module, X, Y):
    import dask.array as da

    if not isinstance(X, da.Array) or not isinstance(Y, da.Array):
        raise SymcompileError("X and Y must be dask arrays chunked by rows (or X a dask dataframe, without Y)")
    if X.ndim != 2 or X.shape[1] != len(module.INPUTS):
        raise SymcompileError(f"X must have shape (N, {len(module.INPUTS)}), got {X.shape}")
    if Y.ndim == 1:
        Y = Y.reshape(-1, 1)
    if Y.shape != (X.shape[0], len(module.TARGETS)):
        raise SymcompileError(f"Y must have shape ({X.shape[0]}, {len(module.TARGETS)}), got {Y.shape}")
    X = X.rechunk({1: -1})
    Y = Y.rechunk({0: X.chunks[0], 1: -1})
    return list(zip(X.to_delayed().ravel(), Y.to_delayed().ravel()))


def _frame_blocks(module, frame):
    import dask
    import dask.dataframe as dd

    if not isinstance(frame, dd.DataFrame):
        raise SymcompileError("give X and Y as dask arrays, or X as a dask dataframe and no Y")
    missing = [c for c in (*module.INPUTS, *module.TARGETS) if c not in frame.columns]
    if missing:
        raise SymcompileError(f"the dataframe has no column {', '.join(map(repr, missing))}")
    columns = dask.delayed(_frame_columns)
    return [
        (columns(part, module.INPUTS), columns(part, module.TARGETS)) for part in frame.to_delayed()
    ]  # fmt: skip


def _frame_columns(frame, names):
    return frame[list(names)].to_numpy(dtype=np.float64)


# ---- the update rules, as the generated module computes them (torch.optim's formulas) ---------------------------


@dataclass
class Settings:
    w: np.ndarray
    optimizer: str
    lr: float
    max_iter: int
    tol: float
    momentum: float = 0.0
    nesterov: bool = False
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0


def _train_settings(module, given) -> Settings:
    unknown = sorted(set(given) - _TRAIN_SETTINGS)
    if unknown:
        raise SymcompileError(f"distributed training does not take {', '.join(unknown)}")
    values = {**module.DEFAULTS, **given}
    optimizer = values.pop("optimizer", "gd")
    update = values.pop("update", "simultaneous")
    if optimizer == "gd" and update != "simultaneous":
        raise SymcompileError(
            f"distributed training steps all weights at once: update={update!r} needs the gradient after each "
            "weight's step; use update='simultaneous'"
        )
    if optimizer not in FULL_BATCH_OPTIMIZERS:
        raise SymcompileError(f"distributed training runs optimizer {', '.join(FULL_BATCH_OPTIMIZERS)}, not {optimizer!r}")
    if values.pop("batch_size", None) is not None:
        raise SymcompileError("distributed training is full-batch: mini-batches (batch_size) are not supported yet")
    values.pop("shuffle", None), values.pop("seed", None)
    w = values.pop("w", None)
    w = np.array(module.INIT if w is None else w, dtype=np.float64)
    if w.shape != (len(module.PARAMS),) or not np.all(np.isfinite(w)):
        raise SymcompileError(f"w must hold {len(module.PARAMS)} finite numbers ({', '.join(module.PARAMS)})")
    values = {k: v for k, v in values.items() if k in Settings.__dataclass_fields__}
    settings = Settings(w=w, optimizer=optimizer, **values)
    _check_numbers(settings)
    return settings


def _check_numbers(settings: Settings):
    def finite(name, value, low=0.0, high=math.inf):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value <= high):
            raise SymcompileError(f"{name} must be a number from {low:g} to {high:g}, not {value!r}")

    for name in ("lr", "tol", "momentum", "eps", "weight_decay"):
        finite(name, getattr(settings, name))
    finite("max_iter", settings.max_iter)
    if int(settings.max_iter) != settings.max_iter:
        raise SymcompileError(f"max_iter must be a non-negative integer, not {settings.max_iter!r}")
    if len(settings.betas) != 2 or any(not 0 <= b < 1 for b in settings.betas):
        raise SymcompileError(f"betas must be two numbers from 0 to 1 (excluded), not {settings.betas!r}")


def step_rule(settings: Settings):
    """`step(w, grad, t) -> new weights`: one update of the optimizer, with the generated module's formulas
    (those of torch.optim.SGD, Adam and AdamW; `t` counts the updates before this one)."""
    s = settings
    velocity, m, v = (np.zeros_like(s.w) for _ in range(3))
    beta1, beta2 = s.betas

    def gd(w, grad, t):
        return w - s.lr * (grad + s.weight_decay * w)

    def momentum(w, grad, t):
        g = grad + s.weight_decay * w
        velocity[:] = s.momentum * velocity + g
        g = g + s.momentum * velocity if s.nesterov else velocity
        return w - s.lr * g

    def adam(w, grad, t, decoupled=False):
        g = grad if decoupled else grad + s.weight_decay * w
        step_size = s.lr / (1.0 - beta1 ** float(t + 1))
        bias_correction2_sqrt = math.sqrt(1.0 - beta2 ** float(t + 1))
        m[:] += (1.0 - beta1) * (g - m)  # beta1*m + (1 - beta1)*g, as torch's lerp computes it
        v[:] = v * beta2 + (1.0 - beta2) * g * g
        start = w * (1.0 - s.lr * s.weight_decay) if decoupled else w
        return start - step_size * (m / (np.sqrt(v) / bias_correction2_sqrt + s.eps))

    def adamw(w, grad, t):
        return adam(w, grad, t, decoupled=True)

    return {"gd": gd, "momentum": momentum, "adam": adam, "adamw": adamw}[s.optimizer]


def _run(module, loss_and_grad, settings: Settings):
    """The training loop of the generated module, with `loss_and_grad` summing over the partitions."""
    step = step_rule(settings)
    w = settings.w.copy()
    history = []
    status = "max_iter"
    for iteration in range(int(settings.max_iter)):
        loss, grad = loss_and_grad(w)
        new_w = step(w, grad, iteration)
        if not (np.isfinite(loss) and np.all(np.isfinite(new_w))):
            status = "non-finite"  # keep the last finite weights
            break
        history.append(loss)
        steps, w = w - new_w, new_w
        if np.all(np.abs(steps) < settings.tol):
            status = "converged"
            break
    history.append(loss_and_grad(w)[0])
    return _train_result(module, w, len(history) - 1, np.array(history), status)


def _train_result(module, w, iterations, history, status):
    """The module's TrainResult, whatever fields its version has."""
    values = {
        "w": w, "iterations": iterations, "loss_history": history, "converged": status == "converged",
        "status": status, "best_w": w, "val_loss_history": np.empty(0), "accuracy_history": np.empty(0),
    }  # fmt: skip
    return module.TrainResult(**{name: values[name] for name in module.TrainResult._fields if name in values})


# ---- many independent fits ---------------------------------------------------------------------------------------


def fit_many(module, datasets, *, client=None, method="least_squares", batch=None, **kwargs):
    """Fit each (X, Y) of `datasets` (a sequence, or a dask.bag) independently with `module.<method>(X=X, Y=Y,
    **kwargs)` on the cluster, `batch` datasets per task; returns the results (FitResult or TrainResult) in order,
    each equal to the call in memory."""
    client = _client(client)
    if method not in ("least_squares", "train"):
        raise SymcompileError(f"method must be 'least_squares' or 'train', not {method!r}")
    if not hasattr(module, method):
        raise SymcompileError(f"module {module.__name__} has no {method} (least_squares needs a residual model)")
    digest = ship(client, module)
    if _is_bag(datasets):
        rows = client.compute(datasets.map_partitions(_fit_batch, digest, method, kwargs)).result()
    else:
        datasets = list(datasets)
        batch = batch or _default_batch(client, len(datasets))
        chunks = [datasets[i : i + batch] for i in range(0, len(datasets), batch)]
        futures = client.map(partial(_fit_batch, digest=digest, method=method, kwargs=kwargs), chunks, pure=False)
        rows = [row for rows in client.gather(futures) for row in rows]
    result_type = module.FitResult if method == "least_squares" else module.TrainResult
    return [result_type(*row) for row in rows]


def _is_bag(datasets):
    import dask.bag as db

    return isinstance(datasets, db.Bag)


def _default_batch(client, count):
    """About four tasks per worker thread: few enough that scheduling costs little, enough to balance the load."""
    threads = max(1, sum(client.nthreads().values()))
    return max(1, math.ceil(count / (4 * threads)))


def _fit_batch(datasets, digest, method, kwargs):
    """The fits of one task, as plain tuples (the client rebuilds its module's result type from them)."""
    fit = getattr(_module_on_worker(digest), method)
    return [tuple(fit(X=_writable(X), Y=_writable(Y), **kwargs)) for X, Y in datasets]
