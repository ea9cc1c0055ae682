"""The command line's Dask options: `train SPEC --dask SCHEDULER` and `fit SPEC --many DATA_DIR [--dask ...]`.

Kept apart from cli.py so that the commands there stay short and Dask is
imported only when `--dask` is given. SCHEDULER is a scheduler's address
(`tcp://host:8786`) or `local:N`, a LocalCluster of N worker processes on this
machine, closed when the command ends.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import time
from pathlib import Path

import numpy as np

from symcompile.errors import SymcompileError
from symcompile.spec import read_csv


def add_dask_argument(command):
    command.add_argument(
        "--dask",
        metavar="SCHEDULER",
        help="run on a Dask cluster: a scheduler address, or local:N for N worker processes on this machine",
    )


def add_train_arguments(train_cmd):
    add_dask_argument(train_cmd)
    train_cmd.add_argument(
        "--partitions", type=_positive, help="with --dask: row partitions of the data (default: one per worker thread)"
    )


def _positive(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a positive integer expected, not {text!r}")
    return int(text)


def add_fit_many_arguments(fit_cmd):
    fit_cmd.add_argument("--many", metavar="DATA_DIR", help="fit each CSV file in DATA_DIR on its own")
    fit_cmd.add_argument("--out", help="with --many: the results, one row per file (default: fits.csv)")
    fit_cmd.add_argument(
        "--method", choices=("least_squares", "train"),
        help="with --many: the module's solver for each file (default: least_squares)",
    )  # fmt: skip
    add_dask_argument(fit_cmd)


def _require_dask_for(args):
    if args.dask:
        from symcompile.distributed import require_dask

        require_dask()  # before anything is built: a one-line error without the extra


def check_train_arguments(args, run):
    _require_dask_for(args)
    if args.partitions and not args.dask:
        raise SymcompileError("--partitions applies to train --dask")
    if args.dask and run.validation_split:
        raise SymcompileError("--dask trains without a validation split (validation_split must be 0)")


def check_fit_arguments(args):
    """--dask, --out and --method belong to fit --many; with it, --method defaults to least_squares."""
    _require_dask_for(args)
    if not args.many:
        given = [flag for flag, value in (("--dask", args.dask), ("--out", args.out), ("--method", args.method)) if value]
        if given:
            raise SymcompileError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to fit --many DATA_DIR")
    if args.many and args.plot:
        raise SymcompileError("--plot draws a single fit; fit --many writes its results to --out")
    args.method = args.method or "least_squares"
    args.out = args.out or "fits.csv"


@contextlib.contextmanager
def dask_client(scheduler):
    """A distributed.Client for `scheduler` (an address or local:N), closed afterwards."""
    from symcompile.distributed import require_dask

    distributed = require_dask()
    if scheduler.startswith("local:"):
        workers = scheduler.removeprefix("local:")
        if not workers.isdigit() or int(workers) < 1:
            raise SymcompileError(f"--dask local:N needs a positive number of workers, not {scheduler!r}")
        cluster = distributed.LocalCluster(n_workers=int(workers), threads_per_worker=1, dashboard_address=None)
        with cluster, distributed.Client(cluster) as client:
            yield client
        return
    try:
        client = distributed.Client(scheduler, timeout="10s")
    except OSError as exc:
        raise SymcompileError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    with client:
        yield client


def train_on_dask(args, module, data, keywords):
    """(result, seconds): the training samples in row partitions on the cluster, trained by
    symcompile.distributed.train (its first call ships the module and places the partitions: timed in)."""
    import dask.array as da

    from symcompile import distributed

    with dask_client(args.dask) as client:
        partitions = args.partitions or max(1, sum(client.nthreads().values()))
        rows = math.ceil(data.X.shape[0] / partitions)
        X = da.from_array(data.X, chunks=(rows, data.X.shape[1]))
        Y = da.from_array(data.Y, chunks=(rows, data.Y.shape[1]))
        print(f"  dask       {args.dask}: {len(client.nthreads())} workers, {X.numblocks[0]} partitions", flush=True)
        start = time.perf_counter()
        result = distributed.train(module, X, Y, client=client, **keywords)
        return result, time.perf_counter() - start


def read_datasets(module, folder):
    """(file names, [(X, Y), ...]) from every CSV file in `folder`, sorted by name; columns by INPUTS/TARGETS."""
    files = sorted(Path(folder).glob("*.csv"))
    if not files:
        raise SymcompileError(f"{folder} holds no .csv files")
    datasets = []
    for path in files:
        header, rows = read_csv(path)
        missing = [c for c in (*module.INPUTS, *module.TARGETS) if c not in header]
        if missing:
            raise SymcompileError(f"{path} has no column {', '.join(map(repr, missing))} (columns: {', '.join(header)})")
        table = np.array(rows, dtype=np.float64)
        pick = lambda names: table[:, [header.index(n) for n in names]]  # noqa: E731
        datasets.append((pick(module.INPUTS), pick(module.TARGETS)))
    return [p.name for p in files], datasets


def fit_many_command(args, module, settings):
    """One fit per CSV file of args.many, on the cluster with --dask, else in this process; results to args.out.
    `settings`: the solver's keywords (fit's --max-iter and --tol for least_squares; train takes the model's)."""
    names, datasets = read_datasets(module, args.many)
    start = time.perf_counter()
    if args.dask:
        from symcompile import distributed

        with dask_client(args.dask) as client:
            results = distributed.fit_many(module, datasets, client=client, method=args.method, **settings)
    else:
        results = [_fit_one(module, args.method, name, X, Y, settings) for name, (X, Y) in zip(names, datasets)]
    seconds = time.perf_counter() - start
    write_results(args.out, module, names, results)
    statuses = {}
    for result in results:
        statuses[result.status] = statuses.get(result.status, 0) + 1
    counted = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
    print(f"symcompile fit: {len(results)} files in {seconds:.2f} s ({counted}); results in {args.out}")
    return 0


def _fit_one(module, method, name, X, Y, settings):
    try:
        return getattr(module, method)(X=X, Y=Y, **settings)
    except (TypeError, ValueError) as exc:  # the module refuses the file's data
        raise SymcompileError(f"{name}: {exc}") from None


def write_results(path, module, names, results):
    """One row per file: its name, the weights, their standard errors (least_squares), the cost or final loss,
    the iterations and the status."""
    stderr = hasattr(results[0], "stderr")
    header = ["file", *module.PARAMS, *(f"stderr_{p}" for p in module.PARAMS if stderr)]
    header += ["cost" if stderr else "loss", "iterations", "status"]
    try:
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for name, r in zip(names, results):
                errors = list(r.stderr) if stderr else []
                value = r.cost if stderr else r.loss_history[-1]
                writer.writerow([name, *map(repr, map(float, r.w)), *map(repr, map(float, errors)), repr(float(value)), r.iterations, r.status])
    except OSError as exc:
        raise SymcompileError(f"cannot write {path}: {exc.strerror or exc}") from None
