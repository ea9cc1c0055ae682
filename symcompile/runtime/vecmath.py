"""Elementary functions that LLVM vectorizes: exp, log, log1p, and sigmoid, softplus, tanh, logsumexp on them;
exp, tanh and sigmoid also to float32's accuracy (`*_single`), for a float32 module's hidden activations.

A call to `math.exp` or `math.log` is a call into libm, and a loop that makes one is never vectorized (the
llvmlite wheels on PyPI have no SVML). These are the same functions written in Numba arithmetic only: range
reduction, a polynomial, and the exponent bits set or read through a bit cast. Called in a loop over float64
arrays they compile to packed AVX instructions.

Written once here and compiled once per machine (Numba's cache), whichever model calls them: a generated module
imports those its kernels call (`from symcompile.runtime.vecmath import exp as _vexp, ...`, the names
`symcompile.vecmath` gives), and Numba loads them from its cache and links their optimized code into the calling
kernel, where LLVM inlines and vectorizes it. Measured (benchmarks/dense_runtime/README.md): with the softmax sums
below, a new digits model's dense kernels compile in 1.6 s instead of 3.9 s when all this was in the module, at the
same speed and with the same results.

Accuracy (tests/test_vecmath.py, against mpmath at 50 digits over the whole domain): below 1 ulp for exp, log and
log1p, 2.5 ulp or less for sigmoid and softplus, 4 for tanh (docs/numerics.md, "Vectorized math"); the special values (+-0,
+-inf, NaN, overflow, underflow to subnormals and 0, log(0), log(negative), log1p(-1)) are those of `math` and
NumPy.

How they are compiled, and what that asks of the caller:
- `forceinline=True` (LLVM's alwaysinline), not Numba's `inline="always"`: LLVM inlines each into the calling
  loop, which it then vectorizes, and the inlined instructions keep their own fast-math flags. Numba-level
  inlining would compile the body with the caller's flags instead (and again in every caller).
- `fastmath={"contract"}` only (FMA allowed), set explicitly on each. With fastmath=True the body breaks
  (measured: exp's range reduction collapses, errors to inf; log1p off by 2**52 ulp), and `nnan`/`ninf` alone
  turn exp(NaN) into inf and log(NaN) into a number. The caller's own loop may use any flags, `reassoc` for its
  reductions included: results are bit for bit those of a scalar call (tested).
- `error_model="numpy"`: Numba's default "python" model puts a zero-division branch before each float
  division, and that stops vectorization; the calling loop needs it too for its own divisions.

This module imports NumPy and Numba only (it is part of the runtime a standalone build copies): constants are
literals in the bodies.
"""

import math

import numba
import numba.extending
import numpy as np


@numba.extending.intrinsic
def _bits_to_double(typingctx, bits):
    """The float64 whose IEEE bits are the int64 `bits` (a bit cast, no conversion)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(numba.types.float64))

    return numba.types.float64(numba.types.int64), codegen


@numba.extending.intrinsic
def _double_to_bits(typingctx, value):
    """The IEEE bits of the float64 `value`, as an int64 (a bit cast, no conversion)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(numba.types.int64))

    return numba.types.int64(numba.types.float64), codegen


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, forceinline=True)
def _expm1_reduced(r):
    """exp(r) - 1 for |r| <= ln(2)/2 only: Taylor to degree 13 (truncation below 1e-17 relative), no cancellation."""
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    return _taylor_to_degree_8(p, r)


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, forceinline=True)
def _taylor_to_degree_8(p, r):
    """exp(r) - 1 by Horner's rule from its terms of degree 8 on: p, their sum divided by r**8."""
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    return p * r


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, forceinline=True)
def exp(x):
    """exp(x), within 1 ulp; inf above 709.78, subnormal then 0 below -708.4, NaN for NaN."""
    # Beyond +-1000 the result is inf or 0 anyway; the clamp keeps k small (NaN goes to +-1000,
    # and is returned as itself at the end).
    xc = x if abs(x) <= 1000.0 else math.copysign(1000.0, x)
    # k = round(x/ln 2): adding 1.5*2**52 rounds to an integer, which then sits in the low
    # mantissa bits of t (so k as an int64 is a subtraction of bit patterns, no conversion).
    t = xc * 1.4426950408889634 + 6755399441055744.0
    kf = t - 6755399441055744.0
    k = _double_to_bits(t) - 0x4338000000000000
    # Cody-Waite: r = x - k ln 2, with ln 2 = hi + lo and k*hi exact (hi has 32 significant bits).
    r = (xc - kf * 6.93147180369123816490e-01) - kf * 1.90821492927058770002e-10
    p = 1.0 + _expm1_reduced(r)
    # 2**k as two normal factors 2**k1 * 2**k2 (|k| <= 1443): the product overflows to inf or
    # rounds once into the subnormals exactly where exp does.
    k1 = k >> 1
    k2 = k - k1
    y = p * _bits_to_double((k1 + 1023) << 52) * _bits_to_double((k2 + 1023) << 52)
    return y if x == x else x


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, forceinline=True)
def _log_reduced(f, dk, c):
    """log(1 + f) + dk*ln 2 + c for f in [sqrt(2)/2 - 1, sqrt(2) - 1] (fdlibm's log kernel, < 1 ulp)."""
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01))
    t2 = z * (
        6.666666666666735130e-01
        + w * (2.857142874366239149e-01 + w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01))
    )
    R = t2 + t1
    # The order of these additions is the accuracy: small terms first, dk*ln2_hi (exact) last.
    return (((s * (hfsq + R) + (dk * 1.90821492927058770002e-10 + c)) - hfsq) + f) + dk * 6.93147180369123816490e-01


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, forceinline=True)
def _log_split(bits):
    """(k, m) with 2**k * m the float64 of `bits` and m in [sqrt(2)/2, sqrt(2)), for positive normals."""
    # Shift the exponent so that mantissas at or above sqrt(2)/2 (high word 0x3fe6a09e) carry into k.
    shifted = bits + (0x3FF00000 - 0x3FE6A09E << 32)
    k = (shifted >> 52) - 1023
    m = _bits_to_double((shifted & 0x000FFFFFFFFFFFFF) + (0x3FE6A09E << 32))
    return k, m


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, forceinline=True)
def log(x):
    """log(x), within 1 ulp; -inf at +-0, NaN below 0 and for NaN, inf at inf."""
    subnormal = x < 2.2250738585072014e-308
    k, m = _log_split(_double_to_bits(x * 18014398509481984.0 if subnormal else x))  # 2**54
    dk = float(k - 54 if subnormal else k)
    y = _log_reduced(m - 1.0, dk, 0.0)
    y = y if x < math.inf else x  # +inf and NaN are their own log
    y = -math.inf if x == 0.0 else y
    return math.nan if x < 0.0 else y


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, forceinline=True)
def log1p(x):
    """log(1 + x), within 1 ulp; x itself for |x| < 2**-53 (so +-0 and subnormals exactly), -inf at -1,
    NaN below -1 and for NaN, inf at inf."""
    u = 1.0 + x
    k, m = _log_split(_double_to_bits(u))
    # u = 1 + x rounded; c = (1 + x - u)/u restores what the rounding lost (fdlibm's log1p).
    c = (1.0 - (u - x)) if k >= 2 else (x - (u - 1.0))
    c = c / u if k < 54 else 0.0
    y = _log_reduced(m - 1.0, float(k), c)
    y = y if x < math.inf else x
    y = x if abs(x) < 1.1102230246251565e-16 else y
    y = -math.inf if x == -1.0 else y
    return math.nan if x < -1.0 else y


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, forceinline=True)
def _expm1_small(y):
    """exp(y) - 1 for |y| <= 1.1: _expm1_reduced's Taylor terms plus those of degree 14 to 19 (truncation
    below 2e-18 relative)."""
    y2 = y * y
    y7 = y2 * y2 * y2 * y
    tail = 1.0 / 87178291200.0 + y * (
        1.0 / 1307674368000.0
        + y
        * (
            1.0 / 20922789888000.0
            + y * (1.0 / 355687428096000.0 + y * (1.0 / 6402373705728000.0 + y / 121645100408832000.0))
        )
    )
    return _expm1_reduced(y) + (y7 * y7) * tail


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, forceinline=True)
def tanh(x):
    """tanh(x), within a few ulp; +-0, +-1 beyond |x| = 19.1, NaN for NaN."""
    a = abs(x)
    # Near 0, from e = exp(2a) - 1 without cancellation; from 0.55 on (tanh >= 0.5), 1 - 2/(exp(2a) + 1).
    e = _expm1_small(2.0 * a if a < 0.55 else 0.0)
    t = e / (e + 2.0) if a < 0.55 else 1.0 - 2.0 / (exp(2.0 * a) + 1.0)
    return math.copysign(t, x)


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, forceinline=True)
def sigmoid(z):
    """1/(1 + exp(-z)), from exp(-|z|) only, so it never overflows; 0 and 1 at -+inf, NaN for NaN."""
    e = exp(-abs(z))
    return 1.0 / (1.0 + e) if z >= 0.0 else e / (1.0 + e)


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, forceinline=True)
def softplus(z):
    """log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)): never overflows, z itself for large z."""
    return (z if z > 0.0 else 0.0) + log1p(exp(-abs(z)))


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, forceinline=True)
def logaddexp(a, b):
    """log(exp(a) + exp(b)) as numpy.logaddexp: the larger plus log1p(exp(-|a - b|))."""
    d = a - b
    top = a if d > 0.0 else b
    y = top + log1p(exp(-abs(d)))
    y = a + 0.6931471805599453 if a == b else y  # also +-inf twice, where a - b is NaN
    return d if (d != d) & (a != b) else y  # NaN in, NaN out


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, forceinline=True)
def logsumexp_finish(top, total):
    """top + log(total): the end of log(sum(exp(z_j))) = top + log(sum(exp(z_j - top))), top = max z_j.

    The caller takes the maximum and the sum (total >= 1) in its own loops; where top is
    infinite (all -inf, or one +inf) the sum is NaN and the answer is top.
    """
    return top if abs(top) == math.inf else top + log(total)


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, forceinline=True)
def logsumexp(values):
    """log(sum(exp(values))) for a tuple of floats, with the largest value factored out."""
    top = max(values)
    total = 0.0
    for value in values:
        total += exp(value - top)
    return logsumexp_finish(top, total)


# ---- float32's accuracy: a float32 module's hidden activations ----------------------------------------------------
# A float32 module (dtype="float32") stores each hidden unit's activation and derivative in float32: accuracy beyond
# float32's is rounded away. These compute in float64 from the float32 value, to about 1e-8 relative (their results
# rounded to float32 are within 1 ulp of the correctly rounded ones: tests/test_vecmath.py), with a polynomial of
# degree 8 and one division where the functions above take degree 13 to 19 and, for tanh, two branches computed
# side by side and two divisions: a block's tanh and derivative in half the time (docs/numerics.md).


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, forceinline=True)
def _reduced_single(x):
    """(k, exp(r) - 1) with x = k ln 2 + r, |r| <= ln(2)/2, for |x| <= 1000: Taylor to degree 8 (truncation below
    6e-10 relative)."""
    t = x * 1.4426950408889634 + 6755399441055744.0  # k = round(x / ln 2), in t's low mantissa bits (as in exp)
    kf = t - 6755399441055744.0
    r = (x - kf * 6.93147180369123816490e-01) - kf * 1.90821492927058770002e-10
    return _double_to_bits(t) - 0x4338000000000000, _taylor_to_degree_8(0.0, r)


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, forceinline=True)
def exp_single(x):
    """exp(x) to float32's accuracy (about 1e-9 relative); inf above 709.78, 0 below -745, NaN for NaN."""
    k, q = _reduced_single(x if abs(x) <= 1000.0 else math.copysign(1000.0, x))
    k1 = k >> 1  # 2**k as two normal factors, as in exp
    y = (1.0 + q) * _bits_to_double((k1 + 1023) << 52) * _bits_to_double((k - k1 + 1023) << 52)
    return y if x == x else x


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, forceinline=True)
def tanh_single(x):
    """tanh(x) to float32's accuracy (about 1e-8 relative): e/(e + 2) with e = exp(2|x|) - 1 = 2**k (1 + q) - 1,
    which has no cancellation for k >= 0; one branch, one division. +-0 as themselves, NaN for NaN."""
    a = min(abs(x), 9.5)  # from 9.5 on, 1 (tanh rounds to 1 in float32)
    k, q = _reduced_single(a + a)
    scale = _bits_to_double((k + 1023) << 52)  # 2**k, 0 <= k <= 28
    e = scale * q + (scale - 1.0)
    t = math.copysign(e / (e + 2.0) if a < 9.5 else 1.0, x)
    return t if x == x else x


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, forceinline=True)
def sigmoid_single(z):
    """1/(1 + exp(-z)) to float32's accuracy, from exp(-|z|) only (as sigmoid)."""
    e = exp_single(-abs(z))
    return 1.0 / (1.0 + e) if z >= 0.0 else e / (1.0 + e)


# ---- a dense softmax output's sums over a block of samples, the same for every network ------------------------
# The block size is a compile-time constant (`numba.literally`, as in symcompile.runtime.dense), so each loop runs
# a length LLVM knows and vectorizes. The arrays are allocated here: a module's code that allocates compiles
# NumPy's allocation functions again in every new process.


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def logsumexp_columns(zs, block):
    """lse[s] = log(sum_k exp(zs[k, s])) for each of a block's samples (zs: (classes, block)), with the largest
    value factored out."""
    numba.literally(block)
    top = np.empty(block)
    total = np.zeros(block)
    lse = np.empty(block)
    for s in range(block):
        top[s] = -math.inf
    for k in range(zs.shape[0]):
        for s in range(block):
            top[s] = max(top[s], zs[k, s])
    for k in range(zs.shape[0]):
        for s in range(block):
            total[s] += exp(zs[k, s] - top[s])
    for s in range(block):
        lse[s] = top[s] if abs(top[s]) == math.inf else top[s] + log(total[s])
    return lse


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def softmax_targets(zs, Y, start, count, block):
    """(lse, targets, ysum) of a block: each sample's logsumexp; its targets Y[start + s, k] as targets[k, s], 0 in
    the padding (so that the loops over them run over the whole block with unit strides and vectorize: reading
    Y's strided columns, LLVM kept them scalar); each sample's sum of targets."""
    numba.literally(block)
    lse = logsumexp_columns(zs, block)
    targets = np.empty((zs.shape[0], block))
    for k in range(zs.shape[0]):
        for s in range(count):
            targets[k, s] = Y[start + s, k]
        for s in range(count, block):
            targets[k, s] = 0.0
    ysum = np.zeros(block)
    for k in range(zs.shape[0]):
        for s in range(block):
            ysum[s] += targets[k, s]
    return lse, targets, ysum
