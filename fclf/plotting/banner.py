"""Mode collapse, said per method: a red banner on the panels of a collapsed method only.

The evaluation flags each method on its own (distinct nearest reals, rank
ratio, coverage, ...). A panel that draws one method's edits gets a banner and
a watermark when, and only when, that method collapsed, so that a collapsed
baseline never puts a banner over FCLF's panel. Panels shared by all methods
(bars, curves) mark collapsed methods in their legends instead, and every
figure's title names the collapsed methods, or says that the check flagged none.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text

from fclf.plotting.style import COLLAPSE_RED, NEUTRAL_GREY, method_label

MODE_COLLAPSE = "MODE COLLAPSE"
BANNER_GID = "collapse-banner"  # gid prefix of a banner's artists: '<prefix>:<method>'


SHOWN_MEASURES = (  # what the collapse rule reads (fclf.evaluate), then the rank ratio
    ("distinct_fraction", "distinct"), ("coverage", "coverage"), ("density", "density"),
    ("neighbourhood_preservation", "kNN kept"), ("rank_ratio", "rank ratio"),
)


@dataclass(frozen=True)
class CollapseSummary:
    """One method's collapse reading: the metric block's verdict plus neighbour counts."""

    method: str
    num_points: int
    num_distinct: int  # distinct nearest real embeddings of the edited points
    top10_share: float  # share of edits whose nearest real is one of the 10 most common
    measures: tuple[tuple[str, float], ...]  # (short name, value) of the block's measures
    collapsed: bool
    reasons: tuple[str, ...]

    @classmethod
    def from_block(cls, method: str, block: Mapping, nearest_real: np.ndarray) -> CollapseSummary:
        nearest = np.asarray(nearest_real).reshape(-1)
        _, counts = np.unique(nearest, return_counts=True)
        top = np.sort(counts)[::-1][:10].sum()
        measures = tuple((short, float(block[key])) for key, short in SHOWN_MEASURES
                         if block.get(key) is not None)
        return cls(
            method=method,
            num_points=len(nearest),
            num_distinct=len(counts),
            top10_share=float(top / len(nearest)) if len(nearest) else 0.0,
            measures=measures,
            collapsed=bool(block["collapsed"]),
            reasons=tuple(block.get("collapse_reasons") or ()),
        )

    @property
    def label(self) -> str:
        return method_label(self.method)

    @property
    def colour(self) -> str:
        return COLLAPSE_RED if self.collapsed else NEUTRAL_GREY

    def numbers(self) -> str:
        return ", ".join(f"{short} {value:.3f}" for short, value in self.measures)

    def headline(self) -> str:
        """'<method>: MODE COLLAPSE (reasons)' for the console."""
        reasons = f" ({'; '.join(self.reasons)})" if self.reasons else ""
        return f"{self.label}: {MODE_COLLAPSE}{reasons}"

    def detail(self) -> str:
        numbers = "\n".join(textwrap.wrap(self.numbers(), 48))
        return (f"{self.num_points} edits \u2192 {self.num_distinct} distinct nearest real "
                f"faces;\nthe 10 most common hold {100 * self.top10_share:.1f}% of edits;\n"
                f"{numbers}")


def collapse_line(summaries: Iterable[CollapseSummary]) -> tuple[str, str]:
    """(text, colour) for a figure title: which methods collapsed, by name."""
    collapsed = [s.label for s in summaries if s.collapsed]
    if not collapsed:
        return "collapse check: no method flagged", NEUTRAL_GREY
    return f"\u26a0 {MODE_COLLAPSE} flagged for: {', '.join(collapsed)}", COLLAPSE_RED


def title_with_collapse(fig: Figure, title: str, summaries: Iterable[CollapseSummary]) -> None:
    """The figure's title plus a line naming the collapsed methods (red) or none (grey)."""
    line, colour = collapse_line(summaries)
    fig.suptitle(f"{title}\n{line}", color=colour if colour == COLLAPSE_RED else "black",
                 fontweight="bold")


def banner_gid(method: str) -> str:
    return f"{BANNER_GID}:{method}"


def panel_banner(ax: Axes, summary: CollapseSummary) -> None:
    """On the panel of one method: nothing if it did not collapse; else a white-on-red banner
    naming the method and the reasons along the panel's top, and a faint watermark across it."""
    if not summary.collapsed:
        return
    gid = banner_gid(summary.method)
    lines = [f"\u26a0 {MODE_COLLAPSE}: {summary.label} \u26a0"]
    if summary.reasons:
        lines += textwrap.wrap("; ".join(summary.reasons), 60)
    ax.text(0.5, 0.985, "\n".join(lines), transform=ax.transAxes, ha="center", va="top",
            color="white", fontweight="bold", fontsize=10, zorder=20, gid=gid,
            bbox={"facecolor": COLLAPSE_RED, "edgecolor": COLLAPSE_RED,
                  "boxstyle": "square,pad=0.3"})
    ax.text(0.5, 0.45, MODE_COLLAPSE, transform=ax.transAxes, ha="center", va="center",
            rotation=20, fontsize=30, fontweight="bold", color=COLLAPSE_RED, alpha=0.18,
            zorder=19, gid=gid)


def banners_in(fig: Figure) -> dict[str, list[Axes | None]]:
    """method -> the axes (None: the figure itself) carrying that method's banner."""
    out: dict[str, list[Axes | None]] = {}
    for text in fig.findobj(Text):
        gid = text.get_gid() or ""
        if gid.startswith(BANNER_GID + ":"):
            where = text.axes
            places = out.setdefault(gid.split(":", 1)[1], [])
            if where not in places:
                places.append(where)
    return out
