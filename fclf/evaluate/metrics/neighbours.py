"""Nearest real neighbours of (edited) points, by cosine similarity.

One blocked pass answers both neighbour questions: the nearest gallery row
(for distinct_fraction) and the nearest row other than the query's own source
(for identity_top1). Similarities are float32 matmuls of one block at a time
with a running best per query, so memory stays at one block and no N x M
matrix is ever held.
"""

from __future__ import annotations

import numpy as np
import torch

BLOCK = 2048


def _unit_rows(x: np.ndarray) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x, np.float32))
    return t / torch.linalg.vector_norm(t, dim=1, keepdim=True).clamp_min(1e-12)


def _merge(best_v, best_i, rows, v, i) -> None:
    """Keep the larger of the running best and a block's best (first wins ties)."""
    better = v > best_v[rows]
    best_v[rows] = torch.where(better, v, best_v[rows])
    best_i[rows] = torch.where(better, i, best_i[rows])


def nearest_neighbours(
    queries: np.ndarray,
    gallery: np.ndarray,
    exclude: np.ndarray | None = None,
    block_size: int = BLOCK,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Index of each query's most cosine-similar gallery row.

    Returns (nearest, nearest_excluding): the second is the nearest row other
    than `exclude[i]` (e.g. the query's own source in the gallery), or None
    when `exclude` is None.
    """
    q, g = _unit_rows(queries), _unit_rows(gallery)
    n, m = len(q), len(g)
    if exclude is not None and m < 2:
        raise ValueError("need at least 2 gallery points to exclude the source")
    excl = None if exclude is None else torch.as_tensor(np.asarray(exclude, np.int64))
    best_v = torch.full((n,), -torch.inf)
    best_i = torch.zeros(n, dtype=torch.int64)
    buf = torch.empty(block_size * block_size)
    for i0 in range(0, n, block_size):
        qi = q[i0 : i0 + block_size]
        rows = torch.arange(i0, i0 + len(qi))
        for j0 in range(0, m, block_size):
            gj = g[j0 : j0 + block_size]
            sims = torch.mm(qi, gj.T, out=buf[: len(qi) * len(gj)].view(len(qi), len(gj)))
            if excl is not None:  # mask each query's own row if it lies in this block
                own = excl[rows] - j0
                inside = (own >= 0) & (own < len(gj))
                sims[inside.nonzero().squeeze(1), own[inside]] = -torch.inf
            v, i = sims.max(dim=1)
            _merge(best_v, best_i, rows, v, i + j0)
    if excl is None:
        return best_i.numpy(), None
    # the own row competes for the plain nearest neighbour
    own_sim = (q * g[excl]).sum(dim=1)
    nearest = torch.where(own_sim > best_v, excl, best_i)
    return nearest.numpy(), best_i.numpy()


def nearest_other(points: np.ndarray, block_size: int = BLOCK) -> np.ndarray:
    """For each row, the most cosine-similar other row of the same set.

    Equals nearest_neighbours(points, points, exclude=arange)[1] at half the
    cost: only blocks on or above the diagonal are computed, and each serves
    its rows and its columns.
    """
    x = _unit_rows(points)
    n = len(x)
    if n < 2:
        raise ValueError("need at least 2 points")
    best_v = torch.full((n,), -torch.inf)
    best_i = torch.zeros(n, dtype=torch.int64)
    buf = torch.empty(block_size * block_size)
    for i0 in range(0, n, block_size):
        xi = x[i0 : i0 + block_size]
        rows = torch.arange(i0, i0 + len(xi))
        for j0 in range(i0, n, block_size):
            xj = x[j0 : j0 + block_size]
            cols = torch.arange(j0, j0 + len(xj))
            sims = torch.mm(xi, xj.T, out=buf[: len(xi) * len(xj)].view(len(xi), len(xj)))
            if i0 == j0:
                sims.fill_diagonal_(-torch.inf)
            v, i = sims.max(dim=1)
            _merge(best_v, best_i, rows, v, i + j0)
            if j0 != i0:  # column maxima: amax is fast; argmax only where a column improved
                v = sims.amax(dim=0)
                better = (v > best_v[cols]).nonzero().squeeze(1)
                if len(better):
                    best_i[cols[better]] = sims.index_select(1, better).argmax(dim=0) + i0
                    best_v[cols[better]] = v[better]
    return best_i.numpy()


def identity_top1(nearest_excluding: np.ndarray, query_ids: np.ndarray, gallery_ids: np.ndarray):
    """Fraction of queries whose nearest other real embedding shows the same person."""
    return float(np.mean(np.asarray(gallery_ids)[nearest_excluding] == np.asarray(query_ids)))


def distinct_fraction(nearest: np.ndarray) -> float:
    """Distinct nearest-real-neighbour indices / number of queries (1/N = total collapse)."""
    return len(np.unique(nearest)) / len(nearest) if len(nearest) else 0.0
