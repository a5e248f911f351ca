"""Random attribute flips have the distribution the docs state.

Checked on one large vectorised draw; every frequency must lie within 4.5
binomial standard errors of its stated probability (fixed seeds: deterministic).
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from fclf.train.flips import sample_flip_mask, sample_targets

N, K = 50_000, 5
Z_TOL = 4.5



def within(count: int | torch.Tensor, total: int | torch.Tensor, p: float) -> bool:
    count, total = float(count), float(total)
    if p in (0.0, 1.0):
        return count == p * total
    se = math.sqrt(p * (1 - p) / total)
    return abs(count / total - p) < Z_TOL * se


def draw(flip_prob: float, max_flips: int, seed: int = 0) -> torch.Tensor:
    return sample_flip_mask(N, K, flip_prob, max_flips, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("flip_prob", "max_flips"), [(0.3, 3), (0.5, 2), (0.8, 1), (1.0, 5)])
def test_flip_mask_distribution(flip_prob, max_flips):
    mask = draw(flip_prob, max_flips)
    assert mask.shape == (N, K) and mask.dtype == torch.bool
    count = mask.sum(1)
    flipped = count > 0
    # A sample is flipped with probability flip_prob ...
    assert within(flipped.sum(), N, flip_prob)
    # ... and then in 1..max_flips *distinct* attributes, each count equally likely
    # (a repeated attribute would show up as too few flips).
    assert count.max() <= max_flips
    for c in range(1, max_flips + 1):
        assert within((count == c).sum(), flipped.sum(), 1 / max_flips), c
    # Given the count c, every attribute is among the flipped with probability c / K ...
    for c in range(1, max_flips + 1):
        rows = mask[count == c]
        for j in range(K):
            assert within(rows[:, j].sum(), len(rows), c / K), (c, j)
    # ... and every subset of size 2 is equally likely.
    if max_flips >= 2:
        rows = mask[count == 2]
        pairs = list(itertools.combinations(range(K), 2))
        for a, b in pairs:
            assert within((rows[:, a] & rows[:, b]).sum(), len(rows), 1 / len(pairs)), (a, b)


def test_targets_differ_exactly_in_the_flipped_attributes():
    gen = torch.Generator().manual_seed(1)
    attrs = torch.randint(0, 2, (N, K), generator=gen, dtype=torch.int8)
    targets = sample_targets(attrs, 0.4, 3, torch.Generator().manual_seed(2))
    mask = draw(0.4, 3, seed=2)  # the same generator state gives the same mask
    assert targets.dtype == attrs.dtype and targets.shape == attrs.shape
    assert set(targets.unique().tolist()) <= {0, 1}
    assert torch.equal(targets != attrs, mask)
    changed = (targets != attrs).sum(1)
    assert within((changed > 0).sum(), N, 0.4)
    for c in (1, 2, 3):
        assert within((changed == c).sum(), (changed > 0).sum(), 1 / 3)


def test_flip_prob_zero_keeps_the_attributes():
    attrs = torch.randint(0, 2, (1000, K), generator=torch.Generator().manual_seed(0))
    assert torch.equal(sample_targets(attrs, 0.0, 2), attrs)
    assert not draw(0.0, K).any()


def test_the_generator_makes_draws_reproducible():
    assert torch.equal(draw(0.5, 2, seed=3), draw(0.5, 2, seed=3))
    assert not torch.equal(draw(0.5, 2, seed=3), draw(0.5, 2, seed=4))


@pytest.mark.parametrize("max_flips", [0, K + 1])
def test_max_flips_out_of_range_is_rejected(max_flips):
    with pytest.raises(ValueError, match="max_flips"):
        sample_flip_mask(10, K, 0.5, max_flips)
