"""Where a sample of edits goes: a straight segment from each source (circle) to its edit
(arrow head), one panel per method, in the real-data PCA plane.

The evaluation stores only where each edit ends, not the path a flow took on
the way, so a segment shows the net displacement and nothing else: the figure
says so, and integrates nothing. Segments are short next to the cloud because
the plane holds only a few percent of the variance; directions are comparable
across panels, since every panel draws the same sources in the same view.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from fclf.plotting.banner import CollapseSummary, panel_banner, title_with_collapse
from fclf.plotting.combos import CategoryColours
from fclf.plotting.scatter import OUTSIDE_HANDLE, grid_shape
from fclf.plotting.style import method_label, new_figure
from fclf.plotting.view import apply_limits, clip, inside, robust_limits


def figure_trajectories(
    xy_background: np.ndarray,
    starts: np.ndarray,
    ends: Mapping[str, np.ndarray],
    flip_labels: np.ndarray,
    axis_labels: tuple[str, str],
    summaries: Mapping[str, CollapseSummary],
    total: int,
) -> Figure:
    """`starts` (m, 2): m sampled sources; `ends[method]` (m, 2): that method's edits of them,
    coloured by the flip each edit asks for ('+Smiling', '−Male'); real points grey behind."""
    colours = CategoryColours.top(list(flip_labels), max_categories=10)
    nrows, ncols = grid_shape(len(ends))
    fig, axes = new_figure(5.6 * ncols + 2.4, 5.0 * nrows + 1.0, ncols=ncols, nrows=nrows,
                           squeeze=False)
    flat = list(axes.ravel())
    limits = robust_limits(xy_background, [starts, *ends.values()])
    any_outside = False
    for ax, (method, end) in zip(flat, ends.items(), strict=False):
        ax.scatter(xy_background[:, 0], xy_background[:, 1], s=5, c="#d6d6d6", linewidths=0,
                   zorder=1)
        seen = inside(end, limits)
        any_outside |= not seen.all()
        drawn = clip(end, limits)
        for i, label in enumerate(flip_labels):
            colour = colours.colour_of(label)
            ax.annotate("", xy=drawn[i], xytext=starts[i], zorder=3, annotation_clip=False,
                        arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.3,
                                    "mutation_scale": 10, "shrinkA": 0, "shrinkB": 0,
                                    "linestyle": "-" if seen[i] else ":"})
        ax.scatter(starts[:, 0], starts[:, 1], s=16, facecolors="white",
                   edgecolors=[colours.colour_of(x) for x in flip_labels], linewidths=1.1,
                   zorder=4)
        if not seen.all():
            ax.scatter(drawn[~seen, 0], drawn[~seen, 1], s=30, marker="X", c="#888888",
                       edgecolors="black", linewidths=0.4, zorder=5, clip_on=False)
            ax.text(0.98, 0.02, f"{int((~seen).sum())} edit(s) end outside the view "
                    "(dotted, \u2716 on the border)", transform=ax.transAxes, ha="right",
                    va="bottom", fontsize=8.5,
                    bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "#888888"})
        apply_limits(ax, limits)
        ax.set_xlabel(axis_labels[0])
        ax.set_ylabel(axis_labels[1])
        ax.grid(True, alpha=0.25)
        ax.set_title(f"{method_label(method)}: source \u2192 edit")
        panel_banner(ax, summaries[method])
    for ax in flat[len(ends):]:
        ax.axis("off")
    title_with_collapse(
        fig,
        f"Net displacement of {len(flip_labels)} of {total} test edits in the real-data PCA "
        "plane\nstraight source \u2192 edit segments: the path in between is not recorded",
        summaries.values(),
    )
    handles = [Line2D([], [], color=c, linewidth=2, label=cat)
               for cat, c in zip(colours.categories, colours.colours, strict=True)]
    if set(flip_labels) - set(colours.categories):
        handles.append(Line2D([], [], color=colours.other, linewidth=2, label="other flips"))
    handles += [
        Line2D([], [], marker="o", linestyle="", markerfacecolor="white",
               markeredgecolor="black", label="source"),
        Line2D([], [], marker=">", linestyle="", color="black", label="edit"),
        Line2D([], [], marker="o", linestyle="", color="#d6d6d6", label="real points"),
    ]
    if any_outside:
        handles.append(OUTSIDE_HANDLE)
    fig.legend(handles=handles, title="requested flip (+ on, \u2212 off)",
               loc="outside right center", frameon=False)
    return fig
