import numpy as np
import pytest

from fclf.evaluate.metrics import pareto_area, value_at


def test_pareto_area_of_hand_built_curves():
    # one point: a rectangle [0, f] x [0, p]
    assert pareto_area([0.6], [0.5]) == pytest.approx(0.3)
    # strengths 0..3: flip rises, preservation falls
    flip = [0.1, 0.4, 0.7, 0.9]
    pres = [1.0, 0.9, 0.6, 0.2]
    # x in (0.7, 0.9]: 0.2; (0.4, 0.7]: 0.6; (0.1, 0.4]: 0.9; [0, 0.1]: 1.0
    expected = 0.2 * 0.2 + 0.3 * 0.6 + 0.3 * 0.9 + 0.1 * 1.0
    assert pareto_area(flip, pres) == pytest.approx(expected)
    # order does not matter
    assert pareto_area(flip[::-1], pres[::-1]) == pytest.approx(expected)


def test_dominated_points_add_nothing():
    flip, pres = [0.4, 0.8], [0.9, 0.5]
    base = pareto_area(flip, pres)
    assert base == pytest.approx(0.4 * 0.5 + 0.4 * 0.9)
    assert pareto_area(flip + [0.3, 0.6], pres + [0.8, 0.4]) == pytest.approx(base)
    # a point that dominates raises the area
    assert pareto_area(flip + [0.8], pres + [0.7]) == pytest.approx(0.8 * 0.7 + 0.4 * 0.2)


def test_pareto_area_edge_cases():
    assert pareto_area([], []) == 0.0
    assert pareto_area([1.0], [1.0]) == 1.0
    assert pareto_area([1.3, -0.2], [0.5, 1.0]) == pytest.approx(0.5)  # flips clipped to [0, 1]
    assert pareto_area([0.5, None, np.nan], [0.4, 1.0, 1.0]) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        pareto_area([0.1, 0.2], [0.3])


def test_value_at_interpolates_on_the_first_crossing():
    x = [0.0, 0.5, 1.0, 0.2, 0.8]
    y = [1.0, 0.8, 0.2, 0.0, 0.0]
    assert value_at(x, y, 0.25) == pytest.approx(0.9)
    assert value_at(x, y, 0.75) == pytest.approx(0.5)  # not the later 0.2 -> 0.8 segment
    assert value_at(x, y, 0.5) == 0.8  # exactly on a point
    assert value_at(x, y, 1.0) == 0.2
    assert value_at(x, y, 1.1) is None
    # a decreasing curve crosses too
    assert value_at([0.9, 0.3], [0.1, 0.7], 0.6) == pytest.approx(0.4)


def test_value_at_edge_cases():
    assert value_at([], [], 0.5) is None
    assert value_at([0.5], [0.3], 0.5) == 0.3
    assert value_at([0.4], [0.3], 0.5) is None
    assert value_at([0.2, None, 0.9], [1.0, 0.5, 0.0], 0.5) is None  # a gap is not crossed
