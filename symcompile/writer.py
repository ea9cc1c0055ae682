"""Stage 6, write and load: source text -> file in the output folder -> imported module.

Writes are atomic: the text goes to a temporary file beside the target, which
then replaces it with `os.replace`, so a failed or killed build leaves the
previous module intact and concurrent builds never mix their bytes. A module
whose bytes have not changed is not rewritten, which keeps Numba's on-disk
cache (keyed on the file's timestamp) valid across rebuilds.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

from symcompile.errors import SymcompileError


def write_module(source: str, out_dir, name: str) -> tuple[Path, bool]:
    """Write `source` to out_dir/name.py; return (path, whether the file changed)."""
    out_dir = Path(out_dir)
    path = out_dir / f"{name}.py"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.read_text(encoding="utf-8") == source:
            return path, False
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(source)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        raise SymcompileError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path, True


def load_module(path):
    """Import a generated module from its real file (so Numba's cache works), fresh each call."""
    path = Path(path)
    if not path.is_file():
        raise SymcompileError(f"no generated module at {path}; run `python -m symcompile build` first")
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
