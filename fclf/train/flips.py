"""Random attribute flips: the targets the field learns to flow toward.

With probability `flip_prob` a sample's target differs from its own attributes
in 1..max_flips distinct attributes chosen uniformly; otherwise the target is
the sample's own attributes (the field learns to leave correct points alone).
"""

from __future__ import annotations

import torch


def sample_flip_mask(
    n: int, k: int, flip_prob: float, max_flips: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(n, k) bool mask of flipped attributes; vectorised, no Python loops."""
    if not 1 <= max_flips <= k:
        raise ValueError(f"max_flips must be in 1..{k}, got {max_flips}")
    flipped = torch.rand(n, generator=generator) < flip_prob
    count = torch.randint(1, max_flips + 1, (n,), generator=generator)
    # A uniformly random subset of size `count`: rank random scores, keep the smallest.
    ranks = torch.rand(n, k, generator=generator).argsort(1).argsort(1)
    return (ranks < count[:, None]) & flipped[:, None]


def sample_targets(
    attributes: torch.Tensor, flip_prob: float, max_flips: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Targets for 0/1 attributes (n, k): own attributes with a random flip mask applied."""
    n, k = attributes.shape
    mask = sample_flip_mask(n, k, flip_prob, max_flips, generator).to(attributes.device)
    return torch.where(mask, 1 - attributes, attributes)
