"""Beyond one machine: a generated module's kernels on a Dask cluster.

A generated module's `loss_and_grad(w, X, Y)` is a pure function of the weights and a set of
samples, and its solvers are pure functions of one data set, so both workloads map onto Dask's
`distributed` scheduler (no scheduler of ours):

- `train(module, X, Y, client=...)`: the samples stay partitioned by rows in the workers' memory.
  Full-batch: each step sends the weights to every partition, which returns its loss and gradient
  summed over its rows; the client adds the partitions up (in partition order, so the result does
  not depend on which worker answered first) and takes the update rule's compiled step
  (symcompile.runtime.rules), the one the module's own loop takes.
  Mini-batches: each epoch visits the partitions one after another, and each visit runs one epoch
  of the runtime's compiled mini-batch loop with the module's kernels over that partition's rows
  (`_partition_epoch`; the scheme is in `train`'s docstring).
- `fit_many(module, datasets, client=...)`: many independent fits, a batch of them per task,
  results in the datasets' order.

The module reaches the workers as text (symcompile/shipping.py); its settings, kernels and training
are reached through its `MODEL` (symcompile.runtime.model.Model) and symcompile.runtime only, never
through the module's other private names. When a worker dies, Dask reruns its tasks (and recomputes
the partitions it held from their graph); every task is a pure function of what it is sent, and
results are gathered per task in order, so none is lost or counted twice.

Dask is imported only here, and only when these functions run: `pip install 'symcompile[dask]'`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np

from symcompile.errors import SymcompileError
from symcompile.runtime import arrays, checks, loops, rules, training
from symcompile.shipping import WORKER_DIR_VARIABLE, module_on_worker, package, ship  # noqa: F401 (the API)

# `train`'s settings besides the update rules' hyperparameters (symcompile.runtime.rules.hyperparameters()).
LOOP_KEYWORDS = ("w", "max_iter", "tol", "update", "optimizer", "batch_size", "shuffle", "seed", "record_every")


def require_dask():
    """The `distributed` package, or a one-line error saying how to install it."""
    try:
        import dask.array  # noqa: F401 (checks the extra is complete)
        import distributed
    except ImportError:
        raise SymcompileError("symcompile.distributed needs Dask: pip install 'symcompile[dask]'") from None
    return distributed


def _client(client):
    distributed = require_dask()
    if client is not None:
        return client
    try:
        return distributed.default_client()
    except ValueError:
        raise SymcompileError("no Dask client: pass client=, or create a distributed.Client first") from None


# ---- the settings, checked by the module's own checks ------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """A distributed run: the update rule, its hyperparameters (checked values by name) and the loop's settings,
    each checked as `module.train` checks it."""

    w: np.ndarray
    rule: rules.UpdateRule
    hyperparameters: dict
    max_iter: int
    tol: float
    batch_size: int | None  # None: full batch
    shuffle: bool
    seed: int
    record_every: int  # as module.train keeps it: a multiple of the one given in a long run

    @property
    def hyperparameter_vector(self):
        """The hyperparameters as the compiled steps read them."""
        return rules.vector(self.hyperparameters)


def train_keywords() -> tuple:
    return (*LOOP_KEYWORDS, *(h.name for h in rules.hyperparameters()))


def train_settings(module, given: dict) -> Settings:
    keywords = train_keywords()
    unknown = sorted(set(given) - set(keywords))
    if unknown:
        offered = (
            "validation and early stopping are not offered on a cluster; "
            if {"X_val", "patience"} & set(unknown)
            else ""
        )
        raise SymcompileError(
            f"distributed training does not take {', '.join(unknown)} ({offered}it takes {', '.join(keywords)})"
        )
    model = module.MODEL
    hyperparameters = {name: value for name, value in given.items() if name not in LOOP_KEYWORDS}
    try:
        rule, hyperparameters = model.optimizer(given.get("optimizer"), given.get("update"), hyperparameters)
        max_iter = checks.integer("max_iter", given.get("max_iter", module.DEFAULTS["max_iter"]), 1, 2**62)
        record_every = checks.integer("record_every", given.get("record_every", 1), 0)
        return Settings(
            w=model.weights(given.get("w")).copy(),
            rule=rule,
            hyperparameters=hyperparameters,
            max_iter=max_iter,
            tol=checks.tolerance("tol", given.get("tol", module.DEFAULTS["tol"])),
            batch_size=checks.integer("batch_size", given.get("batch_size"), 1, none=0) or None,
            shuffle=checks.flag("shuffle", given.get("shuffle", True)),
            seed=checks.integer("seed", given.get("seed", 0), 0, 2**64 - 1),
            record_every=training.recording_stride(record_every, max_iter),
        )
    except (TypeError, ValueError) as exc:  # the module's own message, as module.train would raise it
        raise SymcompileError(str(exc)) from None


# ---- the partitions in the workers' memory ----------------------------------------------------------------------


def _partitions(client, module, X, Y):
    """(one future per partition holding its (X, Y) arrays in a worker's memory for the whole run, their rows)."""
    import dask

    partitions = _frame_partitions(module, X) if Y is None else _array_partitions(module, X, Y)
    futures = client.compute([dask.delayed(_checked_partition)(x, y) for x, y in partitions])
    rows = client.gather(client.map(_rows, futures, pure=False))
    if min(rows) == 0:
        raise SymcompileError(f"partition {rows.index(0)} holds no rows; rechunk the data")
    return futures, rows


def _rows(part):
    return part[0].shape[0]


def _checked_partition(X, Y):
    X, Y = _writable(X), _writable(Y)
    Y = Y.reshape(-1, 1) if Y.ndim == 1 else Y
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
        raise SymcompileError("the data contains NaN or infinity")
    return X, Y


def _writable(array):
    """A C-contiguous float64 array that may be written. Arrays that arrive in a task are often read-only views
    of the message, and Numba compiles every kernel once more for read-only arrays (a minute for LM's solver)."""
    return np.require(array, dtype=np.float64, requirements=["C", "W"])


def _array_partitions(module, X, Y):
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


def _frame_partitions(module, frame):
    import dask
    import dask.dataframe as dd

    if not isinstance(frame, dd.DataFrame):
        raise SymcompileError("give X and Y as dask arrays, or X as a dask dataframe and no Y")
    missing = [c for c in (*module.INPUTS, *module.TARGETS) if c not in frame.columns]
    if missing:
        raise SymcompileError(f"the dataframe has no column {', '.join(map(repr, missing))}")
    columns = dask.delayed(_frame_columns)
    return [(columns(part, module.INPUTS), columns(part, module.TARGETS)) for part in frame.to_delayed()]


def _frame_columns(frame, names):
    return frame[list(names)].to_numpy(dtype=np.float64)


def _partition_sums(digest, w, part):
    """(loss summed over the partition's rows, gradient summed likewise): the kernel returns means."""
    X, Y = part
    grad = np.empty_like(w)
    model = module_on_worker(digest).MODEL
    loss = model.run(model.kernels["_loss_and_grad_kernel"], None, w, X, Y, grad)
    return loss * X.shape[0], grad * X.shape[0]


def _summed(client, digest, partitions, rows):
    """loss_and_grad(w) over all the partitions: one task per partition, added up in partition order."""

    def loss_and_grad(w):
        sums = client.gather(client.map(partial(_partition_sums, digest, w), partitions, pure=False))
        total_loss, total_grad = 0.0, np.zeros_like(w)
        for loss_sum, grad_sum in sums:  # in partition order: the same sum whichever worker answered first
            total_loss, total_grad = total_loss + loss_sum, total_grad + grad_sum
        return total_loss / sum(rows), total_grad / sum(rows)

    return loss_and_grad


# ---- training ---------------------------------------------------------------------------------------------------


def train(module, X, Y=None, *, client=None, **train_kwargs):
    """`module.train` on samples partitioned by rows over a Dask cluster; returns the module's TrainResult.

    `X`, `Y`: dask arrays chunked by rows (Y's chunks are aligned to X's), or `X` a dask dataframe holding
    the module's INPUTS and TARGETS columns (then no `Y`). Takes `module.train`'s settings but validation
    and early stopping (`w` as a keyword), each checked as `module.train` checks it.

    Full batch (batch_size None, or at least the number of samples): the rules whose step needs only the
    gradient (gd with update="simultaneous", momentum, adam, adamw: every rule without a model kernel),
    taking the rule's compiled step with the module's loop's stopping tests: the result equals `module.train`
    on the same samples in memory, to the rounding of the partitioned sum.

    Mini-batches (any rule), the scheme: each partition keeps its own order of its rows and its own
    SplitMix64 generator (the module's), seeded with seed + p for partition p (mod 2**64). An epoch
    visits every partition once, in the order `np.random.default_rng([seed, epoch]).permutation(P)`
    (0, 1, ..., P-1 with shuffle=False); a visit is one epoch of the compiled mini-batch loop
    over that partition's rows (its order shuffled by its generator, batches of batch_size, the last
    one of the partition smaller), carrying the weights, the rule's state and the update count from
    visit to visit. So a batch never mixes partitions, the same seed gives the same run on any cluster,
    and with one partition the run is `module.train` in memory. The loss recorded for an epoch is the
    mean of its batches' losses weighted by their sizes; `tol` stops after an epoch whose every step
    was below it; "diverged" compares each visit's mean loss with 1e6 x (1 + |the loss at the start on the first visit's rows|).
    A run that stops (max_iter, converged) with its final loss above 10 x that is "diverged" too, as in memory.
    """
    client = _client(client)
    settings = train_settings(module, train_kwargs)
    if settings.batch_size is None:
        _check_full_batch_rule(settings.rule)
    digest = ship(client, module)
    partitions, rows = _partitions(client, module, X, Y)
    loss_and_grad = _summed(client, digest, partitions, rows)
    if settings.batch_size is not None and settings.batch_size < sum(rows):
        history, carried, status = _train_in_batches(client, digest, partitions, rows, settings)
    else:
        _check_full_batch_rule(settings.rule)
        history, carried, status = _train_full_batch(loss_and_grad, settings)
    w = carried.w
    final_loss = loss_and_grad(w)[0]
    if status in ("max_iter", "converged") and loops.ended_above(final_loss, carried.run):
        status = "diverged"
    k = settings.record_every
    losses = np.array([*history[::k], final_loss]) if k else np.empty(0)
    return module.TrainResult(w, len(history), losses, status == "converged", status, np.empty(0), np.empty(0), w, k)


def _check_full_batch_rule(rule: rules.UpdateRule):
    if rule.model_kernel:
        steppable = [name for name, registered in rules.RULES.items() if not registered.model_kernel]
        raise SymcompileError(
            f"distributed full-batch training runs the rules {', '.join(steppable)}, not {rule.name!r} "
            "(its step needs more than the summed gradient); use update='simultaneous', or mini-batches"
        )


@dataclass
class _Carried:
    """What a run carries from one update to the next (in mini-batches, from one partition's visit to the next):
    the weights, the rule's state and the compiled loop's counters (`run`: updates so far, the divergence limit,
    ...; symcompile.runtime.loops says which)."""

    w: np.ndarray
    state: np.ndarray
    run: np.ndarray

    @classmethod
    def start(cls, settings: Settings):
        run = loops.new_run()
        return cls(settings.w.copy(), rules.init(settings.rule, settings.w.size), run)


def _train_full_batch(loss_and_grad, settings: Settings):
    """The runtime's full-batch loop (`loops.train_full_batch`, its tests in their order), its gradient summed over
    the partitions and its step the rule's compiled step: (losses, what it carried, status)."""
    carried, hyperparameters = _Carried.start(settings), settings.hyperparameter_vector
    w, previous, steps = carried.w, np.empty_like(carried.w), np.empty_like(carried.w)
    history = []
    for t in range(settings.max_iter):
        loss, grad = loss_and_grad(w)
        settings.rule.step(w, grad, carried.state, t, hyperparameters, previous, steps)
        if not (np.isfinite(loss) and arrays.all_finite(w)):
            w[:] = previous  # keep the last finite weights
            return history, carried, "non-finite"
        if loops.diverged(loss, carried.run):
            w[:] = previous  # the weights at which the loss passed the limit
            return history, carried, "diverged"
        history.append(loss)
        if arrays.all_below(steps, settings.tol):
            return history, carried, "converged"
    return history, carried, "max_iter"


def _train_in_batches(client, digest, partitions, rows, settings: Settings):
    """The scheme in `train`'s docstring: (epoch losses, what the last visit carried, status)."""
    count = len(partitions)
    orders = [np.arange(n) for n in rows]  # each partition's order of its rows, and its generator's state
    generators = [
        np.array([(settings.seed + p) % 2**64] if settings.shuffle else [], dtype=np.uint64) for p in range(count)
    ]
    carried = _Carried.start(settings)
    visit = partial(_partition_epoch, digest, settings.rule.name, settings.hyperparameter_vector, settings.tol,
                    settings.batch_size)  # fmt: skip
    history = []
    for epoch in range(settings.max_iter):
        total, below_tol = 0.0, True
        for p in _visit_order(settings, epoch, count):
            status, loss, carried, generators[p], orders[p] = client.submit(
                visit, partitions[p], carried, generators[p], orders[p], pure=False
            ).result()
            if status in (2, 3):  # the visit restored the weights before its last update
                return history, carried, loops.STATUS[status]
            total += loss * rows[p]
            below_tol = below_tol and status == 1
        history.append(total / sum(rows))
        if below_tol:
            return history, carried, "converged"
    return history, carried, "max_iter"


def _visit_order(settings: Settings, epoch, count):
    if not settings.shuffle:
        return range(count)
    return np.random.default_rng([settings.seed, epoch]).permutation(count)


def _partition_epoch(digest, rule, hyperparameters, tol, batch_size, part, carried, generator, order):
    """One epoch of the runtime's compiled mini-batch loop, with the module's kernels, over one partition's rows,
    from `carried` on (`rule` by its name in the worker's registry). Returns (the loop's status code: -1 on,
    1 every step below tol, 2 non-finite, 3 diverged; the epoch's mean loss; what the next visit carries; the
    generator's state; the partition's new order)."""
    model = module_on_worker(digest).MODEL
    X, Y = part
    w, state, run, generator, order = (
        carried.w.copy(),
        carried.state.copy(),
        carried.run.copy(),
        generator.copy(),
        order.copy(),
    )
    run[loops.ITERATION] = 0.0  # this call runs its iteration 0 of 2, so it never reaches max_iter
    losses = np.empty(2)
    X_val, Y_val = model.validation(None, None)  # none: empty arrays
    status = model.run(
        loops.train_mini_batches, None, *model.loop_kernels(_registered(rule), False), w, X, Y, hyperparameters, tol,
        batch_size, generator, order, X_val, Y_val, 0, state, run, w.copy(), 1, 2, losses, np.empty(0), np.empty(0),
    )  # fmt: skip
    return int(status), float(losses[0]), _Carried(w, state, run), generator, order


def _registered(name):
    """The rule of that name in this worker's registry (a rule registered in the client's process only is not)."""
    if name not in rules.RULES:
        raise SymcompileError(
            f"update rule {name!r} is not registered in the workers' processes; register it there too"
        )
    return rules.RULES[name]


# ---- many independent fits --------------------------------------------------------------------------------------


def fit_many(module, datasets, *, client=None, method="least_squares", batch=None, errors="raise", **kwargs):
    """Fit each (X, Y) of `datasets` (a sequence, or a dask.bag) independently with `module.<method>(X=X, Y=Y,
    **kwargs)` on the cluster, `batch` datasets per task (a sequence's; default: about four tasks per worker
    thread); returns the results (FitResult or TrainResult) in order, each equal to the call in memory.

    A data set the module refuses (its TypeError or ValueError: bad data, a bad setting): with errors="raise",
    one line naming it (by its place in the sequence); with errors="return", its message (a str) in its place
    among the results, and every other fit is kept."""
    if method not in ("least_squares", "train"):
        raise SymcompileError(f"method must be 'least_squares' or 'train', not {method!r}")
    if errors not in ("raise", "return"):
        raise SymcompileError(f"errors must be 'raise' or 'return', not {errors!r}")
    batch = None if batch is None else _batch(batch)
    client = _client(client)
    if not callable(getattr(module, "FitResult" if method == "least_squares" else "train", None)):
        raise SymcompileError(f"{module.__file__} has no {method} (least_squares needs a residual model)")
    digest = ship(client, module)
    result_type = module.FitResult if method == "least_squares" else module.TrainResult
    settings = {"digest": digest, "method": method, "keep_errors": errors == "return", "kwargs": kwargs}
    if _is_bag(datasets):
        if batch is not None:
            raise SymcompileError("batch applies to a sequence of data sets; a bag's tasks are its partitions")
        rows = client.compute(datasets.map_partitions(_fit_partition, **settings)).result()
        return [row if isinstance(row, str) else result_type(*row) for row in rows]
    datasets = list(datasets)
    batch = batch or _default_batch(client, len(datasets))
    starts = range(0, len(datasets), batch)
    batches = [[packed(column) for column in zip(*datasets[i : i + batch])] for i in starts]
    results = []
    for fields, refused, count in client.gather(
        client.map(partial(_fit_batch, **settings), batches, starts, pure=False)
    ):
        fitted = map(result_type._make, zip(*map(unpacked, fields)))
        results += [refused[k] if k in refused else next(fitted) for k in range(count)]
    return results


def _batch(batch):
    if isinstance(batch, (bool, np.bool_)) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise SymcompileError(f"batch must be a positive integer (data sets per task) or None, not {batch!r}")
    return int(batch)


def _is_bag(datasets):
    import dask.bag as db

    return isinstance(datasets, db.Bag)


def _default_batch(client, count):
    """About four tasks per worker thread: few enough that scheduling costs little, enough to balance the load."""
    threads = max(1, sum(client.nthreads().values()))
    return max(1, math.ceil(count / (4 * threads)))


def _fit_batch(batch, first, *, digest, method, keep_errors, kwargs):
    """The fits of one task: `batch` is its (Xs, Ys), packed. Returns (each field of the fitted results, packed;
    {place in the batch: message} of the refused ones; the batch's size)."""
    Xs, Ys = map(unpacked, batch)
    rows = _fits(module_on_worker(digest), method, zip(Xs, Ys), first, keep_errors, kwargs)
    refused = {k: row for k, row in enumerate(rows) if isinstance(row, str)}
    return [packed(field) for field in zip(*(row for row in rows if not isinstance(row, str)))], refused, len(rows)


def _fit_partition(datasets, *, digest, method, keep_errors, kwargs):
    """The fits of a bag's partition, as plain tuples (or messages)."""
    return _fits(module_on_worker(digest), method, datasets, None, keep_errors, kwargs)


def _fits(module, method, datasets, first, keep_errors, kwargs):
    """Each fit's result as a plain tuple (the client rebuilds its module's result type). A fit the module
    refuses (bad data, a bad setting): its message in its place when `keep_errors`, else one line naming the
    data set (by its place in the sequence)."""
    fit = getattr(module, method)
    rows = []
    for index, (X, Y) in enumerate(datasets, first or 0):
        try:
            rows.append(tuple(fit(X=X, Y=Y, **kwargs)))
        except (TypeError, ValueError) as exc:
            if keep_errors:
                rows.append(str(exc))
                continue
            where = f"data set {index}" if first is not None else "a data set"
            raise SymcompileError(f"{where}: {exc}") from None
    return rows


# Dask serializes each NumPy array of a message on its own, at tens of microseconds apiece: a batch of 1,250
# curves and their results (six arrays a fit) cost more than the fits. So a column of values travels as one.


def packed(values):
    """A column of values (one field of many fits) as few objects: Python numbers of one type as one array,
    arrays of one dtype and trailing shape as their concatenation and lengths, anything else as it is."""
    values = list(values)
    kinds = {type(v) for v in values}
    if len(kinds) == 1 and kinds <= {int, float, bool}:
        return "numbers", np.array(values), None
    if (
        kinds == {np.ndarray}
        and len({(v.dtype, v.shape[1:]) for v in values if v.ndim}) == 1
        and all(v.ndim for v in values)
    ):
        return "arrays", np.concatenate(values), [len(v) for v in values]
    return "as is", values, None


def unpacked(column):
    """The values `packed` packed: the same types, shapes and numbers."""
    kind, data, lengths = column
    if kind == "numbers":
        return data.tolist()  # Python ints, floats or bools again
    if kind == "arrays":
        return [part.copy() for part in np.split(data, np.cumsum(lengths)[:-1])]
    return data
