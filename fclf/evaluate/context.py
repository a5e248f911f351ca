"""What every editor is scored against on one evaluated split (computed once per split).

The judge reads attributes (it was fitted on the judge split, which no editor,
peer or selection sees); `before` is its reading of the sources. The request
says which attributes each row asks to change (`fclf.evaluate.request`);
`targets` are the labels with the request applied: what the truth answers and
what flip success compares against, in both modes. The gallery is the whole
evaluated split (identity retrieval and nearest-real neighbours).
Counterfactuals are the synthetic world's exact answers, or None on real data.
Everything that needs nearest neighbours (identity, distinct fraction,
neighbourhood preservation, coverage/density, silhouettes) runs on a seeded
subsample of the sources (`collapse_rows`, searched against the whole
gallery), curves on another (`curve_rows`); attribute, realism and
ground-truth scores use every point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fclf.evaluate.judge import Judge
from fclf.evaluate.metrics import combination_labels
from fclf.evaluate.metrics.realism import AttributeRange, Typicality
from fclf.evaluate.request import apply_request, requested

Truth = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (split rows, targets) -> (N, d)


@dataclass
class SplitContext:
    split: str
    names: tuple[str, ...]
    judge: Judge
    typicality: Typicality  # Gaussian of real faces (judge split): off_manifold
    center: np.ndarray  # (d,) train mean: faces sit in a cone, so cosines are centred
    index: np.ndarray  # (N,) rows of the evaluated split
    sources: np.ndarray  # (N, d)
    source_attributes: np.ndarray  # (N, k) labels
    request: np.ndarray  # (N, k) requested values, -1 = keep
    gallery: np.ndarray  # (M, d) the whole split
    gallery_attributes: np.ndarray  # (M, k)
    gallery_identities: np.ndarray | None  # (M,) or None when unknown
    truth: Truth | None  # exact counterfactuals (synthetic only)
    collapse_rows: np.ndarray  # subsample of range(N) for every neighbour-based measure
    curve_rows: np.ndarray  # subsample of range(N) for the trade-off curves
    thresholds: dict  # collapse thresholds, keyword names of collapse_verdict
    realism_limits: dict  # max_off_manifold, max_overshoot_rate
    overshoot_quantile: float = 0.99
    neighbourhood_k: int = 10
    coverage_k: int = 5
    seed: int = 0
    block_size: int = 2048
    before: dict[str, np.ndarray] = field(default_factory=dict)  # judge kind -> (N, k)
    attribute_range: AttributeRange | None = None  # real faces' judge logits per value
    top1_unedited: float | None = None
    counterfactuals: np.ndarray | None = None  # (N, d) truth(index, targets)
    _galleries: dict = field(default_factory=dict, repr=False)  # code -> target_gallery
    _source_energy: np.ndarray | None = field(default=None, repr=False)

    @property
    def source_energy(self) -> np.ndarray:
        """(N,) the sources' typicality energy (computed once per split, shared by every
        editor's off_manifold)."""
        if self._source_energy is None:
            self._source_energy = self.typicality.energy(self.sources)
        return self._source_energy

    @property
    def targets(self) -> np.ndarray:
        """(N, k) the labels with the request applied (what the truth answers)."""
        return apply_request(self.request, self.source_attributes)

    @property
    def flipped(self) -> np.ndarray:
        """(N, k) bool: the requested attributes (the others must be preserved)."""
        return requested(self.request)

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

    def target_gallery(self, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(points (M, d), their split rows (M,)): the split's people carrying `target` (k,).

        With the truth: every row's exact counterfactual with those attributes (the
        same people and photos, target attributes); without it: the real photos of the
        split whose labels equal `target`.
        """
        code = int(combination_labels(np.asarray(target)[None, :])[0])
        if code not in self._galleries:  # built once per split, shared by every editor
            if self.truth is not None:
                rows = np.arange(len(self.gallery))
                targets = np.broadcast_to(np.asarray(target, np.int8), (len(rows), len(target)))
                self._galleries[code] = (np.asarray(self.truth(rows, targets), np.float32), rows)
            else:
                rows = np.flatnonzero(self.gallery_codes == code)
                self._galleries[code] = (self.gallery[rows], rows)
        return self._galleries[code]


def seeded_rows(n: int, limit: int | None, seed: int, stream: int) -> np.ndarray:
    """Sorted seeded subsample of range(n) of size min(n, limit); all rows when limit is None."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng((seed, stream)).choice(n, size=limit, replace=False))
