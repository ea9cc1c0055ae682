"""The one exception type users see (`symcompile.errors` re-exports it): a problem with the user's model, spec,
data or settings, printed by the CLI as one line."""


class SymcompileError(Exception):
    """A problem with the user's model, spec or data (not a bug in symcompile)."""


class StaleModule(ImportError):
    """A generated module this runtime cannot run as it is (built for other dense loops, its data file changed):
    an ImportError that says to rebuild it, and that the command line answers by rebuilding."""
