"""Clustering readings of edited points (kept from the original evaluation).

- silhouette of the edited points under given labelings (euclidean), computed
  exactly but blockwise: each block of the distance matrix is multiplied by a
  one-hot label matrix, so per-point sums of distances to every cluster are
  accumulated without an N x N matrix. Several labelings share one pass, and
  only blocks on or above the diagonal are computed (the matrix is symmetric).
- k-means purity against a labeling (a small torch k-means: sklearn's
  k-means++ seeding upcasts float32 in chunks and dominated the run time).

Conventions: one cluster (or all singletons) gives silhouette 0, as does a
point whose within- and nearest-other-cluster distances are both 0 (sklearn's
convention). Squared distances below DISTANCE_TOL x the largest squared norm
(after centering) count as 0: float32 rounding would otherwise give
exactly-collapsed points tiny random distances and a random silhouette.
"""

from __future__ import annotations

import numpy as np
import torch

BLOCK = 2048
DISTANCE_TOL = 1e-5


def combination_labels(attributes: np.ndarray) -> np.ndarray:
    """Each row's 0/1 attribute combination as one integer code (bit j = attribute j)."""
    attrs = np.asarray(attributes, np.int64)
    return attrs @ (1 << np.arange(attrs.shape[1], dtype=np.int64))


def _dense(labels: np.ndarray) -> tuple[np.ndarray, int]:
    _, inverse = np.unique(np.asarray(labels), return_inverse=True)
    inverse = inverse.reshape(-1)
    return inverse, int(inverse.max()) + 1 if len(inverse) else 0


def cluster_distance_sums(
    points: np.ndarray, onehot: torch.Tensor, block_size: int = BLOCK
) -> np.ndarray:
    """(N, L) float64: sum over j of |x_i - x_j| * onehot[j, l], blockwise."""
    raw = torch.as_tensor(np.asarray(points, np.float32))
    x = raw - raw.sum(dim=0, dtype=torch.float64).div(max(len(raw), 1)).float()  # shift-invariant
    n = len(x)
    sq = (x * x).sum(dim=1)
    tol = float(sq.max()) * DISTANCE_TOL + 1e-12 if n else 0.0
    sums = torch.zeros(onehot.shape, dtype=torch.float64)
    buf = torch.empty(block_size * block_size)
    for i0 in range(0, n, block_size):
        xi, hi = x[i0 : i0 + block_size], onehot[i0 : i0 + block_size]
        for j0 in range(i0, n, block_size):
            xj, hj = x[j0 : j0 + block_size], onehot[j0 : j0 + block_size]
            d = buf[: len(xi) * len(xj)].view(len(xi), len(xj))
            torch.addmm(sq[i0 : i0 + len(xi), None], xi, xj.T, beta=1, alpha=-2, out=d)
            d.add_(sq[None, j0 : j0 + len(xj)])
            torch.nn.functional.threshold_(d, tol, 0.0)
            d.sqrt_()
            if i0 == j0:
                d.fill_diagonal_(0.0)
            sums[i0 : i0 + len(xi)] += d @ hj
            if j0 != i0:
                sums[j0 : j0 + len(xj)] += (hi.T @ d).T  # faster than d.T @ hi
    return sums.numpy()


def _silhouette_from_sums(sums: np.ndarray, labels: np.ndarray, n_labels: int) -> float:
    if n_labels < 2:
        return 0.0
    counts = np.bincount(labels, minlength=n_labels).astype(np.float64)
    rows = np.arange(len(labels))
    own_count = counts[labels]
    a = sums[rows, labels] / np.maximum(own_count - 1, 1)
    others = sums / counts
    others[rows, labels] = np.inf
    b = others.min(axis=1)
    denom = np.maximum(a, b)
    s = np.where((own_count > 1) & (denom > 0), (b - a) / np.where(denom > 0, denom, 1), 0.0)
    return float(s.mean())


def silhouettes(
    points: np.ndarray, labelings: list[np.ndarray], block_size: int = BLOCK
) -> list[float]:
    """Mean silhouette (euclidean) of `points` under each labeling, in one distance pass."""
    dense = [_dense(labels) for labels in labelings]
    n = len(points)
    if n == 0:
        return [0.0 for _ in labelings]
    blocks = []
    for inverse, n_labels in dense:
        h = torch.zeros(n, n_labels)
        h[torch.arange(n), torch.as_tensor(inverse)] = 1.0
        blocks.append(h)
    sums = cluster_distance_sums(points, torch.cat(blocks, dim=1), block_size)
    scores, start = [], 0
    for inverse, n_labels in dense:
        scores.append(_silhouette_from_sums(sums[:, start : start + n_labels], inverse, n_labels))
        start += n_labels
    return scores


def kmeans(
    points: np.ndarray, k: int, seed: int, max_iter: int = 100, tol: float = 1e-4
) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding (torch matmuls); returns cluster ids.

    Stops when no assignment changes, when the centers move less than `tol`
    x the mean per-feature variance (sklearn's rule; squared shift summed over
    centers), or after max_iter iterations. An empty cluster keeps its
    previous center. Deterministic in `seed`.
    """
    x = torch.as_tensor(np.asarray(points, np.float32))
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be between 1 and the number of points {n}")
    rng = np.random.default_rng(seed)
    sq = (x * x).sum(dim=1)
    chosen = [int(rng.integers(n))]
    closest = (sq - 2 * x @ x[chosen[0]] + sq[chosen[0]]).clamp_min_(0).double()
    for _ in range(1, k):
        total = float(closest.sum())
        if total > 0:
            pick = int(rng.choice(n, p=(closest / total).numpy()))
        else:  # every point already sits on a center
            pick = int(rng.integers(n))
        chosen.append(pick)
        d2 = (sq - 2 * x @ x[pick] + sq[pick]).clamp_min_(0).double()
        closest = torch.minimum(closest, d2)
    centers = x[chosen].clone()
    shift_tol = tol * float(x.var(dim=0, unbiased=False).mean())
    assign = torch.full((n,), -1, dtype=torch.int64)
    for _ in range(max_iter):
        scores = torch.addmm((centers * centers).sum(dim=1)[None, :], x, centers.T, alpha=-2)
        new = scores.argmin(dim=1)
        if torch.equal(new, assign):
            break
        assign = new
        members = torch.zeros(n, k)
        members[torch.arange(n), assign] = 1.0
        counts = members.sum(dim=0)
        sums = members.T @ x  # a matmul: much faster than index_add_ on CPU
        filled = counts > 0
        previous = centers.clone()
        centers[filled] = sums[filled] / counts[filled, None]
        if float(((centers - previous) ** 2).sum()) <= shift_tol:
            assign = (
                torch.addmm((centers * centers).sum(dim=1)[None, :], x, centers.T, alpha=-2)
            ).argmin(dim=1)
            break
    return assign.numpy()


def kmeans_purity(points: np.ndarray, labels: np.ndarray, seed: int) -> float:
    """Purity of k-means (k = number of distinct labels) against `labels`.

    Each cluster votes for its majority label; purity is the fraction of points
    matching their cluster's vote. 1.0 when there is a single label.
    """
    inverse, n_labels = _dense(labels)
    if n_labels < 2:
        return 1.0
    clusters = kmeans(points, n_labels, seed)
    table = np.bincount(clusters * n_labels + inverse, minlength=n_labels * n_labels)
    return float(table.reshape(n_labels, n_labels).max(axis=1).sum() / len(inverse))
