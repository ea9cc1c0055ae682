"""Optional peers: the JAX and PyTorch implementations load only where those frameworks are installed."""

import importlib


def optional_peer(framework):
    """`benchmarks.bench.<framework>_peer`, or None when `framework` ('jax' or 'torch') is not installed."""
    try:
        return importlib.import_module(f"benchmarks.bench.{framework}_peer")
    except ImportError as exc:
        if (exc.name or "").split(".")[0] == framework:
            return None
        raise


# The extra that installs each framework: PyTorch has its own, for its 3 GB of CUDA libraries (README.md).
EXTRAS = {"jax": "bench", "torch": "torch"}


def missing_note(framework):
    """What a row says when `framework` is not installed."""
    return f"{framework} not installed (pip install 'symcompile[{EXTRAS[framework]}]')"
