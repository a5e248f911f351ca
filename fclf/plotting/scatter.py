"""Real points and each method's edits in the PCA plane of the real embeddings.

Colours are attribute combinations: real points by their own, edits by their
target. One panel per method, all with the same robust view (fclf.plotting.view).
A method whose edits pile onto a few spots gets red rings around each pile (with
its size); a method the evaluation flagged as collapsed also gets the red banner
(fclf.plotting.banner), on its own panel only. Titles say what is drawn; whether
it looks healthy is for the reader and the collapse check, not the title.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from fclf.plotting.banner import CollapseSummary, panel_banner, title_with_collapse
from fclf.plotting.combos import CategoryColours
from fclf.plotting.style import COLLAPSE_RED, method_label, new_figure
from fclf.plotting.view import Limits, apply_limits, clip, inside, robust_limits, span_of

POINT_SIZE = 9
POINT_ALPHA = 0.55
PILE_CELL = 0.005  # a pile: edits within this fraction of the axis span of each other ...
PILE_MIN_SHARE = 0.01  # ... holding at least this share of the edits (and >= 5 of them)
MAX_PILES = 15


def find_piles(xy: np.ndarray, span: float) -> list[tuple[np.ndarray, int]]:
    """Spots in the plane where many points coincide: (centre, count), biggest first.

    Spread-out points almost never put 1% of themselves in one 0.5%-wide cell;
    a collapsed flow puts all of them in a handful.
    """
    xy = np.asarray(xy, np.float64)
    xy = xy[np.isfinite(xy).all(axis=1)] if len(xy) else xy
    if len(xy) == 0 or span <= 0:
        return []
    cells = np.floor(xy / (PILE_CELL * span)).astype(np.int64)
    keys, inverse, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    floor = max(5, int(np.ceil(PILE_MIN_SHARE * len(xy))))
    order = sorted(np.flatnonzero(counts >= floor), key=lambda i: (-counts[i], tuple(keys[i])))
    return [(xy[inverse == i].mean(axis=0), int(counts[i])) for i in order[:MAX_PILES]]


def mark_piles(ax: Axes, xy: np.ndarray, limits: Limits) -> int:
    """Red rings (area ~ count) with 'xN' labels around piles of coinciding edits; a pile
    outside the view is ringed where it crosses the border."""
    piles = find_piles(xy, span_of(limits))
    if not piles:
        return 0
    biggest = piles[0][1]
    for centre, count in piles:
        centre = clip(centre[None], limits)[0]
        ax.scatter(*centre, s=150 + 2500 * count / biggest, facecolors="none",
                   edgecolors=COLLAPSE_RED, linewidths=2, zorder=5)
        ax.annotate(f"\u00d7{count}", centre, xytext=(9, 9), textcoords="offset points",
                    color=COLLAPSE_RED, fontsize=10, fontweight="bold", zorder=6)
    return len(piles)


def scatter_by_category(ax: Axes, xy: np.ndarray, labels: np.ndarray,
                        colours: CategoryColours, limits: Limits | None = None) -> int:
    """Points by category; with `limits`, points outside are drawn as crosses on the border.
    Returns how many points lie outside the view."""
    xy = np.asarray(xy, np.float64)
    seen = inside(xy, limits) if limits is not None else np.ones(len(xy), bool)
    for _, colour, mask in colours.groups(labels):
        ax.scatter(xy[mask & seen, 0], xy[mask & seen, 1], s=POINT_SIZE, c=colour,
                   alpha=POINT_ALPHA, linewidths=0)
        out = mask & ~seen
        if out.any():
            edge = clip(xy[out], limits)
            ax.scatter(edge[:, 0], edge[:, 1], s=30, c=colour, marker="X", linewidths=0.4,
                       edgecolors="black", zorder=4, clip_on=False)
    return int((~seen).sum())


def category_legend(fig: Figure, labels_seen: list[np.ndarray], colours: CategoryColours,
                    title: str, extra: list[Line2D] | None = None) -> None:
    """One legend for the figure: coloured categories (most frequent first), then 'other'."""
    handles = []
    seen = np.concatenate([np.asarray(x, dtype=object) for x in labels_seen])
    for cat, colour in zip(colours.categories, colours.colours, strict=True):
        if (seen == cat).any():
            handles.append(_dot(colour, cat))
    others = sorted(set(seen) - set(colours.categories))
    if others:
        noun = "combination" if len(others) == 1 else "combinations"
        handles.append(_dot(colours.other, f"other ({len(others)} {noun})"))
    handles += extra or []
    fig.legend(handles=handles, title=title, loc="outside right upper", frameon=False)


def _dot(colour: str, label: str) -> Line2D:
    return Line2D([], [], marker="o", linestyle="", markersize=7, color=colour, label=label)


OUTSIDE_HANDLE = Line2D([], [], marker="X", linestyle="", markersize=7, color="#888888",
                        markeredgecolor="black", label="outside the view\n(drawn on the border)")


def _frame(ax: Axes, axis_labels: tuple[str, str], limits: Limits) -> None:
    apply_limits(ax, limits)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.grid(True, alpha=0.25)


def _outside_note(ax: Axes, outside: int, total: int) -> None:
    if outside:
        ax.text(0.98, 0.02, f"{outside} of {total} outside the view (\u2716 on the border)",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=8.5, zorder=7,
                bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "#888888"})


def grid_shape(panels: int) -> tuple[int, int]:
    """(nrows, ncols) of a near-square grid for `panels` panels, at most 3 columns."""
    ncols = 1 if panels == 1 else 2 if panels in (2, 4) else 3
    return -(-panels // ncols), ncols


def figure_pca_real(xy: np.ndarray, labels: np.ndarray, colours: CategoryColours,
                    axis_labels: tuple[str, str], total: int) -> Figure:
    """Real (source) embeddings in their PCA plane, coloured by attribute combination."""
    fig, ax = new_figure(9.5, 6.5)
    limits = robust_limits(xy, q=0.1)
    outside = scatter_by_category(ax, xy, labels, colours, limits)
    _frame(ax, axis_labels, limits)
    _outside_note(ax, outside, len(xy))
    ax.set_title(f"{len(xy)} of {total} evaluated test points, by their attribute combination")
    fig.suptitle("Real (source) embeddings in their 2-D PCA plane")
    category_legend(fig, [labels], colours, "attribute combination",
                    [OUTSIDE_HANDLE] if outside else None)
    return fig


def figure_pca_edited(
    xy_real: np.ndarray,
    real_labels: np.ndarray,
    xy_edited: Mapping[str, np.ndarray],
    target_labels: np.ndarray,
    colours: CategoryColours,
    axis_labels: tuple[str, str],
    summaries: Mapping[str, CollapseSummary],
) -> Figure:
    """The real sources (first panel) and each method's edits of them (one panel per method),
    in the same plane and the same view; edits coloured by their TARGET combination."""
    nrows, ncols = grid_shape(1 + len(xy_edited))
    fig, axes = new_figure(5.3 * ncols + 2.6, 4.9 * nrows + 0.9, ncols=ncols, nrows=nrows,
                           squeeze=False)
    flat = list(axes.ravel())
    limits = robust_limits(xy_real, list(xy_edited.values()))
    any_outside = scatter_by_category(flat[0], xy_real, real_labels, colours, limits)
    _outside_note(flat[0], any_outside, len(xy_real))
    flat[0].set_title(f"Real: {len(xy_real)} sources, by their own combination")
    for ax, (method, xy) in zip(flat[1:], xy_edited.items(), strict=False):
        summary = summaries[method]
        outside = scatter_by_category(ax, xy, target_labels, colours, limits)
        any_outside += outside
        piles = mark_piles(ax, xy, limits)
        detail = summary.detail()
        if piles:
            detail += f"\nred rings: {piles} spot(s) holding \u2265 1% of the drawn edits"
        if outside:
            detail += f"\n{outside} of {len(xy)} edits outside the view (\u2716 on the border)"
        ax.text(0.02, 0.02, detail, transform=ax.transAxes, ha="left", va="bottom",
                fontsize=7.5, color=summary.colour, zorder=7,
                bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": summary.colour})
        ax.set_title(f"{method_label(method)}: edits of the same {len(xy)} sources,\n"
                     "by TARGET combination")
        panel_banner(ax, summary)
    for ax in flat:
        _frame(ax, axis_labels, limits)
    for ax in flat[1 + len(xy_edited):]:
        ax.axis("off")
    title_with_collapse(fig, "Real points and each method's edits of them in the real-data "
                        "PCA plane (test split)", summaries.values())
    category_legend(fig, [real_labels, target_labels], colours, "attribute combination",
                    [OUTSIDE_HANDLE] if any_outside else None)
    return fig
