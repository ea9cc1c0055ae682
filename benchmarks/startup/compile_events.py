"""Run one symcompile command in this process and report what Numba compiled for it.

    python benchmarks/startup/compile_events.py fit SPEC --out-dir DIR

The command is `python -m symcompile ...`'s (`symcompile.cli.main`), imported from wherever `symcompile` imports
from (bench.py sets PYTHONPATH to the checkout it measures). A listener on Numba's "numba:compile" event times
every function Numba compiles, as opposed to loading from its cache (a cache load fires no such event); at the
end it prints them, nested compiles indented under the one that started them, and one JSON line for bench.py.
"""

import gc
import json
import sys
import time

from numba.core import event


class CompileTimes(event.Listener):
    """Each compile's function, signature, nesting depth and inclusive seconds, in the order they started."""

    def __init__(self):
        self.events = []
        self.open = []  # indices into self.events of the compiles under way, outermost first

    def on_start(self, ev):
        dispatcher = ev.data["dispatcher"]
        name = f"{dispatcher.py_func.__module__}.{dispatcher.py_func.__qualname__}"
        self.events.append({"function": name, "args": str(ev.data["args"]), "depth": len(self.open),
                            "seconds": -time.perf_counter()})  # fmt: skip
        self.open.append(len(self.events) - 1)

    def on_end(self, ev):
        self.events[self.open.pop()]["seconds"] += time.perf_counter()


def report(events):
    outermost = sum(e["seconds"] for e in events if e["depth"] == 0)
    print(f"numba:compile events: {len(events)} functions compiled, {outermost:.3f} s (outermost compiles)")
    for e in events:
        print(f"  {'  ' * e['depth']}{e['seconds']:7.3f} s  {e['function']}")  # the signatures: in the JSON
    print("COMPILE_EVENTS " + json.dumps(events))


def main():
    listener = CompileTimes()
    event.register("numba:compile", listener)
    from symcompile.cli import main as symcompile_main  # after the listener: importing may compile

    status = symcompile_main(sys.argv[1:])
    sys.stdout.flush()
    report(listener.events)
    gc.freeze()  # as `python -m symcompile` does: the exit's last collection would walk every SymPy object
    return status


if __name__ == "__main__":
    raise SystemExit(main())
