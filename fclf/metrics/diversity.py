"""Effective rank (RankMe): how many directions a point set really spans.

RankMe (Garrido et al., 2023) is exp of the Shannon entropy of the singular
values normalised to sum to one; r orthonormal vectors give exactly r. The
matrix is not centred, as in RankMe; compare sets by their ratio.
"""

from __future__ import annotations

import numpy as np


def singular_values(points: np.ndarray) -> np.ndarray:
    """Singular values via the smaller Gram matrix, in float64 (no N x N matrix for N > d)."""
    x = np.asarray(points, np.float64)
    gram = x.T @ x if x.shape[0] >= x.shape[1] else x @ x.T
    return np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0.0, None))


def effective_rank(points: np.ndarray) -> float:
    """exp(entropy of sigma / sum(sigma)); 0 for an all-zero set."""
    sv = singular_values(points)
    total = sv.sum()
    if total <= 0:
        return 0.0
    p = sv[sv > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))


def rank_ratio(edited: np.ndarray, real: np.ndarray) -> float:
    """effective_rank(edited) / effective_rank(real): well below 1 means collapse."""
    real_rank = effective_rank(real)
    return effective_rank(edited) / real_rank if real_rank > 0 else 0.0
