import os
import signal


def _interrupted_while_starting(signum, frame):
    # Ctrl-C while Python imports symcompile, SymPy and NumPy: one line, not an import's traceback.
    os.write(2, b"symcompile: interrupted while starting\n")
    os._exit(130)


signal.signal(signal.SIGINT, _interrupted_while_starting)  # first, before the imports below take their second

import gc  # noqa: E402
import sys  # noqa: E402

from symcompile.cli import EXIT_INTERRUPTED, main  # noqa: E402
from symcompile.interrupts import quit_now  # noqa: E402

status = main(report_startup=True)
# Ctrl-C from here on: the command has finished, its files are written.
signal.signal(signal.SIGINT, lambda signum, frame: quit_now("interrupted while exiting (the command had finished)"))
if status == EXIT_INTERRUPTED:
    # Ctrl-C: the weights are printed and every file is written and closed, so leave at once rather than after
    # the interpreter's teardown (freeing SymPy's and LLVM's objects takes a second or more on a busy machine).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
# Python's last garbage collection at exit walks every object still alive: after a digits build, the model's
# SymPy graphs took 1.5 s of wall time there, after the report was printed. Frozen objects are not walked.
gc.freeze()
raise SystemExit(status)
