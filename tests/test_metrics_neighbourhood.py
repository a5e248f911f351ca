import numpy as np
import pytest

from fclf.evaluate.metrics import (
    k_nearest_others,
    neighbourhood_preservation,
    neighbourhood_preservation_per_point,
)


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _similarities(points):
    u = _unit(points).astype(np.float64)
    sims = u @ u.T
    np.fill_diagonal(sims, -np.inf)
    return sims


def _brute_knn(points, k):
    return np.argsort(-_similarities(points), axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize(
    ("n", "k", "block"),
    [(53, 5, 7), (300, 10, 64), (1000, 10, 96), (999, 3, 128), (40, 39, 16), (200, 10, 2048)],
)
def test_k_nearest_others_matches_brute_force(n, k, block):
    # several blocks per row, partial last blocks, k = n - 1, and a single block
    points = np.random.default_rng(n + k).standard_normal((n, 24)).astype(np.float32)
    got = k_nearest_others(points, k, block_size=block)
    np.testing.assert_array_equal(got, _brute_knn(points, k))


def test_ties_give_a_valid_top_k():
    # 30 distinct points, each repeated 4 times: many exactly tied similarities
    base = _unit(np.random.default_rng(0).standard_normal((30, 8)))
    points = np.repeat(base, 4, axis=0)
    sims = _similarities(points)
    got = k_nearest_others(points, 6, block_size=16)
    chosen = np.take_along_axis(sims, got, axis=1)
    expected = -np.sort(-sims, axis=1)[:, :6]
    np.testing.assert_allclose(chosen, expected, atol=1e-6)
    assert (got != np.arange(len(points))[:, None]).all()
    assert all(len(set(row)) == 6 for row in got)


def test_identity_rotation_and_rescaling_preserve_everything():
    x = np.random.default_rng(1).standard_normal((400, 32)).astype(np.float32)
    assert neighbourhood_preservation(x, x) == 1.0
    q, _ = np.linalg.qr(np.random.default_rng(2).standard_normal((32, 32)))
    scaled = (x @ q.T * np.random.default_rng(3).uniform(0.5, 2, (400, 1))).astype(np.float32)
    assert neighbourhood_preservation(x, scaled, block_size=64) == 1.0


def test_unrelated_edits_keep_about_k_over_n():
    rng = np.random.default_rng(4)
    sources = rng.standard_normal((2000, 32)).astype(np.float32)
    edited = rng.standard_normal((2000, 32)).astype(np.float32)
    value = neighbourhood_preservation(sources, edited, k=10, block_size=512)
    assert value == pytest.approx(10 / 1999, abs=0.004)


def test_collapse_scrambles_neighbourhoods():
    rng = np.random.default_rng(5)
    sources = rng.standard_normal((600, 16)).astype(np.float32)
    prototypes = rng.standard_normal((5, 16)).astype(np.float32)
    collapsed = prototypes[rng.integers(0, 5, 600)]
    jittered = collapsed + 0.05 * rng.standard_normal(collapsed.shape).astype(np.float32)
    assert neighbourhood_preservation(sources, collapsed) < 0.05
    assert neighbourhood_preservation(sources, jittered) < 0.05


def test_small_noise_keeps_most_neighbours_and_per_point_matches_brute_force():
    rng = np.random.default_rng(6)
    sources = rng.standard_normal((300, 16)).astype(np.float32)
    edited = sources + 0.2 * rng.standard_normal(sources.shape).astype(np.float32)
    per_point = neighbourhood_preservation_per_point(sources, edited, k=7, block_size=50)
    a, b = _brute_knn(sources, 7), _brute_knn(edited, 7)
    expected = [len(set(a[i]) & set(b[i])) / 7 for i in range(300)]
    np.testing.assert_allclose(per_point, expected)
    assert neighbourhood_preservation(sources, edited, k=7) == pytest.approx(np.mean(expected))
    assert 0.5 < per_point.mean() < 1.0


def test_bad_inputs():
    x = np.zeros((5, 3), np.float32)
    with pytest.raises(ValueError):
        neighbourhood_preservation(x, x, k=5)  # only 4 others
    with pytest.raises(ValueError):
        neighbourhood_preservation(x, x[:4], k=2)
