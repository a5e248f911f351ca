"""Requests: which attributes a protocol row asks to change, told vs blind targets, the no-op."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from fclf.evaluate.request import (
    KEEP,
    apply_request,
    check_request,
    noop_request,
    requested,
    sample_requests,
    sample_targets,
)


def labels(n=500, k=5, seed=0):
    return np.random.default_rng(seed).integers(0, 2, (n, k)).astype(np.int8)


@pytest.mark.parametrize("mode,counts", [("single", {1}), ("multi", {2, 3})])
def test_a_request_changes_some_attributes_away_from_the_labels(mode, counts):
    y = labels()
    request = sample_requests(y, mode, seed=3)
    asked = requested(request)
    assert set(asked.sum(1)) == counts
    np.testing.assert_array_equal(request[asked], 1 - y[asked])
    assert (request[~asked] == KEEP).all()


def test_told_targets_change_only_the_request_and_blind_targets_start_from_a_reading():
    y = labels()
    request = sample_requests(y, "single", 0)
    told = apply_request(request, y)
    asked = requested(request)
    np.testing.assert_array_equal(told[~asked], y[~asked])
    np.testing.assert_array_equal(told[asked], 1 - y[asked])
    reading = y.copy()
    reading[:50, :] = 1 - reading[:50, :]  # a reader that disagrees with some labels
    blind = apply_request(request, reading)
    np.testing.assert_array_equal(blind[~asked], reading[~asked])  # others: as it reads them
    np.testing.assert_array_equal(blind[asked], told[asked])  # the request itself: the same


def test_the_noop_asks_for_nothing():
    y = labels(20)
    assert not requested(noop_request(20, 5)).any()
    np.testing.assert_array_equal(apply_request(noop_request(20, 5), y), y)


def test_the_draw_is_the_old_protocols_so_numbers_stay_comparable(tmp_path):
    """The old `sample_targets` (labels with a random attribute flipped) picked the same rows
    and attributes from the same seed."""
    old = tmp_path / "targets_old.py"
    old.write_text(OLD_TARGETS)
    spec = importlib.util.spec_from_file_location("targets_old", old)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    y = labels()
    for mode in ("single", "multi"):
        np.testing.assert_array_equal(sample_targets(y, mode, 7),
                                      module.sample_targets(y, mode, 7))


def test_bad_requests_are_refused_with_their_name():
    with pytest.raises(ValueError, match="my request must be"):
        check_request(np.zeros((3, 4)), 5, "my request")
    with pytest.raises(ValueError, match="only -1"):
        check_request(np.full((3, 5), 2), 5)
    with pytest.raises(ValueError, match="transfer_mode"):
        sample_requests(labels(), "all", 0)


OLD_TARGETS = '''
import numpy as np


def sample_targets(attributes, transfer_mode, seed):
    attrs = np.asarray(attributes, np.int8)
    n, k = attrs.shape
    rng = np.random.default_rng((seed, 2))
    if transfer_mode == "single":
        counts = np.ones(n, np.int64)
    else:
        counts = rng.integers(2, min(3, k) + 1, size=n)
    ranks = np.argsort(np.argsort(rng.random((n, k)), axis=1), axis=1)
    flip = ranks < counts[:, None]
    return np.where(flip, 1 - attrs, attrs).astype(np.int8)
'''
