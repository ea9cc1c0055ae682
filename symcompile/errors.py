"""The one exception type users see.

Every stage raises SymcompileError for bad input, with a message that names
the problem and where it is; the CLI prints it as one line and exits non-zero.
"""

from symcompile.runtime.errors import SymcompileError  # noqa: F401 (defined in the runtime, which raises it too)


SHOWN_NAMES = 8  # an error lists at most this many names (a [1000, 1000, 1] network has 1000 inputs)


def names_text(names, shown=SHOWN_NAMES) -> str:
    """`names` joined by commas for an error message; a long list cut to its first few and its length."""
    names = list(names)
    text = ", ".join(map(str, names[:shown]))
    return text if len(names) <= shown else f"{text}, ... ({len(names)} in all)"
