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

import csv
import difflib
import keyword
import math
import tomllib
import unicodedata
from contextlib import contextmanager
from pathlib import Path

import sympy as sp

from symcompile import mlp
from symcompile.errors import SymcompileError
from symcompile.expression import RESERVED, ExpressionParser
from symcompile.model import Model, is_module_name, make_model
from symcompile.options import CHOICES, TRAINING_KEYS, choose, training_settings

COMMON_KEYS = ("kind", "name", "description", "init", "training", "data")
KIND_KEYS = {
    "mlp": ("layers", "hidden_activation", "output_activation", "loss", "bias", "seed"),
    "expression": ("params", "inputs", "targets", "definitions", "output", "loss", "residual"),
}
DATA_KEYS = ("X", "Y", "csv", "X_columns", "Y_columns")


@contextmanager
def located(where):
    """Prefix any SymcompileError raised inside with `where` (the spec file, and the key when known)."""
    try:
        yield
    except SymcompileError as exc:
        raise SymcompileError(f"{where}: {exc}") from None


def load_spec(path) -> Model:
    """Read, check and build the model a spec file describes."""
    path = Path(path)
    return spec_model(read_toml(path), path)


def spec_model(spec: dict, path: Path) -> Model:
    """The model of a spec already read from `path` (which locates errors and CSV files)."""
    with located(f"{path}: kind"):
        kind = choose("kind", spec.get("kind"))
    _check_keys(spec, COMMON_KEYS + KIND_KEYS[kind], "at the top level", path)
    common = {
        "name": _model_name(spec, path),
        "description": _get(spec, "description", str, "a string", path, default=""),
        "training": _training(_table(spec, "training", path), path),
    }
    if kind == "mlp":
        return _mlp(spec, path, common)
    return _expression(spec, path, common)


def read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise SymcompileError(f"{path}: cannot read spec file: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SymcompileError(f"{path}: not valid TOML: {exc}") from None


# --- the two kinds ------------------------------------------------------------------------------------------------


def _mlp(spec, path, common) -> Model:
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
    X, Y = _data(_table(spec, "data", path), inputs, targets, path)
    with located(path):
        return mlp.mlp_model(layers=layers, **chosen, init=init, seed=seed, X=X, Y=Y, **common)


def _expression(spec, path, common) -> Model:
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
    loss, residual = _loss_or_residuals(spec, parser, path)
    with located(f"{path}: init"):
        init = _expression_init(spec.get("init"), [s.name for s in symbols["params"]])
    names = {key: [s.name for s in group] for key, group in symbols.items()}
    X, Y = _data(_table(spec, "data", path), names["inputs"], names["targets"], path)
    with located(path):
        return make_model(
            common["name"], outputs, loss, symbols["params"], symbols["inputs"], symbols["targets"],
            init=init, X=X, Y=Y, training=common["training"], description=common["description"], residual=residual,
        )  # fmt: skip


def _loss_or_residuals(spec, parser, path):
    """(loss, None) from `loss = "..."`, or (None, residuals) from `residual = "..."` or a list of them."""
    if "residual" in spec:
        if "loss" in spec:
            raise SymcompileError(f"{path}: loss: give either loss or residual (whose sum of squares is the loss), not both")
        texts = spec["residual"]
        with located(f"{path}: residual"):
            if not isinstance(texts, list):
                texts = [texts]
            if not texts:
                raise SymcompileError("empty list; give one expression string per residual of a sample")
            return None, [parser.parse(text) for text in texts]
    with located(f"{path}: loss"):
        if "loss" not in spec:
            raise SymcompileError("missing; give the per-sample loss (or residual = ...) as an expression string")
        return parser.parse(spec["loss"]), None


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


def _data(table, inputs, targets, path):
    """(X, Y) from [data]: inline rows, or named columns of a CSV file; (None, None) when there is none."""
    if not table:
        return None, None
    if "csv" in table:
        inline = [k for k in ("X", "Y") if k in table]
        if inline:
            raise SymcompileError(f"{path}: data: give either csv or X and Y, not both (found csv and {inline[0]})")
        return _csv_data(table, inputs, targets, path)
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


def _csv_data(table, inputs, targets, path):
    csv_path = path.parent / _get(table, "csv", str, "a file name", path, default=None, prefix="data.")
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
        X = [[row[header.index(c)] for c in columns["X_columns"]] for row in rows]
        Y = [[row[header.index(c)] for c in columns["Y_columns"]] for row in rows]
    return X, Y


def read_csv(csv_path):
    """(header, rows of floats) from a CSV file with a header line; blank lines are skipped."""
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            lines = [(i, row) for i, row in enumerate(csv.reader(f), start=1) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SymcompileError(f"cannot read {csv_path}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(lines) < 2:
        raise SymcompileError(f"{csv_path} needs a header line and at least one row of numbers")
    header = [cell.strip() for cell in lines[0][1]]
    rows = []
    for line, row in lines[1:]:
        if len(row) != len(header):
            raise SymcompileError(f"{csv_path} line {line} has {len(row)} fields, the header has {len(header)}")
        try:
            rows.append([float(cell) for cell in row])
        except ValueError:
            bad = next(c for c in row if not _is_float(c))
            raise SymcompileError(f"{csv_path} line {line}: {bad!r} is not a number") from None
    return header, rows


def _is_float(text):
    try:
        float(text)
    except ValueError:
        return False
    return True
