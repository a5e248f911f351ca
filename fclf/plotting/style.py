"""Shared look of the figures: Agg backend, method names and colours, atomic PNG writes."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from fclf.atomic import atomic_path  # noqa: E402

REFERENCE_METHOD = "oracle"  # synthetic data only: each face's exact counterfactual
METHOD_LABELS = {
    "oracle": "oracle (exact counterfactual)",
    "fclf": "FCLF",
    "mean_direction": "peer: mean direction",
    "conditional_direction": "peer: InterFaceGAN direction",
    "code_line": "peer: line per code pair",
    "knn_analogy": "peer: k-NN analogy",
    "conditional_flow": "peer: conditional flow (StyleFlow-like)",
    "reference": "reference (trained on true pairs)",
}
METHOD_COLOURS = {
    "oracle": "#000000",
    "fclf": "#1f77b4",
    "mean_direction": "#ff7f0e",
    "conditional_direction": "#2ca02c",
    "code_line": "#9467bd",
    "knn_analogy": "#8c564b",
    "conditional_flow": "#e377c2",
    "reference": "#7f7f7f",
}
OTHER_GREY = "#b0b0b0"
COLLAPSE_RED = "#d62728"
NEUTRAL_GREY = "#444444"

plt.rcParams.update({
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "figure.titlesize": 13,
})


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def method_colour(method: str, position: int) -> str:
    fallback = plt.get_cmap("tab10")((position + 3) % 10)
    return METHOD_COLOURS.get(method, matplotlib.colors.to_hex(fallback))


def new_figure(width: float, height: float, ncols: int = 1, nrows: int = 1, **kwargs):
    """A figure and its axes (squeezed like plt.subplots), laid out with constrained layout."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), layout="constrained",
                             **kwargs)
    return fig, axes


def save_png(fig: Figure, path: str | Path, dpi: int) -> None:
    """Write `fig` as a PNG atomically, then free it."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
    finally:
        plt.close(fig)
