"""Optional peers: the JAX and PyTorch implementations load only where those frameworks are installed."""

import importlib


def optional_peer(framework):
    """`symcompile.bench.<framework>_peer`, or None when `framework` ('jax' or 'torch') is not installed."""
    try:
        return importlib.import_module(f"symcompile.bench.{framework}_peer")
    except ImportError as exc:
        if (exc.name or "").split(".")[0] == framework:
            return None
        raise
