"""`build --standalone`: symcompile's runtime written beside a module, for machines without symcompile.

A generated module imports `symcompile.runtime`. Built standalone, it imports instead a copy of the runtime
written beside it as the package `_symcompile_runtime_<digest>`, named by the digest of its files' content: a
module finds exactly the runtime it was built with, modules built by different symcompile versions can share
a folder, and a copy already there is never rewritten (which keeps Numba's cache of it valid). The copy is
written to a temporary folder and renamed into place, so a reader never sees half of it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from functools import cache
from importlib import resources
from pathlib import Path

from symcompile.errors import SymcompileError

RUNTIME_FOLDER = Path(__file__).resolve().parent / "runtime"


def _runtime_files() -> list[Path]:
    return sorted(RUNTIME_FOLDER.glob("*.py"))


def files_digest(paths) -> str:
    """SHA-256 of files' names and bytes, in the order given."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@cache
def package_name() -> str:
    """The runtime copy's package name: `_symcompile_runtime_` and 16 hex digits of its files' SHA-256."""
    return f"_symcompile_runtime_{files_digest(_runtime_files())[:16]}"


def template_folder() -> Path:
    """The templates: the checkout's templates/ when run from source, else the installed package data.

    The checkout is tried first so that a source tree never renders with the
    templates of some other installed copy of symcompile.
    """
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "templates" / "module.py.j2").is_file():
        return checkout / "templates"
    return Path(str(resources.files("symcompile.templates")))


def write_runtime(out_dir) -> Path:
    """Write the runtime's copy into out_dir (unless it is there already); returns its folder."""
    target = Path(out_dir) / package_name()
    if target.is_dir():
        return target
    temporary = Path(out_dir) / f".{package_name()}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        temporary.mkdir(parents=True)
        for path in _runtime_files():
            shutil.copyfile(path, temporary / path.name)
        try:
            os.rename(temporary, target)
        except OSError:
            if not target.is_dir():  # (another build that wrote the same copy first is fine)
                raise
    except OSError as exc:
        raise SymcompileError(f"cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return target
