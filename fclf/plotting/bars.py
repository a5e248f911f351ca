"""Per-attribute flip success and preservation: FCLF against the baselines, grouped bars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from fclf.plotting.banner import CollapseSummary, title_with_verdict
from fclf.plotting.style import COLLAPSE_RED, method_colour, method_label, new_figure

OVERALL = "overall"
SCORES = (
    ("flip_success", "Flip success", "flipped attributes that the probe reads as the target"),
    ("preservation", "Preservation", "untouched attributes that the probe still reads the same"),
)


def _values(block: Mapping, score: str, names: Sequence[str]) -> list[float | None]:
    per = block[f"{score}_per_attribute"]
    return [block[score], *(per.get(n) for n in names)]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _panel(ax: Axes, blocks: Mapping[str, Mapping], score: str, names: Sequence[str]) -> None:
    groups = [OVERALL, *names]
    x = np.arange(len(groups), dtype=float)
    x[1:] += 0.5  # a gap between 'overall' and the attributes
    width = 0.8 / max(len(blocks), 1)
    for i, (method, block) in enumerate(blocks.items()):
        offset = (i - (len(blocks) - 1) / 2) * width
        values = _values(block, score, names)
        heights = [0.0 if v is None else v for v in values]
        bars = ax.bar(x + offset, heights, width, color=method_colour(method, i),
                      edgecolor="black" if block["collapsed"] else "none",
                      hatch="//" if block["collapsed"] else None, linewidth=0.6)
        for bar, v in zip(bars, values, strict=True):
            ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 0.01, _fmt(v),
                    ha="center", va="bottom", fontsize=7.5, rotation=90)
    ax.set_xticks(x, groups)
    ax.get_xticklabels()[0].set_fontweight("bold")
    ax.set_ylim(0, 1.18)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.axvline((x[0] + x[1]) / 2, color="black", linewidth=0.6, alpha=0.4)
    ax.grid(True, axis="y", alpha=0.3)


def figure_transfer_bars(blocks: Mapping[str, Mapping], names: Sequence[str],
                         fclf: CollapseSummary) -> Figure:
    """Two panels (flip success, preservation); bars per method, hatched if it collapsed."""
    fig, axes = new_figure(12, 8.5, nrows=2)
    for ax, (score, title, meaning) in zip(axes, SCORES, strict=True):
        _panel(ax, blocks, score, names)
        ax.set_title(f"{title}: {meaning}")
        ax.set_ylabel(title.lower())
    labels = []
    for method, block in blocks.items():
        text = (f"{method_label(method)}: flip {_fmt(block['flip_success'])}, "
                f"preservation {_fmt(block['preservation'])}")
        labels.append(text + ("  \u2014 COLLAPSED" if block["collapsed"] else ""))
    legend = fig.legend(axes[0].containers, labels, loc="outside lower center",
                        ncols=1, frameon=False)
    for text, block in zip(legend.get_texts(), blocks.values(), strict=True):
        if block["collapsed"]:
            text.set_color(COLLAPSE_RED)
            text.set_fontweight("bold")
    title_with_verdict(fig, "Attribute transfer read by frozen probes: FCLF vs linear baselines",
                       fclf)
    return fig
