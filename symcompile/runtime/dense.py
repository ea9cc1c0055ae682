"""The dense MLP kernels' layer loops, written once for every network, compiled once per machine (issue 20).

A dense module holds only what depends on its network: the per-block functions generated from SymPy (the hidden
activation and its derivative, the output, the output loss; `templates/dense_kernels.py.j2`), its layer table
and two thin kernels. The loops here run the layers over blocks of samples, the sample index innermost, reading
the network's shape from the table (a row per weight layer: n_in, n_out, where its weights start in w, where its
biases start or -1 for the shared w0, whether it multiplies through BLAS) and calling the per-block functions
through `numba.types.FunctionType` arguments, one call per layer and block. The block size is a compile-time
constant of each compiled loop (`loops(block, blas)`): as a run-time value, the matrix loops ran 20% slower.

How a module's kernel calls them: as a Numba function, a loop's code would be linked into every kernel that calls
it and optimized and compiled again there, per model, and Numba's conversion of a dispatcher to a function
pointer embeds the dispatcher's address, which Numba refuses to cache. So the loops and the per-block functions
are registered with LLVM under names of their own (as Numba registers its C helpers) and a kernel calls them by
name (`forward`, `loss_and_grad`): its compiled code holds no address, its cache entry stays valid in every
process, and it compiles in a few hundredths of a second. A module registers its per-block functions, and the
loops it uses, when it is imported (`prepare`), before any of its kernels is compiled or loaded.

A short last block of at most half a block (a mini-batch of 32 in blocks of 64) runs as a block of half the size:
its padding would double the work (benchmarks/minibatch_steps/RESULTS.md).

Calls with much work split the blocks into chunks, a number that depends on the samples only, each with its own
partial gradient, summed in chunk order: the result is the same on any number of threads. The chunks run on
Python's threads (the loops release the GIL), `numba.get_num_threads()` of them, the calling thread one of them,
each taking the next chunk when it is free (`_run_chunks`): on a busy machine a thread that gets no core takes no
chunk, and one that loses its core mid-chunk has that chunk computed again by the calling thread, so the call
takes about as long as on one thread, never waiting for a helper. Numba's `parallel=True` would compile for
seconds more, per block size, and its workers wait for each other.
On one thread (`numba.get_num_threads()`, read through Python once a call) the chunks run one after the other in
the compiled loop itself, each into its partial gradient as on threads: the same bits, without the trip through
Python (which cost 7-8% of a call of 16 chunks). On more, whether the chunks go on threads or run so is measured
per call shape (`_Ways`): the way that ran faster lately is taken, the other tried again now and then, since two
threads on this machine's two cores did 0.7x one thread's time when it was quiet and 1.1x when it was busy.

Measured (benchmarks/dense_runtime/README.md): digits' kernels compile in 1.8 s per model instead of 4.1 s (the
loops here, 3.3 s, once per machine and block size), and run 2-5% slower than the per-model loops they replace,
with the same results to the last bit or two. The register-blocked products (benchmarks/dense_products/RESULTS.md)
run 1.5-5x faster than the loops of one row, with the same results to the last bit, and made the loops' compile,
once per machine and block size, 13 s instead of 6 s.
"""

import collections
import concurrent.futures
import functools
import itertools
import re
import statistics
import threading
import time
import warnings

import llvmlite.binding
import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.core.errors import NumbaWarning
from numba.extending import intrinsic, overload
from numba.np.arrayobj import make_array, populate_array

from .errors import StaleModule
from .pointers import function_value

# The loops' arguments and what the table's columns mean: a module built for another version is refused when
# imported (its cached kernels name loops this runtime does not register).
VERSION = 2

MATRIX = types.float64[:, ::1]
VECTOR = types.float64[::1]
LAYERS = types.Array(types.int64, 2, "C", readonly=True)  # a module's table: a global, so read-only in Numba
N_IN, N_OUT, WEIGHTS_AT, BIAS_AT, BLAS = range(5)

# The per-block functions: hidden(z, act, dact); output(z, start, count, out); output_loss(z, Y, start, count,
# delta, lane_loss) (a block's activations are (units, block) arrays; `count` of its samples are real).
HIDDEN = types.FunctionType(types.void(MATRIX, MATRIX, MATRIX))
OUTPUT = types.FunctionType(types.void(MATRIX, types.int64, types.int64, MATRIX))
OUTPUT_LOSS = types.FunctionType(types.void(MATRIX, MATRIX, types.int64, types.int64, MATRIX, VECTOR))
BLOCK_FUNCTIONS = (HIDDEN, OUTPUT, OUTPUT_LOSS)

# forward(hidden, output, layers, w, X, out, first, stop, chunks): the outputs of blocks first..stop-1 into out;
# loss_and_grad(hidden, output_loss, layers, w, X, Y, g, first, stop, chunks) -> the summed loss of those blocks,
# their gradient added into g; in `chunks` chunks on threads where it is more than 1.
FORWARD = types.void(HIDDEN, OUTPUT, LAYERS, VECTOR, MATRIX, MATRIX, types.int64, types.int64, types.int64)
LOSS_AND_GRAD = types.float64(HIDDEN, OUTPUT_LOSS, LAYERS, VECTOR, MATRIX, MATRIX, VECTOR, types.int64, types.int64,
                              types.int64)  # fmt: skip

# A float32 module (dtype="float32", twice the SIMD width) hands the loops per-block functions over float32 blocks;
# what the loops take from its kernels stays float64: the weights (copied into float32 once per call), the data
# (converted as each block is loaded, the copy the loops make anyway), the gradient (each block's sums in float32,
# added into the float64 gradient) and the loss (each sample's in float64 from its float32 outputs, summed in
# float64). Its loops are compiled, once per machine, only where a float32 module is imported.
DTYPES = {"float64": np.float64, "float32": np.float32}
MATRIX32 = types.float32[:, ::1]
HIDDEN32 = types.FunctionType(types.void(MATRIX32, MATRIX32, MATRIX32))
OUTPUT32 = types.FunctionType(types.void(MATRIX32, types.int64, types.int64, MATRIX))
OUTPUT_LOSS32 = types.FunctionType(types.void(MATRIX32, MATRIX, types.int64, types.int64, MATRIX32, VECTOR))
FORWARD32 = types.void(HIDDEN32, OUTPUT32, *FORWARD.args[2:])
LOSS_AND_GRAD32 = types.float64(HIDDEN32, OUTPUT_LOSS32, *LOSS_AND_GRAD.args[2:])
# By dtype: the per-block functions' types (hidden, output, output_loss), and the loops' signatures.
BLOCK_TYPES = {"float64": BLOCK_FUNCTIONS, "float32": (HIDDEN32, OUTPUT32, OUTPUT_LOSS32)}
LOOP_SIGNATURES = {"float64": (FORWARD, LOSS_AND_GRAD), "float32": (FORWARD32, LOSS_AND_GRAD32)}

# The matrix loops are compiled for each block size (`numba.literally`: the size is a constant in their code, as
# it was in each module's copy; as a run-time value, 20% slower) and called, not inlined: inlined
# into the layer loops, they ran 20% slower. The small helpers are inlined.
BLOCK_LOOP = dict(cache=True, error_model="numpy", fastmath={"contract"})
HELPER = dict(cache=True, error_model="numpy", forceinline=True)


@numba.njit(**BLOCK_LOOP)
def load_inputs(X, start, count, a, block):
    """a[i, s] = X[start + s, i] for the block's samples; 0 for the padding of a short last block."""
    numba.literally(block)
    for i in range(a.shape[0]):
        for s in range(count):
            a[i, s] = X[start + s, i]
        for s in range(count, block):
            a[i, s] = 0.0


# The matrix loops are register-blocked (benchmarks/dense_products/RESULTS.md): a pass over the block's samples
# computes two output rows from eight inputs (each input row loaded once for both, sixteen multiply-adds per
# load and store of the output rows, which stay in L1), where one row and four inputs were bound by the loads and
# stores; a layer of fewer than four inputs (2-16-16-1's first) takes one pass per row, its bias included.
# Each element's sum keeps its order: the bias, then each group of four inputs summed left to right and added,
# then the last inputs one by one. So the results are the same to the last bit as the loops of one row.
@numba.njit(**BLOCK_LOOP)
def affine(W, bias, a, z, block):
    """z[j, :] = bias[j] + sum_i W[i, j] * a[i, :], as multiply-adds over the block's samples."""
    numba.literally(block)
    if a.shape[0] < 4:  # (a loop of its own: inlined here, its code made the other loop 40% slower)
        affine_few_inputs(W, bias, a, z, block)
    else:
        affine_pairs(W, bias, a, z, block)


@numba.njit(**BLOCK_LOOP)
def affine_few_inputs(W, bias, a, z, block):
    """affine for 1-3 inputs: each row in one pass."""
    numba.literally(block)
    n_in = a.shape[0]
    for j in range(z.shape[0]):
        b = bias[j]
        if n_in == 1:
            w0 = W[0, j]
            for s in range(block):
                z[j, s] = b + w0 * a[0, s]
        elif n_in == 2:
            w0, w1 = W[0, j], W[1, j]
            for s in range(block):
                z[j, s] = (b + w0 * a[0, s]) + w1 * a[1, s]
        else:
            w0, w1, w2 = W[0, j], W[1, j], W[2, j]
            for s in range(block):
                z[j, s] = ((b + w0 * a[0, s]) + w1 * a[1, s]) + w2 * a[2, s]


@numba.njit(**BLOCK_LOOP)
def affine_pairs(W, bias, a, z, block):
    """affine two rows at a time, eight inputs a pass (then four, then one by one); an odd last row alone."""
    numba.literally(block)
    n_in, n_out = a.shape[0], z.shape[0]
    n_fours = n_in - n_in % 4
    n_eights = n_fours - n_fours % 8
    for j in range(0, n_out - n_out % 2, 2):
        b0, b1 = bias[j], bias[j + 1]
        for s in range(block):
            z[j, s] = b0
            z[j + 1, s] = b1
        for i in range(0, n_eights, 8):
            u0, u1, u2, u3, u4, u5, u6, u7 = (W[i, j], W[i + 1, j], W[i + 2, j], W[i + 3, j], W[i + 4, j],
                                              W[i + 5, j], W[i + 6, j], W[i + 7, j])  # fmt: skip
            v0, v1, v2, v3, v4, v5, v6, v7 = (W[i, j + 1], W[i + 1, j + 1], W[i + 2, j + 1], W[i + 3, j + 1],
                                              W[i + 4, j + 1], W[i + 5, j + 1], W[i + 6, j + 1], W[i + 7, j + 1])  # fmt: skip
            for s in range(block):
                x0, x1, x2, x3 = a[i, s], a[i + 1, s], a[i + 2, s], a[i + 3, s]
                x4, x5, x6, x7 = a[i + 4, s], a[i + 5, s], a[i + 6, s], a[i + 7, s]
                z[j, s] = (z[j, s] + (u0 * x0 + u1 * x1 + u2 * x2 + u3 * x3)) + (u4 * x4 + u5 * x5 + u6 * x6 + u7 * x7)
                z[j + 1, s] = ((z[j + 1, s] + (v0 * x0 + v1 * x1 + v2 * x2 + v3 * x3))
                               + (v4 * x4 + v5 * x5 + v6 * x6 + v7 * x7))  # fmt: skip
        for i in range(n_eights, n_fours, 4):
            u0, u1, u2, u3 = W[i, j], W[i + 1, j], W[i + 2, j], W[i + 3, j]
            v0, v1, v2, v3 = W[i, j + 1], W[i + 1, j + 1], W[i + 2, j + 1], W[i + 3, j + 1]
            for s in range(block):
                x0, x1, x2, x3 = a[i, s], a[i + 1, s], a[i + 2, s], a[i + 3, s]
                z[j, s] += u0 * x0 + u1 * x1 + u2 * x2 + u3 * x3
                z[j + 1, s] += v0 * x0 + v1 * x1 + v2 * x2 + v3 * x3
        for i in range(n_fours, n_in):
            u, v = W[i, j], W[i, j + 1]
            for s in range(block):
                z[j, s] += u * a[i, s]
                z[j + 1, s] += v * a[i, s]
    if n_out % 2:
        j = n_out - 1
        for s in range(block):
            z[j, s] = bias[j]
        for i in range(0, n_fours, 4):
            w0, w1, w2, w3 = W[i, j], W[i + 1, j], W[i + 2, j], W[i + 3, j]
            for s in range(block):
                z[j, s] += w0 * a[i, s] + w1 * a[i + 1, s] + w2 * a[i + 2, s] + w3 * a[i + 3, s]
        for i in range(n_fours, n_in):
            wij = W[i, j]
            for s in range(block):
                z[j, s] += wij * a[i, s]


@numba.njit(**HELPER)
def affine_blas(W, bias, a, z):
    """The same through BLAS, for wide layers."""
    np.dot(W.T, a, z)
    for j in range(z.shape[0]):
        for s in range(z.shape[1]):
            z[j, s] += bias[j]


# Four rows of delta_in at a time, four outputs a pass; its zeroing folded into the first pass, and the last 1-3
# outputs and the product with f'(z) into the last: each element's sum in the order of the loops of one row
# (0.0, plus each group of four, plus the last outputs one by one, times f'(z)), the same to the last bit.
@numba.njit(**BLOCK_LOOP)
def backprop(W, delta_out, dact, delta_in, block):
    """delta_in[i, :] = f'(z_i) * sum_j W[i, j] * delta_out[j, :]."""
    numba.literally(block)
    if delta_out.shape[0] < 4:
        backprop_few_outputs(W, delta_out, dact, delta_in, block)
    else:
        backprop_fours(W, delta_out, dact, delta_in, block)


@numba.njit(**BLOCK_LOOP)
def backprop_few_outputs(W, delta_out, dact, delta_in, block):
    """backprop for 1-3 outputs: each row in one pass."""
    numba.literally(block)
    n_out = delta_out.shape[0]
    zero = zero_of(delta_in)  # (a literal 0.0 would make a float32 module's sums float64)
    for i in range(delta_in.shape[0]):
        if n_out == 1:
            w0 = W[i, 0]
            for s in range(block):
                delta_in[i, s] = (zero + w0 * delta_out[0, s]) * dact[i, s]
        elif n_out == 2:
            w0, w1 = W[i, 0], W[i, 1]
            for s in range(block):
                delta_in[i, s] = ((zero + w0 * delta_out[0, s]) + w1 * delta_out[1, s]) * dact[i, s]
        else:
            w0, w1, w2 = W[i, 0], W[i, 1], W[i, 2]
            for s in range(block):
                delta_in[i, s] = (((zero + w0 * delta_out[0, s]) + w1 * delta_out[1, s]) + w2 * delta_out[2, s]
                                  ) * dact[i, s]  # fmt: skip


@numba.njit(**BLOCK_LOOP)
def backprop_fours(W, delta_out, dact, delta_in, block):
    """backprop for four outputs or more, four rows at a time (then one by one)."""
    numba.literally(block)
    n_out, n_in = delta_out.shape[0], delta_in.shape[0]
    n_fours = n_out - n_out % 4
    n_rows = n_in - n_in % 4
    zero = zero_of(delta_in)
    for i in range(0, n_rows, 4):
        for j in range(0, n_fours, 4):
            u0, u1, u2, u3 = W[i, j], W[i, j + 1], W[i, j + 2], W[i, j + 3]
            v0, v1, v2, v3 = W[i + 1, j], W[i + 1, j + 1], W[i + 1, j + 2], W[i + 1, j + 3]
            p0, p1, p2, p3 = W[i + 2, j], W[i + 2, j + 1], W[i + 2, j + 2], W[i + 2, j + 3]
            q0, q1, q2, q3 = W[i + 3, j], W[i + 3, j + 1], W[i + 3, j + 2], W[i + 3, j + 3]
            if j == 0:
                for s in range(block):
                    x0, x1, x2, x3 = delta_out[0, s], delta_out[1, s], delta_out[2, s], delta_out[3, s]
                    delta_in[i, s] = zero + (u0 * x0 + u1 * x1 + u2 * x2 + u3 * x3)
                    delta_in[i + 1, s] = zero + (v0 * x0 + v1 * x1 + v2 * x2 + v3 * x3)
                    delta_in[i + 2, s] = zero + (p0 * x0 + p1 * x1 + p2 * x2 + p3 * x3)
                    delta_in[i + 3, s] = zero + (q0 * x0 + q1 * x1 + q2 * x2 + q3 * x3)
            else:
                for s in range(block):
                    x0, x1, x2, x3 = delta_out[j, s], delta_out[j + 1, s], delta_out[j + 2, s], delta_out[j + 3, s]
                    delta_in[i, s] += u0 * x0 + u1 * x1 + u2 * x2 + u3 * x3
                    delta_in[i + 1, s] += v0 * x0 + v1 * x1 + v2 * x2 + v3 * x3
                    delta_in[i + 2, s] += p0 * x0 + p1 * x1 + p2 * x2 + p3 * x3
                    delta_in[i + 3, s] += q0 * x0 + q1 * x1 + q2 * x2 + q3 * x3
        for row in range(i, i + 4):
            backprop_row_end(W, delta_out, dact, delta_in, row, n_fours, block)
    for i in range(n_rows, n_in):
        for j in range(0, n_fours, 4):
            w0, w1, w2, w3 = W[i, j], W[i, j + 1], W[i, j + 2], W[i, j + 3]
            if j == 0:
                for s in range(block):
                    delta_in[i, s] = zero + (w0 * delta_out[0, s] + w1 * delta_out[1, s] + w2 * delta_out[2, s]
                                            + w3 * delta_out[3, s])  # fmt: skip
            else:
                for s in range(block):
                    delta_in[i, s] += (w0 * delta_out[j, s] + w1 * delta_out[j + 1, s] + w2 * delta_out[j + 2, s]
                                       + w3 * delta_out[j + 3, s])  # fmt: skip
        backprop_row_end(W, delta_out, dact, delta_in, i, n_fours, block)


@numba.njit(**BLOCK_LOOP)
def backprop_row_end(W, delta_out, dact, delta_in, i, j, block):
    """delta_in[i, :] plus the last outputs j.. (0-3 of them), times f'(z): one pass. (Called, not inlined: inlined
    at its four calls, it made the loops compile 2 s longer per block size.)"""
    rest = delta_out.shape[0] - j
    if rest == 0:
        for s in range(block):
            delta_in[i, s] *= dact[i, s]
    elif rest == 1:
        w0 = W[i, j]
        for s in range(block):
            delta_in[i, s] = (delta_in[i, s] + w0 * delta_out[j, s]) * dact[i, s]
    elif rest == 2:
        w0, w1 = W[i, j], W[i, j + 1]
        for s in range(block):
            delta_in[i, s] = ((delta_in[i, s] + w0 * delta_out[j, s]) + w1 * delta_out[j + 1, s]) * dact[i, s]
    else:
        w0, w1, w2 = W[i, j], W[i, j + 1], W[i, j + 2]
        for s in range(block):
            delta_in[i, s] = (((delta_in[i, s] + w0 * delta_out[j, s]) + w1 * delta_out[j + 1, s])
                              + w2 * delta_out[j + 2, s]) * dact[i, s]  # fmt: skip


@numba.njit(**HELPER)
def backprop_blas(W, delta_out, dact, delta_in):
    np.dot(W, delta_out, delta_in)
    for i in range(delta_in.shape[0]):
        for s in range(delta_in.shape[1]):
            delta_in[i, s] *= dact[i, s]


# Sums over the block's samples: reassociation lets LLVM keep several vector accumulators. Only multiplies and
# adds here. Inlined, so that this code exists once, inside the loop that runs it: a separate copy was once
# vectorized differently in a fresh compile and in a cache load, and the gradient's last bits differed.
@numba.njit(fastmath={"contract", "reassoc"}, **HELPER)
def weight_grad(a, delta, gW, gb):
    """gW[i, j] += sum_s a[i, s] * delta[j, s]; gb[j] += sum_s delta[j, s]. Four j at a time (one load of a[i, s])."""
    n_out = delta.shape[0]
    n_fours = n_out - n_out % 4
    for i in range(a.shape[0]):
        for j in range(0, n_fours, 4):
            t0 = t1 = t2 = t3 = zero_of(a)  # a block's sums in the blocks' type (float32 or float64)
            for s in range(a.shape[1]):
                x = a[i, s]
                t0 += x * delta[j, s]
                t1 += x * delta[j + 1, s]
                t2 += x * delta[j + 2, s]
                t3 += x * delta[j + 3, s]
            gW[i, j] += t0
            gW[i, j + 1] += t1
            gW[i, j + 2] += t2
            gW[i, j + 3] += t3
        for j in range(n_fours, n_out):
            total = zero_of(a)
            for s in range(a.shape[1]):
                total += a[i, s] * delta[j, s]
            gW[i, j] += total
    bias_grad(delta, gb)


@numba.njit(fastmath={"contract", "reassoc"}, **HELPER)
def bias_grad(delta, gb):
    for j in range(delta.shape[0]):
        total = zero_of(delta)
        for s in range(delta.shape[1]):
            total += delta[j, s]
        gb[j] += total


@numba.njit(**HELPER)
def weight_grad_blas(a, delta, gW, gb, block_gW):
    np.dot(a, delta.T, block_gW)  # into a buffer kept for the whole call: no allocation per block
    for i in range(gW.shape[0]):
        for j in range(gW.shape[1]):
            gW[i, j] += block_gW[i, j]
    bias_grad(delta, gb)


@numba.njit(**HELPER)
def total(values):
    """sum(values) in index order (a loop: NumPy's sum would be one more function for Numba to compile)."""
    result = 0.0
    for value in values:
        result += value
    return result


@numba.njit(**HELPER)
def unit_offsets(layers):
    """Where each layer's input units start in a flat buffer of every layer's units (its outputs: at[l + 1]),
    and the buffer's length in units."""
    at = np.empty(layers.shape[0] + 1, np.int64)
    at[0] = 0
    for l in range(layers.shape[0]):
        at[l + 1] = at[l] + layers[l, N_IN]
    return at, at[-1] + layers[-1, N_OUT]


@intrinsic
def rows(typingctx, vector, start, n_rows, n_cols):
    """vector[start:start + n_rows * n_cols] as a C-contiguous (n_rows, n_cols) array, without a reference to the
    vector's memory: the loops make a dozen of these per block, and counting their references (two calls each
    into Numba's runtime) cost 3% of digits' time. Only for use while the vector lives, within one call."""
    if not (isinstance(vector, types.Array) and vector.ndim == 1 and vector.layout == "C"):
        return None
    matrix = types.Array(vector.dtype, 2, "C", readonly=not vector.mutable)

    def codegen(context, builder, signature, arguments):
        source = make_array(vector)(context, builder, arguments[0])
        start, n_rows, n_cols = (context.cast(builder, value, argument_type, types.intp)
                                 for value, argument_type in zip(arguments[1:], signature.args[1:]))  # fmt: skip
        itemsize = context.get_constant(types.intp, context.get_abi_sizeof(context.get_data_type(vector.dtype)))
        view = make_array(matrix)(context, builder)
        populate_array(view, data=builder.gep(source.data, [start]), shape=[n_rows, n_cols],
                       strides=[builder.mul(n_cols, itemsize), itemsize], itemsize=itemsize, meminfo=None)  # fmt: skip
        return view._getvalue()

    return matrix(vector, start, n_rows, n_cols), codegen


@intrinsic
def zero_of(typingctx, array):
    """0 of the array's element type: the loops' sums start from it, so that a float32 module's stay float32."""
    if not isinstance(array, types.Array):
        return None

    def codegen(context, builder, signature, arguments):
        return context.get_constant(array.dtype, 0)

    return array.dtype(array), codegen


@numba.njit(**HELPER)
def units(buffer, at, n, block):
    """Units at..at+n of a flat buffer, as an (n, block) array."""
    return rows(buffer, at * block, n, block)


@numba.njit(**HELPER)
def weights(w, layers, l):
    """Layer l's weight matrix (n_in x n_out) in w (or its gradient in g)."""
    return rows(w, layers[l, WEIGHTS_AT], layers[l, N_IN], layers[l, N_OUT])


def working_weights(w, real):
    """The weights the blocks multiply by, in the blocks' type `real` (np.float64 or np.float32): w itself, or a
    float32 copy (once per call, a pass over the weights). Chosen when Numba types the call: a closure that
    captured one of two compiled functions instead would not be found in Numba's cache by the next process."""


@overload(working_weights, jit_options=dict(error_model="numpy"))
def _working_weights(w, real):
    if getattr(real, "instance_type", None) == types.float64:
        return lambda w, real: w

    def float32_copy(w, real):
        w32 = np.empty(w.shape[0], np.float32)
        for j in range(w.shape[0]):
            w32[j] = w[j]
        return w32

    return float32_copy


@numba.njit(cache=True, error_model="numpy")
def chunked_call_starts(kind, block, blas, single, n_samples, n_weights, first, stop, chunks):
    """Whether a call with chunks goes onto threads (`_WAYS`), its start noted; through Python: in compiled code
    numba.get_num_threads() is a dynamic global, which Numba refuses to cache. (A few microseconds a call.)"""
    with numba.objmode(threaded="boolean"):
        threaded = start_chunked_call((kind, block, blas, single, n_samples, n_weights, first, stop, chunks))
    return threaded


@numba.njit(cache=True, error_model="numpy")
def chunked_call_ends():
    """The end of the call `chunked_call_starts` began: its time, for `_WAYS`."""
    with numba.objmode():
        end_chunked_call()


@numba.njit(**HELPER)
def chunk_blocks(first, stop, chunks, c):
    """Chunk c of blocks first..stop-1 split into `chunks` consecutive chunks: (its first block, its stop). The
    compiled loop on one thread and the threaded path (`_chunks`) split alike, so their partial sums are the same."""
    n = stop - first
    return first + c * n // chunks, first + (c + 1) * n // chunks


@numba.njit(**HELPER)
def largest_layer(layers):
    """The most weights in one layer."""
    largest = 0
    for l in range(layers.shape[0]):
        largest = max(largest, layers[l, N_IN] * layers[l, N_OUT])
    return largest


@numba.njit(**HELPER)
def biases(w, layers, at):
    """Every layer's biases side by side (layer l's from at[l + 1] - at[1]): per-neuron from w, or n_in * w[0]
    for the shared bias (w0 enters each unit's z once per incoming edge)."""
    b = np.empty(at[-1] - at[1] + layers[-1, N_OUT], w.dtype)
    for l in range(layers.shape[0]):
        first, bias_at = at[l + 1] - at[1], layers[l, BIAS_AT]
        for j in range(layers[l, N_OUT]):
            b[first + j] = w[bias_at + j] if bias_at >= 0 else layers[l, N_IN] * w[0]
    return b


def _layer_loops(block, blas, dtype="float64"):
    """The forward and loss-and-gradient loops over blocks of `block` samples, as Python functions; `blas`:
    whether a layer may go through BLAS (np.dot, which needs SciPy), else that code is not even compiled;
    `dtype`: the blocks' type (DTYPES), float32 for a float32 module, whose weights are copied into it per call.

    A block's activations sit in flat buffers, a row of `block` values per unit: `a` holds the inputs and every
    hidden layer's outputs (layer l reads units at[l]..at[l + 1] - 1), `z`, `d` and `delta` every layer's
    pre-activations, f'(z) and d loss / d z (layer l's from at[l + 1] - at[1])."""
    real, single = DTYPES[dtype], dtype == "float32"

    def forward(hidden, output, layers, w, X, out, first, stop, chunks):
        # Through Python onto threads, where there are chunks and they go on threads (each chunk comes back here as
        # one); else one pass: each block's outputs are its own, whatever the chunks.
        timed = chunks > 1
        if timed and chunked_call_starts(0, block, blas, single, X.shape[0], w.shape[0], first, stop, chunks):
            block_size, with_blas, hidden_at, output_at = block, blas, address(hidden), address(output)
            in_float32 = single
            with numba.objmode():
                forward_threaded(block_size, with_blas, hidden_at, output_at, layers, w, X, out, first, stop, chunks,
                                 in_float32)  # fmt: skip
            chunked_call_ends()
            return
        ws = working_weights(w, real)  # the weights the blocks multiply by
        at, n_units = unit_offsets(layers)
        last = layers.shape[0] - 1
        a = np.empty(n_units * block, real)
        z, d = np.empty((n_units - at[1]) * block, real), np.empty((n_units - at[1]) * block, real)
        b = biases(ws, layers, at)
        for index in range(first, stop):
            start = index * block
            count = min(block, X.shape[0] - start)
            load_inputs(X, start, count, units(a, 0, layers[0, N_IN], block), block)
            for l in range(last + 1):
                n_in, n_out, out_at = layers[l, N_IN], layers[l, N_OUT], at[l + 1] - at[1]
                z_l, a_in = units(z, out_at, n_out, block), units(a, at[l], n_in, block)
                if blas and layers[l, BLAS]:
                    affine_blas(weights(ws, layers, l), b[out_at:], a_in, z_l)
                else:
                    affine(weights(ws, layers, l), b[out_at:], a_in, z_l, block)
                if l < last:
                    hidden(z_l, units(a, at[l + 1], n_out, block), units(d, out_at, n_out, block))
            output(units(z, at[last + 1] - at[1], layers[last, N_OUT], block), start, count, out)
        if timed:
            chunked_call_ends()

    # A block of at most `narrow` samples (a mini-batch of 32 in blocks of 64) runs as a block of `narrow`: its
    # padding would double the work. Not where a layer goes through BLAS (np.dot's code is compiled per block).
    narrow = block // 2 if block % 2 == 0 and not blas else 0

    def loss_and_grad(hidden, output_loss, layers, w, X, Y, g, first, stop, chunks):
        timed = chunks > 1
        if timed and chunked_call_starts(1, block, blas, single, X.shape[0], w.shape[0], first, stop, chunks):
            # Through Python, onto threads: each chunk comes back here as one
            block_size, with_blas, hidden_at, output_loss_at = block, blas, address(hidden), address(output_loss)
            in_float32 = single
            with numba.objmode(loss="float64"):
                loss = loss_and_grad_threaded(block_size, with_blas, hidden_at, output_loss_at, layers, w, X, Y, g,
                                              first, stop, chunks, in_float32)  # fmt: skip
            chunked_call_ends()
            return loss
        ws = working_weights(w, real)  # the weights the blocks multiply by
        at, n_units = unit_offsets(layers)
        last = layers.shape[0] - 1
        n_out_units = n_units - at[1]
        a, z = np.empty(n_units * block, real), np.empty(n_out_units * block, real)
        d, delta = np.empty(n_out_units * block, real), np.empty(n_out_units * block, real)
        b = biases(ws, layers, at)
        gb_shared = np.empty(n_out_units)  # the shared bias's per-unit gradients, summed into g[0] at a chunk's end
        block_gW = np.empty(largest_layer(layers) if blas else 0, real)  # one block's weight gradient from BLAS
        lane_loss = np.empty(block)  # one running sum per sample slot: no reduction in the block loops
        # One chunk into g; or, on one thread, the chunks one after the other, each into its own partial gradient
        # added into g in chunk order, as the threaded path adds them (the same bits), without its trip through
        # Python.
        partial = g if chunks == 1 else np.empty(g.shape[0])
        loss = 0.0
        for c in range(chunks):
            if chunks > 1:
                partial[:] = 0.0
            gb_shared[:] = 0.0
            lane_loss[:] = 0.0
            chunk_first, chunk_stop = chunk_blocks(first, stop, chunks, c)
            for index in range(chunk_first, chunk_stop):
                start = index * block
                count = min(block, X.shape[0] - start)
                if narrow and count <= narrow:  # (only the last block can be short: this runs once a call at most)
                    block_loss_and_grad(hidden, output_loss, layers, ws, X, Y, partial, start, count, at, a, z, d,
                                        delta, b, gb_shared, block_gW, lane_loss, narrow, blas)  # fmt: skip
                else:
                    block_loss_and_grad(hidden, output_loss, layers, ws, X, Y, partial, start, count, at, a, z, d,
                                        delta, b, gb_shared, block_gW, lane_loss, block, blas)  # fmt: skip
            for l in range(last + 1):
                if layers[l, BIAS_AT] < 0:  # w0 enters each unit's z once per incoming edge
                    out_at = at[l + 1] - at[1]
                    partial[0] += layers[l, N_IN] * total(gb_shared[out_at : out_at + layers[l, N_OUT]])
            loss += total(lane_loss)
            if chunks > 1:
                for j in range(g.shape[0]):
                    g[j] += partial[j]
        if timed:
            chunked_call_ends()
        return loss

    return forward, loss_and_grad


# Inlined by Numba where it is called, the loop's constants `block` and `blas` stay constants in it: the matrix
# loops are compiled for the block, and np.dot's code is left out without BLAS. (As a function of its
# own taking them as literals, the loops compiled in 14 s instead of 10 s; the loops before, 7 s, on a busy
# machine.)
@numba.njit(inline="always", error_model="numpy")
def block_loss_and_grad(hidden, output_loss, layers, w, X, Y, g, start, count, at, a, z, d, delta, b, gb_shared,
                        block_gW, lane_loss, block, blas):  # fmt: skip
    """One block's loss and gradient, added into g and lane_loss (the body of the loss-and-gradient loop), in
    blocks of `block` samples: the loop's block size, or the narrow size for a short block (at most half a block),
    so that the matrix loops and the per-block functions run over no more padding than that."""
    last = layers.shape[0] - 1
    load_inputs(X, start, count, units(a, 0, layers[0, N_IN], block), block)
    for l in range(last + 1):
        n_in, n_out, out_at = layers[l, N_IN], layers[l, N_OUT], at[l + 1] - at[1]
        z_l, a_in = units(z, out_at, n_out, block), units(a, at[l], n_in, block)
        if blas and layers[l, BLAS]:
            affine_blas(weights(w, layers, l), b[out_at:], a_in, z_l)
        else:
            affine(weights(w, layers, l), b[out_at:], a_in, z_l, block)
        if l < last:
            hidden(z_l, units(a, at[l + 1], n_out, block), units(d, out_at, n_out, block))
    out_at = at[last + 1] - at[1]
    output_loss(units(z, out_at, layers[last, N_OUT], block), Y, start, count,
                units(delta, out_at, layers[last, N_OUT], block), lane_loss)  # fmt: skip
    for l in range(last, -1, -1):
        n_in, n_out, bias_at, out_at = layers[l, N_IN], layers[l, N_OUT], layers[l, BIAS_AT], at[l + 1] - at[1]
        gb = g[bias_at : bias_at + n_out] if bias_at >= 0 else gb_shared[out_at : out_at + n_out]
        a_in, delta_l = units(a, at[l], n_in, block), units(delta, out_at, n_out, block)
        if blas and layers[l, BLAS]:
            block_gW_l = rows(block_gW, 0, n_in, n_out)
            weight_grad_blas(a_in, delta_l, weights(g, layers, l), gb, block_gW_l)
        else:
            weight_grad(a_in, delta_l, weights(g, layers, l), gb)
        if l > 0:
            delta_in, dact = units(delta, at[l] - at[1], n_in, block), units(d, at[l] - at[1], n_in, block)
            if blas and layers[l, BLAS]:
                backprop_blas(weights(w, layers, l), delta_l, dact, delta_in)
            else:
                backprop(weights(w, layers, l), delta_l, dact, delta_in, block)


# ---- compiled once per machine for each block size, registered under names of their own ----------------------

LOOP = dict(cache=True, error_model="numpy", nogil=True)  # nogil: the threaded path runs chunks on Python's threads
# The loops' threaded path goes through Python (an object-mode block) by design; Numba warns about object mode in a
# function that releases the GIL, in every process that runs it. Only that warning, and only from this file.
warnings.filterwarnings("ignore", "Code running in object mode won't allow parallel execution", NumbaWarning,
                        re.escape(__file__.removesuffix(".py")) + "$")  # fmt: skip


def loops(block, blas, dtype="float64"):
    """The compiled (or cached) forward and loss-and-gradient loops for blocks of `block` samples, registered
    under `symbol`'s names. One set per block size (and BLAS or not, and dtype): a closure over three constants,
    each set its own entry in Numba's cache. A dtype's loops are compiled when a module of that dtype first asks."""
    return _loops(block, bool(blas), dtype)


@functools.cache
def _loops(block, blas, dtype):
    forward, loss_and_grad = _layer_loops(block, blas, dtype)
    signatures = LOOP_SIGNATURES[dtype]
    compiled = numba.njit(signatures[0], **LOOP)(forward), numba.njit(signatures[1], **LOOP)(loss_and_grad)
    for function, signature in zip(compiled, signatures):
        _register(function, signature, symbol(function.py_func.__name__, block, blas, dtype))
    return compiled


def symbol(name, block, blas, dtype="float64"):
    """The name a loop is registered under: this module's (a standalone copy has another), the loop's, its block
    size, BLAS, the blocks' dtype (float32 only: float64's names are those of before), and the version of the
    loops' arguments."""
    suffix = ".float32" if dtype == "float32" else ""
    return f"{__name__}.{name}.v{VERSION}.block{block}{'.blas' if blas else ''}{suffix}"


def block_symbol(function):
    """The name a module's per-block function is registered under: its module's (derived from the module's
    content, symcompile/emit.py) and its own."""
    return f"{function.py_func.__module__}.{function.py_func.__qualname__}"


def _register(dispatcher, signature, name):
    """Make `name` resolve, in code LLVM compiles or loads from now on, to `dispatcher` compiled for `signature`'s
    arguments, called with Numba's calling convention; and that code's address lead back to it (`_REGISTERED`)."""
    compiled = dispatcher.overloads[signature.args]
    address = compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name)
    llvmlite.binding.add_symbol(name, address)
    _REGISTERED[address] = dispatcher


_REGISTERED = {}  # the address of each registered function's code: the function (its dispatcher)


def prepare(version, block, blas, hidden, output, output_loss, dtype="float64"):
    """What a dense module does when imported, before any of its kernels is compiled or loaded from the cache:
    compile (or load) the loops for its block size and dtype and its per-block functions, and register them all."""
    if version != VERSION:
        raise StaleModule(f"this module was built for version {version} of symcompile's dense loops, not {VERSION}: "
                          "rebuild it")  # fmt: skip
    loops(block, blas, dtype)
    for function, function_type in zip((hidden, output, output_loss), BLOCK_TYPES[dtype]):
        signature = function_type.signature
        function.compile(signature.args)
        returns = function.overloads[signature.args].signature.return_type
        if returns != signature.return_type:  # (the loops call it as one that returns nothing)
            raise TypeError(f"{function.py_func.__name__} returns {returns}, not nothing")
        _register(function, signature, block_symbol(function))


# ---- calling the loops from a module's kernels -----------------------------------------------------------------


def _function_value(context, builder, dispatcher, function_type):
    """A `function_type` value for a module's per-block function: the address of its registered name (no Python
    object, nothing linked in)."""
    signature = function_type.signature
    value = cgutils.create_struct_proxy(function_type)(context, builder)
    llvm_type = context.call_conv.get_function_type(signature.return_type, signature.args)
    function = cgutils.get_or_insert_function(builder.module, llvm_type, block_symbol(dispatcher))
    value.jit_addr = builder.bitcast(function, context.get_value_type(types.voidptr))
    value.c_addr = value.py_addr = context.get_constant_null(types.voidptr)
    return value._getvalue()


def _call_by_name(name, signature, typingctx, arguments):
    """The typing and code of a call to the loop `name` (of `signature`, after the block size and BLAS flag);
    the module's per-block functions, passed by their names, become function pointers. (Numba also loads each
    such dispatcher's address for the call's arguments, a "dynamic global" that would stop the kernel from being
    cached; unused here, LLVM removes it before Numba checks.)"""
    for got, want in zip(arguments, signature.args):
        if isinstance(want, types.FunctionType) and isinstance(got, (types.Dispatcher, types.FunctionType)):
            continue
        if not typingctx.can_convert(got, want):
            return None

    def codegen(context, builder, call_signature, values):
        converted = []
        for got, want, value in zip(call_signature.args, signature.args, values):
            if isinstance(got, types.Dispatcher):
                converted.append(_function_value(context, builder, got.dispatcher, want))
            else:
                converted.append(context.cast(builder, value, got, want))
        llvm_type = context.call_conv.get_function_type(signature.return_type, signature.args)
        function = cgutils.get_or_insert_function(builder.module, llvm_type, name)
        status, result = context.call_conv.call_function(builder, function, signature.return_type, signature.args,
                                                         converted)  # fmt: skip
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        return result

    return signature.return_type(*arguments), codegen


def _constants(block, blas):
    """The block size and BLAS flag as Python values, where the kernel passes them as constants (else None:
    Numba then types the call again with the constants as literals)."""
    if isinstance(block, types.IntegerLiteral) and isinstance(blas, types.BooleanLiteral):
        return block.literal_value, blas.literal_value
    return None


@intrinsic
def forward(typingctx, block, blas, hidden, output, layers, w, X, out, first, stop, chunks):
    """forward(BLOCK, BLAS, hidden, output, layers, w, X, out, first, stop, chunks) in a module's kernel: the outputs
    of blocks first..stop-1 into out, in `chunks` chunks on threads. BLOCK and BLAS: the module's constants."""
    arguments = (hidden, output, layers, w, X, out, first, stop, chunks)
    return _loop_call("forward", "float64", typingctx, block, blas, arguments)


@intrinsic
def loss_and_grad(typingctx, block, blas, hidden, output_loss, layers, w, X, Y, g, first, stop, chunks):
    """loss_and_grad(BLOCK, BLAS, hidden, output_loss, layers, w, X, Y, g, first, stop, chunks) in a module's kernel:
    the summed loss of blocks first..stop-1, their gradient added into g, in `chunks` chunks on threads."""
    arguments = (hidden, output_loss, layers, w, X, Y, g, first, stop, chunks)
    return _loop_call("loss_and_grad", "float64", typingctx, block, blas, arguments)


@intrinsic
def forward_float32(typingctx, block, blas, hidden, output, layers, w, X, out, first, stop, chunks):
    """`forward` in a float32 module's kernel (its per-block functions work on float32 blocks)."""
    arguments = (hidden, output, layers, w, X, out, first, stop, chunks)
    return _loop_call("forward", "float32", typingctx, block, blas, arguments)


@intrinsic
def loss_and_grad_float32(typingctx, block, blas, hidden, output_loss, layers, w, X, Y, g, first, stop, chunks):
    """`loss_and_grad` in a float32 module's kernel."""
    arguments = (hidden, output_loss, layers, w, X, Y, g, first, stop, chunks)
    return _loop_call("loss_and_grad", "float32", typingctx, block, blas, arguments)


def _loop_call(name, dtype, typingctx, block, blas, arguments):
    """The typing and code of an intrinsic's call to the loop `name` of `dtype` (None until the block size and BLAS
    flag are constants)."""
    constants = _constants(block, blas)
    if constants is None:
        return None
    signature = LOOP_SIGNATURES[dtype][("forward", "loss_and_grad").index(name)]
    typed = _call_by_name(symbol(name, *constants, dtype), signature, typingctx, arguments)
    return typed and _with_constants(typed, block, blas)


@intrinsic
def address(typingctx, function):
    """The address of a function pointer's code, as an integer (for the threaded path, which finds the registered
    function by it)."""
    if not isinstance(function, types.FunctionType):
        return None

    def codegen(context, builder, signature, arguments):
        value = cgutils.create_struct_proxy(function)(context, builder, value=arguments[0])
        return builder.ptrtoint(value.jit_addr, context.get_value_type(types.intp))

    return types.intp(function), codegen


def _with_constants(typed, block, blas):
    """An intrinsic's typing and code with the two constant arguments in front (their values are not passed on)."""
    signature, codegen = typed
    return signature.return_type(block, blas, *signature.args), lambda context, builder, sig, values: codegen(
        context, builder, signature, values[2:]
    )


# ---- the threaded path: chunks of blocks on Python's threads -----------------------------------------------------


# Whether a call with chunks runs them on threads or one after the other on the calling thread (the same bits either
# way) is measured, not assumed: this machine's two cores share their vector units, so two threads did 0.68x the
# time of one on a quiet machine and 1.10x with another process spinning on a core (64-32-10 on 10,000 samples,
# benchmarks/epochs/RESULTS.md). Per call shape (a training loop repeats a few), the two ways alternate until each
# has TIMES_KEPT calls, then the one whose median of its last TIMES_KEPT calls is lower is taken, and the other
# tried again every PROBE_EVERY calls of that shape, to follow a change of load.
TIMES_KEPT = 3
PROBE_EVERY = 32
MAX_SHAPES = 1024  # shapes remembered; beyond, forgotten all at once (memory stays bounded)


class _Ways:
    """The last times of chunked calls by shape and way (threaded or not), and the choice of way from them."""

    def __init__(self):
        self.seconds = {}  # call shape -> {threaded: its last TIMES_KEPT calls' seconds}
        self.calls = {}  # call shape -> how many calls chose their way here
        self.pending = threading.local()  # the calling thread's call in progress: (shape, threaded, start)

    def start(self, call):
        """Whether the call `call` (its shape: kind, block, BLAS, dtype, samples, weights, blocks, chunks) goes on
        threads (never on one thread), its start noted for `end`."""
        threads = numba.get_num_threads()
        shape = (*call, threads)
        threaded = threads > 1 and self.choose(shape)
        self.pending.call = (shape, threaded, time.perf_counter())
        return threaded

    def choose(self, shape):
        if len(self.seconds) >= MAX_SHAPES and shape not in self.seconds:
            self.seconds.clear()
            self.calls.clear()
        seconds = self.seconds.setdefault(shape, {True: collections.deque(maxlen=TIMES_KEPT),
                                                  False: collections.deque(maxlen=TIMES_KEPT)})  # fmt: skip
        count = self.calls[shape] = self.calls.get(shape, 0) + 1
        if min(len(seconds[True]), len(seconds[False])) < TIMES_KEPT:
            return count % 2 == 1  # threads first, then one thread, in turn
        faster = statistics.median(seconds[True]) <= statistics.median(seconds[False])
        return faster if count % PROBE_EVERY else not faster

    def end(self):
        shape, threaded, started = self.pending.call
        if shape in self.seconds:  # (a call on one thread chooses nothing, and is not kept)
            self.seconds[shape][threaded].append(time.perf_counter() - started)


_WAYS = _Ways()


def start_chunked_call(call):  # (module functions for the compiled loops' object-mode blocks, which Numba caches)
    return _WAYS.start(call)


def end_chunked_call():
    _WAYS.end()


@functools.cache
def _pool(threads):
    return concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="symcompile-dense")


# How long the calling thread, out of chunks to take, waits for a chunk a helper thread is computing before it
# computes the same chunk itself: this many times its own chunks' mean time, counted from the chunk's start.
LATE_CHUNK = 1.5


class _ChunkRun:
    """One call's chunks: taken in order by whichever thread is free, each result kept from the first thread to
    finish it. A chunk's result depends on its blocks only, so which thread computed it, or whether two did, does
    not change a bit of it."""

    def __init__(self, bounds, compute):
        self.bounds, self.compute = bounds, compute
        self.results = [None] * len(bounds)
        self.started = [None] * len(bounds)
        self.taken = itertools.count()  # next() on it is atomic under the GIL: each chunk is taken once
        self.failed = set()  # chunks a helper thread failed to compute
        self.finished = threading.Condition()

    def take(self):
        c = next(self.taken)
        return c if c < len(self.bounds) else None

    def execute(self, c):
        if self.started[c] is None:
            self.started[c] = time.perf_counter()
        result = self.compute(*self.bounds[c])
        with self.finished:
            if self.results[c] is None:
                self.results[c] = (result,)  # (a chunk of the forward pass returns None)
                self.finished.notify_all()

    def help(self):
        """A helper thread's part: chunks until none is left. A helper that starts late finds none and ends; one
        that fails leaves its chunk to the calling thread."""
        while (c := self.take()) is not None:
            try:
                self.execute(c)
            except BaseException:
                with self.finished:
                    self.failed.add(c)
                    self.finished.notify_all()
                return

    def wait(self, c, chunk_seconds):
        """Whether chunk c is finished: waiting while a helper computes it, until it fails, or (`chunk_seconds` not
        None) until LATE_CHUNK times `chunk_seconds` past its start."""
        with self.finished:
            timeout = None
            if chunk_seconds is not None:
                started = self.started[c] if self.started[c] is not None else time.perf_counter()
                timeout = max(0.0, started + LATE_CHUNK * chunk_seconds - time.perf_counter())
            self.finished.wait_for(lambda: self.results[c] is not None or c in self.failed, timeout)
            return self.results[c] is not None


def _run_chunks(bounds, compute, repeat_late):
    """[compute(first, stop) for each chunk's blocks], the chunks taken by this thread and by
    `numba.get_num_threads() - 1` helpers from the pool, in order, each as soon as a thread is free.

    The calling thread computes chunks too and never waits for a helper to start: on a busy machine a helper that
    gets no core takes no chunk, and this thread does them all, as on one thread. Then, with `repeat_late`, a chunk
    a helper still computes after LATE_CHUNK times this thread's own chunk time (a helper that lost its core
    mid-chunk) is computed again here, the first result kept (the same to the last bit); without it (the chunks
    write into the caller's arrays), this thread waits for them. A chunk a helper failed on is computed here."""
    run = _ChunkRun(bounds, compute)
    helpers = min(numba.get_num_threads(), len(bounds)) - 1
    for _ in range(helpers):
        _pool(helpers).submit(run.help)
    seconds = []
    while (c := run.take()) is not None:
        start = time.perf_counter()
        run.execute(c)
        seconds.append(time.perf_counter() - start)
    chunk_seconds = sum(seconds) / len(seconds) if seconds else 0.0
    for c in range(len(bounds)):
        if not run.wait(c, chunk_seconds if repeat_late else None):
            run.execute(c)
    return [result for (result,) in run.results]


def _chunks(first, stop, chunks):
    """Blocks first..stop-1 in `chunks` consecutive chunks, as (first, stop) pairs (as the compiled loop splits them)."""
    return [chunk_blocks(first, stop, chunks, c) for c in range(chunks)]


def forward_threaded(block, blas, hidden_at, output_at, layers, w, X, out, first, stop, chunks, in_float32=False):
    """The outputs, chunk by chunk on `numba.get_num_threads()` threads (each chunk writes its own rows)."""
    dtype = "float32" if in_float32 else "float64"
    run, (hidden_type, output_type, _) = loops(block, blas, dtype)[0], BLOCK_TYPES[dtype]
    hidden = function_value(_REGISTERED[hidden_at], hidden_type)
    output = function_value(_REGISTERED[output_at], output_type)
    _run_chunks(_chunks(first, stop, chunks), lambda *chunk: run(hidden, output, layers, w, X, out, *chunk, 1), False)


def loss_and_grad_threaded(block, blas, hidden_at, output_loss_at, layers, w, X, Y, g, first, stop, chunks,
                           in_float32=False):  # fmt: skip
    """The summed loss, chunk by chunk on `numba.get_num_threads()` threads, each chunk's gradient into its own
    partial sum; the partial sums added into `g` in chunk order, whichever thread computed each, so that the
    result is the same on any number of threads. Threads take the next chunk when they are free."""
    dtype = "float32" if in_float32 else "float64"
    run, (hidden_type, _, output_loss_type) = loops(block, blas, dtype)[1], BLOCK_TYPES[dtype]
    hidden = function_value(_REGISTERED[hidden_at], hidden_type)
    output_loss = function_value(_REGISTERED[output_loss_at], output_loss_type)

    def chunk_loss_and_grad(chunk_first, chunk_stop):
        partial = np.zeros(g.shape[0])  # its own, so that a chunk computed twice writes nothing shared
        return run(hidden, output_loss, layers, w, X, Y, partial, chunk_first, chunk_stop, 1), partial

    loss = 0.0
    for chunk_loss, partial in _run_chunks(_chunks(first, stop, chunks), chunk_loss_and_grad, True):
        loss += chunk_loss
        g += partial
    return loss
