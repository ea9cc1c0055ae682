"""The write stage (options.STAGES), and loading: source text -> file in the output folder -> imported module.

Writes are atomic: the text goes to a temporary file beside the target
(`.<name>.<pid>.<random>.tmp`, which no import or glob for `*.py` picks up), is
flushed to disk, and then replaces the target with `os.replace`, so a failed
or killed build leaves the previous module intact and concurrent builds never
mix their bytes (the last one to finish wins, whole). A module whose bytes
have not changed is not rewritten, which keeps Numba's on-disk cache (keyed on
the file's timestamp) valid across rebuilds. Large default data is written the
same way to `<name>.npz` beside the module (`data_file`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
import secrets
import sys
from pathlib import Path

import numpy as np

from symcompile.errors import SymcompileError


def write_module(source: str, out_dir, name: str) -> tuple[Path, bool]:
    """Write `source` to out_dir/name.py; return (path, whether the file changed)."""
    out_dir = Path(out_dir)
    path = out_dir / f"{name}.py"
    data = source.encode("utf-8")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(out_dir, name)
        if path.is_file() and path.read_bytes() == data:
            return path, False
        replace_atomically(path, data, name)
    except OSError as exc:
        raise SymcompileError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path, True


def write_data(X, Y, out_dir, file_name: str, name: str, digest: str) -> Path:
    """Write the default data to out_dir/file_name (NumPy's .npz), unless the file already holds it (by `digest`)."""
    path = Path(out_dir) / file_name
    try:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        if not holds_data(path, digest):
            buffer = io.BytesIO()
            np.savez(buffer, X=X, Y=Y)
            replace_atomically(path, buffer.getbuffer(), name)
    except OSError as exc:
        raise SymcompileError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


# Default data of more values than this goes to a file beside the module (<name>.npz) rather than into
# its text as literals: a million rows would make a module of tens of MiB that is slow to write and read.
INLINE_DATA_VALUES = 4096


def data_file(model) -> str | None:
    """The name of the module's data file, or None when its default data is written into the module."""
    return f"{model.name}.npz" if model.X.size + model.Y.size > INLINE_DATA_VALUES else None


def data_digest(X, Y) -> str:
    """SHA-256 of the default data as little-endian float64, as the generated module checks it."""
    digest = hashlib.sha256(X.astype("<f8").tobytes())
    digest.update(Y.astype("<f8").tobytes())
    return digest.hexdigest()


def holds_data(path, digest) -> bool:
    try:
        with np.load(path, allow_pickle=False) as data:
            return data_digest(data["X"], data["Y"]) == digest
    except (OSError, KeyError, ValueError):
        return False


def replace_atomically(path: Path, data, name: str) -> None:
    """Write `data` (bytes) to a temporary beside `path`, flush it to disk, and rename it over `path`."""
    write_atomically(path, lambda f: f.write(data), name)


def write_atomically(path, write, name: str | None = None) -> None:
    """Create `path` whole or not at all: `write(f)` fills a binary file object that is a temporary beside `path`
    (`.<name>.<pid>.<random>.tmp`, `name` defaulting to the file's name), which is flushed to disk and renamed
    over `path`. A kill at any moment leaves the previous file or the new one, never a part; on an error the
    temporary is removed and the exception (OSError, or whatever `write` raised) propagates.
    Every file symcompile writes goes through here."""
    path = Path(path)
    # O_EXCL on a random name: no other process can be writing this file. Mode 0666 leaves
    # the rest to the umask, as for any file the user creates (mkstemp's 0600 would not).
    tmp = path.parent / f".{name or path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def remove_stale_temporaries(out_dir: Path, name: str) -> None:
    """Remove the temporary files of earlier builds of `name` that were killed before their `os.replace`.

    A temporary is stale when the process named in it (`.<name>.<pid>.<random>.tmp`) is no longer running;
    a build still running keeps its own.
    """
    for tmp in out_dir.glob(f".{name}.*.tmp"):
        pid = tmp.name[len(name) + 2 :].split(".")[0]
        if pid.isdigit() and not _process_running(int(pid)):
            with contextlib.suppress(OSError):
                tmp.unlink()


def _process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # it exists, under another user
        return True
    return True


def load_module(path):
    """Import a generated module from its real file (so Numba's cache works), fresh each call.

    It is registered in `sys.modules` under its name unless that entry is some other module (the
    caller's own, say): a generated module works unregistered too (templates/module.py.j2).
    """
    path = Path(path)
    if not path.is_file():
        raise SymcompileError(f"no generated module at {path}; run `python -m symcompile build` first")
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    if is_replaceable(sys.modules.get(name), name):
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def is_replaceable(entry, name) -> bool:
    """Whether a `sys.modules` entry may give way to a new build of `name`: absent, or an earlier build of it."""
    if entry is None:
        return True
    generated = getattr(entry, "__name__", "").startswith("_symcompile_")  # the name every build goes by
    return generated and Path(getattr(entry, "__file__", "") or "").stem == name
