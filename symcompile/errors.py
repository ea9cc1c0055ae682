"""The one exception type users see.

Every stage raises SymcompileError for bad input, with a message that names
the problem and where it is; the CLI prints it as one line and exits non-zero.
"""


class SymcompileError(Exception):
    """A problem with the user's model, spec or data (not a bug in symcompile)."""
