"""Density and coverage of edited points against real points of their target class.

Naeem et al. (ICML 2020), "Reliable Fidelity and Diversity Metrics for
Generative Models". Each real point of a class gets a ball reaching its k-th
nearest other real point of that class.

- coverage: fraction of real points whose ball holds at least one edit of
  their class. Edits near a few real prototypes cover few balls. Beware
  hubness: in high dimensions a central point (a class mean) lies inside most
  balls, so a collapse onto class means covers nearly everything; density
  then reads far above 1 (and neighbourhoods and distinct neighbours fail).
- density: balls holding each edit, summed over edits, / (k x number of edits);
  ~1 when edits look like a fresh sample of the class, ~0 for edits off the
  data (noise, rotations), above 1 for edits piled where reals are dense.

Balls are small when k is below the number of images per person: then a
real's k nearest are mostly the same person, and an edit of someone not among
the reals (identity-disjoint splits) lands in few balls even when perfect.
Choose k above the images per person, or calibrate thresholds for the k used.

Scored per target code (attribute combination), for each code present among
the edits that has at least k+1 real points; coverage is aggregated weighted
by real points, density by edits. Edits of other codes are not scored
(fraction_scored says how many were). Euclidean distance on the raw vectors,
strict inequalities (a point on a ball's boundary is outside, as in the
authors' code).

Distances come from blocked float32 matmuls (no N x M matrix) after centering
each code on its real mean: squared distances, radii included, are read off
one augmented product, [x, 1, -|x|^2] . [2y, -|y|^2, 1] = -|x - y|^2. Radii
shrink by DISTANCE_TOL x the largest squared real norm when tested, so float32
rounding cannot put an exact duplicate inside a zero-radius ball. The positive
entries of a block (edit inside ball) are sparse and found through maxima over
strided groups of columns, as in neighbourhood.py.
"""

from __future__ import annotations

import numpy as np
import torch

from fclf.evaluate.metrics.neighbourhood import _group, top_k_others

BLOCK = 2048
DISTANCE_TOL = 1e-5


def _stack(x: np.ndarray, scale: float, first: np.ndarray, second: np.ndarray) -> torch.Tensor:
    """float32 rows [scale * x, first, second] (assembled in float64)."""
    return torch.as_tensor(
        np.concatenate([scale * x, first[:, None], second[:, None]], axis=1), dtype=torch.float32
    )


def _balls(
    real: np.ndarray, fake: np.ndarray, k: int, block_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(balls holding each fake (F,) int64, real points with a fake in their ball (M,) bool)."""
    xr = np.asarray(real, np.float64)
    center = xr.mean(axis=0)
    xr = xr - center
    xf = np.asarray(fake, np.float64) - center
    sq_r, sq_f = (xr * xr).sum(axis=1), (xf * xf).sum(axis=1)
    ones_r, ones_f = np.ones(len(xr)), np.ones(len(xf))

    # [x, 1, -|x|^2] . [2y, -|y|^2, 1] = -|x - y|^2: the k-th largest is minus the squared radius
    left, right = _stack(xr, 1.0, ones_r, -sq_r), _stack(xr, 2.0, -sq_r, ones_r)
    top = top_k_others(left, right, k, block_size)
    radii2 = np.clip(-top.values[:, k - 1].double().numpy(), 0.0, None)

    # [f, 1, -|f|^2] . [2r, -(|r|^2 - radius^2 + tol), 1] > 0  <=>  |f - r|^2 < radius^2 - tol
    tol = DISTANCE_TOL * max(float(sq_r.max()), 1e-30)  # reals only: far fakes must not widen it
    fakes = _stack(xf, 1.0, ones_f, -sq_f)
    reals = _stack(xr, 2.0, -(sq_r - radii2 + tol), ones_r)
    counts = torch.zeros(len(fakes), dtype=torch.int64)
    covered = torch.zeros(len(reals), dtype=torch.bool)
    buf = torch.empty(block_size * block_size)
    for i0 in range(0, len(fakes), block_size):
        fi = fakes[i0 : i0 + block_size]
        for j0 in range(0, len(reals), block_size):
            rj = reals[j0 : j0 + block_size]
            scores = torch.mm(fi, rj.T, out=buf[: len(fi) * len(rj)].view(len(fi), len(rj)))
            f, r = _inside(scores)
            counts.index_add_(0, f + i0, torch.ones_like(f))
            covered[r + j0] = True
    return counts.numpy(), covered.numpy()


def _inside(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, col) of the positive entries, via strided group maxima (they are sparse)."""
    n_rows, n_cols = scores.shape
    g = _group(n_cols)
    q = n_cols // g
    grouped = scores.view(n_rows, g, q)
    r, j = (grouped.amax(dim=1) > 0).nonzero(as_tuple=True)
    hit, t = (grouped[r, :, j] > 0).nonzero(as_tuple=True)
    return r[hit], t * q + j[hit]


def density_coverage(
    real: np.ndarray,
    real_codes: np.ndarray,
    fake: np.ndarray,
    fake_codes: np.ndarray,
    k: int = 5,
    block_size: int = BLOCK,
) -> dict:
    """{density, coverage, fraction_scored} of `fake` against same-code `real` points.

    density and coverage are None when no fake could be scored.
    """
    real_codes, fake_codes = np.asarray(real_codes), np.asarray(fake_codes)
    if len(real_codes) != len(real) or len(fake_codes) != len(fake):
        raise ValueError("each point needs one code")
    if k < 1:
        raise ValueError(f"k={k} must be >= 1")
    balls = covered = real_scored = fake_scored = 0
    for code in np.unique(fake_codes):
        real_rows = np.flatnonzero(real_codes == code)
        if len(real_rows) < k + 1:
            continue
        fake_rows = np.flatnonzero(fake_codes == code)
        counts, hit = _balls(real[real_rows], fake[fake_rows], k, block_size)
        balls += int(counts.sum())
        covered += int(hit.sum())
        real_scored += len(real_rows)
        fake_scored += len(fake_rows)
    return {
        "density": balls / (k * fake_scored) if fake_scored else None,
        "coverage": covered / real_scored if real_scored else None,
        "fraction_scored": fake_scored / len(fake) if len(fake) else 0.0,
    }
