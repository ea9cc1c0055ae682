"""Argument checks of a generated module's functions, before compiled code sees anything.

Wrong types are TypeError and wrong values ValueError, each one line saying what is allowed; arrays come out
C-contiguous, writeable float64, the exact type the compiled kernels are built for.
"""

import math

import numpy as np

from .rules import is_real


def shape_text(shape) -> str:
    return (
        "(" + ", ".join("N" if size is None else str(size) for size in shape) + ("," if len(shape) == 1 else "") + ")"
    )


def real_array(value, what, shape, kinds="iuf"):
    """`value` as a contiguous float64 array of `shape` (None: any length), checked before compiled code sees it.

    Raises TypeError for a dtype not in `kinds` (NumPy kinds: int, unsigned, float; data also takes bool, as 0
    and 1) and ValueError for a wrong shape or a NaN or infinity. A 1-D array stands for the single column
    where `shape` has one.
    """
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nested lists, for one
        raise ValueError(f"{what} must be an array of shape {shape_text(shape)}: {exc}") from None
    if array.dtype.kind not in kinds:
        accepted = "int, float or bool" if "b" in kinds else "int or float"
        raise TypeError(f"{what} must hold real numbers ({accepted}), got dtype {array.dtype}")
    if len(shape) == 2 and shape[1] == 1 and array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != len(shape) or any(want is not None and got != want for got, want in zip(array.shape, shape)):
        raise ValueError(f"{what} must have shape {shape_text(shape)}, got {array.shape}")
    array = np.ascontiguousarray(array, dtype=np.float64)
    if not array.flags.writeable:  # a read-only array would make Numba compile every kernel once more
        array = array.copy()
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contains NaN or infinity")
    return array


def integer(name, value, low, high=None, none=None):
    """An integer setting from `low` (to `high`), or `none` for None; TypeError or ValueError otherwise."""
    if type(value) is int and low <= value and (high is None or value <= high):
        return value
    if value is None and none is not None:
        return none
    highest = "2**62" if high == 2**62 else high
    allowed = (
        f"an integer from {low}"
        + (f" to {highest}" if high is not None else " up")
        + (" or None" if none is not None else "")
    )
    if not is_real(value, integer=True):
        raise TypeError(f"{name} must be {allowed}, not {value!r}")
    if value < low or high is not None and value > high:
        raise ValueError(f"{name} must be {allowed}, not {value!r}")
    return int(value)


def tolerance(name, value):
    """A non-negative number."""
    if not is_real(value):
        raise TypeError(f"{name} must be a non-negative number, not {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a non-negative number, not {value!r}")
    return float(value)


def flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, not {value!r}")
    return bool(value)


def threads(value, available):
    """`threads`: None (Numba's default) or a count from 1 to the threads Numba started with (`available`)."""
    if value is None:
        return None
    if not is_real(value, integer=True) or not 1 <= value <= available:
        raise ValueError(f"threads must be None or an integer from 1 to {available}, got {value!r}")
    return int(value)
