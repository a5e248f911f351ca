"""The bank of real train embeddings grouped by attribute code, and the contrastive pool."""

from __future__ import annotations

import pytest
import torch

from fclf.train.bank import CodeBank, row_codes
from fclf.train.objectives.contrastive import draw_pool

K = 3


def bank_world() -> tuple[torch.Tensor, torch.Tensor, CodeBank]:
    """60 points: code 0 common, code 5 (1,0,1) appears once, codes 6 (0,1,1) and 7 absent."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.tensor([[0, 0, 0]] * 30 + [[1, 0, 0]] * 15 + [[0, 1, 0]] * 8
                          + [[1, 1, 0]] * 4 + [[0, 0, 1]] * 2 + [[1, 0, 1]] * 1)
    order = torch.randperm(len(labels), generator=gen)
    labels = labels[order]
    z = torch.nn.functional.normalize(torch.randn(len(labels), 6, generator=gen), dim=-1)
    return z, labels, CodeBank(z, labels)


def test_groups_hold_every_point_once_with_its_code():
    z, labels, bank = bank_world()
    assert len(bank) == len(z)
    assert bank.codes.tolist() == [0, 1, 2, 3, 4, 5]
    assert bank.counts.tolist() == [30, 15, 8, 4, 2, 1]
    assert sorted(bank.source_rows.tolist()) == list(range(len(z)))
    assert torch.equal(bank.embeddings, z[bank.source_rows])
    codes = row_codes(labels)[bank.source_rows]
    assert torch.equal(bank.codes[bank.group], codes)


def test_rare_codes_always_get_positives_that_are_real_points_of_that_code():
    z, labels, bank = bank_world()
    targets = torch.tensor([[1, 0, 1]] * 50 + [[0, 0, 1]] * 50 + [[0, 0, 0]] * 5)
    groups = bank.groups(targets)
    drawn = bank.sample(groups, 4, torch.Generator().manual_seed(1))
    assert drawn.shape == (105, 4)
    want = row_codes(targets)
    got = bank.codes[bank.group[drawn]]
    assert torch.equal(got, want[:, None].expand(-1, 4)), "every draw carries the target code"
    real_rows = {tuple(r.tolist()) for r in z}
    assert all(tuple(bank.embeddings[i].tolist()) in real_rows for i in drawn.reshape(-1))
    # the single point of code 5 is the positive of every anchor that targets code 5
    assert len(set(drawn[:50].reshape(-1).tolist())) == 1
    assert len(set(drawn[50:100].reshape(-1).tolist())) == 2  # both points of code 4 are used


def test_absent_codes_fall_back_to_the_nearest_present_code():
    _, _, bank = bank_world()
    # (0,1,1) = code 6 is absent: Hamming 1 from codes 2 (0,1,0) [8 points] and 4 (0,0,1)
    # [2 points] -> the more populated code 2. (1,1,1) = code 7: Hamming 1 from codes 3, 5, 6
    # present: 3 (1,1,0) [4] and 5 (1,0,1) [1] -> code 3.
    groups = bank.groups(torch.tensor([[0, 1, 1], [1, 1, 1], [1, 0, 1]]))
    assert bank.codes[groups].tolist() == [2, 3, 5]


def test_pool_marks_every_point_of_the_anchor_code_as_positive():
    z, labels, bank = bank_world()
    targets = torch.tensor([[1, 0, 1], [0, 0, 0], [0, 1, 0], [1, 0, 1]])
    pool, mask, groups = draw_pool(bank, targets, 3, torch.Generator().manual_seed(2))
    assert pool.shape == (4 * 3 + 4,)
    assert torch.equal(mask, groups[:, None] == bank.group[pool][None, :])
    for i in range(4):  # its own 3 draws are always positives
        assert mask[i, 3 * i : 3 * i + 3].all()
    assert torch.equal(mask[0], mask[3])


def test_sampling_follows_the_generator_and_stays_in_range():
    _, _, bank = bank_world()
    groups = torch.tensor([0, 5, 4, 1])
    a = bank.sample(groups, 50, torch.Generator().manual_seed(3))
    b = bank.sample(groups, 50, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert (bank.group[a] == groups[:, None]).all()
    anywhere = bank.sample_any(1000, torch.Generator().manual_seed(4))
    assert anywhere.min() >= 0 and anywhere.max() < len(bank)


def test_bank_needs_matching_rows():
    with pytest.raises(ValueError, match="as many label rows"):
        CodeBank(torch.zeros(3, 4), torch.zeros(2, K))
