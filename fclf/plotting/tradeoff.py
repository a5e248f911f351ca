"""Trade-off curves of one split (metrics/curves_<split>.csv): each metric as the edit
strength s goes 0 -> 2 (s = 1: the method's operating point, a star).

Four panels: flip success against preservation (linear judge), the
displacement cosine and the counterfactual cosine against s (ground truth,
synthetic data only; an editor that overshoots past s = 1 shows a drop), and
identity top-1 against movement. The oracle (exact counterfactuals, synthetic
data only) is the dashed black reference. A panel with no values at all says
that there is no ground truth instead of drawing empty axes. Methods flagged
as collapsed are named in red in the legend; the panels are shared, so no
panel carries a banner.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from fclf.plotting.banner import MODE_COLLAPSE, CollapseSummary, title_with_collapse
from fclf.plotting.style import (
    COLLAPSE_RED,
    REFERENCE_METHOD,
    method_colour,
    method_label,
    new_figure,
)

OPERATING_POINT = 1.0
NO_TRUTH = "no ground truth on real data"
PANELS = (  # (x, y, title)
    ("preservation_linear", "flip_success_linear",
     "Flip success vs preservation (linear judge)"),
    ("strength", "displacement_cosine",
     "Displacement cosine: direction of the move vs the true move"),
    ("strength", "counterfactual_cosine",
     "Counterfactual cosine: edit vs exact counterfactual\n(overshoot past s = 1 shows as a drop)"),
    ("strength", "overshoot_rate",
     "Overshoot rate: requested attributes pushed past 99 % of real faces\n(truth-free)"),
)
AXIS_LABELS = {
    "preservation_linear": "preservation (linear judge)",
    "flip_success_linear": "flip success (linear judge)",
    "strength": "relative strength s (1 = operating point)",
    "displacement_cosine": "displacement cosine",
    "counterfactual_cosine": "counterfactual cosine (centred)",
    "movement": "movement (mean \u2016edit \u2212 source\u2016)",
    "overshoot_rate": "overshoot rate",
}


def _style(method: str, position: int) -> dict:
    if method == REFERENCE_METHOD:
        return {"color": "black", "linestyle": "--", "linewidth": 1.6, "zorder": 2}
    return {"color": method_colour(method, position), "linestyle": "-", "linewidth": 1.8,
            "zorder": 3}


def _no_values(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=12,
            color="#555555", bbox={"facecolor": "#f2f2f2", "edgecolor": "#bbbbbb"})
    ax.set_xticks([])
    ax.set_yticks([])


def _panel(ax: Axes, curves: pd.DataFrame, methods: list[str], x: str, y: str) -> bool:
    """One metric against x for every method; False (and a note) when y is unknown."""
    drawn = False
    for position, method in enumerate(methods):
        rows = curves[curves["method"] == method].sort_values("strength")
        xs, ys = rows[x].to_numpy(np.float64), rows[y].to_numpy(np.float64)
        keep = np.isfinite(xs) & np.isfinite(ys)
        if not keep.any():
            continue
        drawn = True
        style = _style(method, position)
        ax.plot(xs[keep], ys[keep], marker="o", markersize=3.5, **style)
        at = keep & np.isclose(rows["strength"].to_numpy(np.float64), OPERATING_POINT)
        ax.scatter(xs[at], ys[at], marker="*", s=190, color=style["color"],
                   edgecolors="white" if method == REFERENCE_METHOD else "black",
                   linewidths=0.8, zorder=6)
    if not drawn:
        missing_truth = y in ("displacement_cosine", "counterfactual_cosine")
        _no_values(ax, NO_TRUTH if missing_truth else f"no {y} values in the curves")
        return False
    if x == "preservation_linear":
        start = curves[np.isclose(curves["strength"], 0.0)][[x, y]].to_numpy(np.float64)
        start = start[np.isfinite(start).all(axis=1)]
        if len(start):
            ax.annotate("s = 0 (no edit)", start.mean(axis=0), xytext=(-4, -5),
                        textcoords="offset points", ha="right", va="top", fontsize=8.5,
                        color="#555555")
    if x == "strength":
        ax.axvline(OPERATING_POINT, color="#888888", linewidth=0.9, linestyle=":", zorder=1)
    ax.set_xlabel(AXIS_LABELS.get(x, x))
    ax.set_ylabel(AXIS_LABELS.get(y, y))
    ax.grid(True, alpha=0.3)
    return True


def figure_tradeoff_curves(
    curves: pd.DataFrame,
    summaries: Mapping[str, CollapseSummary],
    split: str = "test",
) -> Figure:
    """2 x 2 trade-off panels over the rows of `curves` (one split, columns as in the CSV)."""
    methods = list(dict.fromkeys(curves["method"]))
    if REFERENCE_METHOD in methods:  # drawn first, under the others
        methods.remove(REFERENCE_METHOD)
        methods.insert(0, REFERENCE_METHOD)
    fig, axes = new_figure(13, 10, nrows=2, ncols=2, squeeze=False)
    for ax, (x, y, title) in zip(axes.ravel(), PANELS, strict=True):
        ax.set_title(title, fontsize=10.5)
        _panel(ax, curves, methods, x, y)
    handles, collapsed_flags = [], []
    for position, method in enumerate(methods):
        summary = summaries.get(method)
        collapsed = bool(summary and summary.collapsed)
        label = method_label(method) + (f" \u2014 {MODE_COLLAPSE}" if collapsed else "")
        style = _style(method, position)
        handles.append(Line2D([], [], color=style["color"], linestyle=style["linestyle"],
                              linewidth=style["linewidth"], marker="o", markersize=3.5,
                              label=label))
        collapsed_flags.append(collapsed)
    handles.append(Line2D([], [], marker="*", linestyle="", markersize=13, color="#777777",
                          markeredgecolor="black", label="s = 1 (operating point)"))
    collapsed_flags.append(False)
    legend = fig.legend(handles=handles, loc="outside lower center",
                        ncols=min(len(handles), 3), frameon=False)
    for text, collapsed in zip(legend.get_texts(), collapsed_flags, strict=True):
        if collapsed:
            text.set_color(COLLAPSE_RED)
            text.set_fontweight("bold")
    strengths = curves["strength"].to_numpy(np.float64)
    title_with_collapse(
        fig,
        f"Trade-off curves on the {split} split (told mode): strength s from "
        f"{np.nanmin(strengths):g} to {np.nanmax(strengths):g}, one marker per s "
        "(curve subsample)",
        [summaries[m] for m in methods if m in summaries],
    )
    return fig
