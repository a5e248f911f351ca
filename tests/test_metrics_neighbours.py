import numpy as np
import pytest

from fclf.evaluate.metrics import (
    distinct_fraction,
    identity_top1,
    nearest_neighbours,
    nearest_other,
)


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _brute(queries, gallery, exclude=None):
    sims = _unit(queries).astype(np.float64) @ _unit(gallery).astype(np.float64).T
    nearest = sims.argmax(axis=1)
    if exclude is None:
        return nearest, None
    sims[np.arange(len(queries)), exclude] = -np.inf
    return nearest, sims.argmax(axis=1)


@pytest.mark.parametrize("block", [7, 64, 2048])
def test_matches_brute_force_with_and_without_exclusion(block):
    rng = np.random.default_rng(block)
    gallery = _unit(rng.standard_normal((53, 16)))
    exclude = rng.choice(53, size=30, replace=False)
    queries = gallery[exclude] + 0.3 * rng.standard_normal((30, 16)).astype(np.float32)
    nearest, nearest_ex = nearest_neighbours(queries, gallery, exclude, block_size=block)
    ref, ref_ex = _brute(queries, gallery, exclude)
    np.testing.assert_array_equal(nearest, ref)
    np.testing.assert_array_equal(nearest_ex, ref_ex)
    assert (nearest_ex != exclude).all()
    plain, none = nearest_neighbours(queries, gallery, block_size=block)
    np.testing.assert_array_equal(plain, ref)
    assert none is None


def test_unedited_sources_find_themselves_unless_excluded():
    gallery = _unit(np.random.default_rng(0).standard_normal((40, 8)))
    index = np.arange(40)
    nearest, nearest_ex = nearest_neighbours(gallery, gallery, index, block_size=16)
    np.testing.assert_array_equal(nearest, index)
    assert (nearest_ex != index).all()


@pytest.mark.parametrize("block", [5, 16, 2048])
def test_nearest_other_equals_the_general_search(block):
    points = _unit(np.random.default_rng(3).standard_normal((37, 12)))
    _, expected = _brute(points, points, np.arange(37))
    np.testing.assert_array_equal(nearest_other(points, block_size=block), expected)


def test_distinct_fraction_and_identity_top1():
    assert distinct_fraction(np.full(50, 7)) == 1 / 50
    assert distinct_fraction(np.arange(50)) == 1.0
    gallery_ids = np.array([0, 0, 1, 1, 2])
    assert identity_top1(np.array([1, 2, 4]), np.array([0, 1, 1]), gallery_ids) == 2 / 3


def test_everything_mapped_to_one_point_has_one_neighbour():
    gallery = _unit(np.random.default_rng(0).standard_normal((100, 8)))
    edited = np.tile(gallery[:1] + 0.01, (100, 1))
    nearest, _ = nearest_neighbours(edited, gallery)
    assert distinct_fraction(nearest) == 1 / 100
