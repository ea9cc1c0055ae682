"""Fresh-process probe, run as a script, never imported: how long a generated module takes to import and first train.

    python -P first_call_probe.py MODULE_PATH [--init-numba-first]

It imports nothing but the standard library before its timed steps, and
prints one JSON line: seconds to import NumPy and Numba, to import the
module, and for the first `train()` call (the module's defaults), plus Numba's
cache hits and misses. With --init-numba-first it first runs (and times, as
`numba_init`) Numba's one-time target initialization, which a first call
otherwise pays, so the rest of the first call is seen on its own.
"""

import importlib.util
import json
import sys
import time
from pathlib import Path


def main(path, init_numba_first):
    start = time.perf_counter()
    import numba
    import numpy  # noqa: F401

    imported_numba = time.perf_counter()
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    imported_module = time.perf_counter()
    numba_init = None
    if init_numba_first:
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()
        numba_init = time.perf_counter() - imported_module
    called = time.perf_counter()
    module.train()
    first_call = time.perf_counter() - called
    kernels = [k for k in vars(module).values() if isinstance(k, numba.core.registry.CPUDispatcher)]
    print(
        json.dumps(
            {
                "import_numba": imported_numba - start,
                "import_module": imported_module - imported_numba,
                "numba_init": numba_init,
                "first_call": first_call,
                "cache_hits": sum(sum(k.stats.cache_hits.values()) for k in kernels),
                "cache_misses": sum(sum(k.stats.cache_misses.values()) for k in kernels),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], "--init-numba-first" in sys.argv[2:])
