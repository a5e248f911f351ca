"""Cluster bootstrap intervals for ratio statistics.

Test images of one person are not independent: an edit that fails on a
person tends to fail on all their images. Resampling points would pretend
there are N independent draws and give intervals that are too narrow, so
whole clusters (test identities) are resampled with replacement instead.

Every statistic is a ratio of sums, sum(num) / sum(den): a mean has den = 1,
a rate over a subset has den = the subset mask, and the relative error is a
true ratio. A resample weights point i by how often its cluster was drawn,
so its estimate is (counts @ cluster sums of num) / (counts @ cluster sums of
den): one (B, clusters) x (clusters, m) matmul instead of a loop over
resamples. Columns share the resamples, so the interval of a difference of
two methods is the interval of the difference of their columns (paired).
"""

from __future__ import annotations

import warnings

import numpy as np

CHUNK = 256  # resamples drawn and multiplied at a time (bounds the count matrix)


def _columns(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x[:, None] if x.ndim == 1 else x


def cluster_bootstrap(
    numerators: np.ndarray,
    denominators: np.ndarray,
    clusters: np.ndarray,
    num_resamples: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """(B, m) float64 resampled estimates of sum(num[:, j]) / sum(den[:, j]).

    numerators, denominators: (N, m) (or (N,) for one statistic); clusters:
    (N,) labels. A resample whose denominator sums to 0 gives nan for that
    statistic (percentile_interval skips them). Deterministic in `seed`.
    """
    num, den = _columns(numerators), _columns(denominators)
    labels = np.asarray(clusters).reshape(-1)
    if num.shape != den.shape or len(num) != len(labels):
        raise ValueError(
            f"shapes disagree: numerators {num.shape}, denominators {den.shape}, "
            f"clusters {labels.shape}"
        )
    if len(labels) == 0:
        raise ValueError("no points to resample")
    _, inverse = np.unique(labels, return_inverse=True)
    n_clusters = int(inverse.max()) + 1
    num_sums = np.zeros((n_clusters, num.shape[1]))
    den_sums = np.zeros_like(num_sums)
    np.add.at(num_sums, inverse, num)
    np.add.at(den_sums, inverse, den)
    rng = np.random.default_rng(seed)
    uniform = np.full(n_clusters, 1.0 / n_clusters)
    out = np.empty((num_resamples, num.shape[1]))
    for start in range(0, num_resamples, CHUNK):
        size = min(CHUNK, num_resamples - start)
        counts = rng.multinomial(n_clusters, uniform, size=size).astype(np.float64)
        top, bottom = counts @ num_sums, counts @ den_sums
        with np.errstate(divide="ignore", invalid="ignore"):
            out[start : start + size] = np.where(bottom != 0, top / bottom, np.nan)
    return out


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """(low (m,), high (m,)): the central `level` percentile interval per column, nans skipped.

    A column with no finite sample gives nan bounds.
    """
    if not 0 < level < 1:
        raise ValueError(f"level={level} must be in (0, 1)")
    x = _columns(samples)
    tail = 100 * (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan columns
        low, high = np.nanpercentile(x, [tail, 100 - tail], axis=0)
    return low, high
