"""Which points are edited and toward which attributes (the evaluation targets).

Both draws are seeded and independent of each other (separate streams), so
changing `num_samples` does not change which attributes a given point flips
beyond the change of the subsample itself.
"""

from __future__ import annotations

import numpy as np

TRANSFER_MODES = ("single", "multi")
_SUBSAMPLE_STREAM = 1
_TARGET_STREAM = 2


def subsample_indices(n: int, num_samples: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a seeded subsample of size num_samples (all n if None or >= n)."""
    if num_samples is None or num_samples >= n:
        return np.arange(n)
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    rng = np.random.default_rng((seed, _SUBSAMPLE_STREAM))
    return np.sort(rng.choice(n, size=num_samples, replace=False))


def sample_targets(attributes: np.ndarray, transfer_mode: str, seed: int) -> np.ndarray:
    """Target attributes: the sources' attributes with some flipped.

    single: one uniformly random attribute per sample; multi: 2 or 3 distinct
    ones (uniform count, capped at k). Returns (N, k) int8 0/1.
    """
    attrs = np.asarray(attributes, np.int8)
    n, k = attrs.shape
    if transfer_mode not in TRANSFER_MODES:
        raise ValueError(f"transfer_mode must be one of {TRANSFER_MODES}, got {transfer_mode!r}")
    if k == 0:
        raise ValueError("there are no attributes to flip")
    rng = np.random.default_rng((seed, _TARGET_STREAM))
    if transfer_mode == "single":
        counts = np.ones(n, np.int64)
    else:
        if k < 2:
            raise ValueError("transfer_mode 'multi' needs at least 2 attributes")
        counts = rng.integers(2, min(3, k) + 1, size=n)
    # a random permutation per row; flip the attributes ranked below the count
    ranks = np.argsort(np.argsort(rng.random((n, k)), axis=1), axis=1)
    flip = ranks < counts[:, None]
    return np.where(flip, 1 - attrs, attrs).astype(np.int8)
