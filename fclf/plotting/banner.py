"""Mode collapse, said loudly: a one-line verdict for titles and a big red banner."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from fclf.plotting.style import COLLAPSE_RED, HEALTHY_GREEN, method_label


@dataclass(frozen=True)
class CollapseSummary:
    """One method's collapse reading: the metric block's verdict plus neighbour counts."""

    method: str
    num_points: int
    num_distinct: int  # distinct nearest real embeddings of the edited points
    top10_share: float  # share of edits whose nearest real is one of the 10 most common
    distinct_fraction: float
    rank_ratio: float
    collapsed: bool
    reasons: tuple[str, ...]

    @classmethod
    def from_block(cls, method: str, block: Mapping, nearest_real: np.ndarray) -> CollapseSummary:
        nearest = np.asarray(nearest_real).reshape(-1)
        _, counts = np.unique(nearest, return_counts=True)
        top = np.sort(counts)[::-1][:10].sum()
        return cls(
            method=method,
            num_points=len(nearest),
            num_distinct=len(counts),
            top10_share=float(top / len(nearest)) if len(nearest) else 0.0,
            distinct_fraction=float(block["distinct_fraction"]),
            rank_ratio=float(block["rank_ratio"]),
            collapsed=bool(block["collapsed"]),
            reasons=tuple(block.get("collapse_reasons") or ()),
        )

    @property
    def verdict(self) -> str:
        return "COLLAPSED" if self.collapsed else "not collapsed"

    @property
    def colour(self) -> str:
        return COLLAPSE_RED if self.collapsed else HEALTHY_GREEN

    def numbers(self) -> str:
        return (f"{method_label(self.method)}: distinct_fraction {self.distinct_fraction:.3f}, "
                f"rank_ratio {self.rank_ratio:.3f}")

    def headline(self) -> str:
        return f"{self.numbers()} \u2014 {self.verdict}"

    def detail(self) -> str:
        return (f"all {self.num_points} edits \u2192 {self.num_distinct} distinct nearest real "
                f"faces; the 10 most common hold {100 * self.top10_share:.1f}% of edits")


def title_with_verdict(fig: Figure, title: str, summary: CollapseSummary) -> None:
    """The figure's title plus the collapse verdict.

    Healthy: the title and the headline numbers in green. Collapsed: a red
    banner (white on red: title, COLLAPSED, the numbers, the reasons) above the
    panels, and a faint diagonal COLLAPSED watermark across them, so that even
    a cropped panel says it.
    """
    if not summary.collapsed:
        fig.suptitle(f"{title}\n{summary.headline()}", color=summary.colour, fontweight="bold")
        return
    lines = [title, f"\u26a0 COLLAPSED \u26a0   {summary.numbers()}"]
    if summary.reasons:
        lines.append("because " + "; ".join(summary.reasons))
    fig.suptitle("\n".join(lines), color="white", fontweight="bold", fontsize=15,
                 bbox={"facecolor": COLLAPSE_RED, "edgecolor": COLLAPSE_RED,
                       "boxstyle": "square,pad=0.3"})
    engine = fig.get_layout_engine()
    if engine is not None and hasattr(engine, "set"):
        engine.set(h_pad=0.12)  # room between the banner's box and the panel titles
    fig.text(0.5, 0.45, "COLLAPSED", ha="center", va="center", rotation=20, fontsize=90,
             fontweight="bold", color=COLLAPSE_RED, alpha=0.16, zorder=100)
