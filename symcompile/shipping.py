"""A generated module on Dask workers: shipped as text, imported from a real file once per worker process.

A worker needs the generated module to run its kernels, but the cluster shares no file system with the
client. So the module travels as a `ModulePackage` (its source, the digest of its body, its default-data
file if it has one, and the client's Numba cache files for it) inside a worker plugin: the scheduler
keeps the plugin and gives it to every worker, present and future (a restarted one too), and the
plugin writes the module into a folder on the worker's machine named by its digest and imports it from
there, so Numba's on-disk cache works. Tasks name the module by its digest, so a worker never runs a
module of the same name built from another model.

Numba keys its cache files by the source's content (SHA-256) and the CPU: a worker with the client's
CPU loads the kernels the client compiled (Levenberg-Marquardt's solver takes tens of seconds to
compile), and one with another CPU compiles them itself, once per machine.

Dask is imported only by `symcompile.distributed`, which calls this.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from symcompile.errors import SymcompileError
from symcompile.provenance import read_header, sha256, verify_module

WORKER_DIR_VARIABLE = "SYMCOMPILE_WORKER_DIR"  # where workers write modules (default: a folder in the temp dir)
# The line of a module whose default data lives in a file beside it (templates/module.py.j2).
_DATA_FILE_LINE = re.compile(r'^X, Y = _files\.default_data\(__file__, "([^"]+)"', re.MULTILINE)


@dataclass(frozen=True)
class ModulePackage:
    """A generated module as workers receive it. `digest` (of its body) is the key tasks name it by;
    `files` are the files that go beside it ({name: bytes}: its default-data file, if any), `numba_cache`
    the client's Numba cache files for it ({name: bytes}), if the client has compiled any of its kernels."""

    name: str
    digest: str
    source: str
    files: dict = field(default_factory=dict)
    numba_cache: dict = field(default_factory=dict)


def package(module) -> ModulePackage:
    """The module's file as a package; refused in one line when the file is not the module that was loaded."""
    path = Path(module.__file__)
    problem = verify_module(path)
    if problem:
        raise SymcompileError(f"{path} {problem}; rebuild it")
    source = path.read_text(encoding="utf-8")
    if not _same_model(module, source):
        raise SymcompileError(f"{path} was rebuilt from another model after it was imported; load the module again")
    files = {name: (path.parent / name).read_bytes() for name in _DATA_FILE_LINE.findall(source)}
    return ModulePackage(path.stem, read_header(path).body_digest, source, files, _numba_cache_files(module))


def _same_model(module, source) -> bool:
    """Whether the loaded module and the file's text describe one model: its formula (the docstring), its
    names and MODEL_DIGEST."""
    tree = ast.parse(source)
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("PARAMS", "INPUTS", "TARGETS", "MODEL_DIGEST"):
                constants[node.targets[0].id] = ast.literal_eval(node.value)
    same = ast.get_docstring(tree, clean=False) == module.__doc__
    return same and all(getattr(module, name, None) == value for name, value in constants.items())


def numba_cache_folder(module) -> Path:
    """Where Numba keeps this module's cache files: beside it in __pycache__, or under $NUMBA_CACHE_DIR."""
    return Path(module.MODEL.kernels["_loss_and_grad_kernel"]._cache._cache_path)


def _numba_cache_files(module):
    """The module's Numba cache files ({name: bytes}), named `<module file stem>.<function>-<line>...`."""
    files = {}
    stem = Path(module.__file__).stem
    for cached in sorted(numba_cache_folder(module).glob(f"{stem}.*.nb[ic]")):
        with contextlib.suppress(OSError):  # a file Numba is replacing right now: the worker compiles instead
            files[cached.name] = cached.read_bytes()
    return files


# ---- on the workers --------------------------------------------------------------------------------------------

_LOADED = {}  # in each worker process: digest -> the imported module


def worker_folder() -> Path:
    """Where this machine's workers write modules: one folder per module digest."""
    default = Path(tempfile.gettempdir()) / f"symcompile-workers-{os.getuid()}"
    return Path(os.environ.get(WORKER_DIR_VARIABLE) or default)


def load_package(package: ModulePackage):
    """Import the package in this process (once): written into the worker folder, imported from that file.
    The cache files are added every time it arrives: kernels the client compiled since load, not compile.
    (Numba reads a kernel's cache at its first call, not at import, so they are added after the import,
    where the imported kernels say Numba looks.)"""
    from symcompile.writer import load_module, replace_atomically, write_module

    if package.digest not in _LOADED:
        if sha256(_body(package.source)) != package.digest:
            raise SymcompileError(f"module {package.name} arrived damaged (its body does not match its digest)")
        folder = worker_folder() / package.digest[:16]
        path, _ = write_module(package.source, folder, package.name)
        for name, data in package.files.items():
            if not (folder / name).is_file():
                replace_atomically(folder / name, data, package.name)
        _LOADED[package.digest] = load_module(path)
    module = _LOADED[package.digest]
    _add_missing(numba_cache_folder(module), package.numba_cache)
    return module


def _add_missing(folder: Path, files: dict):
    """Write the client's cache files that this machine's workers do not have yet (each atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        target = folder / name
        if not target.exists():
            temporary = folder / f".{name}.{os.getpid()}.tmp"
            temporary.write_bytes(data)
            os.replace(temporary, target)


def _body(source: str) -> str:
    """The text below a module's header (what its digest covers), as provenance.read_header finds it."""
    marker = "\n# Digest: sha256:"
    start = source.index(marker) + 1
    return source[source.index("\n", start) + 1 :].removeprefix("\n")


def module_on_worker(digest):
    """The module a task names by its digest (loaded by the plugin when the worker started)."""
    try:
        return _LOADED[digest]
    except KeyError:
        raise SymcompileError(f"module {digest[:16]} is not loaded on this worker (ship it first)") from None


def _plugin_class():
    from distributed import WorkerPlugin

    class ModulePlugin(WorkerPlugin):
        """Loads one generated module on every worker, present and future, when it starts."""

        def __init__(self, package):
            self.package = package
            self.name = f"symcompile-{package.digest[:16]}"

        def setup(self, worker):
            load_package(self.package)

    return ModulePlugin


_SHIPPED = weakref.WeakKeyDictionary()  # client -> {digest: the names and sizes of the Numba cache files sent}


def ship(client, module) -> str:
    """Load `module` on every worker of `client`; returns the digest that tasks name it by.

    Registering the plugin is a round trip to every worker, so a module is registered again only when
    the client has compiled more of its kernels since it was last shipped."""
    shipped = package(module)
    cache = {name: len(data) for name, data in shipped.numba_cache.items()}
    sent = _SHIPPED.setdefault(client, {})
    if sent.get(shipped.digest) != cache:
        client.register_plugin(_plugin_class()(shipped))
        sent[shipped.digest] = cache
    return shipped.digest
