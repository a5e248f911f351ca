"""Which rows a figure draws: seeded, sorted subsamples, one random stream per use."""

from __future__ import annotations

import numpy as np

POINTS_STREAM = 1  # scatter plots and plots/data/pca_edited.csv
TRAJECTORIES_STREAM = 2  # the source -> edit segments


def sample_rows(n: int, k: int, seed: int, stream: int) -> np.ndarray:
    """Sorted indices of k of n rows (all n when k >= n), the same for the same seed."""
    if k >= n:
        return np.arange(n)
    rng = np.random.default_rng((seed, stream))
    return np.sort(rng.choice(n, size=k, replace=False))
