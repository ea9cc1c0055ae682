"""The command line's Dask options: `train SPEC --dask SCHEDULER` and `fit SPEC --many DATA_DIR [--dask ...]`.

Kept apart from cli.py so that the commands there stay short and Dask is
imported only when `--dask` is given. SCHEDULER is a scheduler's address
(`tcp://host:8786`) or `local:N`, a LocalCluster of N worker processes on this
machine, closed when the command ends.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import io
import math
import os
import re
import socket
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from symcompile.errors import SymcompileError
from symcompile.options import positive_count
from symcompile.interrupts import EXIT_INTERRUPTED  # Ctrl-C: the fits reached so far were written
from symcompile.outputs import write_file


def add_dask_argument(command):
    command.add_argument(
        "--dask",
        metavar="SCHEDULER",
        help="run on a Dask cluster: a scheduler address, or local:N for N worker processes on this machine",
    )


def add_train_arguments(train_cmd):
    add_dask_argument(train_cmd)
    train_cmd.add_argument(
        "--partitions",
        type=positive_count,
        help="with --dask: row partitions of the data (default: one per worker thread)",
    )


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
        scheduler_address(args.dask)


# tcp://HOST:PORT or HOST:PORT (a name, an IPv4 address or a bracketed IPv6 one), or local:N.
_ADDRESS = re.compile(r"(?:tcp://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})")
CONNECT_SECONDS = 10.0  # the longest wait for a scheduler to accept a connection and say its first message


def scheduler_address(text):
    """(host, port) of a scheduler address, or (None, workers) for local:N; a one-line error for anything else:
    other protocols (http://, inproc://, tls://), a malformed address, more local workers than this machine's CPUs."""
    if text.startswith("local:"):
        workers, cpus = text.removeprefix("local:"), os.cpu_count() or 1
        if not workers.isdigit() or not 1 <= int(workers) <= cpus:
            raise SymcompileError(
                f"--dask local:N needs a positive number of workers up to this machine's {cpus} CPUs, not {text!r}"
            )
        return None, int(workers)
    match = _ADDRESS.fullmatch(text)
    if match is None or not 1 <= int(match["port"]) <= 65535:
        raise SymcompileError(
            f"--dask takes a scheduler address tcp://HOST:PORT (or HOST:PORT), or local:N, not {text!r}"
        )
    return match["host"].strip("[]"), int(match["port"])


def probe_scheduler(host, port, seconds=None):
    """A one-line error unless a Dask scheduler answers at host:port within `seconds`. A scheduler writes its
    handshake as soon as a connection opens: an 8-byte length, then that many bytes. Dask's own client waits
    for that handshake without a limit (a port that accepts and never answers hangs it), and reads whatever a
    web server answers its handshake with as a length (b'HTTP/1.1' asks for 3 EiB)."""
    seconds = CONNECT_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + seconds
    where = f"the Dask scheduler at {host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=seconds) as connection:
            header = _receive(connection, 8, deadline)
            length = int.from_bytes(header, "little")
            if not 0 < length <= 2**20:
                raise SymcompileError(f"{where} is not a Dask scheduler (its first message is not Dask's handshake)")
            _receive(connection, length, deadline)
    except TimeoutError:
        raise SymcompileError(f"{where} did not answer as a Dask scheduler within {seconds:g} s") from None
    except OSError as exc:
        raise SymcompileError(f"cannot reach {where}: {exc.strerror or exc}") from None


def _receive(connection, size, deadline):
    data = b""
    while len(data) < size:
        connection.settimeout(max(deadline - time.monotonic(), 1e-3))
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError("it closed the connection")
        data += chunk
    return data


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
        given = [
            flag for flag, value in (("--dask", args.dask), ("--out", args.out), ("--method", args.method)) if value
        ]
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
    host, port = scheduler_address(scheduler)
    if host is None:  # local:N, port the number of workers
        cluster = distributed.LocalCluster(n_workers=port, threads_per_worker=1, dashboard_address=None)
        with cluster, distributed.Client(cluster) as client:
            yield client
        return
    probe_scheduler(host, port)
    try:
        client = distributed.Client(scheduler, timeout=f"{CONNECT_SECONDS:g}s")
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


EXIT_SOME_SKIPPED = 1  # fit --many: the fits were written, but some files were skipped (docs/dask.md says so)


@dataclass(frozen=True)
class DataFile:
    """One CSV file of fit --many: its data, or why it is skipped (`problem`, one line)."""

    name: str
    X: np.ndarray | None = None
    Y: np.ndarray | None = None
    problem: str | None = None


def read_datasets(module, folder, out=None):
    """Every CSV file in `folder` but the output `out`, sorted by name, with its columns by INPUTS/TARGETS, or
    the reason it cannot be fitted: not a regular file (a folder, a FIFO, a dangling link), not a CSV of
    numbers, a column missing. Nothing here blocks: a FIFO is never opened."""
    own_output = Path(out).resolve() if out else None
    files = [p for p in sorted(Path(folder).glob("*.csv")) if p.resolve() != own_output]
    if not files:
        raise SymcompileError(f"{folder} holds no .csv files")
    return [_read_data_file(module, path) for path in files]


def _read_data_file(module, path):
    try:
        mode = path.stat().st_mode  # follows links
    except OSError as exc:
        problem = "a link to nothing" if path.is_symlink() else f"cannot read it: {exc.strerror or exc}"
        return DataFile(path.name, problem=problem)
    if not stat.S_ISREG(mode):
        return DataFile(path.name, problem="a folder, not a file" if stat.S_ISDIR(mode) else "not a regular file")
    try:
        from symcompile.spec import read_csv  # (SymPy: only for fit --many)

        header, rows = read_csv(path)
    except SymcompileError as exc:
        return DataFile(path.name, problem=str(exc).removeprefix(f"{path} ").replace(str(path), "it"))
    missing = [c for c in (*module.INPUTS, *module.TARGETS) if c not in header]
    if missing:
        return DataFile(path.name, problem=f"no column {', '.join(map(repr, missing))} (columns: {', '.join(header)})")
    pick = lambda names: np.ascontiguousarray(rows[:, [header.index(n) for n in names]])  # noqa: E731
    return DataFile(path.name, pick(module.INPUTS), pick(module.TARGETS))


def fit_many_command(args, module, settings):
    """One fit per CSV file of args.many, on the cluster with --dask, else in this process; results to args.out,
    one row per file. A file that cannot be fitted (bad file, or data the module refuses) is a row with status
    "skipped" and the reason, and a line on stderr; the others are fitted and kept. Exit status 0, or
    EXIT_SOME_SKIPPED when a file was skipped. `settings`: the solver's keywords (fit's --max-iter and --tol for
    least_squares; for train, those given, else the model's)."""
    files = read_datasets(module, args.many, args.out)
    good = [f for f in files if f.problem is None]
    start = time.perf_counter()
    results, interrupted = _fits(args, module, good, settings)
    seconds = time.perf_counter() - start
    outcomes = dict(zip((f.name for f in good), results))  # a str: the module's reason for refusing the data
    rows = [(f.name, f.problem or outcomes.get(f.name)) for f in files if f.problem or f.name in outcomes]
    with args.ctrl_c.finishing(f"writing {args.out}"):  # Ctrl-C now: the fits are written first, then exit 130
        write_results(args.out, module, args.method, rows)
        skipped = 0
        for name, outcome in rows:
            if isinstance(outcome, str):
                skipped += 1
                print(f"symcompile: skipped {name}: {outcome}", file=sys.stderr)
        statuses = collections.Counter(r.status for _, r in rows if not isinstance(r, str))
        counted = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
        fitted = len(rows) - skipped
        print(f"symcompile fit: {len(files)} files in {seconds:.2f} s: {fitted} fitted ({counted or 'none'}), "
              f"{skipped} skipped; results in {args.out}")  # fmt: skip
    if interrupted:
        print(f"symcompile: interrupted after {fitted + skipped} of {len(files)} files", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_SOME_SKIPPED if skipped else 0


def _fits(args, module, files, settings):
    """(each file's result, or the module's message when it refuses the data; whether Ctrl-C stopped the loop).

    In this process, Ctrl-C ends the command at once until a fit has reached the solver (the first one compiles
    it, or loads Numba's cache: nothing to keep yet, and --out is left as it was); after that it stops the loop
    once the fit under way is done, and the fits reached are written (a second Ctrl-C ends it at once)."""
    if args.dask:
        from symcompile import distributed

        with dask_client(args.dask) as client:
            datasets = [(f.X, f.Y) for f in files]
            fits = distributed.fit_many(
                module, datasets, client=client, method=args.method, errors="return", **settings
            )
            return fits, False
    fit, results = getattr(module, args.method), []

    def fit_next():
        f = files[len(results)]
        try:
            results.append(fit(X=f.X, Y=f.Y, **settings))
        except (TypeError, ValueError) as exc:  # the module refuses the file's data (NaN, too few rows, ...)
            results.append(str(exc))

    # Not Python's KeyboardInterrupt: raised while Numba compiles, LLVM's callbacks can swallow it and the fit
    # fails later with a traceback (interrupts.py); raised in a training fit, the runtime took it for that fit's
    # Ctrl-C ("interrupted", or dropped in its last chunk) and the loop went on to the next file.
    name = Path(module.__file__).stem
    with args.ctrl_c.at_once(f"compiling {name}'s {args.method} (no fit reached)"):
        while len(results) < len(files) and all(isinstance(r, str) for r in results):
            fit_next()
    with args.ctrl_c.finishing(f"fitting {name}"):
        while len(results) < len(files) and not args.ctrl_c.interrupted:
            fit_next()
    return results, args.ctrl_c.interrupted


def write_results(path, module, method, rows):
    """One row per file (`rows`: (name, result or the reason it was skipped)): its name, the weights, their
    standard errors (least_squares), the cost or final loss, the iterations, the status ("skipped" for a file
    not fitted) and the reason it was skipped. Written whole or not at all."""
    stderr = method == "least_squares"
    header = ["file", *module.PARAMS, *(f"stderr_{p}" for p in module.PARAMS if stderr)]
    header += ["cost" if stderr else "loss", "iterations", "status", "reason"]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    for name, r in rows:
        if isinstance(r, str):
            writer.writerow([name, *[""] * (len(header) - 3), "skipped", " ".join(r.split())])
            continue
        errors = list(r.stderr) if stderr else []
        value = r.cost if stderr else r.loss_history[-1]
        writer.writerow(
            [
                name,
                *map(repr, map(float, r.w)),
                *map(repr, map(float, errors)),
                repr(float(value)),
                r.iterations,
                r.status,
                "",
            ]
        )
    write_file(path, lambda f: f.write(text.getvalue().encode("utf-8")))  # (a SymcompileError if it cannot)
