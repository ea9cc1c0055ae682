"""The model stage (options.STAGES) from a file: a TOML spec -> `Model`.

Two kinds of spec (docs/spec.md shows a full example of each):

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
import os
import select
import stat
import tomllib
import unicodedata
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import sympy as sp

from symcompile import mlp
from symcompile.errors import SymcompileError, names_text
from symcompile.expression import RESERVED, ExpressionParser
from symcompile.model import Model, is_module_name, make_model
from symcompile.data import one_hot, split_rows, standardization
from symcompile.standardize import standardized
from symcompile.options import (
    CHOICES, RUN_KEYS, TRAINING_KEYS, RunSettings, choose, chosen_rule, run_setting, run_settings, training_settings,
)  # fmt: skip

COMMON_KEYS = ("kind", "name", "description", "init", "training", "data", "fit", "dtype")
KIND_KEYS = {
    "mlp": ("layers", "hidden_activation", "output_activation", "loss", "bias", "seed"),
    "expression": ("params", "inputs", "targets", "definitions", "output", "loss", "residual", "classifier"),
}
DATA_KEYS = ("X", "Y", "csv", "X_columns", "Y_columns", "labels", "standardize")
# The [fit] table: the options of `fit` (docs/curve-fitting.md); the command line's flags outrank them.
FIT_KEYS = ("bounds", "fixed", "sigma", "sigma_column", "loss", "f_scale", "absolute_sigma")


@contextmanager
def located(where):
    """Prefix any SymcompileError raised inside with `where` (the spec file, and the key when known)."""
    try:
        yield
    except SymcompileError as exc:
        raise SymcompileError(f"{where}: {exc}") from None


def _dtype(value, kind):
    """A spec's dtype, checked: float32 only for an MLP (the dense kernels compute in it)."""
    if not isinstance(value, str):
        raise SymcompileError(f"must be the name of a dtype (float64 or float32), not {value!r}")
    choose("dtype", value)
    if value != "float64" and kind != "mlp":
        raise SymcompileError(f"{value} is for dense networks (kind mlp); an expression model computes in float64")
    return value


def load_spec(path, data_root=None) -> Model:
    """Read, check and build the model a spec file describes; its CSV file must lie inside `data_root`
    (default: the spec's folder)."""
    return load_spec_settings(path, data_root)[0]


def load_spec_settings(path, data_root=None, split=None) -> tuple[Model, RunSettings]:
    """The model a spec file describes (as `load_spec`), and the run settings of its [training] table
    (optimizer, batch_size, ...). `split`: the run's validation_split and seed where the command line gives
    them; they outrank the spec's in the model too, whose standardization takes the training rows' scaling."""
    path = Path(path)
    spec = read_toml(path)
    run = _run_settings(_table(spec, "training", path), path)
    return spec_model(spec, path, data_root, run_settings(split, base=run) if split else run), run


def spec_model(spec: dict, path: Path, data_root=None, run: RunSettings | None = None) -> Model:
    """The model of a spec already read from `path` (which locates errors and CSV files); `run` (default: the
    spec's) gives the validation split that standardization leaves out of its means and scales."""
    with located(f"{path}: kind"):
        kind = choose("kind", spec.get("kind"))
    _check_keys(spec, COMMON_KEYS + KIND_KEYS[kind], "at the top level", path)
    training = _table(spec, "training", path)
    common = {
        "name": _model_name(spec, path),
        "description": _get(spec, "description", str, "a string", path, default=""),
        "training": _training({k: v for k, v in training.items() if k in TRAINING_KEYS}, path),
    }
    data_root = Path(data_root) if data_root is not None else path.parent
    with located(f"{path}: dtype"):
        dtype = _dtype(spec.get("dtype", CHOICES["dtype"].default), kind)
    if kind == "mlp":
        model = _mlp(spec, path, common, data_root)
    else:
        model = _expression(spec, path, common, data_root)
    model = replace(model, dtype=dtype) if dtype != "float64" else model
    fit_table(spec, path, [p.name for p in model.params])  # checked by every command, as [training] is
    return _standardized(model, _table(spec, "data", path), run or _run_settings(training, path), path)


# Input sizes (docs/limits.md): a spec is a page of settings; data belongs in a CSV file, and a CSV file's
# rows become Python floats (about 30 times their text in memory) before they are an array.
MAX_SPEC_BYTES = 1 << 20
MAX_SPEC_NESTING = 16  # arrays and tables inside one another; the deepest a spec needs is 3
MAX_CSV_BYTES = 64 << 20
MAX_LINE_BYTES = 1 << 20


PIPE_WAIT_SECONDS = 10  # a pipe or FIFO given as a file (`<(cat spec.toml)`) must start to answer within this


def read_bounded(path, limit, what):
    """The file's bytes, refused when there are more than `limit` (a device such as /dev/zero never ends)."""
    with open_without_hanging(path, what) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise SymcompileError(f"{what} is larger than {limit >> 20} MiB, the most symcompile reads (docs/limits.md)")
    return data


def open_without_hanging(path, what):
    """`path` opened for reading in binary. A FIFO that no process writes to would block open() and read()
    forever: it is opened without blocking and must have data (or its end) within PIPE_WAIT_SECONDS, so
    `<(cat spec.toml)` is read and a forgotten FIFO is a one-line error."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode) and not select.select([fd], [], [], PIPE_WAIT_SECONDS)[0]:
            raise SymcompileError(f"{what} is a FIFO or pipe that nothing wrote to in {PIPE_WAIT_SECONDS} s")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


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
    loss, residual = _loss_or_residuals(spec, parser, path)
    with located(f"{path}: init"):
        init = _expression_init(spec.get("init"), [s.name for s in symbols["params"]])
    names = {key: [s.name for s in group] for key, group in symbols.items()}
    X, Y = _data(_table(spec, "data", path), names["inputs"], names["targets"], path, data_root)
    with located(path):
        return make_model(
            common["name"], outputs, loss, symbols["params"], symbols["inputs"], symbols["targets"],
            init=init, X=X, Y=Y, training=common["training"], description=common["description"], residual=residual,
            classifier=_get(spec, "classifier", str, "a string: binary or softmax", path, default=""),
        )  # fmt: skip


def _loss_or_residuals(spec, parser, path):
    """(loss, None) from `loss = "..."`, or (None, residuals) from `residual = "..."` or a list of them."""
    if "residual" in spec:
        if "loss" in spec:
            raise SymcompileError(
                f"{path}: loss: give either loss or residual (whose sum of squares is the loss), not both"
            )
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
        raise SymcompileError(f'missing; list the {key} by name, such as {key} = ["a", "b"]')
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
            problem = f"unknown parameter {unknown[0]!r}" if unknown else f"no value for {names_text(missing)}"
            raise SymcompileError(f"{problem}; give one value per parameter ({names_text(param_names)})")
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
    if key in ("training", "data", "fit"):
        allowed_keys = {"training": TRAINING_KEYS + RUN_KEYS, "data": DATA_KEYS, "fit": FIT_KEYS}[key]
        _check_keys(value, allowed_keys, f"in [{key}]", path)
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


def _run_settings(table, path):
    """The [training] table's run settings (optimizer, batch_size, ...), each checked where it is named."""
    run = {key: value for key, value in table.items() if key in RUN_KEYS}
    for key, value in run.items():
        with located(f"{path}: training.{key}"):
            run_setting(key, value)
    if "update" in table:  # optimizer's older name: the run trains with the rule it names, and optimizer must agree
        with located(f"{path}: training.update"):
            run["optimizer"] = chosen_rule(run.get("optimizer"), table["update"])
    with located(f"{path}: [training]"):
        return run_settings(run)


def _standardized(model, data, run, path):
    """`model` reading its inputs standardized when [data] says `standardize = true`, with the means and scales
    of the training rows (the validation split's rows left out)."""
    standardize = data.get("standardize", False)
    if not isinstance(standardize, bool):
        raise SymcompileError(f"{path}: data.standardize: must be true or false, got {standardize!r}")
    if not standardize:
        return model
    rows, _ = split_rows(model.X.shape[0], run.validation_split, run.seed)
    with located(f"{path}: data.standardize"):
        return standardized(model, standardization(model.X[rows]))


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
    for key in ("X_columns", "Y_columns", "labels"):
        if key in table:
            raise SymcompileError(f'{path}: data.{key}: only meaningful with csv = "file.csv"')
    if "X" not in table or "Y" not in table:
        raise SymcompileError(f'{path}: data: give both X and Y (or csv = "file.csv")')
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
    one = f"one value per {what}: {names_text(columns)}"
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
    """(X, Y) from named CSV columns; Y one-hot from a column of class labels when [data] names `labels`."""
    csv_path = path.parent / _get(table, "csv", str, "a file name", path, default=None, prefix="data.")
    with located(f"{path}: data.csv"):
        check_inside(csv_path, data_root)
    if "labels" in table and "Y_columns" in table:
        raise SymcompileError(f"{path}: data: give either labels (one column of classes) or Y_columns, not both")
    wanted = {"X_columns": _column_names(table, "X_columns", inputs, path)}
    if "labels" in table:
        label = _get(table, "labels", str, "the name of a CSV column of class labels", path, None, prefix="data.")
        wanted["labels"] = [label]
    else:
        wanted["Y_columns"] = _column_names(table, "Y_columns", targets, path)
    with located(f"{path}: data.csv"):
        header, rows = read_csv(csv_path, columns=[name for names in wanted.values() for name in names])
        columns = {key: _columns(header, rows, names, key, csv_path) for key, names in wanted.items()}
    if "labels" in columns:
        with located(f"{path}: data.labels"):
            return columns["X_columns"], one_hot(columns["labels"], len(targets), f"column {label!r}")
    return columns["X_columns"], columns["Y_columns"]


def _column_names(table, key, default, path):
    """The CSV columns `key` names: a list of strings, one per model input (or target); default the model's names."""
    with located(f"{path}: data.{key}"):
        chosen = table.get(key, default)
        if not (isinstance(chosen, list) and all(isinstance(c, str) for c in chosen)):
            raise SymcompileError(f"must be a list of column names, got {chosen!r}")
        if len(chosen) != len(default):
            raise SymcompileError(
                f"names {len(chosen)} columns, but the model has {len(default)} ({names_text(default)})"
            )
    return chosen


def _columns(header, rows, names, key, csv_path):
    """The rows' values in the columns `names`, in that order."""
    for name in names:
        if name not in header:
            raise SymcompileError(f"{csv_path} has no column {name!r} (for {key}; columns: {names_text(header)})")
    return rows[:, [header.index(name) for name in names]]


def check_inside(data_path, data_root):
    """Data files are read from inside `data_root` only: a spec from elsewhere must not read any file it names
    (`../secret.txt`, `/etc/passwd`, or a link out of the folder); --data-root widens it."""
    if not data_path.resolve().is_relative_to(data_root.resolve()):
        raise SymcompileError(
            f"{data_path} is outside {data_root} (data files are read from the spec's folder; "
            "give --data-root to read elsewhere)"
        )


def read_csv(csv_path, columns=None):
    """(header, rows of floats as an (N, columns) array) from a CSV file with a header line; blank lines are skipped.

    A UTF-8 byte-order mark (as spreadsheets write) is dropped. Rows are parsed one at a time into a
    compact array, so memory stays a small multiple of the file. `columns`: the names whose cells must be
    numbers; the others may hold anything and are not read (NaN in `rows`). Default: every column.
    """
    try:
        text = read_bounded(csv_path, MAX_CSV_BYTES, str(csv_path)).decode("utf-8-sig")
        longest = max(map(len, io.StringIO(text)), default=0)
        if longest > MAX_LINE_BYTES:
            raise SymcompileError(f"{csv_path} has a line of {longest:,} characters; at most {MAX_LINE_BYTES:,}")
        lines = (
            (i, row)
            for i, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1)
            if any(cell.strip() for cell in row)
        )
        header = [cell.strip() for cell in next(lines, (0, []))[1]]
        twice = next((name for i, name in enumerate(header) if name in header[:i]), None)
        if twice is not None:
            raise SymcompileError(f"{csv_path} has two columns named {_fragment(twice)}")
        values = array.array("d")
        read = [columns is None or name in columns for name in header]
        parse = (lambda row: [float(cell) for cell in row]) if all(read) else (  # noqa: E731
            lambda row: [float(cell) if wanted else math.nan for cell, wanted in zip(row, read)])  # fmt: skip
        for line, row in lines:
            if len(row) != len(header):
                raise SymcompileError(f"{csv_path} line {line} has {len(row)} fields, the header has {len(header)}")
            try:
                values.extend(parse(row))
            except ValueError:
                bad = next(c for c, wanted in zip(row, read) if wanted and not _is_float(c))
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


def spec_input_columns(spec, spec_path, model, csv_path):
    """The inputs for `model` in the CSV file `csv_path`: the columns its spec's [data] X_columns names, else the
    columns named like the model's inputs; the file's other columns are not read. `spec`: the spec as read
    from `spec_path` (read once: it may be a pipe), None for the built-in seed."""
    table = {} if spec is None else _table(spec, "data", Path(spec_path))
    names = _column_names(table, "X_columns", [s.name for s in model.inputs], spec_path)
    header, rows = read_csv(Path(csv_path), columns=names)
    return np.array(_columns(header, rows, names, "the model's inputs", csv_path), dtype=np.float64)


# --- the [fit] table ----------------------------------------------------------------------------------------------


def fit_table(spec, path, param_names) -> dict:
    """The [fit] table's settings, checked where each is named (fit.bounds.a, ...): bounds {name: (lower, upper)},
    fixed {name: value, or None to hold the spec's init}, sigma (a list of numbers), sigma_column (a CSV column
    of [data]'s file), loss, f_scale, absolute_sigma; only the keys given. `spec`: None for the built-in seed."""
    path = Path(path) if path is not None else Path("<seed>")
    table = {} if spec is None else _table(spec, "fit", path)
    found = {}
    if "bounds" in table:
        found["bounds"] = _fit_bounds(table["bounds"], path, param_names)
    if "fixed" in table:
        found["fixed"] = _fit_fixed(table["fixed"], path, param_names)
    if "sigma" in table and "sigma_column" in table:
        raise SymcompileError(f"{path}: fit: give either sigma (a list) or sigma_column (a CSV column), not both")
    if "sigma" in table:
        with located(f"{path}: fit.sigma"):
            found["sigma"] = _numbers(table["sigma"], "sigma")
    if "sigma_column" in table:
        found["sigma_column"] = _get(table, "sigma_column", str, "a CSV column name", path, None, prefix="fit.")
    if "loss" in table:
        found["loss"] = _get(table, "loss", str, "the name of a loss", path, None, prefix="fit.")
    if "f_scale" in table:
        with located(f"{path}: fit.f_scale"):
            found["f_scale"] = _number(table["f_scale"], "f_scale")
    if "absolute_sigma" in table:
        found["absolute_sigma"] = table["absolute_sigma"]
        if not isinstance(found["absolute_sigma"], bool):
            raise SymcompileError(f"{path}: fit.absolute_sigma: must be true or false, got {found['absolute_sigma']!r}")
    return found


def _fit_names(table, path, key, param_names):
    if not isinstance(table, dict):
        raise SymcompileError(f"{path}: fit.{key}: must be a table of parameter names ({key} = {{ a = ... }}), "
                              f"got {table!r}")  # fmt: skip
    for name in table:
        if name not in param_names:
            raise SymcompileError(f"{path}: fit.{key}.{name}: not a parameter (parameters: {names_text(param_names)})")


def _fit_bounds(table, path, param_names):
    """{name: (lower, upper)} from `bounds = { a = [0, 10], b = [-inf, 1] }` (TOML's inf for no bound)."""
    _fit_names(table, path, "bounds", param_names)
    bounds = {}
    for name, pair in table.items():
        where = f"{path}: fit.bounds.{name}"
        if not (isinstance(pair, list) and len(pair) == 2):
            raise SymcompileError(f"{where}: must be [lower, upper] (inf or -inf for no bound), got {pair!r}")
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) for v in pair):
            raise SymcompileError(f"{where}: must be two numbers [lower, upper] (inf or -inf for no bound), "
                                  f"got {pair!r}")  # fmt: skip
        bounds[name] = (float(pair[0]), float(pair[1]))
    return bounds


def _fit_fixed(value, path, param_names):
    """{name: value or None} from `fixed = { c = 0.5 }`, or `fixed = ["c"]` (held at the spec's init)."""
    if isinstance(value, list):
        if not all(isinstance(name, str) for name in value):
            raise SymcompileError(f"{path}: fit.fixed: must be a list of parameter names or a table, got {value!r}")
        value = {name: None for name in value}
    _fit_names(value, path, "fixed", param_names)
    fixed = {}
    for name, number in value.items():
        with located(f"{path}: fit.fixed.{name}"):
            fixed[name] = None if number is None else _number(number, "the value")
    return fixed


def csv_column(spec, path, data_root, column) -> np.ndarray:
    """The values of `column` in the CSV file of the spec's [data] (as `sigma_column` names one), in its rows'
    order (the order of the model's samples)."""
    path = Path(path)
    data = {} if spec is None else _table(spec, "data", path)
    if "csv" not in data:
        raise SymcompileError(f"{path}: a sigma column is read from [data]'s csv file, and this spec has none "
                              "(give fit.sigma = [...] for inline data)")  # fmt: skip
    csv_path = path.parent / _get(data, "csv", str, "a file name", path, default=None, prefix="data.")
    root = Path(data_root) if data_root is not None else path.parent
    with located(f"{path}: data.csv"):
        check_inside(csv_path, root)
        header, rows = read_csv(csv_path, columns=[column])
        return np.array(_columns(header, rows, [column], "the sigma column", csv_path)[:, 0], dtype=np.float64)
