"""The one way code that does not depend on the model reaches a generated module as text: a real Python function's
source (`inspect.getsource`), under the module's names.

Most of that code never reaches the module as text: the module imports it from symcompile.runtime. Two kinds are
pasted, because Numba must compile them together with the module's own kernels:
- a stable function's Numba helper (symcompile.stable), which the kernels call per value and Numba inlines; a
  user's stable function brings its own, so the module cannot import it from the runtime;
- the runtime's full-batch loop (symcompile.runtime.loops), which calls the module's kernels by name so that Numba
  inlines them (as arguments, through function pointers, it could not: issue 20's measurements).
Both are plain functions, checked and tested as Python where they are written; this renders them.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap

DECORATOR = '@numba.njit(cache=True, error_model="numpy")'


def pasted(function, *, name=None, docstring=None, calls=None, names=None, first_parameter=None) -> str:
    """`function`'s source, decorated for Numba, as a module's own function: named `name` (default: its own),
    with `docstring` in place of its own (default: its own), the functions it calls renamed by `calls`
    ({name in the source: name in the module}), other names by `names` (whole words), its parameters from
    `first_parameter` on (those before it are the runtime's arguments the module binds by name in `calls`)."""
    header, docstring_lines, body = _parts(function)
    if calls:
        body = re.sub(r"\b(\w+)\(", lambda m: calls.get(m[1], m[1]) + "(", body)
    if names:
        body = re.sub(r"\b(" + "|".join(map(re.escape, names)) + r")\b", lambda m: names[m[1]], body)
    if docstring is not None:
        docstring_lines = f'    """{docstring}"""'
    if name is not None or first_parameter is not None:
        parameters = list(inspect.signature(function).parameters)
        if first_parameter is not None:
            parameters = parameters[parameters.index(first_parameter) :]
        header = f"def {name or function.__name__}({', '.join(parameters)}):"
    return "\n".join(part for part in (DECORATOR, header, docstring_lines, body) if part)


def _parts(function) -> tuple[str, str, str]:
    """(the `def` lines, the docstring's lines or "", the lines after them) of a plain function's source."""
    source = textwrap.dedent(inspect.getsource(function)).strip("\n")
    definition = ast.parse(source).body[0]
    if definition.decorator_list:  # the decorator is the paste's: the function stays plain Python where it is written
        raise ValueError(f"{function.__name__}: a pasted function is written without decorators")
    lines = source.split("\n")
    first = definition.body[0]
    has_docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    header = "\n".join(lines[: first.lineno - 1])
    body_start = first.end_lineno if has_docstring else first.lineno - 1
    docstring = "\n".join(lines[first.lineno - 1 : body_start]) if has_docstring else ""
    return header, docstring, "\n".join(lines[body_start:])
