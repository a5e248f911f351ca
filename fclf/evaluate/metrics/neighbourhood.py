"""Does the edit keep who is near whom? (k-nearest-neighbour preservation)

An edit that changes an attribute should leave the rest of the person alone,
so the sources' neighbourhoods should survive among the edits. Collapse (many
points sent to one place) scrambles them: within a collapsed group every point
is equally near, so its edited neighbours are an arbitrary pick. Noise large
enough to dodge distinct_fraction scrambles them too. Unrelated points keep
~k/(N-1) of them; the identity edit keeps all.

Neighbours are by cosine similarity, self excluded. The search (shared with
coverage.py, which ranks by Euclidean distance) is blocked: only blocks on or
above the diagonal of the score matrix are computed (float32 matmuls), and
each block updates a running top-k of its rows and of its columns, so no N x N
matrix is held. Only a point's first block goes through torch.topk (whose
per-row cost on CPU is a good part of the matmul's); later blocks only offer entries
that beat the point's current k-th best, found by comparing maxima over
strided groups of GROUP entries first, which costs one pass over the block.
"""

from __future__ import annotations

import numpy as np
import torch

from fclf.evaluate.metrics.neighbours import _unit_rows

BLOCK = 2048
GROUP = 16


def _group(length: int) -> int:
    """The largest power of two <= GROUP that divides `length` (1 for odd lengths)."""
    g = GROUP
    while length % g:
        g //= 2
    return g


class RunningTopK:
    """The k largest scores seen so far per point (sorted, largest first) and their indices."""

    def __init__(self, n: int, k: int):
        self.k = k
        self.values = torch.full((n, k), -torch.inf)
        self.indices = torch.full((n, k), -1, dtype=torch.int64)

    def offer_rows(self, scores: torch.Tensor, row0: int, col0: int) -> None:
        """Offer block `scores` (R, C) to points row0.. (entries are their scores to col0..)."""
        rows = slice(row0, row0 + scores.shape[0])
        kth = self.values[rows, -1]
        if torch.isinf(kth).any():  # a point's first look: dense top-k
            v, i = scores.topk(min(self.k, scores.shape[1]), dim=1)
            self._merge_dense(rows, v, i + col0)
            return
        r, c, v = _row_candidates(scores, kth)
        self._merge_sparse(r + row0, c + col0, v)

    def offer_columns(
        self, scores: torch.Tensor, row0: int, col0: int, spare: torch.Tensor
    ) -> None:
        """Offer block `scores` (R, C) to points col0.. (entries are their scores to row0..).

        `spare` holds at least R x C floats, for a contiguous transpose.
        """
        n_rows, n_cols = scores.shape
        cols = slice(col0, col0 + n_cols)
        kth = self.values[cols, -1]
        if torch.isinf(kth).any():
            transposed = spare[: n_rows * n_cols].view(n_cols, n_rows).copy_(scores.T)
            v, i = transposed.topk(min(self.k, n_rows), dim=1)  # contiguous: fast topk
            self._merge_dense(cols, v, i + row0)
            return
        r, c, v = _column_candidates(scores, kth)
        self._merge_sparse(c + col0, r + row0, v)

    def _merge_dense(self, points: slice, v: torch.Tensor, i: torch.Tensor) -> None:
        all_v = torch.cat([self.values[points], v], dim=1)
        all_i = torch.cat([self.indices[points], i], dim=1)
        top_v, pos = all_v.topk(self.k, dim=1)  # ties: torch's order, deterministic
        self.values[points] = top_v
        self.indices[points] = all_i.gather(1, pos)

    def _merge_sparse(self, points: torch.Tensor, nbrs: torch.Tensor, v: torch.Tensor) -> None:
        """Merge (point, neighbour, score) triples with one 1-D sort (no per-row topk)."""
        if len(points) == 0:
            return
        k = self.k
        touched = torch.unique(points)
        all_p = torch.cat([touched.repeat_interleave(k), points])
        all_v = torch.cat([self.values[touched].reshape(-1), v])
        all_i = torch.cat([self.indices[touched].reshape(-1), nbrs])
        # one int64 key: point, then score descending; stable, so ties keep the older entry
        order = torch.sort((all_p << 32) | _descending_bits(all_v), stable=True).indices
        _, counts = torch.unique_consecutive(all_p[order], return_counts=True)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.arange(len(order)) - starts.repeat_interleave(counts)
        keep = order[rank < k]  # each touched point has >= k entries (its old ones)
        self.values[touched] = all_v[keep].view(-1, k)
        self.indices[touched] = all_i[keep].view(-1, k)


def _descending_bits(v: torch.Tensor) -> torch.Tensor:
    """int64 in [0, 2^32) that sorts float32 `v` descending (an int sort is ~10x a float one)."""
    bits = v.view(torch.int32).to(torch.int64)
    ascending = torch.where(bits >= 0, bits, -(2**31) - 1 - bits)  # IEEE order as an int
    return (2**31 - 1) - ascending


def _row_candidates(scores: torch.Tensor, kth: torch.Tensor):
    """(row, col, score) of entries above their row's `kth`, via strided group maxima."""
    n_rows, n_cols = scores.shape
    g = _group(n_cols)
    q = n_cols // g
    grouped = scores.view(n_rows, g, q)  # group (r, j) holds columns j, j + q, j + 2q, ...
    r, j = (grouped.amax(dim=1) > kth[:, None]).nonzero(as_tuple=True)
    vals = grouped[r, :, j]  # (hits, g)
    hit, t = (vals > kth[r, None]).nonzero(as_tuple=True)
    return r[hit], t * q + j[hit], vals[hit, t]


def _column_candidates(scores: torch.Tensor, kth: torch.Tensor):
    """(row, col, score) of entries above their column's `kth`, via strided group maxima."""
    n_rows, n_cols = scores.shape
    g = _group(n_rows)
    p = n_rows // g
    grouped = scores.view(g, p, n_cols)  # group (i, c) holds rows i, i + p, i + 2p, ...
    i, c = (grouped.amax(dim=0) > kth[None, :]).nonzero(as_tuple=True)
    vals = grouped[:, i, c]  # (g, hits)
    t, hit = (vals > kth[None, c]).nonzero(as_tuple=True)
    return t * p + i[hit], c[hit], vals[t, hit]


def top_k_others(
    left: torch.Tensor, right: torch.Tensor, k: int, block_size: int = BLOCK
) -> RunningTopK:
    """Top-k of score(i, j) = left_i . right_j over j != i, for a symmetric score.

    The score must be symmetric (left_i . right_j == left_j . right_i): each
    block above the diagonal serves both its rows and its columns.
    """
    n = len(left)
    if not 1 <= k <= n - 1:
        raise ValueError(f"k={k} must be between 1 and the number of points minus one ({n - 1})")
    top = RunningTopK(n, k)
    buf = torch.empty(block_size * block_size)
    spare = torch.empty(block_size * block_size)
    for i0 in range(0, n, block_size):
        li = left[i0 : i0 + block_size]
        for j0 in range(i0, n, block_size):
            rj = right[j0 : j0 + block_size]
            scores = torch.mm(li, rj.T, out=buf[: len(li) * len(rj)].view(len(li), len(rj)))
            if i0 == j0:
                scores.fill_diagonal_(-torch.inf)
            top.offer_rows(scores, i0, j0)
            if j0 != i0:
                top.offer_columns(scores, i0, j0, spare)
    return top


def k_nearest_others(points: np.ndarray, k: int, block_size: int = BLOCK) -> np.ndarray:
    """(N, k) int64: each row's k most cosine-similar other rows, most similar first."""
    x = _unit_rows(points)
    return top_k_others(x, x, k, block_size).indices.numpy()


def neighbourhood_preservation_per_point(
    sources: np.ndarray, edited: np.ndarray, k: int = 10, block_size: int = BLOCK
) -> np.ndarray:
    """(N,) float64: |kNN_k(source_i among sources) & kNN_k(edit_i among edits)| / k."""
    if np.shape(sources) != np.shape(edited):
        raise ValueError(f"shapes differ: {np.shape(sources)} vs {np.shape(edited)}")
    before = k_nearest_others(sources, k, block_size)
    after = k_nearest_others(edited, k, block_size)
    # rows hold distinct indices, so the count of equal pairs is the intersection size
    shared = (before[:, :, None] == after[:, None, :]).sum(axis=(1, 2))
    return shared / np.float64(k)


def neighbourhood_preservation(
    sources: np.ndarray, edited: np.ndarray, k: int = 10, block_size: int = BLOCK
) -> float:
    """Mean fraction of each point's k nearest sources that stay among its k nearest edits.

    1.0 for the identity edit, ~k/(N-1) when the edits are unrelated to the sources.
    """
    return float(neighbourhood_preservation_per_point(sources, edited, k, block_size).mean())
