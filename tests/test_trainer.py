"""The generated module as a trainer: optimizers, mini-batches, validation, saved weights, chunks, Ctrl-C.

References: PyTorch float64 (skipped without torch) and NumPy re-implementations of
each rule written from the torch documentation's formulas, with gradients from the
module's own `loss_and_grad` (checked against finite differences elsewhere); the
mini-batch order from a pure-Python SplitMix64 and Fisher-Yates shuffle.
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from symcompile.mlp import mlp_model
from symcompile.pipeline import build
from symcompile.runtime import loops, training
from symcompile.writer import load_module

LAYERS = [3, 4, 3]
N = 24


def _data(seed, n=N):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, LAYERS[0]))
    labels = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + (X[:, 2] > 0.8)
    return X, np.eye(LAYERS[-1])[labels]


X_TRAIN, Y_TRAIN = _data(1)
X_VAL, Y_VAL = _data(2, 10)


@pytest.fixture(scope="session")
def softmax_module(tmp_path_factory):
    """A small tanh/softmax classifier, built once."""
    model = mlp_model(
        "trainer_softmax", LAYERS, hidden_activation="tanh", output_activation="softmax",
        loss="softmax_cross_entropy", X=X_TRAIN, Y=Y_TRAIN, seed=3,
    )  # fmt: skip
    return load_module(build(model, tmp_path_factory.mktemp("trainer")).path)


# --- the update rules against NumPy and PyTorch ------------------------------------------------------------------

CASES = {
    "momentum": dict(optimizer="momentum", lr=0.1, momentum=0.9),
    "nesterov": dict(optimizer="momentum", lr=0.1, momentum=0.9, nesterov=True),
    "adam": dict(optimizer="adam", lr=0.01),
    "adamw": dict(optimizer="adamw", lr=0.01),
}
SETTINGS = {
    f"{name}{suffix}": dict(case, weight_decay=wd)
    for name, case in CASES.items()
    for suffix, wd in (("", 0.0), (" wd", 0.05))
}


def _numpy_training(module, settings, steps):
    """The rules as the torch documentation writes them (SGD, Adam, AdamW pseudo-code); returns (losses, w)."""
    s = dict(momentum=0.0, nesterov=False, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0) | settings
    lr, mu, wd, (b1, b2), eps = s["lr"], s["momentum"], s["weight_decay"], s["betas"], s["eps"]
    w = module.INIT.copy()
    b, m, v, losses = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w), []
    for t in range(1, steps + 1):
        loss, g = module.loss_and_grad(w, X_TRAIN, Y_TRAIN)
        losses.append(loss)
        if s["optimizer"] == "momentum":
            g = g + wd * w
            b = g if t == 1 else mu * b + g
            w = w - lr * (g + mu * b if s["nesterov"] else b)
        else:
            if s["optimizer"] == "adamw":
                w = w * (1 - lr * wd)
            else:
                g = g + wd * w
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return np.array(losses), w


def _torch_training(module, settings, steps):
    """The same network in PyTorch float64 from the same flat weights, trained by torch.optim; (losses, w)."""
    torch = pytest.importorskip("torch", reason="needs the torch extra (pip install '.[torch]')")
    flat = torch.tensor(module.INIT, dtype=torch.float64, requires_grad=True)
    X, Y = torch.tensor(X_TRAIN), torch.tensor(Y_TRAIN)

    def mean_loss():
        values, k = X, 0
        for l, (n_in, n_out) in enumerate(zip(LAYERS, LAYERS[1:])):
            W = flat[k : k + n_in * n_out].reshape(n_in, n_out)  # w{i}_{j}: source-major, then the biases
            bias = flat[k + n_in * n_out : k + n_in * n_out + n_out]
            k += n_in * n_out + n_out
            z = values @ W + bias
            values = torch.tanh(z) if l < len(LAYERS) - 2 else torch.log_softmax(z, dim=1)
        return -(Y * values).sum(dim=1).mean()

    s = dict(settings)
    optimizer = s.pop("optimizer")
    if optimizer == "momentum":
        opt = torch.optim.SGD([flat], **s)
    else:
        opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.AdamW)([flat], **s)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = mean_loss()
        loss.backward()
        losses.append(loss.item())
        opt.step()
    return np.array(losses), flat.detach().numpy()


@pytest.mark.slow
@pytest.mark.parametrize("name", SETTINGS)
def test_each_rule_matches_its_numpy_form(softmax_module, name):
    result = softmax_module.train(max_iter=100, **SETTINGS[name])
    losses, w = _numpy_training(softmax_module, SETTINGS[name], 100)
    np.testing.assert_allclose(result.loss_history[:100], losses, rtol=1e-9, atol=0)
    np.testing.assert_allclose(result.w, w, rtol=1e-9, atol=1e-12)


@pytest.mark.peers
@pytest.mark.parametrize("name", SETTINGS)
def test_each_rule_matches_pytorch_step_for_step(softmax_module, name):
    losses, w = _torch_training(softmax_module, SETTINGS[name], 100)
    result = softmax_module.train(max_iter=100, **SETTINGS[name])
    np.testing.assert_allclose(result.loss_history[:100], losses, rtol=1e-9, atol=0)
    np.testing.assert_allclose(result.w, w, rtol=1e-9, atol=1e-12)
    assert result.loss_history[-1] < result.loss_history[0]


@pytest.mark.slow
def test_update_names_the_rule_gd_runs(seed_module):
    gd = seed_module.train(optimizer="gd", update="simultaneous", max_iter=20)
    assert np.array_equal(gd.w, seed_module.train(update="simultaneous", max_iter=20).w)
    assert np.array_equal(seed_module.train(max_iter=20).w, seed_module.train(optimizer="sequential", max_iter=20).w)
    assert not np.array_equal(gd.w, seed_module.train(max_iter=20).w)  # the seed's default is sequential


@pytest.mark.slow
def test_weight_decay_of_gradient_descent_and_the_sequential_rule(seed_module):
    """Plain descent: w -= lr*(g + wd*w). Sequential: each weight in turn, its derivative at the weights so far."""
    lr, wd = 0.3, 0.1
    w = seed_module.INIT.copy()
    for _ in range(5):
        w = w - lr * (seed_module.loss_and_grad(w)[1] + wd * w)
    result = seed_module.train(update="simultaneous", max_iter=5, weight_decay=wd)
    np.testing.assert_allclose(result.w, w, rtol=1e-13)
    w = seed_module.INIT.copy()
    for _ in range(5):
        for j in range(7):
            w[j] -= lr * seed_module.loss_and_grad(w)[1][j] + lr * wd * w[j]
    np.testing.assert_allclose(seed_module.train(max_iter=5, weight_decay=wd).w, w, rtol=1e-13)


# --- mini-batches ------------------------------------------------------------------------------------------------


def _splitmix_shuffle(order, state):
    """Fisher-Yates with SplitMix64 (Steele, Lea and Flood 2014), in Python integers; returns the new state."""
    mask = 2**64 - 1
    for i in range(len(order) - 1, 0, -1):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        j = (z ^ (z >> 31)) % (i + 1)
        order[i], order[j] = order[j], order[i]
    return state


@pytest.mark.parametrize("shuffle", [False, True])
def test_mini_batches_as_numpy_takes_them(softmax_module, shuffle):
    """Epoch losses: the batches' losses at the weights each started from, weighted by batch size."""
    lr, batch, epochs, seed = 0.2, 7, 4, 5
    w, order, state, losses = softmax_module.INIT.copy(), list(range(N)), seed, []
    for _ in range(epochs):
        if shuffle:
            state = _splitmix_shuffle(order, state)
        total = 0.0
        for start in range(0, N, batch):
            rows = order[start : start + batch]
            loss, g = softmax_module.loss_and_grad(w, X_TRAIN[rows], Y_TRAIN[rows])
            total += loss * len(rows)
            w = w - lr * g
        losses.append(total / N)
    result = softmax_module.train(
        lr=lr, max_iter=epochs, update="simultaneous", batch_size=batch, shuffle=shuffle, seed=seed
    )
    np.testing.assert_allclose(result.loss_history[:-1], losses, rtol=1e-13)
    np.testing.assert_allclose(result.w, w, rtol=1e-13)
    assert result.loss_history[-1] == softmax_module.loss(result.w)  # then the final loss, on all samples


def test_a_batch_of_every_sample_is_full_batch_training(softmax_module):
    for settings in (
        {"update": "simultaneous"},
        {"optimizer": "adam", "lr": 0.01},
        {"optimizer": "momentum", "momentum": 0.5},
    ):
        full = softmax_module.train(max_iter=30, **settings)
        batched = softmax_module.train(max_iter=30, batch_size=N, **settings)
        assert np.array_equal(full.w, batched.w) and np.array_equal(full.loss_history, batched.loss_history)


def test_the_seed_decides_the_order(softmax_module):
    def run(seed):
        return softmax_module.train(optimizer="adam", lr=0.01, max_iter=5, batch_size=5, seed=seed)

    first, again, other = run(0), run(0), run(1)
    assert np.array_equal(first.w, again.w) and np.array_equal(first.loss_history, again.loss_history)
    assert not np.array_equal(first.w, other.w)


def test_record_every(softmax_module):
    every = softmax_module.train(max_iter=10, update="simultaneous")
    third = softmax_module.train(max_iter=10, update="simultaneous", record_every=3)
    none = softmax_module.train(max_iter=10, update="simultaneous", record_every=0)
    assert np.array_equal(third.loss_history, np.r_[every.loss_history[0:10:3], every.loss_history[-1]])
    assert none.loss_history.shape == (0,)
    assert np.array_equal(every.w, third.w) and np.array_equal(every.w, none.w)


# --- validation, early stopping, accuracy ------------------------------------------------------------------------


def test_validation_history_and_accuracy(softmax_module):
    result = softmax_module.train(optimizer="adam", lr=0.05, max_iter=3, batch_size=8, X_val=X_VAL, Y_val=Y_VAL)
    w = softmax_module.train(optimizer="adam", lr=0.05, max_iter=2, batch_size=8).w
    assert result.val_loss_history.shape == result.accuracy_history.shape == (3,)
    assert result.val_loss_history[1] == softmax_module.loss(w, X_VAL, Y_VAL)
    assert result.accuracy_history[1] == softmax_module.accuracy(w, X_VAL, Y_VAL)
    outputs = softmax_module.forward(result.w, X_VAL)
    assert result.accuracy_history[-1] == np.mean(outputs.argmax(axis=1) == Y_VAL.argmax(axis=1))
    best = int(np.argmin(result.val_loss_history))
    assert softmax_module.loss(result.best_w, X_VAL, Y_VAL) == result.val_loss_history[best]


def test_patience_stops_and_returns_the_best_weights(softmax_module):
    """Validation labels that disagree with training's: the validation loss rises once training learns."""
    flipped = Y_VAL[:, ::-1]
    result = softmax_module.train(optimizer="adam", lr=0.05, max_iter=500, X_val=X_VAL, Y_val=flipped, patience=3)
    best = int(np.argmin(result.val_loss_history))
    assert result.status == "early_stopped" and result.iterations == best + 1 + 3
    assert np.array_equal(result.w, result.best_w)
    assert softmax_module.loss(result.w, X_VAL, flipped) == result.val_loss_history[best]
    assert result.loss_history[-1] == softmax_module.loss(result.w)  # the final loss is at the weights returned


# --- chunks, progress, Ctrl-C ------------------------------------------------------------------------------------


def _in_chunks_of_one_iteration(module, monkeypatch):
    monkeypatch.setattr(training, "FIRST_GUESS", 1e3)  # the first call: one iteration
    monkeypatch.setattr(training, "CHUNK_SECONDS", 1e-12)  # and every later one


CHUNKED_RUNS = {
    "batches, validation, every 2nd": dict(
        optimizer="adam", lr=0.05, max_iter=12, batch_size=5, X_val=X_VAL, Y_val=Y_VAL, record_every=2
    ),
    "every 5th (the final loss out of step)": dict(optimizer="adam", lr=0.05, max_iter=12, record_every=5),
    "none recorded": dict(
        optimizer="momentum", lr=0.1, momentum=0.9, max_iter=7, X_val=X_VAL, Y_val=Y_VAL, record_every=0
    ),
    "converged early": dict(update="simultaneous", lr=0.5, max_iter=10**6, tol=1e-3, record_every=3),
}


@pytest.mark.parametrize("settings", CHUNKED_RUNS.values(), ids=CHUNKED_RUNS)
def test_chunks_of_one_iteration_give_the_same_run(softmax_module, monkeypatch, settings):
    whole = softmax_module.train(**settings)  # short runs: one call of the compiled loop, without the chunk loop
    _in_chunks_of_one_iteration(softmax_module, monkeypatch)
    chunked = softmax_module.train(**settings)
    for a, b in zip(whole, chunked):
        assert np.array_equal(a, b)
    assert whole.status == ("converged" if settings.get("tol") else "max_iter")


@pytest.mark.parametrize("chunks", ["one call", "chunks of one iteration"])
def test_ctrl_c_during_a_call_keeps_what_it_ran(softmax_module, monkeypatch, chunks):
    """Ctrl-C while the compiled loop runs arrives as KeyboardInterrupt when it returns: the run stops there, and
    its final loss is the loss at the weights reached."""
    loop = loops.train_full_batch

    def interrupted_on_return(*arguments):
        loop(*arguments)
        raise KeyboardInterrupt

    monkeypatch.setattr(loops, "train_full_batch", interrupted_on_return)
    if chunks != "one call":
        _in_chunks_of_one_iteration(softmax_module, monkeypatch)
    result = softmax_module.train(optimizer="adam", lr=0.05, max_iter=9, record_every=2)
    ran = 9 if chunks == "one call" else 1
    monkeypatch.undo()
    reference = softmax_module.train(optimizer="adam", lr=0.05, max_iter=ran)
    assert result.status == "interrupted" and result.iterations == ran
    assert np.array_equal(result.w, reference.w)
    assert np.array_equal(result.loss_history, np.r_[reference.loss_history[0:ran:2], softmax_module.loss(result.w)])


def test_ctrl_c_during_the_last_call_says_interrupted(softmax_module, monkeypatch):
    """Ctrl-C while the last chunk runs (the handler noted it; the call ran to its end): the run has every
    iteration, and says it was interrupted, so that the command line exits 130 rather than 0."""
    loop = loops.train_full_batch

    def noted_during_the_last_call(*arguments):
        status = loop(*arguments)
        if int(arguments[-5]) == arguments[-4]:  # stop == max_iter: the last call
            os.kill(os.getpid(), signal.SIGINT)  # the runtime's handler is in place from the second call
        return status

    monkeypatch.setattr(loops, "train_full_batch", noted_during_the_last_call)
    _in_chunks_of_one_iteration(softmax_module, monkeypatch)
    # Python's own handler, which the runtime replaces for the run (a process started with SIGINT ignored, as a
    # shell's background job is, keeps ignoring it: nothing to take over)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = softmax_module.train(optimizer="adam", lr=0.05, max_iter=4)
    finally:
        signal.signal(signal.SIGINT, previous)
    monkeypatch.undo()
    reference = softmax_module.train(optimizer="adam", lr=0.05, max_iter=4)
    assert result.status == "interrupted" and result.iterations == 4
    assert np.array_equal(result.w, reference.w)


def test_progress_with_tqdm_and_without(softmax_module, monkeypatch, capsys):
    quiet = softmax_module.train(max_iter=50, update="simultaneous")
    shown = softmax_module.train(max_iter=50, update="simultaneous", progress=True)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if tqdm were not installed
    plain = softmax_module.train(max_iter=50, update="simultaneous", progress=True)
    assert np.array_equal(quiet.w, shown.w) and np.array_equal(quiet.w, plain.w)
    assert "iteration 50/50, loss" in capsys.readouterr().err


INTERRUPTED_RUN = """
import os, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import trainer_softmax as module
module.train(max_iter=2, optimizer="adam", batch_size=5)  # compiled (or loaded from the cache) before the clock runs
print("training", flush=True)
result = module.train(max_iter=10**12, optimizer="adam", batch_size=5)
print(result.status, result.iterations, list(result.w), flush=True)
"""


@pytest.mark.slow
def test_ctrl_c_stops_within_two_seconds_keeping_the_weights(softmax_module):
    child = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_RUN, softmax_module.__file__],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a terminal, even in a background job
    )
    try:
        assert child.stdout.readline() == "training\n"
        time.sleep(1.0)
        child.send_signal(signal.SIGINT)
        sent = time.perf_counter()
        output = child.stdout.readline()
        waited = time.perf_counter() - sent  # to the printed result: the interpreter's exit, after it, is
        child.communicate(timeout=30)  # slow on a loaded machine (seconds at a load of 12 on 2 cores)
    finally:
        child.kill()
    status, iterations, weights = output.split(" ", 2)
    assert child.returncode == 0 and status == "interrupted" and int(iterations) > 0
    assert waited < 2.0
    w = np.array(eval(weights))
    assert (
        w.shape == softmax_module.INIT.shape and np.all(np.isfinite(w)) and not np.array_equal(w, softmax_module.INIT)
    )


# --- saved weights and prediction --------------------------------------------------------------------------------

PREDICT = """
import os, sys
import numpy as np
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import trainer_softmax as module
np.save(sys.argv[3], module.forward(module.load_weights(sys.argv[2]), np.load(sys.argv[4])))
"""


@pytest.mark.slow
def test_saved_weights_predict_the_same_in_a_fresh_process(softmax_module, seed_module, tmp_path):
    result = softmax_module.train(optimizer="adam", lr=0.05, max_iter=20)
    result.save(tmp_path / "weights.npz")
    np.save(tmp_path / "X.npy", X_VAL)
    command = [
        sys.executable,
        "-c",
        PREDICT,
        softmax_module.__file__,
        tmp_path / "weights.npz",
        tmp_path / "out.npy",
        tmp_path / "X.npy",
    ]
    subprocess.run(command, check=True, env=os.environ)
    assert np.array_equal(np.load(tmp_path / "out.npy"), result.predict(X_VAL))
    assert np.array_equal(result.predict(X_VAL), softmax_module.forward(result.w, X_VAL))
    with pytest.raises(ValueError, match=r"weights.npz holds the weights of another model") as error:
        seed_module.load_weights(tmp_path / "weights.npz")
    assert "\n" not in str(error.value)
    np.savez(tmp_path / "other.npz", something=np.zeros(3))
    with pytest.raises(ValueError, match=r"other.npz holds no saved weights"):
        softmax_module.load_weights(tmp_path / "other.npz")
