"""What Ctrl-C does on the command line, phase by phase: every Ctrl-C ends the command with one line on stderr
and exit status 130, keeping what was reached.

Python's own KeyboardInterrupt cannot be used throughout: raised while Numba compiles, it can land inside one of
LLVM's ctypes callbacks, which swallow it (printing "Exception ignored ...") and leave a half-built library, so
the command goes on, or fails later with "RuntimeError: no compiled object yet" and a long traceback. So a
command runs in one of three modes:

- `at_once(doing)` (building, compiling, reading): nothing worth keeping is held yet, so Ctrl-C prints
  "symcompile: interrupted while <doing>" and ends the process there and then. Every file is written
  atomically (writer.write_atomically), so none is left half-written.
- `python()` (the training loop): Python's handler, which the generated module replaces with its own while it
  trains, so that Ctrl-C stops the loop between calls and returns the weights reached.
- `finishing(doing)` (the report and the output files of work that is done): Ctrl-C is noted and the command
  finishes, then exits 130; a second Ctrl-C ends it at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

EXIT_INTERRUPTED = 130  # a shell's code for a command stopped by Ctrl-C (128 + SIGINT)


class CtrlC:
    """The SIGINT handler of one command; `mode` context managers switch it, `interrupted` says if one came."""

    def __init__(self):
        self.interrupted = False
        self.doing = None

    def _install(self, handler):
        if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
            return contextlib.nullcontext()
        return _handler(handler)

    def at_once(self, doing):
        self.doing = doing
        return self._install(self._quit)

    def python(self):
        return self._install(signal.default_int_handler)

    def finishing(self, doing):
        self.doing = doing
        return self._install(self._note)

    def _quit(self, signum, frame):
        quit_now(f"interrupted while {self.doing}")

    def _note(self, signum, frame):
        if self.interrupted:  # the second Ctrl-C: no more waiting
            self._quit(signum, frame)
        self.interrupted = True


@contextlib.contextmanager
def _handler(handler):
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def quit_now(message):
    """End the process with exit status 130 after one line on stderr, without unwinding: what was printed to
    stdout is flushed first (it may be in the middle of a write, hence the guard)."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(OSError):
        os.write(2, f"symcompile: {message}\n".encode())
    os._exit(EXIT_INTERRUPTED)
