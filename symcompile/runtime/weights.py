"""The files a generated module reads and writes: its default data, its own source (the digest check) and saved
weights (an .npz of the weights, their parameter names and the model's digest, read defensively)."""

import hashlib
import math
import os
import tempfile
import zipfile
import zlib

import numpy as np

from .checks import shape_text
from .errors import StaleModule

_MAX_SAVED_TEXT = 1024  # characters in one saved string (a parameter's name, the model's digest)


def save(path, w, params, digest):
    """Write the weights, their parameter names and the model's digest to an .npz at `path`, by way of a
    temporary file in the same folder renamed into place (an interrupted save leaves no half-written file).
    As numpy.savez, it adds .npz to a name without it; an open file is written to as it is."""
    if hasattr(path, "write"):
        np.savez(path, w=w, params=np.array(params), model=np.array(digest))
        return
    path = os.fspath(path)
    path = path if path.endswith(".npz") else path + ".npz"
    folder, name = os.path.split(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as f:
            np.savez(f, w=w, params=np.array(params), model=np.array(digest))
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def load(path, params, digest):
    """The weights `save` wrote to `path` for the model of `params` and `digest`, as a float64 vector. Anything
    else is a ValueError naming the file: not a regular file (a FIFO would never end), not such an .npz (a .npy,
    an empty or corrupt file, strings for numbers, an array of another shape), or another model's weights. Each
    array's .npy header is read before its data, so a small file that claims a huge array allocates nothing."""
    if isinstance(path, (str, os.PathLike)) and os.path.exists(path) and not os.path.isfile(path):
        raise ValueError(f"{path} is not a regular file")
    try:
        with zipfile.ZipFile(path) as saved:
            model = str(_saved_array(saved, "model", "U", ())[0])
            names, (n_params,) = _saved_array(saved, "params", "U", (None,), read_up_to=len(params))
            if model == digest and names is not None and tuple(map(str, names)) == tuple(params):
                return _saved_array(saved, "w", "f", (len(params),))[0]
    except (KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"{path} holds no saved weights (w, params, model): {exc}") from None
    raise ValueError(
        f"{path} holds the weights of another model (model {model[:12]}, {n_params} parameters), not of this one "
        f"({digest[:12]}, {len(params)})"
    )


def _saved_array(archive, name, kind, shape, read_up_to=math.inf):
    """(array `name` of an .npz `archive`, its shape), the .npy header checked first: NumPy dtype `kind`, `shape`
    (None: any length). An array of more than `read_up_to` values is not read: (None, its shape)."""
    with archive.open(f"{name}.npy") as f:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):  # numpy.save writes 3.0 only for structured arrays
            raise ValueError(f"{name}: .npy format version {version[0]}.{version[1]}")
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        found, fortran_order, dtype = read_header(f)
        if (
            dtype.kind != kind
            or len(found) != len(shape)
            or any(want is not None and got != want for got, want in zip(found, shape))
        ):
            raise ValueError(
                f"{name} is {dtype} of shape {found}, not {'numbers' if kind == 'f' else 'text'} of shape {shape_text(shape)}"
            )
        if kind == "U" and dtype.itemsize > 4 * _MAX_SAVED_TEXT:
            raise ValueError(f"{name} holds strings of {dtype.itemsize // 4} characters")
        count = math.prod(found)
        if count > read_up_to:
            return None, found
        data = f.read(count * dtype.itemsize)
        if len(data) != count * dtype.itemsize:
            raise ValueError(f"{name} is cut short")
        return np.frombuffer(data, dtype).reshape(found, order="F" if fortran_order else "C"), found


def default_data(module_file, file_name, X_shape, Y_shape, digest):
    """(X, Y): a module's default data, from the file the build wrote beside it, checked against the build's digest."""
    path = os.path.join(os.path.dirname(os.path.abspath(module_file)), file_name)
    try:
        with np.load(path, allow_pickle=False) as data:
            X, Y = data["X"], data["Y"]
    except (OSError, KeyError, ValueError) as exc:
        raise StaleModule(f"cannot read this module's default data from {path} ({exc}); rebuild the module") from None
    found = hashlib.sha256(X.astype("<f8").tobytes())
    found.update(Y.astype("<f8").tobytes())
    if X.shape != X_shape or Y.shape != Y_shape or found.hexdigest() != digest:
        raise StaleModule(f"{path} is not the data this module was built with; rebuild the module")
    return X, Y


def check_digest(module_file):
    """Raise ValueError unless the module file is byte for byte what symcompile wrote: its body must match the
    digest in its header (a module edited by hand, or cut short, is not the build's output)."""
    with open(module_file, encoding="utf-8", newline="") as f:
        head, found, body = f.read().partition(" (of the source below this line)\n\n")
    if not found or hashlib.sha256(body.encode()).hexdigest() != head.rpartition("# Digest: sha256:")[2]:
        raise ValueError(
            f"{module_file} was changed after symcompile built it (its body does not match its digest); rebuild it"
        )
