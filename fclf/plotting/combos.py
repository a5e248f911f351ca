"""Readable names for attribute combinations and flips, and colours for the frequent ones."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NO_ATTRIBUTE = "none"
NO_FLIP = "no flip"
MINUS = "\u2212"  # a real minus sign: '-Male' reads like a hyphen


def combo_names(attributes: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Each row's set attributes joined by '+' (e.g. 'Smiling+Male'); 'none' if no bit is set."""
    attrs = np.asarray(attributes).astype(bool)
    out = ["+".join(n for n, on in zip(names, row, strict=True) if on) or NO_ATTRIBUTE
           for row in attrs]
    return np.array(out, dtype=object)


def flip_names(sources: np.ndarray, targets: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """What each edit asks for: '+Smiling' (turn on), '−Male' (turn off), joined by ', '."""
    src, tgt = np.asarray(sources).astype(bool), np.asarray(targets).astype(bool)
    out = []
    for s_row, t_row in zip(src, tgt, strict=True):
        parts = [("+" if t else MINUS) + n
                 for n, s, t in zip(names, s_row, t_row, strict=True) if s != t]
        out.append(", ".join(parts) or NO_FLIP)
    return np.array(out, dtype=object)


@dataclass(frozen=True)
class CategoryColours:
    """The most frequent categories get distinct colours; every other one is grey."""

    categories: tuple[str, ...]  # most frequent first
    colours: tuple[str, ...]
    other: str = "#b0b0b0"

    @classmethod
    def top(cls, labels: Sequence[str], max_categories: int = 8) -> CategoryColours:
        counts = Counter(labels)
        ranked = sorted(counts, key=lambda c: (-counts[c], c))[:max_categories]
        palette = [
            # tab10 without red (reserved for collapse warnings) and grey (everything else)
            "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
            "#bcbd22", "#393b79", "#843c39",
        ]
        colours = tuple(palette[i % len(palette)] for i in range(len(ranked)))
        return cls(tuple(ranked), colours)

    def colour_of(self, label: str) -> str:
        if label in self.categories:
            return self.colours[self.categories.index(label)]
        return self.other

    def groups(self, labels: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
        """(legend label, colour, row mask): 'other' first, then rarer to most frequent
        coloured categories, so that drawing in this order keeps small groups visible."""
        labels = np.asarray(labels, dtype=object)
        known = np.isin(labels, list(self.categories))
        out = []
        if (~known).any():
            n_other = len(set(labels[~known]))
            noun = "combination" if n_other == 1 else "combinations"
            out.append((f"other ({n_other} {noun})", self.other, ~known))
        for cat, colour in reversed(list(zip(self.categories, self.colours, strict=True))):
            mask = labels == cat
            if mask.any():
                out.append((cat, colour, mask))
        return out
