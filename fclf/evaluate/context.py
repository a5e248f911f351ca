"""What every method is scored against on one evaluated split (computed once per split).

The judge reads attributes (it was fitted on the judge split, which no method,
baseline or calibration sees); `before` is its reading of the sources. The
gallery is the whole evaluated split (identity retrieval and nearest-real
neighbours). Counterfactuals are the synthetic world's exact answers, or None
on real data. Everything that needs nearest neighbours (identity top-1,
distinct fraction, neighbourhood preservation, coverage/density, silhouettes)
runs on a seeded subsample of the sources (`collapse_rows`, searched against
the whole gallery), curves on another (`curve_rows`); attribute and
ground-truth scores use every point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fclf.evaluate.judge import Judge
from fclf.evaluate.metrics import combination_labels


@dataclass
class SplitContext:
    split: str
    names: tuple[str, ...]
    judge: Judge
    center: np.ndarray  # (d,) train mean: faces sit in a cone, so cosines are centred
    index: np.ndarray  # (N,) rows of the evaluated split
    sources: np.ndarray  # (N, d)
    source_attributes: np.ndarray  # (N, k) labels
    targets: np.ndarray  # (N, k)
    gallery: np.ndarray  # (M, d) the whole split
    gallery_attributes: np.ndarray  # (M, k)
    gallery_identities: np.ndarray | None  # (M,) or None when unknown
    counterfactuals: np.ndarray | None  # (N, d) exact edits, synthetic only
    collapse_rows: np.ndarray  # subsample of range(N) for every neighbour-based measure
    curve_rows: np.ndarray  # subsample of range(N) for the trade-off curves
    thresholds: dict  # collapse thresholds, keyword names of collapse_verdict
    neighbourhood_k: int = 10
    coverage_k: int = 5
    seed: int = 0
    block_size: int = 2048
    before: dict[str, np.ndarray] = field(default_factory=dict)  # judge kind -> (N, k)
    top1_unedited: float | None = None

    @property
    def flipped(self) -> np.ndarray:
        return self.targets != self.source_attributes

    @property
    def clusters(self) -> np.ndarray:
        """Bootstrap units: the sources' identities (rows when identities are unknown)."""
        if self.gallery_identities is None:
            return np.arange(len(self.index))
        return self.gallery_identities[self.index]

    @property
    def target_codes(self) -> np.ndarray:
        return combination_labels(self.targets)

    @property
    def gallery_codes(self) -> np.ndarray:
        return combination_labels(self.gallery_attributes)


def seeded_rows(n: int, limit: int | None, seed: int, stream: int) -> np.ndarray:
    """Sorted seeded subsample of range(n) of size min(n, limit); all rows when limit is None."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng((seed, stream)).choice(n, size=limit, replace=False))
