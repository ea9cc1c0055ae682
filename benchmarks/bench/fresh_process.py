"""One-time costs that only a fresh process shows: Numba's compile at first use, and a first call that hits its cache.

Each measurement runs `first_call_probe.py` in a new interpreter with
NUMBA_CACHE_DIR pointing at a private folder: empty for the first run (so
Numba compiles), then warm for the following ones (so it should only load).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.bench.report import Row
from benchmarks.bench.timing import Timing

PROBE = Path(__file__).with_name("first_call_probe.py")


def probe(module_path, cache_dir, *, init_numba_first=False):
    """Run the probe once; returns its measurements (a dict of seconds and cache counts)."""
    command = [sys.executable, "-P", str(PROBE), str(Path(module_path).resolve())]
    if init_numba_first:
        command.append("--init-numba-first")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        # Not the user's input at fault: a bug or a broken environment, so show the probe's whole traceback.
        raise RuntimeError(f"fresh-process probe of {module_path} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _timing(probes, key):
    return Timing.of(p[key] for p in probes)


def _cache_note(probes):
    hits = sum(p["cache_hits"] for p in probes)
    misses = sum(p["cache_misses"] for p in probes)
    recompiled = "yes" if misses else "no"
    return f"recompiled: {recompiled} ({hits} cache hits, {misses} misses in {len(probes)} processes)"


def first_call_rows(module_path, repeats):
    """Rows: compile at first use, imports, the first call with a warm cache, and what that first call spends."""
    with tempfile.TemporaryDirectory(prefix="symcompile-bench-cache-") as cache_dir:
        cold = probe(module_path, cache_dir)
        warm = [probe(module_path, cache_dir) for _ in range(repeats)]
        split = [probe(module_path, cache_dir, init_numba_first=True) for _ in range(repeats)]
    return [
        Row(
            "Numba compile at first use: first train()",
            Timing.of([cold["first_call"]]),
            note=f"fresh process, empty cache; {cold['cache_misses']} kernels compiled",
        ),
        Row("fresh process: import numpy and numba", _timing(warm, "import_numba")),
        Row("fresh process: import the generated module", _timing(warm, "import_module")),
        Row("fresh process, warm cache: first train()", _timing(warm, "first_call"), note=_cache_note(warm)),
        Row("  of which Numba's one-time initialization", _timing(split, "numba_init"), note="target context refresh"),
        Row("  of which loading cached code and running", _timing(split, "first_call"), note=_cache_note(split)),
    ]
