"""Timing helpers shared by the benchmark scenarios: medians of repeats, and where they were taken.

These machines are shared and noisy, so every figure is a median of repeats
with its min and max beside it, and each scenario records the load average at
its start and end.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from importlib import metadata

from symcompile import __version__
from symcompile.seed_comparison import format_seconds, timed_runs  # noqa: F401  (format_seconds: the benchmarks')


@dataclass(frozen=True)
class Timing:
    """Seconds per unit (iteration, epoch, call): the median of the repeats, and their range."""

    median: float
    low: float
    high: float
    repeats: int

    @classmethod
    def of(cls, seconds):
        seconds = list(seconds)
        return cls(statistics.median(seconds), min(seconds), max(seconds), len(seconds))


def measure(run, *, repeats, per=1, warmup=1) -> Timing:
    """Time `run()` `repeats` times after `warmup` untimed calls; each time is divided by `per` units."""
    return Timing.of(timed_runs(run, repeats, per=per, warmup=warmup))


def time_once(run):
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def load_average():
    """The 1-minute load average (what `uptime` shows first); None where the system has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package):
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine():
    """What the figures were measured on."""
    return {
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {"symcompile": __version__}
        | {pkg: _version(pkg) for pkg in ("sympy", "numba", "numpy", "scipy", "jax", "jaxlib", "torch")},
    }
