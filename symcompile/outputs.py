"""Files the command line writes for a user: a training run's history (CSV) and plot (PNG), and predictions (CSV).

Each is checked writable before the work that fills it starts (`check_writable`),
so a typo in a path costs a line, not a training run. Numbers are written with
`repr`, the shortest text that reads back as the same float.
"""

from __future__ import annotations

import csv
import io
import os

import numpy as np

from symcompile.errors import SymcompileError


def check_writable(path):
    """Fail before minutes of work, not after, when `path` cannot be written. Leaves nothing behind: a file
    that was not there is removed again, so a run that fails later does not leave an empty one."""
    existed = os.path.exists(path)
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise SymcompileError(f"cannot write {path}: {exc.strerror or exc}") from exc
    if not existed:
        os.remove(path)


def write_text(path, text):
    try:
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    except OSError as exc:
        raise SymcompileError(f"cannot write {path}: {exc.strerror or exc}") from exc


def csv_text(header, rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else repr(float(v)) if isinstance(v, (float, np.floating)) else v for v in row]
                      for row in rows])  # fmt: skip
    return out.getvalue()


def history_columns(result, record_every=1) -> dict[str, list]:
    """The run's recorded series as columns, one row per iteration t that has a value: `loss` at the weights after t
    iterations (every record_every-th, and the final one; for mini-batches, the mean over epoch t + 1's batches),
    and, when the run had validation data, `val_loss` and `val_accuracy` at the weights after iteration t.
    Cells without a value are None."""
    losses = list(result.loss_history)
    series = {"loss": {t * record_every: value for t, value in enumerate(losses[:-1])}}
    if losses:
        series["loss"][result.iterations] = losses[-1]
    for name, attribute in (("val_loss", "val_loss_history"), ("val_accuracy", "accuracy_history")):
        values = getattr(result, attribute, None)
        if values is not None and len(values):
            series[name] = {t + 1: value for t, value in enumerate(values)}
    iterations = sorted(set().union(*series.values()))
    return {"iteration": iterations} | {name: [values.get(t) for t in iterations] for name, values in series.items()}


def write_history(path, result, record_every=1):
    columns = history_columns(result, record_every)
    write_text(path, csv_text(list(columns), zip(*columns.values())))


def require_matplotlib():
    """matplotlib's pyplot (with a backend that needs no display), or a one-line error naming the extra."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SymcompileError("--plot needs matplotlib: pip install 'symcompile[plot]'") from None
    return plt


def plot_history(path, result, title, record_every=1):
    """The training (and validation) loss per epoch, on a log scale when it spans more than a decade."""
    plt = require_matplotlib()
    columns = history_columns(result, record_every)
    figure, axes = plt.subplots(figsize=(6, 4))
    for name in ("loss", "val_loss"):
        if name in columns:
            points = [(t, v) for t, v in zip(columns["iteration"], columns[name]) if v is not None]
            axes.plot(*zip(*points), label="training" if name == "loss" else "validation")
    losses = [v for v in columns["loss"] if v is not None and v > 0]
    if losses and max(losses) > 10 * min(losses):
        axes.set_yscale("log")
    axes.set(xlabel="iteration (epoch, with mini-batches)", ylabel="loss", title=title)
    axes.legend()
    figure.tight_layout()
    try:
        figure.savefig(path)
    except OSError as exc:
        raise SymcompileError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        plt.close(figure)


def predictions_text(outputs, target_names) -> str:
    """CSV of one row per sample: the model's outputs, named after the targets; for several outputs that are
    probabilities (a softmax classifier) also the predicted `class` (0-based, the largest output)."""
    outputs = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    header = list(target_names)
    rows = [list(row) for row in outputs]
    if outputs.shape[1] > 1 and np.allclose(outputs.sum(axis=1), 1) and np.all(outputs >= 0):
        header.append("class")
        rows = [row + [int(k)] for row, k in zip(rows, outputs.argmax(axis=1))]
    return csv_text(header, rows)
