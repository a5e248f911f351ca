import numpy as np
import pytest

from fclf.evaluate.metrics import effective_rank, rank_ratio


@pytest.mark.parametrize("r", [1, 3, 7, 16])
def test_orthonormal_set_has_effective_rank_r(r):
    q, _ = np.linalg.qr(np.random.default_rng(r).standard_normal((16, 16)))
    assert effective_rank(q[:, :r].T) == pytest.approx(r, rel=1e-6)


def test_many_points_in_an_r_dim_subspace_with_equal_spread():
    # 400 points whose Gram is a multiple of the identity on 5 axes
    eye = np.eye(32)[:5]
    points = np.concatenate([eye, -eye] * 40)
    assert effective_rank(points) == pytest.approx(5, rel=1e-6)


def test_scale_invariant_and_collapse_gives_one():
    x = np.random.default_rng(0).standard_normal((200, 16))
    assert effective_rank(3 * x) == pytest.approx(effective_rank(x))
    same = np.tile(x[:1], (200, 1))
    assert effective_rank(same) == pytest.approx(1.0, abs=1e-4)
    assert effective_rank(np.zeros((5, 4))) == 0.0


def test_rank_ratio_of_collapsed_edit_is_tiny():
    real = np.random.default_rng(1).standard_normal((500, 64))
    collapsed = np.tile(real[:1], (500, 1))
    assert rank_ratio(real, real) == pytest.approx(1.0)
    assert rank_ratio(collapsed, real) < 0.05
