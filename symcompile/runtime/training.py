"""Running a compiled training loop from Python: in chunks, with progress, Ctrl-C and bounded histories.

The compiled loop (`symcompile.runtime.loops`) cannot be stopped midway, so it runs in calls of about
CHUNK_SECONDS each; between calls Python shows progress and notices Ctrl-C. A run short enough for one call
takes one call and no bookkeeping.
"""

import signal
import sys
import time
from typing import NamedTuple

import numpy as np

from .loops import INTERRUPTED, ITERATION, STATUS

# A run keeps at most this many values of each history (8 bytes each; --history writes a few MB of CSV for them):
# a longer run keeps every k-th iteration's (train's record_every), so its memory is bounded however long it runs.
MAX_RECORDED = 2**16
# The compiled loop returns to Python about this often (seconds), to show progress and to notice Ctrl-C.
CHUNK_SECONDS = 0.1
# A cautious guess of one iteration's seconds per sample and parameter, to size the first call of the loop
# before anything is measured (measured: about 1e-7 for the seed, 1e-9 for larger networks).
FIRST_GUESS = 2e-7
# Where X_val sits in the compiled loop's arguments, counted from the end (X_val, Y_val, patience, state, run, best_w)
_X_VAL_ARGUMENT = -6
_NORMAL_STOPS = tuple(STATUS.index(s) for s in ("max_iter", "converged", "early_stopped"))  # (failures keep theirs)
_NO_VALIDATION = np.empty(0), np.empty(0)  # the validation histories of a run without validation data


class TrainResult(NamedTuple):
    """What `train` returns. Its histories hold what was recorded; `predict` and `save` use `w`."""

    w: np.ndarray  # final weights, in PARAMS order; with `patience`, the best weights (as best_w)
    iterations: int  # iterations run (epochs, when training in mini-batches)
    loss_history: np.ndarray  # the training loss of every record_every-th iteration (below), then the final loss
    converged: bool  # stopped because every |step| fell below tol
    status: str  # "converged", "max_iter", "non-finite" (the loss or a weight stopped being finite: w is then the
    # last point with finite weights), "diverged" (stopped at the first weights where the loss exceeds
    # DIVERGED_FACTOR * (1 + |first loss|), or ended, at max_iter or converged, above ENDED_ABOVE_FACTOR times
    # that: symcompile.runtime.loops), "early_stopped" (`patience` epochs without a better validation loss), or
    # "interrupted" (Ctrl-C: w is where training had got to)
    val_loss_history: np.ndarray = np.empty(
        0
    )  # the validation loss after every record_every-th iteration; empty without X_val
    accuracy_history: np.ndarray = np.empty(0)  # the validation accuracy after the same iterations (classifiers)
    best_w: np.ndarray = None  # the weights of the lowest validation loss (without X_val: w)
    record_every: int = 1  # the iterations between two recorded values: train's record_every, or a multiple of it
    # that keeps a long run's histories within MAX_RECORDED values each (0: nothing recorded)

    # A generated module's TrainResult is a subclass whose `_model` is the module's Model.
    _model = None

    def predict(self, X=None):
        """The model's outputs at the trained weights (`forward(w, X)`)."""
        return self._model.forward(self.w, X)

    def save(self, path):
        """Write the weights, their parameter names and the model's digest to an .npz file (`load_weights` reads it)."""
        self._model.save(path, self.w)


def recording_stride(record_every, max_iter):
    """The iterations between two recorded values of a run of max_iter: record_every, or its smallest multiple
    that keeps each history within MAX_RECORDED values (0: none recorded)."""
    if not record_every:
        return 0
    return record_every * -(-max_iter // (record_every * MAX_RECORDED))


def train_in_chunks(loop, arguments, run, max_iter, record_every, first_guess, progress):
    """Run the compiled `loop` in calls of about CHUNK_SECONDS each, until it stops or Ctrl-C.

    Between calls the loop's arguments carry the run: the weights, the rule's state arrays, `run` (counters),
    the random generator's state and the order of the samples, the best weights. The first call's length
    comes from `first_guess` (seconds per iteration), the others' from the time the last one took.
    Returns (status, the recorded losses, validation losses and accuracies).
    """
    validating = arguments[_X_VAL_ARGUMENT].shape[0] > 0
    if progress is False and first_guess * max_iter <= CHUNK_SECONDS:
        return _one_call(loop, arguments, run, max_iter, record_every, validating)
    losses, val_losses, accuracies = [], [], []
    done, seconds_per_iteration, status = 0, first_guess, -1
    interrupts = _Interrupts()
    try:
        with _progress_bar(progress, max_iter) as bar:
            while status < 0:
                if interrupts.seen:
                    status = INTERRUPTED
                    if record_every:
                        losses.append(np.empty(1))  # the final loss: train computes it
                    break
                count = min(max_iter - done, max(1, int(CHUNK_SECONDS / max(seconds_per_iteration, 1e-12))))
                chunk = (np.empty(count + 1 if record_every else 1),  # as in _one_call
                         *((np.empty(count), np.empty(count)) if validating else _NO_VALIDATION))  # fmt: skip
                started = time.perf_counter()
                try:
                    status = loop(*arguments, done + count, max_iter, *chunk)
                except KeyboardInterrupt:  # in the first call, before the handler is in place: the call
                    status = INTERRUPTED  # itself has finished (compiled code runs to its end), so its results stand
                ran = int(run[ITERATION]) - done
                seconds_per_iteration = (time.perf_counter() - started) / max(ran, 1)
                # Copies, not views: a view would keep the whole chunk alive, every iteration's values of a long run
                losses.append(_recorded(chunk[0], done, ran, status, record_every).copy())
                val_losses.append(_recorded_after(chunk[1], done, ran, record_every).copy())
                accuracies.append(_recorded_after(chunk[2], done, ran, record_every).copy())
                done += ran
                if bar is not None and ran:
                    latest = ran if 0 <= status < INTERRUPTED else ran - 1
                    bar.show(done, chunk[0][min(latest, chunk[0].shape[0] - 1)])
                if status < 0:
                    interrupts.install()  # only now: a run that takes one call pays nothing for it
        if interrupts.seen and status in _NORMAL_STOPS:  # Ctrl-C during the last call: it ran to its end, and
            status = INTERRUPTED  # the run says so (exit 130 on the command line), not that it was not pressed
    finally:
        interrupts.restore()
    return status, _joined(losses), _joined(val_losses), _joined(accuracies)


def _one_call(loop, arguments, run, max_iter, record_every, validating):
    """The whole run in one call (the seed's fits one), without the chunks' bookkeeping, which costs
    microseconds, a few percent of a run this short (BENCHMARKS.md, trainer overhead). Nothing recorded: room
    for one loss, not max_iter + 1 (a long run wrote megabytes no one read)."""
    losses = np.empty(max_iter + 1 if record_every else 1)
    val_losses, accuracies = (np.empty(max_iter), np.empty(max_iter)) if validating else _NO_VALIDATION
    try:
        status = loop(*arguments, max_iter, max_iter, losses, val_losses, accuracies)
    except KeyboardInterrupt:  # as in the chunks' first call
        status = INTERRUPTED
    ran = int(run[ITERATION])
    if validating:
        val_losses, accuracies = (_recorded_after(values, 0, ran, record_every) for values in (val_losses, accuracies))
    return status, _recorded(losses, 0, ran, status, record_every), val_losses, accuracies


def _recorded(losses, done, ran, status, record_every):
    """What to keep of one call's `losses` (iterations done .. done + ran - 1): the iterations that are multiples of
    record_every; once the loop has stopped (status >= 0), also the final loss written after them (after Ctrl-C
    during the call, its place, which train fills)."""
    if not record_every:
        return np.empty(0)
    first = -done % record_every
    if status < 0:
        return losses[first:ran:record_every]
    if (done + ran) % record_every == 0:  # the final loss falls in step: one slice
        return losses[first : ran + 1 : record_every]
    return np.concatenate((losses[first:ran:record_every], losses[ran : ran + 1]))


def _recorded_after(values, done, ran, record_every):
    """What to keep of one call's validation `values` (after iterations done + 1 .. done + ran): those after an
    iteration that is a multiple of record_every."""
    if not (record_every and values.shape[0]):
        return values[:0]
    return values[(-done - 1) % record_every : ran : record_every]


def _joined(arrays):
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays) if arrays else np.empty(0)


class _Interrupts:
    """Ctrl-C during training, noted by a signal handler and acted on between calls of the compiled loop
    (which cannot be stopped midway). A second Ctrl-C interrupts at once. Python's own handler is only
    replaced where it is in place, in the main thread."""

    def __init__(self):
        self.seen, self.installed = False, False

    def install(self):
        if self.installed:
            return
        self.installed = True
        try:
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                signal.signal(signal.SIGINT, self._note)
                return
        except ValueError:  # not the main thread
            pass
        self.installed = None  # not ours to replace

    def _note(self, signum, frame):
        if self.seen:
            raise KeyboardInterrupt
        self.seen = True

    def restore(self):
        if self.installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)


class _Progress:
    """A progress bar: tqdm's when it is installed, else one line on stderr rewritten in place."""

    def __init__(self, total):
        self.total = total
        try:
            from tqdm import tqdm  # imported here: the runtime needs no tqdm unless progress is shown
        except ImportError:
            self.bar = None
        else:
            self.bar = tqdm(total=total, unit="it", dynamic_ncols=True)

    def show(self, done, loss):
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss={loss:.6g}", refresh=False)
            self.bar.update(done - self.bar.n)
        else:
            print(f"\riteration {done}/{self.total}, loss {loss:.6g}", end="", file=sys.stderr, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self.bar is not None:
            self.bar.close()
        else:
            print(file=sys.stderr)


class _NoProgress:
    def __enter__(self):
        return None

    def __exit__(self, *exc_info):
        pass


def _progress_bar(progress, total):
    return _Progress(total) if progress else _NoProgress()
