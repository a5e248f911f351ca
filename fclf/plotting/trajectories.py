"""A sample of FCLF trajectories drawn in the PCA plane, from source (circle) to end (arrow)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from fclf.plotting.banner import CollapseSummary, title_with_verdict
from fclf.plotting.combos import CategoryColours
from fclf.plotting.style import new_figure


def figure_trajectories(
    xy_background: np.ndarray,
    paths: np.ndarray,
    flip_labels: np.ndarray,
    axis_labels: tuple[str, str],
    summary: CollapseSummary,
    total: int,
) -> Figure:
    """`paths` (steps + 1, m, 2): m trajectories projected into the plane; coloured by the
    flip each edit asks for ('+Smiling', '−Male'); real points in grey behind them."""
    steps = len(paths) - 1
    colours = CategoryColours.top(list(flip_labels), max_categories=10)
    fig, ax = new_figure(10.5, 7.5)
    ax.scatter(xy_background[:, 0], xy_background[:, 1], s=6, c="#d0d0d0", linewidths=0,
               zorder=1)
    for i, label in enumerate(flip_labels):
        colour = colours.colour_of(label)
        path = paths[:, i]
        ax.plot(path[:, 0], path[:, 1], color=colour, linewidth=1.4, alpha=0.9, zorder=3)
        ax.scatter(path[0, 0], path[0, 1], s=28, facecolors="white", edgecolors=colour,
                   linewidths=1.4, zorder=4)
        if steps:
            ax.annotate("", xy=path[-1], xytext=path[-2], zorder=5,
                        arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.4,
                                    "mutation_scale": 14, "shrinkA": 0, "shrinkB": 0})
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.grid(True, alpha=0.25)
    ax.set_title(f"{len(flip_labels)} of {total} edits, {steps} steps each; colour = requested "
                 "flip (+ turn on, \u2212 turn off)")
    title_with_verdict(fig, "FCLF trajectories in the real-data PCA plane", summary)
    handles = [Line2D([], [], color=c, linewidth=2, label=cat)
               for cat, c in zip(colours.categories, colours.colours, strict=True)]
    if set(flip_labels) - set(colours.categories):
        handles.append(Line2D([], [], color=colours.other, linewidth=2, label="other flips"))
    handles += [
        Line2D([], [], marker="o", linestyle="", markerfacecolor="white",
               markeredgecolor="black", label="source"),
        Line2D([], [], marker=">", linestyle="", color="black", label="end of edit"),
        Line2D([], [], marker="o", linestyle="", color="#d0d0d0", label="real points"),
    ]
    fig.legend(handles=handles, title="requested flip", loc="outside right upper",
               frameon=False)
    return fig
