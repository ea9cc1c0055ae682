"""Spec files: what they build, and how bad ones fail (one line naming the file, key and problem; nothing written)."""

import copy
import functools
import re
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from symcompile.cli import main
from symcompile.provenance import why_rebuild
from symcompile.errors import SymcompileError
from symcompile.mlp import mlp_model
from symcompile.model import make_model
from symcompile.pipeline import build, generate
from symcompile.seed import seed_model
from symcompile.spec import load_spec, spec_model

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _body(source):
    """The module below its header: the header names the model and the command that rebuilds it."""
    return source.split("(of the source below this line)\n", 1)[1]


def test_seed_spec_builds_the_same_module_as_the_built_in_seed():
    from_spec = generate(load_spec(EXAMPLES / "seed.toml")).text
    built_in = generate(seed_model()).text
    assert _body(from_spec) == _body(built_in)
    digest = [line for line in from_spec.splitlines() if line.startswith("# Digest:")]
    assert digest == [line for line in built_in.splitlines() if line.startswith("# Digest:")]


def test_expression_spec_reads_names_definitions_init_and_csv_columns():
    model = load_spec(EXAMPLES / "decay.toml")
    a, b, c, x, y = sp.symbols("a b c x y", real=True)
    assert model.name == "decay" and model.params == (a, b, c) and model.inputs == (x,) and model.targets == (y,)
    assert model.outputs == (a * sp.exp(-b * x) + c,)
    assert model.loss == (a * sp.exp(-b * x) + c - y) ** 2
    np.testing.assert_array_equal(model.init, [1.0, 0.5, 0.0])
    table = np.genfromtxt(EXAMPLES / "data" / "decay.csv", delimiter=",", names=True)
    np.testing.assert_array_equal(model.X[:, 0], table["x"])
    np.testing.assert_array_equal(model.Y[:, 0], table["y"])
    assert (model.training.lr, model.training.max_iter, model.training.update) == (0.2, 3000, "simultaneous")


def test_mlp_spec_picks_csv_columns_by_name_and_names_the_model_after_the_file():
    model = load_spec(EXAMPLES / "logistic.toml")
    assert model.name == "logistic"
    assert [p.name for p in model.params] == ["w1_3", "w2_3", "b3"]
    table = np.genfromtxt(EXAMPLES / "data" / "students.csv", delimiter=",", names=True)
    np.testing.assert_array_equal(model.X, np.column_stack([table["hours_studied"], table["hours_slept"]]))
    np.testing.assert_array_equal(model.Y[:, 0], table["passed"])
    np.testing.assert_array_equal(model.init, np.zeros(3))


def test_seeded_init_is_reproducible_and_explicit_init_is_kept(tmp_path):
    first, second = load_spec(EXAMPLES / "xor.toml"), load_spec(EXAMPLES / "xor.toml")
    np.testing.assert_array_equal(first.init, second.init)
    is_bias = np.array([p.name.startswith("b") for p in first.params])
    assert np.all(first.init[is_bias] == 0) and np.all(first.init[~is_bias] != 0)  # Xavier weights, zero biases
    spec = tmp_path / "explicit.toml"
    spec.write_text('kind = "mlp"\nlayers = [1, 1]\ninit = [0.5, -2]\n[data]\nX = [1, 2]\nY = [0, 1]\n')
    model = load_spec(spec)
    np.testing.assert_array_equal(model.init, [0.5, -2.0])
    np.testing.assert_array_equal(model.X, [[1.0], [2.0]])


# Each bad spec: its text, and words its one-line error must contain besides the file name.
BASE = 'kind = "expression"\nparams = ["a"]\ninputs = ["x"]\ntargets = ["y"]\n'
FIT = BASE + 'output = "a*x"\nloss = "(a*x - y)**2"\n'
MLP = 'kind = "mlp"\nlayers = [2, 1]\n'
BAD_SPECS = {
    "unknown key": (MLP + 'hiden_activation = "tanh"\n', ["unknown key 'hiden_activation'", "top level", "hidden_activation"]),
    "unknown key in a table": (MLP + "[training]\nlearning_rate = 0.1\n", ["unknown key 'learning_rate'", "[training]"]),
    "unknown activation": (MLP + 'hidden_activation = "swish"\n', ["hidden_activation:", "'swish'", "tanh"]),
    "unknown loss": (MLP + 'loss = "hinge"\n', ["loss:", "'hinge'"]),
    "unknown kind": ('kind = "network"\n', ["kind:", "'network'", "mlp, expression"]),
    "ragged X": (MLP + "[data]\nX = [[0, 0], [1]]\nY = [0, 1]\n", ["data.X:", "sample 1 has 1 value, expected 2"]),
    "X too wide": (MLP + "[data]\nX = [[0, 0, 1]]\nY = [0]\n", ["data.X:", "sample 0 has 3 values, expected 2"]),
    "Y of another length": (MLP + "[data]\nX = [[0, 0], [1, 1]]\nY = [0]\n", ["data:", "X has 2 samples but Y has 1"]),
    "Y of the wrong width": ('kind = "mlp"\nlayers = [1, 2]\noutput_activation = "softmax"\nloss = "softmax_cross_entropy"\n'
                             "[data]\nX = [1, 2]\nY = [[0, 1], [1, 0, 0]]\n", ["data.Y:", "sample 1 has 3 values, expected 2"]),
    "undeclared name in loss": (BASE + 'output = "a*x"\nloss = "(a*x - z)**2"\n', ["loss:", "unknown name 'z'"]),
    "output using a target": (BASE + 'output = "a*x + y"\nloss = "(a*x - y)**2"\n', ["output:", "uses y"]),
    "__import__": (BASE + 'output = "a*x"\nloss = "__import__(\'os\').system(\'ls\')"\n', ["loss:", "attribute access"]),
    "bare __import__": (BASE + 'output = "__import__(\'os\')"\nloss = "a"\n', ["output:", "unknown function '__import__'"]),
    "attribute access": (BASE + 'output = "a.real*x"\nloss = "(a*x - y)**2"\n', ["output:", "attribute access", "a.real"]),
    "bad definition": (FIT + '[definitions]\nz = "x[0]"\n', ["definitions.z:", "subscripts"]),
    "definition shadowing a function": (FIT + '[definitions]\nexp = "a"\n', ["definitions.exp:", "built-in function"]),
    "declared twice": (BASE.replace('targets = ["y"]', 'targets = ["a"]') + 'output = "a"\nloss = "a"\n', ["targets:", "'a' is already declared in params"]),
    "keyword name": (BASE.replace('["a"]', '["lambda"]') + 'output = "x"\nloss = "x"\n', ["params:", "'lambda'", "keyword"]),
    "missing loss": (BASE + 'output = "a*x"\n', ["loss:", "missing"]),
    "init for an unknown param": (FIT + "init = { b = 1.0 }\n", ["init:", "unknown parameter 'b'"]),
    "init of the wrong length": (MLP + "init = [1, 2]\n", ["init has shape (2,), expected (3,)"]),
    "lr not a number": (MLP + '[training]\nlr = "fast"\n', ["training.lr:", "must be a positive number"]),
    "unknown update rule": (MLP + '[training]\nupdate = "lbfgs"\n', ["training.update:", "'lbfgs'"]),
    "csv without the named column": (MLP + '[data]\ncsv = "points.csv"\nX_columns = ["u", "v"]\nY_columns = ["label"]\n',
                                     ["data.csv:", "no column 'v'", "columns: u, w, label"]),
    "csv without the default column": (MLP + '[data]\ncsv = "points.csv"\n', ["data.csv:", "no column 'x1'"]),
    "csv with text in a number column": (MLP + '[data]\ncsv = "words.csv"\n', ["data.csv:", "line 3", "'two' is not a number"]),
    "missing csv": (MLP + '[data]\ncsv = "nowhere.csv"\n', ["data.csv:", "cannot read", "nowhere.csv"]),
    "both csv and inline data": (MLP + '[data]\ncsv = "points.csv"\nX = [[1, 2]]\n', ["data:", "either csv or X and Y"]),
    "not TOML": (MLP + "layers = [2, 1\n", ["not valid TOML"]),
    "softmax loss without softmax": (MLP + 'loss = "softmax_cross_entropy"\n', ["softmax_cross_entropy needs"]),
    # Models that cannot compute (issue 9): constants beyond floats, and cross-entropy outside its domain.
    "integer constant beyond floats": (BASE + 'output = "a*x*2**1000"\nloss = "(a*x - y)**2"\n', ["output has the number", "too large"]),
    "integer exponent beyond int64": (BASE + 'output = "a*x**(2**100)"\nloss = "(a*x - y)**2"\n', ["output has the number", "too large"]),
    "constant that overflows": (BASE + 'output = "a*x + exp(1000)"\nloss = "(a*x - y)**2"\n', ["output has the constant exp(1000)", "not a finite float"]),
    "constant that is not real": (FIT.replace('loss = "', 'loss = "acos(2) + ') , ["loss has the constant acos(2)", "not a real number"]),
    "cross-entropy of an identity output": (MLP + 'output_activation = "identity"\n', ["binary_cross_entropy needs outputs in (0, 1)", "'identity'"]),
    "cross-entropy of a relu output": (MLP + 'output_activation = "relu"\n', ["binary_cross_entropy needs outputs in (0, 1)", "'relu'"]),
    "cross-entropy of a softplus output": (MLP + 'output_activation = "softplus"\n', ["binary_cross_entropy needs outputs in (0, 1)", "'softplus'"]),
    "cross-entropy target of 2": (MLP + "[data]\nX = [[0, 0], [1, 1]]\nY = [0, 2]\n", ["binary_cross_entropy needs targets in [0, 1]", "Y has 2 in sample 1"]),
    # Names and paths (issue 9).
    "name of an installed package": (MLP + 'name = "mpmath"\n', ["model name 'mpmath'", "would shadow"]),
    "name of numba's compiler": (MLP + 'name = "llvmlite"\n', ["model name 'llvmlite'", "would shadow"]),
    "dunder name": (MLP + 'name = "__main__"\n', ["model name '__main__'", "reserved"]),
    "name too long": (MLP + f'name = "{"m" * 300}"\n', ["300 characters; at most 100"]),
    "csv outside the spec's folder": (MLP + '[data]\ncsv = "../secret.txt"\n', ["data.csv:", "secret.txt is outside", "--data-root"]),
    "csv at an absolute path": (MLP + '[data]\ncsv = "/etc/passwd"\n', ["data.csv:", "/etc/passwd is outside"]),
    "csv with a column named twice": (MLP + '[data]\ncsv = "twice.csv"\n', ["data.csv:", "two columns named 'x1'"]),
    "csv with a long bad cell": (MLP + '[data]\ncsv = "secret.csv"\n', ["data.csv:", "line 2: 'password: hunter2 an'... is not a number"]),
    "file name not a module name": (None, ["name:", "'my-model'", 'set name = "..."']),
    "name shadowing a module": (MLP + 'name = "random"\n', ["model name 'random'", "would shadow"]),
}  # fmt: skip


def _write_bad_spec(folder, case):
    text, _ = BAD_SPECS[case]
    (folder / "points.csv").write_text("u,w,label\n0,1,0\n1,0,1\n")
    (folder / "words.csv").write_text("x1,x2,y\n0,1,0\n1,two,1\n")
    (folder / "twice.csv").write_text("x1,x1,y\n0,1,0\n")
    (folder / "secret.csv").write_text("x1,x2,y\n0,password: hunter2 and the rest of the file,0\n")
    if text is None:
        spec = folder / "my-model.toml"
        spec.write_text(MLP)
    else:
        spec = folder / "bad.toml"
        spec.write_text(text)
    return spec


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("command", ["build", "train"])
@pytest.mark.parametrize("case", BAD_SPECS)
def test_bad_spec_is_one_clear_line_and_writes_nothing(tmp_path, capsys, case, command):
    spec = _write_bad_spec(tmp_path, case)
    out_dir = tmp_path / "generated"
    out_dir.mkdir()
    (out_dir / "bad.py").write_text("# a module built before\n")
    before = _snapshot(out_dir)
    assert main([command, str(spec), "--out-dir", str(out_dir)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"symcompile: error: {spec}: "), captured.err
    for words in BAD_SPECS[case][1]:
        assert words in lines[0]
    assert _snapshot(out_dir) == before


def test_bad_spec_leaves_the_default_generated_folder_alone(tmp_path, monkeypatch, capsys):
    spec = _write_bad_spec(tmp_path, "unknown activation")
    monkeypatch.chdir(tmp_path)
    assert main(["build", spec.name]) == 2
    assert not (tmp_path / "generated").exists()


def test_missing_spec_file(tmp_path, capsys):
    assert main(["build", str(tmp_path / "absent.toml"), "--out-dir", str(tmp_path)]) == 2
    assert "absent.toml: cannot read spec file" in capsys.readouterr().err


def test_api_errors_name_the_problem():
    x, a = sp.symbols("x a")
    with pytest.raises(SymcompileError, match="unknown hidden activation 'swish'"):
        mlp_model("m", [1, 1], hidden_activation="swish")
    with pytest.raises(SymcompileError, match="Y has shape"):
        make_model("m", a * x, a * x, [a], [x], [sp.Symbol("y")], X=[[1.0]], Y=[[1.0, 2.0]])


@pytest.mark.slow
def test_train_rebuilds_a_module_built_from_another_version_of_the_spec(tmp_path, capsys):
    shutil.copytree(EXAMPLES / "data", tmp_path / "data")
    spec = tmp_path / "decay.toml"
    spec.write_text((EXAMPLES / "decay.toml").read_text())
    out_dir = tmp_path / "generated"
    model = load_spec(spec)
    path = build(model, out_dir).path
    assert why_rebuild(path, model) is None
    assert why_rebuild(out_dir / "elsewhere.py", model) == "not built yet"
    long_formula = out_dir / "long.py"  # a large model's formula comment pushes the digests far down
    long_formula.write_text(path.read_text().replace("Training function", "Training function\n" + "    ...\n" * 500))
    assert why_rebuild(long_formula, model) is None
    spec.write_text(spec.read_text().replace("lr = 0.2", "lr = 0.25"))
    assert why_rebuild(path, load_spec(spec)) == "was built from a different model"
    spec.write_text((EXAMPLES / "decay.toml").read_text())
    data = tmp_path / "data" / "decay.csv"
    data.write_text(data.read_text().replace("0,3.06123", "0,3.0"))
    assert why_rebuild(path, load_spec(spec)) == "was built from a different model"
    assert main(["train", str(spec), "--out-dir", str(out_dir), "--max-iter", "1"]) == 0
    assert f"{path} was built from a different model; building it" in capsys.readouterr().out
    assert why_rebuild(path, load_spec(spec)) is None


def test_docs_show_the_example_specs_as_they_are():
    page = (EXAMPLES.parent / "docs" / "spec.md").read_text(encoding="utf-8")
    shown = re.findall(r"```toml\n(.*?)```", page, re.S)
    assert len(shown) >= 2
    for name, text in zip(["xor", "decay"], shown):
        in_file = (EXAMPLES / f"{name}.toml").read_text(encoding="utf-8")
        assert in_file.split("\n", 1)[1] == text  # the file's first line is a comment the page leaves out


# --- fuzzing: examples with parts replaced, removed or added at random --------------------------------------------

_EXAMPLE_SPECS = {path.stem: tomllib.loads(path.read_text()) for path in sorted(EXAMPLES.glob("*.toml"))}
_SCALARS = st.one_of(
    st.integers(-3, 5), st.floats(), st.booleans(), st.text(max_size=12),
    st.sampled_from(["a*x", "exp(", "x1", "y", "w0", "f5", "1e308*10", "tanh", "softmax", "data/decay.csv", "nope.csv"]),
)  # fmt: skip
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


def _key_paths(table, prefix=()):
    for key, value in table.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from _key_paths(value, prefix + (key,))


@st.composite
def mutated_examples(draw):
    name = draw(st.sampled_from(sorted(_EXAMPLE_SPECS)))
    spec = copy.deepcopy(_EXAMPLE_SPECS[name])
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_key_paths(spec))
        if not paths or draw(st.booleans()) and draw(st.booleans()):
            spec[draw(st.text(max_size=6))] = draw(_VALUES)
            continue
        *parents, key = draw(st.sampled_from(paths))
        table = functools.reduce(dict.__getitem__, parents, spec)
        if draw(st.booleans()):
            del table[key]
        else:
            table[key] = draw(_VALUES)
    return name, spec


@pytest.mark.slow  # 150 mutated specs: 10 s
@settings(max_examples=150, deadline=None, derandomize=True)
@given(case=mutated_examples())
def test_mutated_specs_give_a_model_or_one_clear_error(case):
    name, spec = case
    try:
        spec_model(spec, EXAMPLES / f"{name}.toml")
    except SymcompileError as exc:
        assert str(exc).startswith(str(EXAMPLES / f"{name}.toml")) and "\n" not in str(exc)


# --- fuzzing the command line with spec files whose text is damaged at random ------------------------------------

_EXAMPLE_TEXTS = {path.name: path.read_text(encoding="utf-8") for path in sorted(EXAMPLES.glob("*.toml"))}


@st.composite
def damaged_spec_texts(draw):
    """An example spec's text with a few slices deleted, replaced or inserted: mostly broken TOML or broken models."""
    name = draw(st.sampled_from(sorted(_EXAMPLE_TEXTS)))
    text = _EXAMPLE_TEXTS[name]
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 12)))
        text = text[:start] + draw(st.text(alphabet=st.characters(codec="utf-8"), max_size=6)) + text[end:]
    return name, text


@pytest.mark.slow  # 60 damaged spec files through the CLI: 10 s
@settings(max_examples=60, deadline=None, derandomize=True)
@given(case=damaged_spec_texts())
def test_cli_on_damaged_spec_files_builds_or_fails_in_one_line(tmp_path_factory, case):
    name, text = case
    folder = tmp_path_factory.mktemp("damaged")
    shutil.copytree(EXAMPLES / "data", folder / "data")
    spec = folder / name
    spec.write_text(text, encoding="utf-8")
    out_dir = folder / "generated"
    with pytest.MonkeyPatch.context() as patch:
        errors = []
        patch.setattr("sys.stderr", type("Capture", (), {"write": errors.append, "flush": lambda self: None})())
        status = main(["build", str(spec), "--out-dir", str(out_dir)])
    message = "".join(errors)
    assert status in (0, 2)
    if status == 2:
        assert message.startswith("symcompile: error: ") and message.count("\n") == 1
        assert not out_dir.exists()


def test_csv_with_a_byte_order_mark_reads_as_spreadsheets_write_it(tmp_path):
    spec = tmp_path / "bom.toml"
    spec.write_text('kind = "mlp"\nlayers = [2, 1]\n[data]\ncsv = "bom.csv"\n')
    (tmp_path / "bom.csv").write_bytes("x1,x2,y\r\n0.5,1,0\r\n2,3,1\r\n".encode("utf-8-sig"))
    model = load_spec(spec)
    np.testing.assert_array_equal(model.X, [[0.5, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(model.Y, [[0.0], [1.0]])


def test_data_root_allows_a_csv_outside_the_specs_folder(tmp_path, capsys):
    (tmp_path / "shared.csv").write_text("x1,x2,y\n0,1,0\n1,0,1\n")
    (tmp_path / "specs").mkdir()
    spec = tmp_path / "specs" / "outside.toml"
    spec.write_text('kind = "mlp"\nlayers = [2, 1]\n[data]\ncsv = "../shared.csv"\n')
    out_dir = str(tmp_path / "generated")
    assert main(["build", str(spec), "--out-dir", out_dir]) == 2
    assert "outside" in capsys.readouterr().err
    assert main(["build", str(spec), "--out-dir", out_dir, "--data-root", str(tmp_path)]) == 0
    assert "--data-root" in (tmp_path / "generated" / "outside.py").read_text()  # the rebuild command says it
