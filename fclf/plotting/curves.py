"""Training curves: each loss component per epoch, train and val, from dvclive's logs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fclf.plotting.inputs import TrainingCurves
from fclf.plotting.style import new_figure

TITLES = {
    "loss": "total loss",
    "contr": "contrastive term",
    "curl": "curl penalty  E\u2016J \u2212 J\u1d40\u2016\u00b2",
    "div": "divergence penalty  E[(tr J)\u00b2]",
    "ident": "identity term (movement\u00b2)",
    "fm": "flow-matching regression error",
    "pair": "coupling: mean squared geodesic distance to the partner",
    "lr": "learning rate",
}
NOTES = {  # what a reader would otherwise mistake for a bug
    "div": "unbiased estimate: a batch average can dip below 0",
    "curl": "unbiased estimate from random probes",
}
SPLIT_STYLE = {"train": ("train", "-", "#1f77b4"), "val": ("val", "--", "#ff7f0e"),
               "": ("", "-", "#555555")}


def _order(curves: TrainingCurves) -> list[str]:
    known = [c for c in TITLES if c in curves]
    return known + sorted(c for c in curves if c not in TITLES)


def _log_scale_fits(values: Sequence[np.ndarray]) -> bool:
    v = np.concatenate([x[np.isfinite(x)] for x in values]) if values else np.array([])
    return bool(len(v)) and bool((v > 0).all()) and v.max() / v.min() > 100


def figure_training_curves(curves: TrainingCurves, notes: Sequence[str] = ()) -> Figure:
    """One panel per component; when there is nothing to draw, a figure that says why."""
    if not curves:
        fig, ax = new_figure(8, 3)
        ax.axis("off")
        ax.text(0.5, 0.5, "No training curves to show.\n" + "\n".join(notes), ha="center",
                va="center", fontsize=12, wrap=True)
        fig.suptitle("Training curves (skipped)")
        return fig
    components = _order(curves)
    ncols = min(3, len(components))
    nrows = -(-len(components) // ncols)
    fig, axes = new_figure(4.6 * ncols, 3.4 * nrows, ncols=ncols, nrows=nrows, squeeze=False)
    flat = axes.ravel()
    for ax, name in zip(flat, components, strict=False):
        for split, curve in sorted(curves[name].items()):
            label, style, colour = SPLIT_STYLE.get(split, (split, ":", "#2ca02c"))
            ax.plot(curve.steps, curve.values, style, color=colour, marker="o", markersize=3,
                    label=label or None)
        if _log_scale_fits([c.values for c in curves[name].values()]):
            ax.set_yscale("log")
        ax.set_title(TITLES.get(name, name))
        if name in NOTES:
            values = np.concatenate([c.values for c in curves[name].values()])
            negative = bool((values < 0).any())
            ax.text(0.02, 0.02, NOTES[name] + (" (it does here)" if negative else ""),
                    transform=ax.transAxes, fontsize=7, color="#555555", va="bottom")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_yscale() == "linear":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4), useMathText=True)
        ax.grid(True, alpha=0.3)
        if any(split for split in curves[name]):
            ax.legend()
    for ax in flat[len(components):]:
        ax.axis("off")
    title = "Training curves per epoch (train solid, val dashed)"
    if notes:
        title += "\n" + "; ".join(notes)
    fig.suptitle(title)
    return fig
