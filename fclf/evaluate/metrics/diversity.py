"""Effective rank (RankMe): how many directions a point set really spans.

RankMe (Garrido et al., 2023) is exp of the Shannon entropy of the singular
values normalised to sum to one; r orthonormal vectors give exactly r. The
matrix is not centred, as in RankMe; compare sets by their ratio.
"""

from __future__ import annotations

import numpy as np

CHUNK = 4096


def singular_values(points: np.ndarray) -> np.ndarray:
    """Singular values via the smaller Gram matrix, accumulated in float64 by row chunks."""
    x = np.asarray(points)
    n, d = x.shape
    if n < d:
        x64 = x.astype(np.float64)
        gram = x64 @ x64.T
    else:
        gram = np.zeros((d, d))
        for start in range(0, n, CHUNK):
            rows = x[start : start + CHUNK].astype(np.float64)
            gram += rows.T @ rows
    # One thread: the solve is ~20 ms, but with torch's and scipy's thread pools loaded next
    # to numpy's, a multi-threaded OpenBLAS on a busy 2-core machine took ~2.6 s for it.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        eigenvalues = np.linalg.eigvalsh(gram)
    return np.sqrt(np.clip(eigenvalues, 0.0, None))


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
