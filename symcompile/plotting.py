"""`fit --plot`: the data and the fitted curve of a one-input model, drawn with matplotlib (optional).

matplotlib is imported only here and only when a plot is asked for; without
it, or for a model that a curve cannot show, `check_can_plot` says so in one
line before anything is built or fitted.
"""

from __future__ import annotations

import numpy as np

from symcompile.errors import SymcompileError
from symcompile.outputs import check_plot_path, require_matplotlib, save_figure

CURVE_POINTS = 400


def check_can_plot(model, path):
    """Before the fit: a curve can show the model, and `path` is writable with a format's extension."""
    if len(model.inputs) != 1:
        raise SymcompileError(f"--plot draws one-input models; {model.name} has {len(model.inputs)} inputs")
    check_plot_path(path)


def plot_fit(module, w, path, name):
    """The module's data (points) and its outputs at `w` over the data's range (lines), into `path`, titled
    with the model's `name` (the module's own __name__ is the private `_symcompile_<digest>`)."""
    pyplot = require_matplotlib()
    x, Y = module.X[:, 0], module.Y
    grid = np.linspace(x.min(), x.max(), CURVE_POINTS)
    curves = module.forward(w, grid[:, None]).reshape(CURVE_POINTS, -1)
    figure, axes = pyplot.subplots(figsize=(6.4, 4.2))
    for k in range(Y.shape[1]):
        points = axes.plot(x, Y[:, k], "o", markersize=4, label=f"data: {module.TARGETS[k]}")[0]
        if k < curves.shape[1]:
            axes.plot(grid, curves[:, k], "-", color=points.get_color(), label=f"fit: output {k}" if curves.shape[1] > 1 else "fit")
    axes.set_xlabel(module.INPUTS[0])
    axes.set_title(f"{name}: " + ", ".join(f"{n}={v:.6g}" for n, v in zip(module.PARAMS, w)), fontsize=9)
    axes.legend()
    figure.tight_layout()
    figure.set_dpi(120)  # savefig's default: the figure's
    save_figure(figure, path)
