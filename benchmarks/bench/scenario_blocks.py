"""The blocks scenario: scalar kernels (any SymPy model) one sample at a time against blocks of samples.

Three example specs on synthetic data of many samples (a decay curve, logistic regression, a 3-class softmax
model): each built with `layout="unrolled"` (one sample per loop iteration, libm's exp and log) and
`layout="blocks"` (blocks of options.SAMPLE_BLOCK samples, the sample index innermost, the vectorizable
functions of symcompile.vecmath), timed per full-batch epoch of `train`, interleaved. The check column gives
the largest relative difference of the two modules' loss and gradient at the same weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.bench.report import Report, Row
from benchmarks.bench.timing import Timing, time_once
from symcompile.pipeline import build
from symcompile.spec import load_spec
from symcompile.writer import load_module

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LAYOUTS = ("unrolled", "blocks")


@dataclass(frozen=True)
class BlocksSettings:
    samples: int = 100_000
    epochs: int = 10  # per timed call
    repeats: int = 7
    out_dir: str = "generated"


def synthetic_data(name, n, rng):
    """(X, Y) of `n` samples shaped for the example `name`."""
    if name == "decay":
        X = rng.uniform(0, 5, (n, 1))
        return X, 2 * np.exp(-0.7 * X) + 0.1 + 0.01 * rng.normal(size=(n, 1))
    X = rng.normal(size=(n, 2))
    if name == "logistic":
        return X, (X.sum(axis=1, keepdims=True) + 0.3 * rng.normal(size=(n, 1)) > 0).astype(float)
    return X, np.eye(3)[np.argmax(X @ rng.normal(size=(2, 3)) + rng.normal(size=(n, 3)), axis=1)]


def built_pair(name, X, Y, out_dir):
    """{layout: module} of the example spec `name` with (X, Y) as its data."""
    model = dataclasses.replace(load_spec(EXAMPLES / f"{name}.toml"), X=X, Y=Y)
    return {
        layout: load_module(
            build(dataclasses.replace(model, name=f"bench_{name}_{layout}"), out_dir, layout=layout).path
        )
        for layout in LAYOUTS
    }


def relative_difference(modules, w, X, Y):
    (loss, grad), (loss_b, grad_b) = (modules[layout].loss_and_grad(w, X, Y) for layout in LAYOUTS)
    return max(abs(loss_b - loss) / abs(loss), float(np.max(np.abs(grad_b - grad)) / np.max(np.abs(grad))))


def interleaved_epochs(modules, w, X, Y, settings):
    """{layout: Timing per epoch}, the layouts taking turns so that load changes hit both alike."""
    seconds = {layout: [] for layout in LAYOUTS}
    for module in modules.values():
        module.train(w, X, Y, max_iter=1, tol=0.0)  # compiled before timing
    for _ in range(settings.repeats):
        for layout, module in modules.items():
            elapsed, _ = time_once(lambda: module.train(w, X, Y, max_iter=settings.epochs, tol=0.0, record_every=0))
            seconds[layout].append(elapsed / settings.epochs)
    return {layout: Timing.of(values) for layout, values in seconds.items()}


def run_blocks(settings: BlocksSettings = BlocksSettings()) -> Report:
    rng = np.random.default_rng(0)
    report = Report("blocks", f"example specs on {settings.samples:,} synthetic samples, full-batch gradient descent")
    table = report.table("time per epoch, one sample per iteration against blocks of samples", "epoch")
    for name in ("decay", "logistic", "softmax3"):
        X, Y = synthetic_data(name, settings.samples, rng)
        modules = built_pair(name, X, Y, settings.out_dir)
        w = modules["unrolled"].INIT + 0.1
        timings = interleaved_epochs(modules, w, X, Y, settings)
        note = (
            f"{len(w)} params; max relative difference of loss and gradient {relative_difference(modules, w, X, Y):.1e}"
        )
        base = table.add(Row(f"{name} unrolled", timings["unrolled"], update=name))
        table.add(Row(f"{name} blocks", timings["blocks"], update=name, note=note))
        table.compare_to({name: base})
    return report.finish()
