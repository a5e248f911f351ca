"""The bank of real train embeddings, grouped by attribute code.

A *code* is a whole 0/1 attribute vector (one integer per row). The bank
holds every train embedding sorted by code, so drawing real points of a given
code is one random offset into that code's block: rare codes always get
points (drawn with replacement), and drawing never looks at flowed points.

A target code that no train point carries (e.g. a rare combination absent
from the data) falls back to the *nearest present code by Hamming distance*
(ties: the more populated code, then the smaller code number); `groups`
returns the group actually used, so callers treat the two alike. Both
objectives draw their real targets from here: the contrastive family its
positives and negatives, flow matching its coupling partners.
"""

from __future__ import annotations

import torch


def row_codes(labels: torch.Tensor) -> torch.Tensor:
    """One int64 per row such that equal codes <=> equal 0/1 label vectors (k <= 62)."""
    if labels.shape[1] > 62:
        raise ValueError(f"at most 62 attributes fit in a code, got {labels.shape[1]}")
    weights = 2 ** torch.arange(labels.shape[1], device=labels.device, dtype=torch.int64)
    return (labels.to(torch.int64) * weights).sum(-1)


class CodeBank:
    """Real embeddings grouped by code: group g is `embeddings[starts[g] : starts[g] + counts[g]]`.
    """

    def __init__(self, embeddings: torch.Tensor, labels: torch.Tensor):
        if len(embeddings) != len(labels) or len(embeddings) == 0:
            raise ValueError("the bank needs as many label rows as embeddings, and at least one")
        self.num_attributes = labels.shape[1]
        codes = row_codes(labels.cpu())
        present, inverse, counts = torch.unique(codes, return_inverse=True, return_counts=True)
        order = torch.argsort(inverse, stable=True)
        self.codes = present  # (G,) sorted
        self.counts = counts  # (G,)
        self.starts = torch.cumsum(counts, 0) - counts
        self.source_rows = order  # bank position -> row of the input
        self.group = inverse[order].to(embeddings.device)  # (n,) group of each bank point
        self.embeddings = embeddings[order.to(embeddings.device)]
        bits = (present[:, None] >> torch.arange(self.num_attributes)) & 1
        self._signs = (2 * bits - 1).double()  # (G, k) in {-1, 1}

    def __len__(self) -> int:
        return len(self.embeddings)

    def groups(self, labels: torch.Tensor) -> torch.Tensor:
        """(m,) group index (on CPU) for each 0/1 label row; absent codes use the nearest code."""
        labels = labels.cpu()
        codes = row_codes(labels)
        pos = torch.searchsorted(self.codes, codes).clamp_max(len(self.codes) - 1)
        exact = self.codes[pos] == codes
        if bool(exact.all()):
            return pos
        missing = (~exact).nonzero().squeeze(1)
        signs = (2 * labels[missing].to(torch.int64) - 1).double()
        hamming = ((self.num_attributes - signs @ self._signs.T) / 2).round().long()
        # smallest distance, then the most populated group, then the smallest code
        score = hamming * (int(self.counts.sum()) + 1) - self.counts[None, :]
        pos = pos.clone()
        pos[missing] = score.argmin(1)
        return pos

    def sample(
        self, groups: torch.Tensor, per: int, generator: torch.Generator | None
    ) -> torch.Tensor:
        """(m, per) bank positions: `per` uniform draws (with replacement) from each row's group."""
        offsets = (torch.rand(len(groups), per, generator=generator)
                   * self.counts[groups][:, None]).long()
        offsets = torch.minimum(offsets, self.counts[groups][:, None] - 1)
        return (self.starts[groups][:, None] + offsets).to(self.embeddings.device)

    def sample_any(self, count: int, generator: torch.Generator | None) -> torch.Tensor:
        """(count,) bank positions drawn uniformly from the whole bank."""
        return torch.randint(len(self), (count,), generator=generator).to(self.embeddings.device)
