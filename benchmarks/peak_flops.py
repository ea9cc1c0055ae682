"""The machine's measured floating-point peak on one core: the ceiling to read epoch GFLOP/s against (issue 22).

Measured as NumPy's BLAS (OpenBLAS: hand-written FMA micro-kernels) multiplying two 1024 x 1024 matrices on
one thread, float64 and float32: a matrix product is the one kernel that reaches a core's FMA peak in practice,
so its rate is what a layer's products could reach. Prints the median of several runs and the load.

    python benchmarks/peak_flops.py [--size 1024] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def gflops(dtype, size: int, repeats: int) -> float:
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size)).astype(dtype) for _ in range(2))
    out = np.empty((size, size), dtype=dtype)
    np.matmul(a, b, out=out)  # warm the caches and BLAS's buffers
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        rates.append(2 * size**3 / (time.perf_counter() - start) / 1e9)
    return float(np.median(rates))


def one_thread():
    """BLAS held to one thread (threadpoolctl), or None with the reason it could not be."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    limit = one_thread()
    if limit is None:
        raise SystemExit("peak_flops: needs threadpoolctl (pip install threadpoolctl) to hold BLAS to one core")
    with limit:
        print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs; BLAS on one thread, "
              f"{args.size} x {args.size} matrix product")  # fmt: skip
        for dtype in (np.float64, np.float32):
            print(f"  {np.dtype(dtype).name:<8} {gflops(dtype, args.size, args.repeats):7.1f} GFLOP/s")


if __name__ == "__main__":
    main()
