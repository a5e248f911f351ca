"""Per-attribute flip success and preservation, read by both judges: every method, grouped bars.

Rows: flip success, preservation; columns: the linear and the MLP judge. The
'overall' bars carry the 95 % bootstrap interval of the metric block. A method
flagged as collapsed has hatched bars and a red legend entry; the panels are
shared, so no panel carries a banner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from fclf.plotting.banner import MODE_COLLAPSE, CollapseSummary, title_with_collapse
from fclf.plotting.style import COLLAPSE_RED, method_colour, method_label, new_figure

OVERALL = "overall"
SCORES = (
    ("flip_success", "Flip success", "flipped attributes the judge reads as the target"),
    ("preservation", "Preservation", "other attributes the judge reads as on the source"),
)
JUDGES = (("linear", "linear judge"), ("mlp", "MLP judge"))


def _values(block: Mapping, key: str, names: Sequence[str]) -> list[float | None]:
    per = block.get(f"{key}_per_attribute") or {}
    return [block.get(key), *(per.get(n) for n in names)]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _panel(ax: Axes, blocks: Mapping[str, Mapping], key: str, names: Sequence[str]) -> None:
    groups = [OVERALL, *names]
    x = np.arange(len(groups), dtype=float)
    x[1:] += 0.5  # a gap between 'overall' and the attributes
    width = 0.84 / max(len(blocks), 1)
    for i, (method, block) in enumerate(blocks.items()):
        offset = (i - (len(blocks) - 1) / 2) * width
        values = _values(block, key, names)
        heights = [0.0 if v is None else v for v in values]
        collapsed = bool(block["collapsed"])
        bars = ax.bar(x + offset, heights, width, color=method_colour(method, i),
                      alpha=0.75 if method == "oracle" else 1.0,
                      edgecolor=COLLAPSE_RED if collapsed else "none",
                      hatch="//" if collapsed else None, linewidth=0.8, label=method)
        interval = (block.get("intervals") or {}).get(key)
        if interval and values[0] is not None:
            low, high = interval
            ax.errorbar(x[0] + offset, values[0], yerr=[[values[0] - low], [high - values[0]]],
                        fmt="none", ecolor="black", elinewidth=0.9, capsize=2, zorder=4)
        for bar, v in zip(bars, values, strict=True):
            ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 0.015, _fmt(v),
                    ha="center", va="bottom", fontsize=6.5, rotation=90)
    ax.set_xticks(x, groups)
    ax.get_xticklabels()[0].set_fontweight("bold")
    ax.set_ylim(0, 1.2)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.axvline((x[0] + x[1]) / 2, color="black", linewidth=0.6, alpha=0.4)
    ax.grid(True, axis="y", alpha=0.3)


def figure_transfer_bars(blocks: Mapping[str, Mapping], names: Sequence[str],
                         summaries: Mapping[str, CollapseSummary]) -> Figure:
    """2 x 2 panels (flip success / preservation x linear / MLP judge); bars per method,
    hatched with a red edge if that method collapsed."""
    fig, axes = new_figure(15, 8.5, nrows=2, ncols=2, squeeze=False)
    for row, (score, title, meaning) in enumerate(SCORES):
        for col, (kind, judge) in enumerate(JUDGES):
            ax = axes[row, col]
            _panel(ax, blocks, f"{score}_{kind}", names)
            ax.set_title(f"{title}, {judge}: {meaning}", fontsize=10)
            ax.set_ylabel(f"{title.lower()} ({kind})")
    labels = []
    for method, block in blocks.items():
        text = (f"{method_label(method)}: flip {_fmt(block['flip_success_linear'])} / "
                f"{_fmt(block['flip_success_mlp'])}, preservation "
                f"{_fmt(block['preservation_linear'])} / {_fmt(block['preservation_mlp'])} "
                "(linear / MLP)")
        labels.append(text + (f"  \u2014 {MODE_COLLAPSE}" if block["collapsed"] else ""))
    bars = [c for c in axes[0, 0].containers if isinstance(c, BarContainer)]
    legend = fig.legend(bars, labels, loc="outside lower center",
                        ncols=2 if len(blocks) > 2 else 1, frameon=False)
    for text, block in zip(legend.get_texts(), blocks.values(), strict=True):
        if block["collapsed"]:
            text.set_color(COLLAPSE_RED)
            text.set_fontweight("bold")
    title_with_collapse(fig, "Attribute transfer read by frozen judges (test split); "
                        "whiskers: 95% interval of 'overall'", summaries.values())
    return fig
