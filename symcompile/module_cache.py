"""Modules compiled once per formula and kept in a cache folder: later calls, and later processes, load them.

What makes a module is its formula (parameters, inputs, targets, outputs, loss, residuals, an MLP's network) and
the build's options; what a fit changes (data, initial weights, learning rate, epochs, ...) is passed to the
module's functions at run time. So the key is a digest of the formula, the options and the versions of
symcompile, SymPy, Numba and NumPy, and the module is named after it (`<prefix>_<16 hex digits>`): the same
formula in a new process finds its module and Numba's cache beside it (its `__pycache__`), and compiles nothing.

The folder is `cache_dir()`: $SYMCOMPILE_CACHE_DIR, else $XDG_CACHE_HOME/symcompile, else ~/.cache/symcompile.
Modules are written atomically (symcompile.writer), so processes sharing a folder never see half a module.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

from symcompile.errors import SymcompileError
from symcompile.model import Model
from symcompile.options import BuildOptions
from symcompile.provenance import expression_digests, sha256, verify_module, versions
from symcompile.runtime.errors import StaleModule
from symcompile.standalone import files_digest, template_folder
from symcompile.writer import load_module

ENVIRONMENT_VARIABLE = "SYMCOMPILE_CACHE_DIR"

_LOADED = {}  # (folder, module name) -> the module, so a process imports each cached module once


def cache_dir(folder=None) -> Path:
    """The cache folder: `folder` if given, else $SYMCOMPILE_CACHE_DIR, else the user's cache directory."""
    if folder is not None:
        return Path(folder)
    if os.environ.get(ENVIRONMENT_VARIABLE):
        return Path(os.environ[ENVIRONMENT_VARIABLE])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "symcompile"


def formula_key(model: Model, options: BuildOptions) -> str:
    """SHA-256 of what the module's code depends on: the formula, the build options and the tools' versions
    (not the model's name, default data, initial weights or training defaults)."""
    symbols = model.params + model.inputs + model.targets
    parts = [
        *expression_digests(symbols + model.outputs + (model.loss,) + model.residuals),
        f"classifier={model.classifier}", f"network={model.network!r}",
        f"standardization={model.standardization!r}", repr(dataclasses.replace(options, rebuild_command=None)),
        repr(sorted(versions().items())), _templates_digest(),
    ] + ([f"dtype={model.dtype}"] if model.dtype != "float64" else [])  # fmt: skip
    return sha256("\n".join(parts))


@functools.cache
def _templates_digest() -> str:
    """SHA-256 of the templates a module is rendered from: a symcompile whose templates changed (a development
    checkout keeps its version number) writes new modules rather than load the cached ones of the old layout."""
    return files_digest(sorted(template_folder().glob("*.j2")))


def cached_module(model: Model, options: BuildOptions | None = None, *, prefix: str = "formula", folder=None):
    """The module for `model`'s formula: loaded from the cache folder when built before (in any process), else
    built there first. Its default data and INIT are `model`'s from the first build: pass w, X, Y to its
    functions."""
    options = options or BuildOptions()
    folder = cache_dir(folder)
    name = f"{prefix}_{formula_key(model, options)[:16]}"
    if (folder, name) in _LOADED:
        return _LOADED[(folder, name)]
    path = folder / f"{name}.py"
    if not path.is_file() or verify_module(path):  # absent, or not what a build wrote (cut short, edited)
        path = _built(model, name, folder, options)
    try:
        module = load_module(path)
    except StaleModule:  # built by an earlier symcompile for other dense loops: this one builds it again
        module = load_module(_built(model, name, folder, options))
    _LOADED[(folder, name)] = module
    return module


def _built(model, name, folder, options):
    from symcompile.pipeline import build  # the compiler is imported only when something must be built

    options = dataclasses.replace(
        options, rebuild_command=f"(a cached module: delete {folder / name}.py to rebuild it)"
    )
    try:
        return build(dataclasses.replace(model, name=name), folder, options).path
    except OSError as exc:
        raise SymcompileError(f"cannot write to the module cache {folder}: {exc.strerror or exc}") from exc
