"""Array-structured ("dense") kernels for MLPs: layers as loops over weight matrices, samples in blocks.

The scalar pipeline turns every weight into its own symbol, so its build cost grows
with the number of parameters and its kernels handle one sample at a time. Here an
MLP stays what it is: a list of weight matrices. SymPy derives only what is
per-unit: the hidden activation f(z) and its derivative, and the per-output loss
and its derivative with respect to the output layer's pre-activation z (through
the same stable rewrites as the scalar pipeline: sigmoid, softplus, logsumexp).
The module holds those as per-block functions (`templates/dense_kernels.py.j2`)
with the network's layer table; the layer loops are symcompile.runtime.dense's,
written once and compiled once per machine, so the build costs the same for 2-2-1
and for 784-1000-1000-10, and a new network compiles only its per-block code.

The kernels process samples in blocks of `block` with the sample index innermost:
activations are (units, block) arrays, so every statement is a loop that LLVM
vectorizes. Blocks are grouped into chunks whose number depends on the sample
count and the work per sample only (never on the thread count); chunks run on
threads, or one after the other on the calling thread where that ran faster lately,
each into its own partial gradient, and the partials are summed in chunk order, so
the result is the same for any number of threads and from run to run.

The flat weight vector is the scalar module's, in `symcompile.mlp`'s order: the
shared bias `w0` first (bias="shared"), then per layer its weights source-major
(w[i, j] joins unit i of the layer below to unit j) followed, for per-neuron
biases, by that layer's biases.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import sympy as sp

from symcompile import mlp, vecmath
from symcompile.emit import template_environment
from symcompile.errors import SymcompileError
from symcompile.mlp import MLPShape
from symcompile.model import check_model_size
from symcompile.options import DENSE_MIN_PARAMS, choose
from symcompile.printer import VectorPrinter
from symcompile.rewrite import REWRITES
from symcompile.runtime import dense as runtime_dense
from symcompile.stable import logsumexp, sigmoid

# Samples per block. Measured (2-16-16-1 loss and gradient on 4,096 samples, one thread, busy machine,
# before the four-row matrix loops): 16: 1.6 ms, 32: 1.3 ms, 64: 0.70 ms, 128: 0.65 ms, 256: 0.71 ms;
# 64 keeps the per-chunk buffers small. Re-measure with `python -m benchmarks.bench.dense_bench --blocks 32,64,128`.
DEFAULT_BLOCK = 64
WIDE_BLOCK = 256  # where a layer goes through BLAS: larger matrix products per call
MAX_CHUNKS = 16
# Below this much work per call (samples x weights) one chunk, no threads: a call of about 2 ms or less, where the
# threaded path's fixed costs (the trip through Python, a helper thread's start: 50-150 us measured) eat the gain,
# and on a busy machine cost more than the 5% allowed; digits (1,797 x 2,368 = 4.3e6) and every example stay in one
# chunk, their results unchanged to the bit. Measured at 2.5e6 (digits in 6 chunks; loss and gradient, one chunk
# on one thread against chunks on two threads, quiet 2-core machine): 0.72-0.96x the time over four runs of 12-40
# interleaved rounds, 1.03-1.14x after a 50 ms pause before each call (the cores clock down when idle), and in
# benchmarks/epochs/compare.py's rounds 0.99-1.18x, and 1.08x with a process spinning on one core. The two cores
# share their vector units (two threads of AVX-512 multiply-adds do 1.27x the work of one), so threads pay only on
# long calls. Above it the calling thread computes chunks too and never waits for a helper thread to start
# (symcompile.runtime.dense._run_chunks); on one thread the chunks run one after the other in the compiled loop. Once
# 5e8, as two threads that waited for each other ran 4x slower on a busy machine (load 5-6).
PARALLEL_MIN_WORK = 10_000_000
# Chunks at that threshold, more with more samples (up to MAX_CHUNKS): each chunk costs a partial gradient and, on
# threads, a trip through Python (7-25 us measured under load), and a helper's late chunk costs the calling thread
# up to 1.5 chunks. On one thread they run in the compiled loop: 64-32-10 on 10,000 samples (9 chunks) 4.53 ms a
# call against 4.67 ms when they went through Python (medians of four alternating runs of 40 calls, /tmp scripts).
CHUNKS_AT_THRESHOLD = 4
# The chunks' partial gradients together stay under this many bytes (a 1.8M-parameter net: 4 chunks).
PARTIAL_BYTES = 64 * 2**20
# Layers with more weights than this multiply through BLAS (np.dot); smaller ones through loops.
BLAS_MIN_WEIGHTS = 16_384

Z, A, Y, LSE, YSUM = sp.symbols("z a y lse ysum", real=True)
CODE_NAMES = {Z: "z", A: "a", Y: "y", LSE: "lse", YSUM: "ysum"}


@dataclass(frozen=True)
class Layer:
    """One weight layer: sizes, where its numbers sit in `w`, and how it multiplies (a row of the layer table)."""

    index: int  # 1 for the first weight layer
    n_in: int
    n_out: int
    weights_at: int  # offset of w[i, j] = w[weights_at + i*n_out + j]
    bias_at: int  # offset of its biases (per-neuron), or -1 (shared: n_in * w[0] for every unit)
    blas: bool  # multiply through np.dot rather than loops


def table_rows(layers: list[Layer]) -> list[list[int]]:
    """The layer table a module gives symcompile.runtime.dense: a row per layer, in its columns' order."""
    columns = {runtime_dense.N_IN: "n_in", runtime_dense.N_OUT: "n_out", runtime_dense.WEIGHTS_AT: "weights_at",
               runtime_dense.BIAS_AT: "bias_at", runtime_dense.BLAS: "blas"}  # fmt: skip
    return [[int(getattr(layer, columns[c])) for c in range(len(columns))] for layer in layers]


def layer_table(shape: MLPShape) -> list[Layer]:
    """The weight layers with their offsets in the flat parameter vector (mlp.network's order)."""
    shared = shape.bias == "shared"
    at = 1 if shared else 0
    layers = []
    sizes = shape.layers
    for l in range(1, len(sizes)):
        n_in, n_out = sizes[l - 1], sizes[l]
        bias_at = -1 if shared else at + n_in * n_out
        blas = n_in * n_out > BLAS_MIN_WEIGHTS and _numba_has_blas()
        layers.append(Layer(l, n_in, n_out, at, bias_at, blas))
        at += n_in * n_out + (0 if shared else n_out)
    return layers


def parameter_layout(shape: MLPShape) -> str:
    """Where each layer's numbers sit in the flat weight vector, e.g. "W1 (64x32) w[0:2048], b1 w[2048:2080], ..."."""
    parts = ["w0 w[0] (shared bias)"] if shape.bias == "shared" else []
    for layer in layer_table(shape):
        end = layer.weights_at + layer.n_in * layer.n_out
        parts.append(f"W{layer.index} ({layer.n_in}x{layer.n_out}) w[{layer.weights_at}:{end}]")
        if layer.bias_at >= 0:
            parts.append(f"b{layer.index} w[{layer.bias_at}:{layer.bias_at + layer.n_out}]")
    return ", ".join(parts)


def _numba_has_blas() -> bool:
    """Whether Numba's np.dot can run here: it calls SciPy's BLAS. Without SciPy, wide layers build
    with the loops (slower on them, the same results), so that the module imports where SciPy is absent."""
    return importlib.util.find_spec("scipy") is not None


def n_params(shape: MLPShape) -> int:
    return shape.n_params


def chosen_kernels(model, kernels: str, *, scalar_options: bool = False) -> str:
    """`kernels` for `model`, "auto" resolved: dense for MLPs above options.DENSE_MIN_PARAMS parameters, unless
    `scalar_options` (a gradient method or layout was asked for: those choose among the scalar kernels)."""
    choose("kernels", kernels)
    chosen = _chosen_kernels(model, kernels, scalar_options)
    if model.dtype != "float64" and chosen != "dense":  # (float32 is the dense kernels' alone: never ignored)
        raise SymcompileError(f"dtype {model.dtype} is for dense networks (an MLP on the dense kernels); "
                              f"this model builds with kernels={chosen}: use dtype float64")  # fmt: skip
    return chosen


def _chosen_kernels(model, kernels, scalar_options):
    if kernels == "dense" and model.network is None:
        raise SymcompileError("kernels=dense applies to MLP models (spec kind mlp); use kernels=scalar or auto")
    if kernels == "dense" and model.standardization is not None:
        raise SymcompileError(
            "kernels=dense does not scale inputs (the spec's standardize); use kernels=scalar or auto"
        )
    if kernels == "dense" and unsupported(model.network.shape):
        raise SymcompileError(f"dense kernels: {unsupported(model.network.shape)}; use kernels=scalar or auto")
    if kernels == "auto":  # standardized inputs live in the SymPy formulas, which only the scalar kernels read
        large = model.n_params > DENSE_MIN_PARAMS or model.dtype == "float32"  # (float32: the dense kernels' only)
        dense = model.network is not None and large and model.standardization is None
        refused = model.network is not None and unsupported(model.network.shape)
        if refused:  # auto never picks kernels that refuse a model the scalar ones build; too large for them, say so
            check_model_size(model.n_params, f"the dense kernels refuse this network: {refused}")
        return "dense" if dense and not scalar_options and not refused else "scalar"
    return kernels


def unsupported(shape: MLPShape) -> str:
    """Why the dense kernels cannot compile an MLP of this shape, or "" when they can."""
    if shape.output_activation == "softmax" and shape.loss != "softmax_cross_entropy":
        return "a softmax output supports only softmax_cross_entropy"
    return ""


def _rewritten(expr):
    for rule in REWRITES:
        expr = rule(expr)
    return expr


@dataclass(frozen=True)
class Activation:
    """A hidden activation's code: the value `a` of z, and its derivative in z and a."""

    value: str
    derivative: str


def activation_code(name: str, printer) -> Activation:
    """f(z) and f'(z) from SymPy, after the stable rewrites; f' reuses the value a = f(z) where it can."""
    value = _rewritten(mlp.ACTIVATIONS[name](Z))
    derivative = sp.diff(value, Z)
    if value == sigmoid(Z):  # sigmoid(-z) = 1 - sigmoid(z): one exp per unit, not two
        derivative = derivative.subs(sigmoid(-Z), 1 - value)
    derivative = derivative.subs(value, A) if value != Z else derivative
    return Activation(printer.doprint(value), printer.doprint(derivative))


def _per_output_term(loss: str, n_outputs: int):
    """The loss of output 1 alone, as a function of f1 and y1; refused unless the loss is that term summed."""
    fs = sp.symbols(f"f1:{n_outputs + 1}", real=True)
    ys = sp.symbols(f"y1:{n_outputs + 1}", real=True)
    total = sp.expand(mlp.LOSSES[loss](list(fs), list(ys)), deep=False)
    terms = sp.Add.make_args(total)
    term = sp.Add(*(t for t in terms if t.free_symbols & {fs[0], ys[0]}))
    rebuilt = sp.Add(*(term.subs({fs[0]: f, ys[0]: y}, simultaneous=True) for f, y in zip(fs, ys)))
    if sp.expand(rebuilt - total, deep=False) != 0:
        raise SymcompileError(f"dense kernels: the loss {loss} is not a sum of one term per output")
    return term.subs({fs[0]: sp.Symbol("f", real=True), ys[0]: Y}), sp.Symbol("f", real=True)


@dataclass(frozen=True)
class OutputCode:
    """The output layer's code. Elementwise: value of the output, per-output loss and its z-derivative in z, y.
    Softmax: the same in z, y, lse (the sample's logsumexp) and ysum (its sum of targets)."""

    softmax: bool
    value: str
    loss_lines: tuple[str, ...]  # common subexpressions, as `name = expression` lines
    loss: str
    delta: str


def _with_common_parts(exprs, printer):
    """`exprs` after common-subexpression elimination: (assignment lines, printed expressions)."""
    symbols = sp.numbered_symbols("c", real=True)
    shared, reduced = sp.cse(list(exprs), symbols=symbols, optimizations="basic")
    printer.code_names = {**printer.code_names, **{s: s.name for s, _ in shared}}
    lines = tuple(f"{s.name} = {printer.doprint(e)}" for s, e in shared)
    return lines, [printer.doprint(e) for e in reduced]


def output_code(shape: MLPShape, printer) -> OutputCode:
    if shape.output_activation == "softmax":
        return _softmax_output_code(shape, printer)
    term, f = _per_output_term(shape.loss, shape.layers[-1])
    value = _rewritten(mlp.ACTIVATIONS[shape.output_activation](Z))
    loss = _rewritten(term.subs(f, value))
    lines, (loss_text, delta_text) = _with_common_parts([loss, sp.diff(loss, Z)], printer)
    return OutputCode(False, printer.doprint(value), lines, loss_text, delta_text)


def _softmax_output_code(shape: MLPShape, printer) -> OutputCode:
    """Softmax cross-entropy, derived on three classes (the form is the same for any number): class 1's
    loss is y1*(lse - z1) and d loss/d z1 = ysum*exp(z1 - lse) - y1 (lse: the logsumexp, ysum: sum of y)."""
    if unsupported(shape):
        raise SymcompileError(f"dense kernels: {unsupported(shape)}")
    zs = sp.symbols("z1:4", real=True)
    ys = sp.symbols("y1:4", real=True)
    exps = [sp.exp(z) for z in zs]
    probabilities = [e / sum(exps) for e in exps]
    loss = _rewritten(mlp.LOSSES[shape.loss](probabilities, list(ys)))
    (lse_call,) = loss.atoms(logsumexp)
    to_code = {zs[0]: Z, ys[0]: Y}
    delta = sp.expand(sp.diff(loss, zs[0]).subs(lse_call, LSE), power_exp=False)
    delta = sp.collect(delta, sp.exp(zs[0] - LSE)).subs(sum(ys), YSUM)
    term = sp.Add(*(t for t in sp.Add.make_args(sp.expand(loss, power_exp=False)) if ys[0] in t.free_symbols))
    value = _rewritten(probabilities[0])
    value, term, delta = (sp.factor_terms(e.subs(lse_call, LSE).subs(to_code)) for e in (value, term, delta))
    if not delta.free_symbols <= {Z, Y, LSE, YSUM}:
        raise SymcompileError(f"dense kernels: the softmax derivative {delta} is not per class")
    return OutputCode(True, printer.doprint(value), (), printer.doprint(term), printer.doprint(delta))


def dense_kernels_source(shape: MLPShape, *, block: int | None = None, runtime="symcompile.runtime",
                         dtype="float64") -> str:  # fmt: skip
    return dense_kernels(shape, block=block, runtime=runtime, dtype=dtype).source


@dataclass(frozen=True)
class DenseKernels:
    """The dense kernels' source, the block size, and the per-unit code (what the module's header shows)."""

    source: str
    block: int
    hidden: Activation | None
    output: OutputCode
    dtype: str = "float64"  # the blocks' type: "float32" for dtype="float32" (symcompile.runtime.dense, DTYPES)


def dense_kernels(shape: MLPShape, *, block: int | None = None, runtime="symcompile.runtime",
                  dtype="float64") -> DenseKernels:  # fmt: skip
    """The dense `_forward_kernel` and `_loss_and_grad_kernel` (and the per-block functions they hand the runtime's
    layer loops) as module source text.

    The text expects `math`, `numba` and `np` (NumPy) imported in the module, and imports from the runtime package
    `runtime` (a standalone build's copy has another name) `dense`, `vecmath` (a softmax output's sums) and the
    vectorizable elementary functions its code calls, as `_vexp`, ...; it defines names that start with `_dense_`
    or `_DENSE_` besides the two kernels and `_dense_call` (runs a kernel on a number of threads).
    `dtype`: "float32" runs the layers on float32 blocks (the runtime's float32 loops); float64, the default.
    """
    choose("dtype", dtype)
    layers = layer_table(shape)
    wide = any(layer.blas for layer in layers)
    block = (WIDE_BLOCK if wide else DEFAULT_BLOCK) if block is None else block
    if not (isinstance(block, int) and block >= 1):
        raise SymcompileError(f"dense kernels: block must be a positive integer, got {block!r}")
    printer = VectorPrinter(CODE_NAMES)
    # A float32 module's hidden activations and derivatives are stored in float32: computed to float32's accuracy
    # (half the time of tanh's float64 one). The output and loss keep float64's, the loss's stated accuracy.
    hidden_printer = VectorPrinter(CODE_NAMES, single=dtype == "float32")
    hidden = activation_code(shape.hidden_activation, hidden_printer) if len(shape.layers) > 2 else None
    output = output_code(shape, printer)
    work_per_sample = sum(layer.n_in * layer.n_out for layer in layers)
    body = (
        template_environment()
        .get_template("dense_kernels.py.j2")
        .render(
            runtime=runtime,
            vecmath_imports=vecmath.imported_names(printer.used | hidden_printer.used),
            version=runtime_dense.VERSION,
            table=table_rows(layers),
            hidden=hidden,
            output=output,
            block=block,
            blas=wide,
            # Networks with BLAS layers too: their chunks run on the threads, BLAS on one thread in each
            # (_blas_threads), which beat OpenBLAS's own threads on a quiet machine and does not spin on a busy one
            # (benchmarks/epochs/RESULTS.md).
            max_chunks=max(1, min(MAX_CHUNKS, PARTIAL_BYTES // (8 * n_params(shape)))),
            parallel_min_samples=max(1, PARALLEL_MIN_WORK // max(1, work_per_sample)),
            chunk_min_samples=max(1, PARALLEL_MIN_WORK // CHUNKS_AT_THRESHOLD // max(1, work_per_sample)),
            single=dtype == "float32",
        )
    )
    return DenseKernels(body, block, hidden, output, dtype)


# --- the module -----------------------------------------------------------------------------------------------------

# Up to this many parameters a dense module lists PARAMS and INIT; wider ones compute them when imported.
LISTED_MAX_PARAMS = 10_000


def formula_lines(shape: MLPShape, kernels: DenseKernels) -> list[str]:
    """What the header shows as the training function: the network in words and the per-unit code from SymPy."""
    lines = [f"A {shape.summary()}.", "Each layer: z = W^T a + b over a block of samples (W: n_in x n_out)."]
    if kernels.hidden:
        lines += [f"hidden units: a = {kernels.hidden.value}; da/dz = {kernels.hidden.derivative}"]
    output = kernels.output
    where = " (lse: the sample's logsumexp of z; ysum: its sum of targets)" if output.softmax else ""
    lines += [f"output units: {output.value}{where}"]
    lines += [f"  {line}" for line in output.loss_lines]
    lines += [f"  loss per output = {output.loss}", f"  d loss/dz = {output.delta}"]
    if kernels.dtype == "float32":
        lines += ["In float32 (dtype float32): the layer products on float32 blocks; each unit's code and the loss's",
                  "sum in float64, the hidden units' to float32's accuracy; weights, data and gradient float64",
                  "outside the kernels."]  # fmt: skip
    return lines


def network_fields(model) -> dict:
    """PARAMS and INIT as the module writes them: listed, or computed on import for wide networks."""
    network, n = model.network, model.n_params
    fields = {}
    if model.symbolic or n <= LISTED_MAX_PARAMS:
        names = (
            [p.name for p in model.params]
            if model.symbolic
            else mlp.param_names(network.shape.layers, network.shape.bias)
        )
        fields["params"] = repr(tuple(names))
    else:
        fields["params"] = "_param_names()"
    if n > LISTED_MAX_PARAMS and network.init is not None:
        fields["init"] = "_initial_weights()"
    if n > LISTED_MAX_PARAMS:
        fields["network_code"] = template_environment().get_template("dense_network.py.j2").render(
            layers=repr(network.shape.layers), bias=network.shape.bias,
            init=network.init if fields.get("init") else None, seed=network.seed,
        ).strip("\n")  # fmt: skip
    return fields


def emit_dense(model, *, rebuild_command: str, model_digest: str, block: int | None = None, standalone: bool = False):
    """The module of an MLP with the dense kernels: `emit`'s layout, with these kernels in place of the scalar
    ones; the sequential update rule runs its generic sweep through the fused kernel. `standalone`: as `emit`'s."""
    from symcompile.emit import model_fields, render_module
    from symcompile.provenance import Provenance, versions

    from symcompile.standalone import package_name

    shape = model.network.shape
    runtime = package_name() if standalone else "symcompile.runtime"
    kernels = dense_kernels(shape, block=block, runtime=runtime, dtype=model.dtype)
    network = network_fields(model)
    fields = {**model_fields(model, listed="init" not in network), **network, "dense": kernels.source.strip("\n"),
              "helpers": [], "sweep": [], "one_sample_sweep": None}  # fmt: skip
    provenance = Provenance(
        versions=versions(), gradient="backprop", layout=f"block={kernels.block}", rewrites=(),
        model_digest=model_digest, body_digest="", rebuild_command=rebuild_command, kernels="dense",
    )  # fmt: skip
    return render_module(model, fields, provenance, formula_lines(shape, kernels), standalone)
