"""symcompile.static_code, the one way code that does not depend on the model reaches a module as text: a plain
function's source, decorated for Numba, under the module's names. References: the functions themselves, run as
Python before and after pasting."""

import importlib.util

import numba
import pytest

from symcompile.static_code import DECORATOR, pasted


def scaled_sum(scale, values, offset):
    """The sum of values times scale, plus offset."""
    total = 0.0  # summed in order
    for value in values:
        total += twice(value) * scale
    return total + offset + LIMIT


def twice(value):
    return 2.0 * value


LIMIT = 0.0


def run(folder, source, name, *arguments, **names):
    """`source` as a module file beside `names`, its function `name` called (compiled by Numba) with `arguments`."""
    path = folder / f"pasted_{name}.py"
    path.write_text("import numba\n\n\n" + source + "\n")
    loader = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(loader)
    module.__dict__.update(names)
    loader.loader.exec_module(module)
    return getattr(module, name)(*arguments)


def test_a_plain_function_is_pasted_whole_under_the_decorator(tmp_path):
    source = pasted(twice)
    assert source.splitlines()[0] == DECORATOR and source.splitlines()[1] == "def twice(value):"
    assert run(tmp_path, source, "twice", 3.5) == twice(3.5)


def test_names_calls_docstring_and_parameters_are_the_modules(tmp_path):
    source = pasted(scaled_sum, name="_kernel", docstring="The module's.", calls={"twice": "_double"},
                    names={"LIMIT": "_LIMIT", "scale": "3.0"}, first_parameter="values")  # fmt: skip
    lines = source.splitlines()
    assert lines[1:3] == ["def _kernel(values, offset):", '    """The module\'s."""']
    assert "    total = 0.0  # summed in order" in lines  # comments stay
    got = run(tmp_path, source, "_kernel", (1.0, 2.0), 0.5, _double=numba.njit(lambda v: 2.0 * v), _LIMIT=0.25)
    assert got == scaled_sum(3.0, (1.0, 2.0), 0.5) + 0.25


def test_a_decorated_function_is_refused():
    @numba.njit
    def decorated(x):
        return x

    with pytest.raises(ValueError, match="without decorators"):
        pasted(decorated.py_func)
