"""Nearest real neighbours of (edited) points, by cosine similarity.

One blocked pass answers both neighbour questions: the nearest gallery point
(for distinct_fraction) and the nearest one other than the query's own source
(for identity_top1). Similarities are computed block by block with float32
matmuls, keeping only each block's best two, so memory stays at one block.
"""

from __future__ import annotations

import numpy as np
import torch

BLOCK = 2048


def _unit_rows(x: np.ndarray) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x, np.float32))
    return t / t.norm(dim=1, keepdim=True).clamp_min(1e-12)


def nearest_neighbours(
    queries: np.ndarray,
    gallery: np.ndarray,
    exclude: np.ndarray | None = None,
    block_size: int = BLOCK,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Index of each query's most cosine-similar gallery row.

    Returns (nearest, nearest_excluding): the second is the nearest row other
    than `exclude[i]` (e.g. the query's own source in the gallery), or None
    when `exclude` is None. Needs at least 2 gallery rows when excluding.
    """
    q, g = _unit_rows(queries), _unit_rows(gallery)
    n, m = len(q), len(g)
    if exclude is not None and m < 2:
        raise ValueError("need at least 2 gallery points to exclude the source")
    keep = min(2, m)
    nearest = np.empty(n, np.int64)
    nearest_ex = np.empty(n, np.int64) if exclude is not None else None
    buf = torch.empty(block_size * block_size)
    for i0 in range(0, n, block_size):
        qi = q[i0 : i0 + block_size]
        vals, idxs = [], []
        for j0 in range(0, m, block_size):
            gj = g[j0 : j0 + block_size]
            sims = torch.mm(qi, gj.T, out=buf[: len(qi) * len(gj)].view(len(qi), len(gj)))
            v, ix = sims.topk(min(keep, len(gj)), dim=1)
            vals.append(v)
            idxs.append(ix + j0)
        v, ix = torch.cat(vals, 1), torch.cat(idxs, 1)
        best = v.topk(keep, dim=1).indices
        top = torch.gather(ix, 1, best).numpy()
        nearest[i0 : i0 + len(qi)] = top[:, 0]
        if nearest_ex is not None:
            own = np.asarray(exclude[i0 : i0 + len(qi)])
            nearest_ex[i0 : i0 + len(qi)] = np.where(top[:, 0] == own, top[:, 1], top[:, 0])
    return nearest, nearest_ex


def identity_top1(nearest_excluding: np.ndarray, query_ids: np.ndarray, gallery_ids: np.ndarray):
    """Fraction of queries whose nearest other real embedding shows the same person."""
    return float(np.mean(np.asarray(gallery_ids)[nearest_excluding] == np.asarray(query_ids)))


def distinct_fraction(nearest: np.ndarray) -> float:
    """Distinct nearest-real-neighbour indices / number of queries (1/N = total collapse)."""
    return len(np.unique(nearest)) / len(nearest) if len(nearest) else 0.0
