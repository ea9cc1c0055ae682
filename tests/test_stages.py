"""Each stage on its own, without Numba: options, the printer, CSE, reverse mode, rolled loops, the templates'
variables, provenance, and `build --dump-after`."""

import ast
import math
import re
import types
import typing
from pathlib import Path

import jinja2
import jinja2.meta
import numpy as np
import pytest
import sympy as sp

from symcompile import update_rules
from symcompile.cli import main
from symcompile.differentiate import StraightLine, differentiate
from symcompile.emit import (
    CACHE_NAME_SLOT, RENDER_CONTEXTS, TEMPLATE_FIELDS, HeaderFields, ModelStepTemplate, ModuleContext, chosen_layout,
    field_names, header_fields, loop_lines, module_fields, render_module, template_environment, template_folder,
)  # fmt: skip
from symcompile.errors import SymcompileError
from symcompile.loops import Index, Loop, rolled
from symcompile.mlp import mlp_model, symbolic_form
from symcompile.model import make_model
from symcompile.optimize import count_ops, eliminate_common_subexpressions, optimize
from symcompile.options import DENSE_STAGES, STAGES, BuildOptions, argument_type, choose, training_settings
from symcompile.pipeline import build, generate
from symcompile.printer import KernelPrinter
from symcompile.provenance import Provenance, read_header, verify_module
from symcompile.reverse import reverse_gradient
from symcompile.seed import seed_model
from symcompile.spec import load_spec
from symcompile.stable import sigmoid

a, b, x, y = sp.symbols("a b x y", real=True)

# --- options --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: choose("gradient", "forward"), "unknown gradient method 'forward'; choose one of auto, diff, reverse"),
        (lambda: choose("layout", "tiled"), "unknown layout 'tiled'; choose one of auto, unrolled, rolled"),
        (lambda: choose("kind", None), "missing spec kind; choose one of mlp, expression"),
        (lambda: BuildOptions(gradient="newton"), "unknown gradient method 'newton'"),
        (lambda: training_settings({"lr": -0.1}), "lr must be a positive number, not -0.1"),
        (lambda: training_settings({"lr": math.nan}), "lr must be a positive number"),
        (lambda: training_settings({"lr": True}), "lr must be a positive number, not True"),
        (lambda: training_settings({"tol": math.inf}), "tol must be a non-negative number"),
        (lambda: training_settings({"max_iter": 2.0}), "max_iter must be an integer from 1 to 2**62"),
        (lambda: training_settings({"update": "lbfgs"}), "unknown update rule 'lbfgs'; choose one of sequential"),
        (lambda: training_settings({"learning_rate": 1}), "unknown training setting 'learning_rate'"),
    ],
)
def test_options_reject_bad_values_in_one_line(call, message):
    with pytest.raises(SymcompileError, match=re.escape(message)) as error:
        call()
    assert "\n" not in str(error.value)


def test_training_settings_apply_over_a_base_and_convert_numbers():
    base = training_settings({"lr": 0.3, "update": "sequential"})
    settings = training_settings({"lr": 1, "max_iter": 5}, base=base)
    assert vars(settings) == {"lr": 1.0, "max_iter": 5, "tol": 0.0, "update": "sequential"}
    assert isinstance(settings.lr, float)


def test_argument_type_words_errors_as_choose():
    with pytest.raises(Exception, match="unknown layout 'x'; choose one of"):
        argument_type("layout")("x")
    assert argument_type("layout")("rolled") == "rolled"


# --- printer --------------------------------------------------------------------------------------------------------


def test_printer_writes_safe_names_all_float_digits_and_helper_calls():
    lam = sp.Symbol("lambda", real=True)
    printer = KernelPrinter({lam: "lambda_"})
    assert printer.doprint(lam * sp.Float(1) / 3) == "0.3333333333333333*lambda_"  # 16 digits: what repr gives
    assert printer.doprint(sigmoid(a)) == "_sigmoid(a)"
    assert printer.doprint(sp.exp(a) + sp.Max(0, b)) == "math.exp(a) + max(0, b)"
    with pytest.raises(SymcompileError, match="besselj has no Numba-compatible form"):
        printer.doprint(sp.besselj(0, a))


# --- optimize: CSE --------------------------------------------------------------------------------------------------


def test_cse_shares_a_repeated_subexpression_and_counts_operations():
    code = StraightLine((), (sp.exp(a * x) + 1, 2 * sp.exp(a * x)))
    # before: exp, mul, add; exp, mul, mul. After: t0 = exp(a*x) (exp, mul), t0 + 1, 2*t0.
    assert count_ops(code) == 6
    shared = eliminate_common_subexpressions(code, lambda: iter(sp.symbols("t0:9")))
    assert count_ops(shared) == 4
    assert shared.assignments == ((sp.Symbol("t0"), sp.exp(a * x)),)


def test_kernel_carries_its_code_names_and_op_counts():
    kernel = optimize(differentiate(seed_model(), "diff"))
    assert 0 < kernel.ops_after < kernel.ops_before
    assert {kernel.code_names[p] for p in kernel.program.model.params} == {p.name for p in seed_model().params}
    with pytest.raises(TypeError):
        kernel.code_names[a] = "a"  # read-only: emit cannot change what optimize named


# --- differentiate: reverse mode on small graphs --------------------------------------------------------------------


def _run(assignments, results, values):
    """Evaluate a straight-line program with numbers (SymPy, exactly), in order."""
    values = dict(values)
    for symbol, expr in assignments:
        values[symbol] = expr.xreplace(values)
    return [sp.N(r.xreplace(values), 30) for r in results]


@pytest.mark.parametrize(
    "loss",
    [sp.sin(a * b), (a * x + b - y) ** 2, sp.log(1 + sp.exp(a * x)) * b, sp.exp(a) * sp.exp(a) / (1 + b**2)],
)
def test_reverse_mode_program_gives_sympy_derivatives(loss):
    assignments, results = reverse_gradient(loss, (a, b))
    point = {a: sp.Rational(3, 10), b: sp.Rational(-7, 10), x: sp.Rational(1, 2), y: 2}
    got = _run(assignments, results, point)
    expected = [loss.xreplace(point), sp.diff(loss, a).xreplace(point), sp.diff(loss, b).xreplace(point)]
    for value, reference in zip(got, expected):
        assert abs(value - sp.N(reference, 30)) < 1e-25


# --- loops: rolled layout -------------------------------------------------------------------------------------------


def test_rolled_layout_turns_runs_of_like_statements_into_loops():
    model = symbolic_form(mlp_model("net", [2, 8, 1], X=[[0.1, 0.2]], Y=[1]))
    kernel = optimize(differentiate(model, "reverse"))
    destinations = [("loss +=", None)] + [("grad[{}] +=", j) for j in range(len(model.params))]
    code = rolled(kernel.loss_and_grad, model, destinations)
    # Every statement is still there, once: a loop of n passes stands for n of them.
    assert sum(loop.count for loop in code.loops) == len(kernel.loss_and_grad.assignments) + len(destinations)
    assert max(loop.count for loop in code.loops) == 8  # the hidden layer's neurons
    assert code.n_temporaries == len(kernel.loss_and_grad.assignments)
    assert chosen_layout(kernel, "auto") == "unrolled"  # small: the threshold is options.ROLL_ABOVE_NODES


def test_a_loop_prints_as_python_with_its_strided_reads():
    w0, w1, t0 = sp.symbols("w0 w1 t0")
    loop = Loop(16, "t[{}] =", Index(32, 1), w0 * t0 + w1, ((w0, "w[{}]", Index(0, 2)), (t0, "t[{}]", Index(40, -1))))
    assert loop_lines(loop, KernelPrinter({w1: "w1"})) == [
        "for k in range(16):",
        "    t[32 + k] = t[40 - k]*w[2*k] + w1",
    ]
    single = Loop(1, "loss +=", None, w1 * 2, ())
    assert loop_lines(single, KernelPrinter({w1: "w1"})) == ["loss += 2*w1"]


# --- emit: the templates read only what emit provides ---------------------------------------------------------------


def _template_ast(env, name):
    return env.parse(env.loader.get_source(env, name)[0])


def _reads(env, name):
    """The variables template `name` reads from its context (not those of the templates it includes)."""
    return jinja2.meta.find_undeclared_variables(_template_ast(env, name))


def _template_choices(fields):
    """The template names a field of `fields` may hold: the values of a Literal, or of a list of them."""
    names = set()
    for hint in typing.get_type_hints(fields).values():
        for part in (hint, *typing.get_args(hint)):
            if typing.get_origin(part) is typing.Literal:
                names |= set(typing.get_args(part))
    return names


def _included(env, name):
    """The templates `name` includes or imports: by name, or (an include of a field) each one its type allows."""
    referenced = set(jinja2.meta.find_referenced_templates(_template_ast(env, name)))
    if None in referenced:
        referenced = referenced - {None} | _template_choices(TEMPLATE_FIELDS[name])
    return referenced


def _with_includes(env, name):
    """`name` and every template it includes or imports, transitively."""
    found, waiting = set(), [name]
    while waiting:
        template = waiting.pop()
        if template not in found:
            found.add(template)
            waiting.extend(_included(env, template))
    return found


def test_every_template_has_a_declared_field_list():
    ours = {path.name for path in template_folder().glob("*.j2") if not path.name.startswith("dense_")}
    assert ours == set(TEMPLATE_FIELDS)
    assert set(typing.get_args(ModelStepTemplate)) == set(update_rules.MODEL_KERNELS.values())


@pytest.mark.parametrize("template", sorted(TEMPLATE_FIELDS))
def test_a_template_reads_exactly_its_declared_fields(template):
    assert _reads(template_environment(), template) == field_names(TEMPLATE_FIELDS[template])


@pytest.mark.parametrize("template", sorted(RENDER_CONTEXTS))
def test_a_render_context_is_the_fields_of_its_template_and_of_what_it_includes(template):
    env = template_environment()
    included = _with_includes(env, template)
    assert included <= set(TEMPLATE_FIELDS), included - set(TEMPLATE_FIELDS)
    assert field_names(RENDER_CONTEXTS[template]) == set().union(*(field_names(TEMPLATE_FIELDS[t]) for t in included))
    declared = {}  # a field two templates read has one type
    for name, hint in (item for t in included for item in typing.get_type_hints(TEMPLATE_FIELDS[t]).items()):
        assert declared.setdefault(name, hint) == hint, name


def _has_type(value, hint):
    """Whether `value` is of the field type `hint` (the forms the field lists use)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_has_type(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if origin is list:
        return isinstance(value, list) and all(_has_type(item, args[0]) for item in value)
    if origin is tuple:
        return isinstance(value, tuple) and len(value) == len(args) and all(map(_has_type, value, args))
    if origin is dict:
        key, item = args
        return isinstance(value, dict) and all(_has_type(k, key) and _has_type(v, item) for k, v in value.items())
    return value is None if hint is type(None) else isinstance(value, hint)


@pytest.mark.slow
@pytest.mark.parametrize(
    "layout, hessian", [("unrolled", False), ("rolled", False), ("blocks", True), ("rolled-blocks", True)]
)
def test_emit_provides_every_declared_field_with_its_type(layout, hessian):
    for model in (seed_model(), make_model("line", a * x + b, None, [a, b], [x], [y], residual=a * x + b - y,
                                           X=[1.0, 2.0], Y=[1.0, 3.0])):  # fmt: skip
        fields = module_fields(optimize(differentiate(model, "auto", hessian)), layout)
        context = typing.get_type_hints(ModuleContext)
        added = {"standalone_runtime", "runtime_import", "cache_name"}  # render_module adds these
        assert set(fields) | added == set(context)
        for name, value in fields.items():
            assert _has_type(value, context[name]), (name, value)
    provenance = generate(seed_model()).provenance
    header = header_fields(seed_model(), provenance)
    assert set(header) == field_names(HeaderFields)
    assert all(_has_type(value, typing.get_type_hints(HeaderFields)[name]) for name, value in header.items())


def test_a_field_no_template_declares_is_an_error():
    kernel = optimize(differentiate(seed_model()))
    fields = module_fields(kernel, "unrolled") | {"helper": []}
    with pytest.raises(TypeError, match="module.py.j2 declares no field helper "):
        render_module(seed_model(), fields, generate(seed_model()).provenance)


def _defined(text):
    """The public names a module defines, read with Python's own parser: ({constant}, {class}, {function: its
    parameters without their defaults}); `a = b = f` gives a and b f's parameters."""
    constants, classes, functions = set(), set(), {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            arguments = node.args
            names = [a.arg for a in arguments.args] + (["*"] if arguments.kwonlyargs else [])
            functions[node.name] = ", ".join(names + [a.arg for a in arguments.kwonlyargs])
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            classes.add(node.name)
        elif isinstance(node, ast.Assign):
            targets = [n for t in node.targets for n in (t.elts if isinstance(t, ast.Tuple) else [t])]
            for name in (n.id for n in targets if isinstance(n, ast.Name) and not n.id.startswith("_")):
                if isinstance(node.value, ast.Name) and node.value.id in functions:
                    functions[name] = functions[node.value.id]
                elif name.isupper():
                    constants.add(name)
                else:
                    classes.add(name)  # FitResult = _least_squares.FitResult
    return constants, classes, functions


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MSE_NETWORK = """kind = "mlp"
layers = [2, 3, 1]
output_activation = "identity"
loss = "mean_squared_error"
[data]
X = [[0.0, 1.0], [1.0, 0.5], [0.3, 0.2]]
Y = [0.5, 0.1, 0.9]
"""


@pytest.mark.parametrize("spec, options", [
    ("seed", {"hessian": True}), ("seed", {"layout": "rolled"}), ("decay.toml", {}), ("iris.toml", {}),
    ("softmax3.toml", {"kernels": "dense"}), ("mse", {"kernels": "dense"}), ("mse", {"kernels": "scalar"}),
])  # fmt: skip
def test_the_contract_is_what_the_rendered_body_defines(spec, options, tmp_path):
    if spec == "mse":
        (tmp_path / "mse.toml").write_text(MSE_NETWORK)
    model = seed_model() if spec == "seed" else load_spec(tmp_path / "mse.toml" if spec == "mse" else EXAMPLES / spec)
    text = generate(model, **options).text
    constants, classes, functions = _defined(text)
    entries = _contract_entries(text)
    assert entries[0].split(", ") == [name for name in entries[0].split(", ") if name in constants]
    assert set(entries[0].split(", ")) == constants
    listed = dict(re.fullmatch(r"(\w+)(?:: .*|\((.*)\))", entry).groups() for entry in entries[1:])
    assert {name for name, parameters in listed.items() if parameters is None} == classes
    assert {name: parameters for name, parameters in listed.items() if parameters is not None} == functions


def _contract_entries(text):
    """The header's Contract as entries: continuation lines (indented 8) joined to their entry (indented 4)."""
    entries = []
    for line in text.partition("every other name starts with an underscore):\n")[2].partition('"""')[0].splitlines():
        if line.startswith("        "):
            entries[-1] += " " + line.strip()
        else:
            entries.append(line.strip())
    return entries


def test_the_cache_name_is_rendered_not_replaced_into_the_text():
    # The name was once put in by replacing a slot's text in the rendered body, which renamed a parameter so named.
    slot = sp.Symbol(CACHE_NAME_SLOT, real=True)
    model = make_model("slot", slot * x, None, [slot], [x], [y], residual=slot * x - y, X=[1.0, 2.0], Y=[1.0, 2.0])
    text = generate(model).text
    assert f"PARAMS = ({CACHE_NAME_SLOT!r},)\n" in text
    assert re.search(r'^__name__ = "_symcompile_[0-9a-f]{16}"$', text, re.M)


def test_a_missing_template_variable_is_an_error_not_an_empty_string():
    with pytest.raises(jinja2.UndefinedError):
        template_environment().get_template("header.py.j2").render(name="x")


# --- provenance -----------------------------------------------------------------------------------------------------


def test_header_records_what_provenance_holds_and_reads_back(tmp_path):
    source = generate(seed_model(), gradient="reverse", layout="rolled")
    assert isinstance(source.provenance, Provenance)
    assert source.provenance.options_text().startswith("gradient=reverse, cse=on, rewrites=")
    path = tmp_path / "m.py"
    path.write_text(source.text)
    recorded = read_header(path)
    assert recorded.body_digest == source.provenance.body_digest
    assert recorded.model_digest == source.provenance.model_digest
    assert verify_module(path) is None


def test_verify_module_notices_an_edit_a_truncation_and_a_foreign_file(tmp_path):
    text = generate(seed_model()).text
    path = tmp_path / "m.py"
    path.write_text(text.replace("loss * scale", "2 * loss * scale"))
    assert "changed after it was generated" in verify_module(path)
    path.write_text(text[: len(text) // 2])
    assert "changed after it was generated" in verify_module(path)
    path.write_text("print('hello')\n")
    assert "no symcompile header" in verify_module(path)


def test_a_module_built_from_python_says_how_it_was_built(tmp_path):
    from symcompile import compile_model

    compile_model(a * x, (a * x - y) ** 2, [a], [x], [y], name="api_made", out_dir=tmp_path, X=[1.0], Y=[2.0])
    docstring = (tmp_path / "api_made.py").read_text().split('"""')[1]
    assert "python -m symcompile build" not in docstring
    assert "compile_model(..., name='api_made')" in docstring


# --- the pipeline and --dump-after ----------------------------------------------------------------------------------


def test_build_reports_every_stage_and_model_making(tmp_path):
    result = build(seed_model(), tmp_path, model_seconds=0.25)
    assert (
        list(result.stage_seconds) == list(STAGES) == ["model", "rewrite", "differentiate", "optimize", "emit", "write"]
    )
    assert result.stage_seconds["model"] == 0.25
    assert (result.gradient, result.layout, result.changed) == ("diff", "unrolled", True)


@pytest.mark.parametrize(
    "stage, expected",
    [
        ("model", "output[0] = 1/(2.71828182845905**"),
        ("rewrite", "output[0] = sigmoid("),
        ("differentiate", "loss_and_grad: 0 assignments, 8 results"),
        ("optimize", "operations after CSE"),
        ("emit", "def _loss_and_grad_kernel(w, X, Y, grad):"),
    ],
)
def test_dump_after_prints_the_stage_and_writes_nothing(tmp_path, capsys, stage, expected):
    assert main(["build", "--dump-after", stage, "--out-dir", str(tmp_path / "out")]) == 0
    assert expected in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_the_dense_pipeline_names_its_stages_and_refuses_to_dump_the_others(tmp_path, capsys):
    """A network on dense kernels goes from its shape to emit: its timing lists those stages, and --dump-after
    of a stage it does not run is a one-line error, not an empty dump or a traceback."""
    wide = mlp_model("wide", [8, 16, 4], output_activation="softmax", loss="softmax_cross_entropy")
    assert list(build(wide, tmp_path / "built").stage_seconds) == [s for s in DENSE_STAGES if s != "model"]
    spec = tmp_path / "wide.toml"
    spec.write_text(
        'kind = "mlp"\nlayers = [8, 16, 4]\noutput_activation = "softmax"\nloss = "softmax_cross_entropy"\n'
    )
    assert main(["build", str(spec), "--dump-after", "optimize", "--out-dir", str(tmp_path / "out")]) == 2
    assert "whose stages are model -> emit -> write: no optimize stage" in capsys.readouterr().err
    assert main(["build", str(spec), "--dump-after", "emit", "--out-dir", str(tmp_path / "out")]) == 0
    assert not (tmp_path / "out").exists()


def test_stage_outputs_are_frozen():
    kernel = optimize(differentiate(make_model("m", a * x, (a * x - y) ** 2, [a], [x], [y])))
    with pytest.raises(AttributeError):
        kernel.ops_after = 0
    assert np.isfinite(kernel.ops_before)
