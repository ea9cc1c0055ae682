import gc
import os
import sys

from symcompile.cli import EXIT_INTERRUPTED, main

status = main(report_startup=True)
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
