"""Stage 1 from a file: a TOML spec -> `Model`.

Two kinds of spec (README.md shows a full example of each):

- `kind = "mlp"`: layer sizes, activations, loss, bias scheme and initial
  values, handed to `symcompile.mlp.mlp_model`;
- `kind = "expression"`: params, inputs and targets by name, optional named
  `[definitions]`, and `output` and `loss` as expression strings, parsed by
  `symcompile.expression` (a whitelist over Python's syntax tree; user text is
  never run).

Both take `[training]` defaults and `[data]`: inline `X` and `Y`, or a CSV
file (its path relative to the spec) with columns chosen by name. Every key is
checked: an unknown key, a value of the wrong type or shape, or a bad
expression is a `SymcompileError` of one line that names the spec file, the
key, and the problem.
"""

from __future__ import annotations

import array
import csv
import difflib
import io
import keyword
import math
import tomllib
import unicodedata
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import sympy as sp

from symcompile import mlp
from symcompile.errors import SymcompileError
from symcompile.expression import RESERVED, ExpressionParser
from symcompile.model import Model, is_module_name, make_model
from symcompile.options import CHOICES, TRAINING_KEYS, choose, training_settings

COMMON_KEYS = ("kind", "name", "description", "init", "training", "data")
KIND_KEYS = {
    "mlp": ("layers", "hidden_activation", "output_activation", "loss", "bias", "seed"),
    "expression": ("params", "inputs", "targets", "definitions", "output", "loss"),
}
DATA_KEYS = ("X", "Y", "csv", "X_columns", "Y_columns")


@contextmanager
def located(where):
    """Prefix any SymcompileError raised inside with `where` (the spec file, and the key when known)."""
    try:
        yield
    except SymcompileError as exc:
        raise SymcompileError(f"{where}: {exc}") from None


def load_spec(path, data_root=None) -> Model:
    """Read, check and build the model a spec file describes; its CSV file must lie inside `data_root`
    (default: the spec's folder)."""
    path = Path(path)
    return spec_model(read_toml(path), path, data_root)


def spec_model(spec: dict, path: Path, data_root=None) -> Model:
    """The model of a spec already read from `path` (which locates errors and CSV files)."""
    with located(f"{path}: kind"):
        kind = choose("kind", spec.get("kind"))
    _check_keys(spec, COMMON_KEYS + KIND_KEYS[kind], "at the top level", path)
    common = {
        "name": _model_name(spec, path),
        "description": _get(spec, "description", str, "a string", path, default=""),
        "training": _training(_table(spec, "training", path), path),
    }
    data_root = Path(data_root) if data_root is not None else path.parent
    if kind == "mlp":
        return _mlp(spec, path, common, data_root)
    return _expression(spec, path, common, data_root)


# Input sizes (README.md, Limits): a spec is a page of settings; data belongs in a CSV file, and a CSV file's
# rows become Python floats (about 30 times their text in memory) before they are an array.
MAX_SPEC_BYTES = 1 << 20
MAX_SPEC_NESTING = 16  # arrays and tables inside one another; the deepest a spec needs is 3
MAX_CSV_BYTES = 64 << 20
MAX_LINE_BYTES = 1 << 20


def read_bounded(path, limit, what):
    """The file's bytes, refused when there are more than `limit` (a device such as /dev/zero never ends)."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise SymcompileError(f"{what} is larger than {limit >> 20} MiB, the most symcompile reads (README.md, Limits)")
    return data


def read_toml(path: Path) -> dict:
    try:
        text = read_bounded(path, MAX_SPEC_BYTES, "spec file").decode("utf-8")
        spec = tomllib.loads(text)
    except OSError as exc:
        raise SymcompileError(f"{path}: cannot read spec file: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SymcompileError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise SymcompileError(f"{path}: arrays or tables nested more than {MAX_SPEC_NESTING} deep") from None
    except SymcompileError as exc:
        raise SymcompileError(f"{path}: {exc}") from None
    check_nesting(spec, path)
    return spec


def check_nesting(spec, path):
    """Refuse values nested deeper than any spec needs, before the checks that walk them."""
    level = [spec]
    for _ in range(MAX_SPEC_NESTING):
        level = [v for value in level for v in (value.values() if isinstance(value, dict) else value)
                 if isinstance(v, (dict, list))]  # fmt: skip
        if not level:
            return
    raise SymcompileError(f"{path}: arrays or tables nested more than {MAX_SPEC_NESTING} deep")


# --- the two kinds ------------------------------------------------------------------------------------------------


def _mlp(spec, path, common, data_root) -> Model:
    with located(f"{path}: layers"):
        layers = mlp.check_layers(spec.get("layers"))
    chosen = {}
    for key in ("hidden_activation", "output_activation", "loss", "bias"):
        with located(f"{path}: {key}"):
            chosen[key] = choose(key, spec.get(key, CHOICES[key].default))
    init = spec.get("init", CHOICES["init"].default)
    with located(f"{path}: init"):
        if isinstance(init, str):
            choose("init", init)
        else:
            init = _numbers(init, "init")
    seed = _get(spec, "seed", int, "an integer", path, default=0)
    if seed < 0:
        raise SymcompileError(f"{path}: seed: must be a non-negative integer, got {seed}")
    inputs = [s.name for s in mlp.input_symbols(layers[0])]
    targets = [s.name for s in mlp.target_symbols(layers[-1])]
    X, Y = _data(_table(spec, "data", path), inputs, targets, path, data_root)
    with located(path):
        return mlp.mlp_model(layers=layers, **chosen, init=init, seed=seed, X=X, Y=Y, **common)


def _expression(spec, path, common, data_root) -> Model:
    declared = {}  # name -> the key that declared it, for clash messages
    symbols = {}  # "params", "inputs", "targets" -> their symbols, in order
    for key in ("params", "inputs", "targets"):
        with located(f"{path}: {key}"):
            names = _names(spec.get(key, None if key == "params" else []), key, declared)
        symbols[key] = [sp.Symbol(name, real=True) for name in names]
    parser = ExpressionParser({s.name: s for group in symbols.values() for s in group})
    for name, text in _table(spec, "definitions", path).items():
        with located(f"{path}: definitions.{name}"):
            _check_new_name(name, declared)
            parser.define(name, parser.parse(text))
        declared[name] = "definitions"
    with located(f"{path}: output"):
        outputs = _outputs(spec.get("output"), parser, symbols["params"] + symbols["inputs"])
    with located(f"{path}: loss"):
        if "loss" not in spec:
            raise SymcompileError("missing; give the per-sample loss as an expression string")
        loss = parser.parse(spec["loss"])
    with located(f"{path}: init"):
        init = _expression_init(spec.get("init"), [s.name for s in symbols["params"]])
    names = {key: [s.name for s in group] for key, group in symbols.items()}
    X, Y = _data(_table(spec, "data", path), names["inputs"], names["targets"], path, data_root)
    with located(path):
        return make_model(
            common["name"], outputs, loss, symbols["params"], symbols["inputs"], symbols["targets"],
            init=init, X=X, Y=Y, training=common["training"], description=common["description"],
        )  # fmt: skip


def _outputs(output, parser, allowed):
    """The training function: one expression string, or a list of them; it may use only params and inputs."""
    if output is None or output == []:
        raise SymcompileError("missing; give the training function as an expression string, or a list of them")
    outputs = [parser.parse(o) for o in (output if isinstance(output, list) else [output])]
    for expr in outputs:
        unknown = sorted(s.name for s in expr.free_symbols if s not in allowed)
        if unknown:
            raise SymcompileError(f"uses {', '.join(unknown)}; the output may depend only on params and inputs")
    return outputs


def _names(value, key, declared):
    if value is None:
        raise SymcompileError(f"missing; list the {key} by name, such as {key} = [\"a\", \"b\"]")
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise SymcompileError(f"must be a list of names (strings), got {value!r}")
    for name in value:
        _check_new_name(name, declared)
        declared[name] = key
    return value


def _check_new_name(name, declared):
    """A name the expressions can refer to: an identifier, not a keyword, function or constant, not taken yet."""
    if not (name.isidentifier() and unicodedata.normalize("NFKC", name) == name) or keyword.iskeyword(name):
        raise SymcompileError(f"{name!r} is not a usable name (letters, digits and underscores, not a Python keyword)")
    if name in RESERVED:
        raise SymcompileError(f"{name!r} is the name of a built-in function or constant; choose another name")
    if name in declared:
        raise SymcompileError(f"{name!r} is already declared in {declared[name]}")


def _expression_init(init, param_names):
    """Initial values: a list in params order, a table {name = value}, or nothing (zeros)."""
    if init is None:
        return None
    if isinstance(init, dict):
        unknown = [k for k in init if k not in param_names]
        missing = [p for p in param_names if p not in init]
        if unknown or missing:
            problem = f"unknown parameter {unknown[0]!r}" if unknown else f"no value for {', '.join(missing)}"
            raise SymcompileError(f"{problem}; give one value per parameter ({', '.join(param_names)})")
        init = [init[p] for p in param_names]
    return _numbers(init, "init")


# --- tables, keys and values --------------------------------------------------------------------------------------


def _check_keys(table, allowed, where, path):
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (expected: {', '.join(allowed)})"
            raise SymcompileError(f"{path}: unknown key {key!r} {where}{hint}")


def _table(spec, key, path):
    value = spec.get(key, {})
    if not isinstance(value, dict):
        raise SymcompileError(f"{path}: {key}: must be a table ([{key}]), got {value!r}")
    if key in ("training", "data"):
        _check_keys(value, TRAINING_KEYS if key == "training" else DATA_KEYS, f"in [{key}]", path)
    return value


def _get(table, key, kind, described, path, default, prefix=""):
    value = table.get(key, default)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise SymcompileError(f"{path}: {prefix}{key}: must be {described}, got {value!r}")
    return value


def _number(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SymcompileError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _numbers(values, what):
    if not isinstance(values, list):
        raise SymcompileError(f"must be a list of numbers, got {values!r}")
    return [_number(v, f"{what}[{i}]") for i, v in enumerate(values)]


def _model_name(spec, path):
    if "name" in spec:
        return _get(spec, "name", str, "a string", path, default=None)
    name = path.stem
    if not is_module_name(name):
        raise SymcompileError(
            f"{path}: name: the file name gives module name {name!r}, which is not a Python identifier; "
            'set name = "..." in the spec'
        )
    return name


def _training(table, path):
    """The [training] table's settings, each checked where it is named (training.lr, ...)."""
    for key, value in table.items():
        with located(f"{path}: training.{key}"):
            training_settings({key: value})
    return training_settings(table)


# --- data ---------------------------------------------------------------------------------------------------------


def _data(table, inputs, targets, path, data_root):
    """(X, Y) from [data]: inline rows, or named columns of a CSV file; (None, None) when there is none."""
    if not table:
        return None, None
    if "csv" in table:
        inline = [k for k in ("X", "Y") if k in table]
        if inline:
            raise SymcompileError(f"{path}: data: give either csv or X and Y, not both (found csv and {inline[0]})")
        return _csv_data(table, inputs, targets, path, data_root)
    for key in ("X_columns", "Y_columns"):
        if key in table:
            raise SymcompileError(f"{path}: data.{key}: only meaningful with csv = \"file.csv\"")
    if "X" not in table or "Y" not in table:
        raise SymcompileError(f"{path}: data: give both X and Y (or csv = \"file.csv\")")
    with located(f"{path}: data.X"):
        X = _rows(table["X"], inputs, "input")
    with located(f"{path}: data.Y"):
        Y = _rows(table["Y"], targets, "target")
    if len(X) != len(Y):
        raise SymcompileError(f"{path}: data: X has {len(X)} samples but Y has {len(Y)}")
    return X, Y


def _rows(value, columns, what):
    """A list of samples, each a list with one number per column; a plain list of numbers when there is one column."""
    if not isinstance(value, list) or not value:
        raise SymcompileError(f"must be a non-empty list of samples, got {value!r}")
    one = f"one value per {what}: {', '.join(columns)}"
    rows = []
    for i, row in enumerate(value):
        if not isinstance(row, list):
            if len(columns) != 1:
                raise SymcompileError(f"sample {i} is {row!r}, expected a list of {len(columns)} numbers ({one})")
            row = [row]
        if len(row) != len(columns):
            raise SymcompileError(f"sample {i} has {_count(len(row), 'value')}, expected {len(columns)} ({one})")
        rows.append([_number(v, f"sample {i}") for v in row])
    return rows


def _count(n, noun):
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _csv_data(table, inputs, targets, path, data_root):
    csv_path = path.parent / _get(table, "csv", str, "a file name", path, default=None, prefix="data.")
    with located(f"{path}: data.csv"):
        check_inside(csv_path, data_root)
    columns = {}
    for key, default in (("X_columns", inputs), ("Y_columns", targets)):
        with located(f"{path}: data.{key}"):
            chosen = table.get(key, default)
            if not (isinstance(chosen, list) and all(isinstance(c, str) for c in chosen)):
                raise SymcompileError(f"must be a list of column names, got {chosen!r}")
            if len(chosen) != len(default):
                wanted = f"{len(default)} ({', '.join(default)})"
                raise SymcompileError(f"names {len(chosen)} columns, but the model has {wanted}")
            columns[key] = chosen
    with located(f"{path}: data.csv"):
        header, rows = read_csv(csv_path)
        for key, names in columns.items():
            for name in names:
                if name not in header:
                    columns = ", ".join(header)
                    raise SymcompileError(f"{csv_path} has no column {name!r} (for {key}; columns: {columns})")
        X = rows[:, [header.index(c) for c in columns["X_columns"]]]
        Y = rows[:, [header.index(c) for c in columns["Y_columns"]]]
    return X, Y


def check_inside(data_path, data_root):
    """Data files are read from inside `data_root` only: a spec from elsewhere must not read any file it names
    (`../secret.txt`, `/etc/passwd`, or a link out of the folder); --data-root widens it."""
    if not data_path.resolve().is_relative_to(data_root.resolve()):
        raise SymcompileError(
            f"{data_path} is outside {data_root} (data files are read from the spec's folder; "
            "give --data-root to read elsewhere)"
        )


def read_csv(csv_path):
    """(header, rows of floats as an (N, columns) array) from a CSV file with a header line; blank lines are skipped.

    A UTF-8 byte-order mark (as spreadsheets write) is dropped. Rows are parsed one at a time into a
    compact array, so memory stays a small multiple of the file.
    """
    try:
        text = read_bounded(csv_path, MAX_CSV_BYTES, str(csv_path)).decode("utf-8-sig")
        longest = max(map(len, io.StringIO(text)), default=0)
        if longest > MAX_LINE_BYTES:
            raise SymcompileError(f"{csv_path} has a line of {longest:,} characters; at most {MAX_LINE_BYTES:,}")
        lines = ((i, row) for i, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1) if any(cell.strip() for cell in row))
        header = [cell.strip() for cell in next(lines, (0, []))[1]]
        twice = next((name for i, name in enumerate(header) if name in header[:i]), None)
        if twice is not None:
            raise SymcompileError(f"{csv_path} has two columns named {_fragment(twice)}")
        values = array.array("d")
        for line, row in lines:
            if len(row) != len(header):
                raise SymcompileError(f"{csv_path} line {line} has {len(row)} fields, the header has {len(header)}")
            try:
                values.extend([float(cell) for cell in row])
            except ValueError:
                bad = next(c for c in row if not _is_float(c))
                raise SymcompileError(f"{csv_path} line {line}: {_fragment(bad)} is not a number") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SymcompileError(f"cannot read {csv_path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not header or not values:
        raise SymcompileError(f"{csv_path} needs a header line and at least one row of numbers")
    return header, np.frombuffer(values, dtype=np.float64).reshape(-1, len(header))


def _fragment(cell, limit=20):
    """A cell as an error quotes it: escaped, and cut short (a bad file may not be the file meant)."""
    return repr(cell[:limit]) + ("..." if len(cell) > limit else "")


def _is_float(text):
    try:
        float(text)
    except ValueError:
        return False
    return True
