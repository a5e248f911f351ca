import numpy as np

from fclf.evaluate.metrics import transfer_scores

NAMES = ("A", "B", "C")


def test_fractions_on_a_hand_built_case():
    before = np.array([[0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 0]], np.int8)
    targets = np.array([[1, 0, 1], [1, 0, 0], [0, 1, 0], [1, 0, 0]], np.int8)
    after = np.array([[1, 0, 1], [1, 1, 1], [0, 1, 1], [1, 0, 0]], np.int8)
    flipped = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]], bool)
    out = transfer_scores(before, after, targets, flipped, NAMES)
    # flipped pairs: (0,A) hit, (1,B) miss, (2,C) miss
    assert out["flip_success"] == 1 / 3
    assert out["flip_success_per_attribute"] == {"A": 1.0, "B": 0.0, "C": 0.0}
    # 9 kept pairs; only (1,C) changed from its source reading
    assert out["preservation"] == 8 / 9
    assert out["preservation_per_attribute"] == {"A": 1.0, "B": 1.0, "C": 2 / 3}


def test_attribute_never_flipped_is_none_not_nan():
    before = np.zeros((3, 3), np.int8)
    targets = before.copy()
    targets[:, 0] = 1
    flipped = targets != before
    out = transfer_scores(before, targets, targets, flipped, NAMES)
    assert out["flip_success"] == 1.0
    assert out["flip_success_per_attribute"]["B"] is None
    assert out["preservation_per_attribute"]["A"] is None
    assert out["preservation"] == 1.0


def test_success_is_read_against_target_not_source_label():
    # the reading of the source is wrong (reads 1 where the label is 0) and the target is 1:
    # an edit that does nothing still "succeeds" by the probe, which is what flip_success reports
    before = np.array([[1]], np.int8)
    targets = np.array([[1]], np.int8)
    out = transfer_scores(before, before, targets, np.array([[True]]), ("A",))
    assert out["flip_success"] == 1.0
