import numpy as np
import pytest

from fclf.evaluate.metrics import cluster_bootstrap, percentile_interval


def _clustered(rng, n_clusters=40, mean=0.3, cluster_sd=1.0, point_sd=0.5):
    """Points whose values share a per-cluster offset (strongly correlated within a cluster)."""
    sizes = rng.integers(2, 12, n_clusters)
    clusters = np.repeat(np.arange(n_clusters), sizes)
    values = mean + cluster_sd * rng.standard_normal(n_clusters)[clusters]
    return values + point_sd * rng.standard_normal(len(clusters)), clusters


def test_resampled_estimates_are_ratios_of_weighted_sums():
    # two clusters: {0, 1} and {2}; every resample is one of 3 count vectors
    num = np.array([[1.0, 2.0], [3.0, 0.0], [5.0, 4.0]])
    den = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    clusters = np.array(["a", "a", "b"])
    samples = cluster_bootstrap(num, den, clusters, num_resamples=200, seed=0)
    assert samples.shape == (200, 2)
    options = {  # counts (2, 0), (1, 1), (0, 2) of clusters (a, b)
        (4 / 2, 2 / 2),
        (9 / 3, 6 / 2),
        (10 / 2, np.inf),
    }
    seen = {(a, b if np.isfinite(b) else np.inf) for a, b in samples}
    assert seen <= options
    # (0, 2) draws only cluster b, whose second denominator is 0: nan, not inf
    only_b = samples[:, 0] == 5.0
    assert only_b.any() and np.isnan(samples[only_b, 1]).all()
    assert not np.isinf(samples).any()


def test_deterministic_in_seed():
    values, clusters = _clustered(np.random.default_rng(0))
    ones = np.ones_like(values)
    a = cluster_bootstrap(values, ones, clusters, num_resamples=300, seed=7)
    b = cluster_bootstrap(values, ones, clusters, num_resamples=300, seed=7)
    c = cluster_bootstrap(values, ones, clusters, num_resamples=300, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # more resamples than one chunk: the first ones do not depend on how many follow
    long = cluster_bootstrap(values, ones, clusters, num_resamples=700, seed=7)
    np.testing.assert_array_equal(long[:300], a)


def test_interval_covers_the_truth_at_about_the_nominal_rate():
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(200):
        values, clusters = _clustered(rng, n_clusters=100)
        samples = cluster_bootstrap(
            values, np.ones_like(values), clusters, num_resamples=400, seed=int(rng.integers(1e9))
        )
        low, high = percentile_interval(samples, 0.95)
        hits += bool(low[0] <= 0.3 <= high[0])
    assert 0.9 <= hits / 200 <= 0.99


def test_clusters_widen_the_interval_when_points_within_them_correlate():
    values, clusters = _clustered(np.random.default_rng(2))
    ones = np.ones_like(values)
    by_cluster = percentile_interval(cluster_bootstrap(values, ones, clusters, 1000, seed=0))
    by_point = percentile_interval(cluster_bootstrap(values, ones, np.arange(len(values)), 1000))
    width_cluster = by_cluster[1] - by_cluster[0]
    width_point = by_point[1] - by_point[0]
    assert width_cluster[0] > 1.5 * width_point[0]


def test_paired_columns_share_resamples():
    # method b = method a + 0.1 on every point: the difference has no spread at all
    values, clusters = _clustered(np.random.default_rng(3))
    num = np.stack([values, values + 0.1], axis=1)
    samples = cluster_bootstrap(num, np.ones_like(num), clusters, num_resamples=200)
    low, high = percentile_interval(samples[:, 1] - samples[:, 0])
    assert low[0] == pytest.approx(0.1) and high[0] == pytest.approx(0.1)


def test_percentile_interval_skips_nans():
    samples = np.array([[1.0, np.nan], [2.0, np.nan], [np.nan, np.nan], [3.0, np.nan]])
    low, high = percentile_interval(samples, level=0.5)
    assert low[0] == pytest.approx(1.5) and high[0] == pytest.approx(2.5)
    assert np.isnan(low[1]) and np.isnan(high[1])
    with pytest.raises(ValueError):
        percentile_interval(samples, level=1.0)


def test_shape_checks():
    with pytest.raises(ValueError):
        cluster_bootstrap(np.ones((4, 2)), np.ones((4, 3)), np.arange(4))
    with pytest.raises(ValueError):
        cluster_bootstrap(np.ones(4), np.ones(4), np.arange(3))
