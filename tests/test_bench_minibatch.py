"""The mini-batch bench's peers train alike: PyTorch's Adam and the JAX Adam written out, on the same batches, reach
the same weights (two independent implementations checking each other)."""

import numpy as np
import pytest

from benchmarks.bench.scenario_minibatch import LAYERS, MinibatchSettings, jax_adam, torch_adam
from references.numpy_mlp import MlpLayout
from symcompile.mlp import initial_weights, param_names


def test_torch_and_jax_adam_reach_the_same_weights():
    pytest.importorskip("torch", reason="needs the torch extra (pip install '.[torch]')")
    pytest.importorskip("jax", reason="needs the bench extra (pip install '.[bench]')")
    layout = MlpLayout(LAYERS, param_names(LAYERS, "per-neuron"))
    w0 = initial_weights(LAYERS, "per-neuron", "xavier", 0)
    rng = np.random.default_rng(1)
    X, labels = rng.uniform(0, 1, (70, 64)), rng.integers(0, 10, 70)  # 70 = 2 batches of 32 and one of 6
    settings = MinibatchSettings(epochs=2)
    by_torch = torch_adam(layout, X, labels, settings)(w0)
    by_jax = jax_adam(layout, X, labels, settings)(w0)
    for a, b in zip(by_torch, by_jax):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert not np.allclose(layout.pack(list(zip(by_torch[::2], by_torch[1::2]))), w0)  # it trained
