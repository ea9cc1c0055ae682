"""symcompile.runtime.vecmath: accuracy against mpmath over whole domains, special values, vectorization when
called from another module's loop, the import line modules use, a block's logsumexp and softmax sums.

The functions under test are the runtime's, under the names generated code gives them (`_vexp`, ...:
symcompile.vecmath), with Numba's cache in the tests' temp folder (conftest.py).
"""

import math
import os
import re
import subprocess
import sys

import llvmlite.binding
import mpmath
import numba
import numpy as np
import pytest

from symcompile import vecmath
from references.vecmath_accuracy import EDGES, MPMATH, apply, domain_points, errors, vector_loop
from symcompile.runtime import vecmath as runtime_vecmath

INF, NAN = math.inf, math.nan


@pytest.fixture(scope="session")
def vm():
    """Every vecmath function under its name in generated code: symcompile.vecmath's, which are the runtime's."""
    for name, runtime_name in vecmath.FUNCTIONS.items():
        assert getattr(vecmath, name) is getattr(runtime_vecmath, runtime_name)
    return vecmath


# Largest error in ulp allowed (measured, README "Vectorized math": 0.74, 0.66, 0.67 for exp, log, log1p;
# 1.7 sigmoid, 1.2 softplus, 2.9 tanh near 0.5, where e/(e + 2) rounds three times).
ULP_BOUND = {"_vexp": 1.0, "_vlog": 1.0, "_vlog1p": 1.0, "_vsigmoid": 2.5, "_vsoftplus": 2.0, "_vtanh": 4.0}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MPMATH))
def test_matches_mpmath_over_the_whole_domain(vm, name):
    points = domain_points(name, 4000, seed=1)
    worst_ulp, worst_relative = errors(name, points, apply(getattr(vm, name), points))
    assert worst_ulp <= ULP_BOUND[name]
    assert worst_relative <= 1e-14


SPECIAL_VALUES = {  # (input, exact output) pairs, as math and NumPy give it (sign of zero included)
    "_vexp": [
        (0.0, 1.0),
        (-0.0, 1.0),
        (INF, INF),
        (-INF, 0.0),
        (NAN, NAN),
        (709.7827128933841, INF),
        (710.0, INF),
        (1e308, INF),
        (-745.1332191019411, 5e-324),
        (-745.1332191019412, 0.0),
        (-1e308, 0.0),
    ],
    "_vlog": [
        (0.0, -INF),
        (-0.0, -INF),
        (1.0, 0.0),
        (-5e-324, NAN),
        (-1.0, NAN),
        (-INF, NAN),
        (INF, INF),
        (NAN, NAN),
        (5e-324, -744.4400719213812),
        (1.7976931348623157e308, 709.782712893384),
    ],
    "_vlog1p": [
        (0.0, 0.0),
        (-0.0, -0.0),
        (5e-324, 5e-324),
        (-5e-324, -5e-324),
        (1e-300, 1e-300),
        (-1.0, -INF),
        (-1.0000000000000002, NAN),
        (-INF, NAN),
        (INF, INF),
        (NAN, NAN),
    ],
    "_vsigmoid": [
        (0.0, 0.5),
        (-0.0, 0.5),
        (INF, 1.0),
        (-INF, 0.0),
        (NAN, NAN),
        (40.0, 1.0),
        (800.0, 1.0),
        (-800.0, 0.0),
    ],
    "_vsoftplus": [
        (0.0, math.log(2.0)),
        (INF, INF),
        (-INF, 0.0),
        (NAN, NAN),
        (40.0, 40.0),
        (800.0, 800.0),
        (1e308, 1e308),
        (-800.0, 0.0),
    ],
    "_vtanh": [
        (0.0, 0.0),
        (-0.0, -0.0),
        (5e-324, 5e-324),
        (-1e-300, -1e-300),
        (20.0, 1.0),
        (-20.0, -1.0),
        (INF, 1.0),
        (-INF, -1.0),
        (NAN, NAN),
    ],
}


def same_float(a, b):
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1.0, a) == math.copysign(1.0, b))


# ---- float32's accuracy (a float32 module's hidden activations) ----
# name -> (the exact function's name in MPMATH, largest relative error allowed: measured 2.6e-10 for exp_single and
# 2.7e-10 for sigmoid_single, 1.1e-8 for tanh_single (from 9.5 on it returns 1, as float32 rounds tanh there))
SINGLE = {"_vexp_single": ("_vexp", 1e-9), "_vtanh_single": ("_vtanh", 1.2e-8), "_vsigmoid_single": ("_vsigmoid", 1e-9)}


def float32_ulps(a, b):
    """How many float32 steps apart two float32 arrays are (same-sign values)."""
    return np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64))


@pytest.mark.parametrize("name", sorted(SINGLE))
def test_single_functions_are_within_a_float32_ulp_over_float32_inputs(vm, name):
    """On float32 inputs spread over the whole domain (as a float32 module's units get them), the value to float32's
    accuracy, rounded to float32, is within 1 ulp of mpmath's exact value rounded to float32."""
    exact_name, relative_bound = SINGLE[name]
    with np.errstate(over="ignore"):
        points = domain_points(exact_name, 4000, seed=2).astype(np.float32)
    points = points[np.isfinite(points)].astype(np.float64)
    values = apply(getattr(vm, name), points)
    _, worst_relative = errors(exact_name, points, values)
    assert worst_relative <= relative_bound
    with mpmath.workdps(50):
        exact = np.array([float(MPMATH[exact_name](mpmath.mpf(x))) for x in points.tolist()])
    with np.errstate(over="ignore"):
        got, want = values.astype(np.float32), exact.astype(np.float32)
    assert np.all((got == want) | (float32_ulps(got, want) <= 1))  # (== for infinities, and 0 against -0)


@pytest.mark.parametrize("name", sorted(SINGLE))
def test_single_functions_special_values_as_their_float64_ones(vm, name):
    """+-0, +-inf and NaN give what the float64 function gives (exp's overflow to inf and underflow to 0 too)."""
    single, double = getattr(vm, name), getattr(vm, SINGLE[name][0])
    points = [0.0, -0.0, INF, -INF, NAN, 710.0, -746.0, 1e300, -1e300]
    for point, looped in zip(points, apply(single, np.array(points)).tolist()):
        assert same_float(single(point), double(point)), (point, single(point), double(point))
        assert same_float(looped, double(point)), point


@pytest.mark.parametrize("name", sorted(SPECIAL_VALUES))
def test_special_values_exactly(vm, name):
    function = getattr(vm, name)
    points, expected_values = zip(*SPECIAL_VALUES[name])
    in_loop = apply(function, np.array(points))
    for point, expected, looped in zip(points, expected_values, in_loop.tolist()):
        assert same_float(function(point), expected), (point, function(point), expected)
        assert same_float(looped, expected), (point, looped, expected)


@pytest.mark.parametrize("name", sorted(MPMATH))
def test_loop_and_caller_fastmath_change_no_bit(vm, name):
    """Inlined into a vectorized loop, with or without the caller's fastmath, each function gives the scalar call's bits."""
    function = getattr(vm, name)
    points = domain_points(name, 2000, seed=2)
    scalar = np.array([function(point) for point in points.tolist()])
    for fastmath in (False, True):
        looped = vector_loop(function, fastmath)(points)
        np.testing.assert_array_equal(looped.view(np.int64), scalar.view(np.int64))


def test_numpy_agrees_at_the_edges(vm):
    """The exp/log/log1p/tanh edge cases also as NumPy computes them, on the bench's edge list."""
    points = np.array(EDGES)
    pairs = {"_vexp": np.exp, "_vlog": np.log, "_vlog1p": np.log1p, "_vtanh": np.tanh}
    with np.errstate(all="ignore"):
        for name, numpy_function in pairs.items():
            ours, theirs = apply(getattr(vm, name), points), numpy_function(points)
            np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
            np.testing.assert_array_equal(np.isinf(ours), np.isinf(theirs))
            finite = np.isfinite(theirs)
            np.testing.assert_allclose(ours[finite], theirs[finite], rtol=4e-16, atol=5e-324)


def exact_logaddexp(a, b):
    with mpmath.workdps(50):
        return mpmath.log(mpmath.exp(mpmath.mpf(a)) + mpmath.exp(mpmath.mpf(b)))


def test_logaddexp_and_logsumexp_against_mpmath(vm):
    """Error within 2 ulp of the larger of |max(a, b)| and |result|: top + log(total) adds two rounded terms."""
    rng = np.random.default_rng(3)
    a = np.concatenate([rng.uniform(-50, 50, 500), rng.uniform(-800, 800, 200), 10.0 ** rng.uniform(-20, 2, 200)])
    b = np.concatenate([a[:500] + rng.normal(0, 3, 500), rng.uniform(-800, 800, 200), -a[700:]])
    for x, y in zip(a.tolist(), b.tolist()):
        exact = exact_logaddexp(x, y)
        scale = math.ulp(max(abs(x), abs(y), abs(float(exact))))
        for value in (vm._vlogaddexp(x, y), vm._vlogsumexp((x, y))):
            assert abs(mpmath.mpf(value) - exact) <= 2 * scale, (x, y, value, exact)


@pytest.mark.parametrize(
    "a, b",
    [
        (-INF, -INF),
        (INF, INF),
        (INF, -INF),
        (-INF, 3.0),
        (NAN, 1.0),
        (1.0, NAN),
        (2.0, 2.0),
        (1000.0, 0.0),
        (-1000.0, -1000.0),
    ],
)
def test_logaddexp_special_values_as_numpy(vm, a, b):
    with np.errstate(invalid="ignore"):
        expected = float(np.logaddexp(a, b))
    assert same_float(vm._vlogaddexp(a, b), expected)
    if not (math.isnan(a) or math.isnan(b)):  # max() of a tuple with a NaN depends on the order
        assert same_float(vm._vlogsumexp((a, b)), expected)


def test_logsumexp_finish_returns_an_infinite_top(vm):
    assert vm._vlogsumexp_finish(-INF, NAN) == -INF
    assert vm._vlogsumexp_finish(INF, NAN) == INF
    with mpmath.workdps(50):
        assert abs(vm._vlogsumexp_finish(2.0, 3.0) - (2 + mpmath.log(3))) <= math.ulp(3.0)


def host_has_avx2():
    features = llvmlite.binding.get_host_cpu_features()
    return features.get("avx2", False) and features.get("fma", False)


@pytest.mark.skipif(not host_has_avx2(), reason="this CPU has no AVX2/FMA to vectorize with")
@pytest.mark.parametrize("name", sorted(MPMATH))
def test_a_loop_over_an_array_vectorizes(vm, name):
    loop = vector_loop(getattr(vm, name), False)
    loop(np.linspace(0.5, 2.0, 64))
    asm = loop.inspect_asm(loop.signatures[0])
    packed_fma = re.findall(r"vfmadd\w*pd\s[^\n]*%[yz]mm", asm)
    assert len(packed_fma) >= 4, "no packed FMA on ymm/zmm registers: the loop did not vectorize"
    llvm_ir = loop.inspect_llvm(loop.signatures[0])
    assert not re.search(r"call [^\n]*@(llvm\.)?(exp|log|tanh)[\w.]*\(", llvm_ir), "a libm call is left in the loop"


@pytest.mark.skipif(not host_has_avx2(), reason="this CPU has no AVX2/FMA to vectorize with")
def test_a_sum_vectorizes_when_the_caller_allows_reassociation(vm):
    """A BCE-like sum of softplus: reassoc on the calling loop vectorizes it and leaves softplus exact."""
    softplus = vm._vsoftplus

    @numba.njit(error_model="numpy", fastmath={"reassoc", "contract"})
    def summed_loss(z, y):
        total = 0.0
        for i in range(z.shape[0]):
            total += softplus(z[i]) - y[i] * z[i]
        return total

    rng = np.random.default_rng(4)
    z, y = rng.uniform(-30.0, 30.0, 4096), (rng.random(4096) < 0.5) * 1.0
    exact = math.fsum(softplus(a) - b * a for a, b in zip(z.tolist(), y.tolist()))
    assert summed_loss(z, y) == pytest.approx(exact, rel=1e-13)
    asm = summed_loss.inspect_asm(summed_loss.signatures[0])
    assert len(re.findall(r"vfmadd\w*pd\s[^\n]*%[yz]mm", asm)) >= 4


def test_modules_import_the_runtime_functions_under_their_generated_names():
    assert vecmath.imported_names({"_vsigmoid", "_vexp"}) == "exp as _vexp, sigmoid as _vsigmoid"
    assert vecmath.imported_names(set()) == ""
    with pytest.raises(ValueError, match="no function _vcos"):
        vecmath.imported_names(["_vexp", "_vcos"])


def test_the_runtime_module_imports_numpy_and_numba_only():
    """It is part of the runtime a standalone build copies beside a module (no symcompile, SymPy or Jinja)."""
    source = open(runtime_vecmath.__file__, encoding="utf-8").read()
    imported = set(re.findall(r"^(?:from|import) (\S+)", source, flags=re.M))
    assert imported == {"math", "numba", "numba.extending", "numpy"}


def exact_logsumexp(column):
    with mpmath.workdps(50):
        return mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(z)) for z in column))


def test_a_blocks_logsumexp_and_softmax_sums():
    """Each column's logsumexp within 2 ulp of the larger of |max| and |result| (as logaddexp), the infinite
    columns as NumPy's; the targets as rows, 0 in the padding, and their sums."""
    rng = np.random.default_rng(5)
    block, count = 8, 6
    zs = np.ascontiguousarray(rng.uniform(-40.0, 40.0, (3, block)))
    zs[:, 1] = -INF
    zs[0, 2] = INF
    Y = np.eye(3)[rng.integers(3, size=10)] * rng.uniform(0.5, 1.5, (10, 1))
    lse, targets, ysum = runtime_vecmath.softmax_targets(zs, Y, 4, count, block)
    np.testing.assert_array_equal(lse, runtime_vecmath.logsumexp_columns(zs, block))
    assert lse[1] == -INF and lse[2] == INF
    for s in (0, *range(3, block)):
        exact = exact_logsumexp(zs[:, s].tolist())
        scale = math.ulp(max(abs(zs[:, s].max()), abs(float(exact))))
        assert abs(mpmath.mpf(lse[s]) - exact) <= 2 * scale, (s, lse[s], exact)
    np.testing.assert_array_equal(targets[:, :count], Y[4 : 4 + count].T)
    np.testing.assert_array_equal(targets[:, count:], 0.0)
    np.testing.assert_array_equal(ysum, targets.sum(axis=0))


PROBE = """
import sys
from symcompile import vecmath
points = [float(p) for p in sys.argv[1].split(",")]
for name in sys.argv[2].split(","):
    print(name, [getattr(vecmath, name)(p).hex() for p in points])
print("pair", vecmath._vlogaddexp(1.5, -2.0).hex(), vecmath._vlogsumexp((1.5, -2.0, 3.0)).hex())
"""


@pytest.mark.slow
def test_a_fresh_compile_and_a_cached_load_give_these_bits(vm, tmp_path):
    """In a new process with an empty Numba cache (a compile), then in another on that cache (a load), the
    functions compute the same bits as in this one, and the first process wrote the cache."""
    names = sorted(MPMATH)
    points = [0.3, -2.5, 40.0, 1e-300, 700.0]
    cache = tmp_path / "numba_cache"
    expected = [f"{name} {[getattr(vm, name)(p).hex() for p in points]}" for name in names]
    expected.append(f"pair {vm._vlogaddexp(1.5, -2.0).hex()} {vm._vlogsumexp((1.5, -2.0, 3.0)).hex()}")
    for _ in range(2):
        run = subprocess.run([sys.executable, "-c", PROBE, ",".join(map(repr, points)), ",".join(names)],
                             capture_output=True, text=True, env=dict(os.environ, NUMBA_CACHE_DIR=str(cache)),
                             timeout=300, check=True)  # fmt: skip
        assert run.stdout.splitlines() == expected
        assert any(cache.rglob("*.nbi")), "cache=True wrote nothing to the temp cache"
