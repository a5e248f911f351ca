"""Do edits look like real faces? Two truth-free measures that noise and overshoot fail.

Without the synthetic world's exact counterfactual (on real CelebA) a judge
alone rewards two cheats: an edit plus isotropic noise still reads as the
target, and walking too far reads as the target *more* often. Both leave the
data, in two different ways:

- `off_manifold`: mean Mahalanobis energy (x - m)ᵀ Σ⁻¹ (x - m) of the edits over
  that of their sources, under a Gaussian of real faces with a Ledoit-Wolf
  shrunk covariance (`Typicality`, fitted on the judge split, which no editor
  sees). Real faces use a few hundred of CLIP's 512 directions; noise puts
  energy into the others, where Σ⁻¹ is large. 1 = as typical as the sources;
  an honest edit of the default world is ~1.1, its copy plus noise of norm 0.3
  ~20, a walk along a probe normal to a large margin ~1.9 (it leaves through
  the low-variance directions a discriminative normal uses).
- `overshoot_rate`: over the requested (row, attribute) pairs, the share whose
  judge logit lies beyond the `quantile` (0.99) of real faces that carry the
  target value, on the far side (above it for a target of 1, below the 1 -
  quantile for 0): an edit that pushes an attribute further than nearly every
  real face that has it. A faithful edit is near 1 - quantile; the exact
  counterfactual walked twice as far is ~0.5. `reach` (the mean percentile of
  the edit's logit among those real faces, oriented toward the target) is
  reported beside it: ~0.5 when edits look like a fresh sample of the class,
  near 0 for no edit, near 1 for overshoot.

Both come as (numerator, denominator) per point, so a bootstrap over
identities gives them intervals like every other ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Typicality:
    """A Gaussian of real faces: mean and Ledoit-Wolf shrunk precision matrix."""

    mean: np.ndarray  # (d,)
    precision: np.ndarray  # (d, d)

    @classmethod
    def fit(cls, embeddings: np.ndarray) -> Typicality:
        from sklearn.covariance import ledoit_wolf

        x = np.asarray(embeddings, np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError(f"need (N >= 2, d) real faces to fit a Gaussian, got {x.shape}")
        covariance, _ = ledoit_wolf(x)
        precision = np.linalg.inv(covariance)
        precision = (precision + precision.T) / 2
        return cls(x.mean(axis=0), precision)

    def energy(self, points: np.ndarray) -> np.ndarray:
        """(N,) Mahalanobis energy of each point."""
        d = np.asarray(points, np.float64) - self.mean
        return np.einsum("nd,nd->n", d @ self.precision, d)


def off_manifold_per_point(
    typicality: Typicality, sources: np.ndarray, edited: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(energy of each edit, energy of its source): their sums' ratio is `off_manifold`."""
    return typicality.energy(edited), typicality.energy(sources)


@dataclass(frozen=True)
class AttributeRange:
    """Where real faces' judge logits lie, per attribute and value (from labelled reals)."""

    sorted_logits: tuple[tuple[np.ndarray, np.ndarray], ...]  # [j] -> (value 0, value 1)

    @classmethod
    def of(cls, logits: np.ndarray, labels: np.ndarray) -> AttributeRange:
        logits, labels = np.asarray(logits, np.float64), np.asarray(labels)
        return cls(tuple(
            (np.sort(logits[labels[:, j] == 0, j]), np.sort(logits[labels[:, j] == 1, j]))
            for j in range(logits.shape[1])
        ))

    def percentile(self, logits: np.ndarray, targets: np.ndarray,
                   mask: np.ndarray) -> np.ndarray:
        """(N, k) share of real faces with the target value that the edit's logit reaches past,
        oriented toward the target (nan outside `mask` or where no real face has the value)."""
        out = np.full(logits.shape, np.nan)
        for j, by_value in enumerate(self.sorted_logits):
            for value, real in enumerate(by_value):
                rows = mask[:, j] & (targets[:, j] == value)
                if not rows.any() or len(real) == 0:
                    continue
                below = np.searchsorted(real, logits[rows, j], side="right") / len(real)
                out[rows, j] = below if value == 1 else 1.0 - below
        return out


def overshoot_per_point(
    reach: np.ndarray, mask: np.ndarray, quantile: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(overshooting pairs, scored pairs, summed reach) per row, from `AttributeRange.percentile`
    values: a pair overshoots when its reach exceeds `quantile`."""
    scored = mask & np.isfinite(reach)
    safe = np.where(scored, reach, 0.0)
    return (safe > quantile).sum(1).astype(np.float64), scored.sum(1).astype(np.float64), \
        safe.sum(1)
