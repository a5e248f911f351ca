"""Real points and FCLF edits in the PCA plane of the real embeddings.

Colours are attribute combinations: real points by their own, edits by their
target. A healthy flow puts each edit near real points of its target
combination and keeps the edits as spread out as the real points; a collapsed
one piles them onto a few spots, which the red banner, the count box and red
rings around each pile (with its size) all say.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from fclf.plotting.banner import CollapseSummary, title_with_verdict
from fclf.plotting.combos import CategoryColours
from fclf.plotting.style import COLLAPSE_RED, new_figure

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
    if len(xy) == 0 or span <= 0:
        return []
    cells = np.floor(xy / (PILE_CELL * span)).astype(np.int64)
    keys, inverse, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    floor = max(5, int(np.ceil(PILE_MIN_SHARE * len(xy))))
    order = sorted(np.flatnonzero(counts >= floor), key=lambda i: (-counts[i], tuple(keys[i])))
    return [(xy[inverse == i].mean(axis=0), int(counts[i])) for i in order[:MAX_PILES]]


def mark_piles(ax: Axes, xy: np.ndarray, span: float) -> int:
    """Red rings (area ~ count) with 'xN' labels around piles of coinciding edits."""
    piles = find_piles(xy, span)
    if not piles:
        return 0
    biggest = piles[0][1]
    for centre, count in piles:
        ax.scatter(*centre, s=150 + 2500 * count / biggest, facecolors="none",
                   edgecolors=COLLAPSE_RED, linewidths=2, zorder=5)
        ax.annotate(f"\u00d7{count}", centre, xytext=(9, 9), textcoords="offset points",
                    color=COLLAPSE_RED, fontsize=10, fontweight="bold", zorder=6)
    return len(piles)


def scatter_by_category(ax: Axes, xy: np.ndarray, labels: np.ndarray,
                        colours: CategoryColours) -> None:
    for _, colour, mask in colours.groups(labels):
        ax.scatter(xy[mask, 0], xy[mask, 1], s=POINT_SIZE, c=colour, alpha=POINT_ALPHA,
                   linewidths=0, rasterized=False)


def category_legend(fig: Figure, labels_seen: list[np.ndarray], colours: CategoryColours,
                    title: str) -> None:
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
    fig.legend(handles=handles, title=title, loc="outside right upper", frameon=False)


def _dot(colour: str, label: str) -> Line2D:
    return Line2D([], [], marker="o", linestyle="", markersize=7, color=colour, label=label)


def _frame(ax: Axes, axis_labels: tuple[str, str]) -> None:
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.grid(True, alpha=0.25)


def figure_pca_real(xy: np.ndarray, labels: np.ndarray, colours: CategoryColours,
                    axis_labels: tuple[str, str], total: int) -> Figure:
    """Real (source) embeddings in their PCA plane, coloured by attribute combination."""
    fig, ax = new_figure(9.5, 6.5)
    scatter_by_category(ax, xy, labels, colours)
    _frame(ax, axis_labels)
    ax.set_title(f"{len(xy)} of {total} evaluated points, coloured by their attribute combination")
    fig.suptitle("Real CLIP face embeddings in their 2-D PCA plane")
    category_legend(fig, [labels], colours, "attribute combination")
    return fig


def figure_pca_edited(
    xy_real: np.ndarray,
    real_labels: np.ndarray,
    xy_edited: np.ndarray,
    target_labels: np.ndarray,
    colours: CategoryColours,
    axis_labels: tuple[str, str],
    summary: CollapseSummary,
) -> Figure:
    """Side by side: real points (left) and FCLF's edits of them (right), same plane and axes."""
    fig, (left, right) = new_figure(15, 6.8, ncols=2, sharex=True, sharey=True)
    scatter_by_category(left, xy_real, real_labels, colours)
    left.set_title(f"Real: {len(xy_real)} sources, by their combination")
    scatter_by_category(right, xy_edited, target_labels, colours)
    right.set_title(f"FCLF edits of the same {len(xy_edited)} sources, by TARGET combination")
    for ax in (left, right):
        _frame(ax, axis_labels)
    right.tick_params(labelleft=True)
    both = np.vstack([xy_real, xy_edited])
    span = float(np.ptp(both, axis=0).max()) if len(both) else 0.0
    piles = mark_piles(right, xy_edited, span)
    detail = summary.detail().replace("; ", ";\n")
    if piles:
        detail += f"\nred rings: {piles} spot(s) where \u2265 1% of the drawn edits coincide"
    right.text(
        0.02, 0.98, detail, transform=right.transAxes, ha="left", va="top",
        fontsize=9.5, fontweight="bold", color=summary.colour, zorder=7,
        bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": summary.colour},
    )
    title_with_verdict(fig, "Real points and their FCLF edits in the real-data PCA plane", summary)
    category_legend(fig, [real_labels, target_labels], colours, "attribute combination")
    return fig
