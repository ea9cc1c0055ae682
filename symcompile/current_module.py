"""`train`'s shortcut to a module that is already current, without SymPy.

Checking that a module is current means making the spec's model (SymPy: half a second of imports) and comparing
it with the module's header (symcompile.provenance). Once that check has passed, the inputs it looked at are
recorded beside the modules: a key over the spec file's bytes, its data file's bytes, the data root, the split
and the versions that shape a build, and the sha256 of the module file it found current. A later `train` with
the same key and the same module file loads the module straight away; anything else changed (the spec, the data,
a version, the module rebuilt or edited) takes the full check again. Imports nothing heavier than NumPy.
"""

from __future__ import annotations

import hashlib
import json
import stat
import tomllib
from pathlib import Path

from symcompile.provenance import versions  # the versions a module's header records, which the full check compares

RECORDS = ".current"  # the folder, inside the output folder, of one small JSON file per key


def inputs_key(spec, data_root, split) -> str | None:
    """The key of `train`'s inputs, or None where they cannot be read cheaply and safely (a pipe, a missing
    file, a spec that does not parse): the full check then says what is wrong."""
    digest = hashlib.sha256()
    digest.update(repr((sorted(versions().items()), sorted((split or {}).items()))).encode())
    if spec is None:  # the built-in seed: the versions say it all
        return digest.hexdigest()
    spec_path = Path(spec)
    spec_bytes = _regular_file_bytes(spec_path)
    if spec_bytes is None:
        return None
    try:
        data = tomllib.loads(spec_bytes.decode("utf-8")).get("data", {})
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    csv = data.get("csv") if isinstance(data, dict) else None
    csv_bytes = b"" if csv is None else _regular_file_bytes(spec_path.parent / str(csv))
    if csv_bytes is None:
        return None
    root = Path(data_root) if data_root is not None else spec_path.parent
    for part in (str(spec_path.resolve()), str(root.resolve()), spec_bytes, str(csv), csv_bytes):
        digest.update(hashlib.sha256(part if isinstance(part, bytes) else part.encode()).digest())
    return digest.hexdigest()


def recorded(out_dir, key):
    """(module path, the spec's run settings as a dict) recorded for `key`, where the module file is still the
    one found current then; else None."""
    if key is None:
        return None
    try:
        record = json.loads((Path(out_dir) / RECORDS / f"{key}.json").read_text(encoding="utf-8"))
        module = Path(out_dir) / record["module"]
        if _sha256(module) != record["module_sha256"]:
            return None
        return module, dict(record["run"])
    except (OSError, ValueError, KeyError, TypeError):  # none yet, or unreadable: the full check decides
        return None


def record(out_dir, key, module_path, run: dict) -> None:
    """Note that `module_path` was found current for the inputs of `key`, with the spec's run settings `run`.
    A failure to write is no error: the next run takes the full check again."""
    from symcompile.writer import write_atomically

    if key is None:
        return
    module_path = Path(module_path)
    entry = {"module": module_path.name, "module_sha256": _sha256(module_path), "run": run}
    folder = Path(out_dir) / RECORDS
    try:
        folder.mkdir(exist_ok=True)
        text = json.dumps(entry).encode()
        write_atomically(folder / f"{key}.json", lambda f: f.write(text))
    except OSError:
        pass


def _regular_file_bytes(path: Path):
    """The bytes of a regular file (not a pipe or device, which must be read once, by the full check)."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return None
        return path.read_bytes()
    except OSError:
        return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
