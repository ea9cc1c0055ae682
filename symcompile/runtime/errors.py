"""The one exception type users see (`symcompile.errors` re-exports it): a problem with the user's model, spec,
data or settings, printed by the CLI as one line."""


class SymcompileError(Exception):
    """A problem with the user's model, spec or data (not a bug in symcompile)."""
