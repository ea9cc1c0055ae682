import os
import sys

from symcompile.cli import EXIT_INTERRUPTED, main

code = main()
if code == EXIT_INTERRUPTED:
    # Ctrl-C: the weights are printed and every file is written and closed, so leave at once rather than after
    # the interpreter's teardown (freeing SymPy's and LLVM's objects takes a second or more on a busy machine).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
raise SystemExit(code)
