"""Files the command line writes for a user: a training run's history (CSV) and plot (PNG), and predictions (CSV).

Each is checked writable before the work that fills it starts (`check_writable`),
so a typo in a path costs a line, not a training run. Numbers are written with
`repr`, the shortest text that reads back as the same float.
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import numpy as np

from symcompile.errors import SymcompileError
from symcompile.writer import remove_stale_temporaries, write_atomically


def check_writable(path):
    """Fail before minutes of work, not after, when `path` cannot be written: a folder, a folder that does not
    exist, or one this user may not write in (files are written as a temporary there, then renamed). Leaves
    nothing behind."""
    path = Path(path)
    if path.is_dir():
        raise SymcompileError(f"cannot write {path}: it is a folder")
    folder = path.parent
    if not folder.is_dir():
        raise SymcompileError(f"cannot write {path}: No such file or folder {folder}")
    try:
        with tempfile.TemporaryFile(dir=folder):  # unnamed where the system allows: nothing to clean up
            pass
    except OSError as exc:
        raise SymcompileError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_file(path, write):
    """`write(f)` fills the binary file `f` that becomes `path`: a temporary beside it, renamed over it when
    complete (writer.write_atomically), so a kill at any moment leaves the old file or the new one. A kill during
    the write leaves its temporary behind: the next write of `path` removes those of processes that have ended."""
    try:
        remove_stale_temporaries(Path(path).parent, Path(path).name)
        write_atomically(path, write)
    except OSError as exc:
        raise SymcompileError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_text(path, text):
    write_file(path, lambda f: f.write(text.encode("utf-8")))


def csv_text(header, rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else repr(float(v)) if isinstance(v, (float, np.floating)) else v for v in row]
                      for row in rows])  # fmt: skip
    return out.getvalue()


def history_columns(result, initial_loss=None, mini_batches=False) -> dict[str, list]:
    """The run's recorded series as columns, one row per iteration t that has a value (every result.record_every-th,
    and the last): `loss` at the weights after t iterations, the final one at the weights returned; with
    mini-batches, the mean over epoch t's batches (the loss recorded at iteration t - 1), the last row the final
    loss and row 0 `initial_loss`, the loss at the start. With validation data, `val_loss` and `val_accuracy` at
    the weights after iteration t: a row's values are all taken after the same epoch. Cells without a value are
    None."""
    every, losses = getattr(result, "record_every", 1), list(result.loss_history)
    shift = 1 if mini_batches else 0  # an epoch's mean loss belongs to the row of the epoch's end
    series = {"loss": {t * every + shift: value for t, value in enumerate(losses[:-1])}}
    if mini_batches and initial_loss is not None:
        series["loss"][0] = initial_loss
    if losses:
        series["loss"][result.iterations] = losses[-1]  # (with mini-batches, in place of the last epoch's mean)
    for name, attribute in (("val_loss", "val_loss_history"), ("val_accuracy", "accuracy_history")):
        values = getattr(result, attribute, None)
        if values is not None and len(values):
            series[name] = {(t + 1) * every: value for t, value in enumerate(values)}
    iterations = sorted(set().union(*series.values()))
    return {"iteration": iterations} | {name: [values.get(t) for t in iterations] for name, values in series.items()}


def write_history(path, result, initial_loss=None, mini_batches=False):
    columns = history_columns(result, initial_loss, mini_batches)
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


def check_plot_path(path):
    """`--plot PATH`, checked before the work: writable, and its extension a format matplotlib writes (no
    extension is an error rather than a PNG under another name). Returns the format."""
    check_writable(path)
    require_matplotlib()
    from matplotlib.figure import Figure

    formats = Figure().canvas.get_supported_filetypes()  # a figure outside pyplot's: nothing to close
    extension = Path(path).suffix.lower().removeprefix(".")
    if extension not in formats:
        given = f"extension .{extension}" if extension else "no extension"
        raise SymcompileError(f"--plot {path}: {given}; name the format by the extension: {', '.join(sorted(formats))}")
    return extension


def save_figure(figure, path):
    """Write a matplotlib figure to `path` atomically, in the format its extension names (check_plot_path)."""
    plt = require_matplotlib()
    try:
        write_file(path, lambda f: figure.savefig(f, format=Path(path).suffix.lower().removeprefix(".")))
    finally:
        plt.close(figure)


def plot_history(path, result, title, initial_loss=None, mini_batches=False):
    """The training (and validation) loss per epoch (history_columns), on a log scale when it spans more than a
    decade."""
    plt = require_matplotlib()
    columns = history_columns(result, initial_loss, mini_batches)
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
    save_figure(figure, path)


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
