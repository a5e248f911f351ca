"""The runs of a sweep on the test flip-success / preservation plane, val front highlighted.

Each row is one run (plain dicts, see `pareto_rows` of the sweep leaderboard):
`name`, test `preservation_linear` and `flip_success_linear`, and `group`: "val front"
(on the Pareto front of the val numbers among runs that did not collapse), "COLLAPSED"
(never selected, however good its numbers look) or "other". The front is chosen on val;
the points are drawn at their test numbers, so a front that generalises stays up and to
the right here too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes

from fclf.plotting.style import (
    COLLAPSE_RED,
    NEUTRAL_GREY,
    OTHER_GREY,
    method_colour,
    new_figure,
    save_png,
)

FRONT = "val front"
COLLAPSED = "COLLAPSED"
OTHER = "other"
MAX_LABELS = 15
DPI = 110
X_LABEL = "preservation (linear judge, test)"
Y_LABEL = "flip success (linear judge, test)"
SUBTITLE = ("front chosen on val (flip/preservation, runs that did not collapse); "
            "points show test")
# group -> (legend label, scatter style), in legend order; a red X is never hidden
GROUP_STYLES = {
    OTHER: ("other runs", {"marker": "o", "s": 28, "color": OTHER_GREY, "zorder": 2}),
    COLLAPSED: ("collapsed (never selected)",
                {"marker": "x", "s": 60, "color": COLLAPSE_RED, "linewidths": 2, "zorder": 5}),
    FRONT: ("on the val front", {"marker": "o", "s": 55, "color": method_colour("fclf", 0),
                                 "edgecolors": "black", "linewidths": 0.6, "zorder": 4}),
}


def _xy(row: Mapping[str, Any]) -> tuple[float, float] | None:
    try:
        x, y = float(row["preservation_linear"]), float(row["flip_success_linear"])
    except (KeyError, TypeError, ValueError):
        return None
    return (x, y) if math.isfinite(x) and math.isfinite(y) else None


def _group(row: Mapping[str, Any]) -> str:
    group = row.get("group")
    return group if group in GROUP_STYLES else OTHER


def _label_front(ax: Axes, rows: Sequence[Mapping[str, Any]]) -> None:
    """Name the first MAX_LABELS front runs (rows come in rank order); say if there are more."""
    front = [(row, xy) for row in rows if _group(row) == FRONT and (xy := _xy(row))]
    for row, (x, y) in front[:MAX_LABELS]:
        ax.annotate(str(row.get("name", "")), (x, y), xytext=(4, 4),
                    textcoords="offset points", fontsize=7, color=NEUTRAL_GREY, zorder=5)
    if len(front) > MAX_LABELS:
        ax.text(0.01, 0.01, f"{len(front) - MAX_LABELS} more front runs not named",
                transform=ax.transAxes, fontsize=7, color=NEUTRAL_GREY, va="bottom")


def draw_sweep_pareto(rows: Sequence[Mapping[str, Any]], path: Path, title: str,
                      dpi: int = DPI) -> None:
    """Write the PNG at `path` (atomically); with no drawable rows, empty axes that say so."""
    fig, ax = new_figure(7, 5.5)
    drawn = False
    for group, (label, style) in GROUP_STYLES.items():
        points = [xy for row in rows if _group(row) == group and (xy := _xy(row))]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.scatter(xs, ys, label=f"{label} ({len(points)})", **style)
            drawn = True
    if drawn:
        _label_front(ax, rows)
        ax.legend(loc="best")
    else:
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.text(0.5, 0.5, "no finished runs yet", transform=ax.transAxes, ha="center",
                va="center", fontsize=12, color="#555555",
                bbox={"facecolor": "#f2f2f2", "edgecolor": "#bbbbbb"})
    ax.set_xlabel(X_LABEL)
    ax.set_ylabel(Y_LABEL)
    ax.grid(True, alpha=0.3)
    ax.set_title(SUBTITLE, fontsize=9, color=NEUTRAL_GREY)
    fig.suptitle(title)
    save_png(fig, path, dpi)
