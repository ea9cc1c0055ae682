"""symcompile's modules import in one direction: no circle among them, neither at the top of a module nor through
an import inside a function (which is for loading late, never for dodging a circle). Read from the sources with
`ast`, not by importing. `python tests/test_import_graph.py` prints the modules with their line counts and the
order they can be loaded in."""

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "symcompile"


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path, name):
    """The symcompile modules that the module `name` (at `path`) imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, one level up per dot after the first
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # `from package import module`
    return found


def graph():
    """{module: the symcompile modules it imports} over every module of the package."""
    paths = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
    return {name: sorted(imported(path, name) & set(paths) - {name}) for name, path in paths.items()}


def load_order(edges):
    """The modules in an order where each comes after what it imports; raises on a circle, naming it."""
    order, state = [], {}

    def visit(name, path):
        if state.get(name) == "done":
            return
        if state.get(name) == "open":
            circle = path[path.index(name) :] + [name]
            raise AssertionError("import circle: " + " -> ".join(circle))
        state[name] = "open"
        for target in edges[name]:
            # a package's __init__ imports its own modules: that is not a circle through the package
            if not target.startswith(name + "."):
                visit(target, path + [name])
        state[name] = "done"
        order.append(name)

    for name in edges:
        visit(name, [])
    return order


def test_no_import_circle_in_the_package():
    order = load_order(graph())
    assert "symcompile.cli" in order and order.index("symcompile.runtime") < order.index("symcompile.cli")


def test_a_circle_is_found_and_named():
    edges = {"a": ["b"], "b": ["c"], "c": ["a"]}
    try:
        load_order(edges)
    except AssertionError as error:
        assert "a -> b -> c -> a" in str(error)
    else:
        raise AssertionError("the circle a -> b -> c -> a was not found")


if __name__ == "__main__":
    edges = graph()
    for name in load_order(edges):
        path = PACKAGE.parent / (name.replace(".", "/") + ".py")
        path = path if path.exists() else PACKAGE.parent / name.replace(".", "/") / "__init__.py"
        print(f"{len(path.read_text().splitlines()):5d}  {name}")
    sys.exit(0)
