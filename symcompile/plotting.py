"""`fit --plot`: the data and the fitted curve of a one-input model, with its confidence band, drawn with
matplotlib (optional).

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


def plot_fit(module, w, path, name, band=None, sigma=None):
    """The module's data (points, with error bars where `sigma` gives each sample's standard deviation) and its
    outputs at `w` over the data's range (lines), into `path`, titled with the model's `name` (the module's own
    __name__ is the private `_symcompile_<digest>`). `band`: a function of the grid's x giving the confidence
    band's half-width (FitReport.eval_uncertainty), drawn shaded around the curve."""
    pyplot = require_matplotlib()
    x, Y = module.X[:, 0], module.Y
    grid = np.linspace(x.min(), x.max(), CURVE_POINTS)
    curves = module.forward(w, grid[:, None]).reshape(CURVE_POINTS, -1)
    widths = None if band is None else np.asarray(band(grid)).reshape(CURVE_POINTS, -1)
    figure, axes = pyplot.subplots(figsize=(6.4, 4.2))
    for k in range(Y.shape[1]):
        label = f"data: {module.TARGETS[k]}"
        if sigma is None:
            points = axes.plot(x, Y[:, k], "o", markersize=4, label=label)[0]
        else:
            points = axes.errorbar(x, Y[:, k], yerr=sigma, fmt="o", markersize=4, capsize=2, label=label)[0]
        if k < curves.shape[1]:
            axes.plot(
                grid,
                curves[:, k],
                "-",
                color=points.get_color(),
                label=f"fit: output {k}" if curves.shape[1] > 1 else "fit",
            )
        if widths is not None and k < widths.shape[1]:
            axes.fill_between(grid, curves[:, k] - widths[:, k], curves[:, k] + widths[:, k], color=points.get_color(),
                              alpha=0.25, linewidth=0, label="1-sigma confidence band")  # fmt: skip
    axes.set_xlabel(module.INPUTS[0])
    axes.set_title(f"{name}: " + ", ".join(f"{n}={v:.6g}" for n, v in zip(module.PARAMS, w)), fontsize=9)
    axes.legend()
    figure.tight_layout()
    figure.set_dpi(120)  # savefig's default: the figure's
    save_figure(figure, path)
