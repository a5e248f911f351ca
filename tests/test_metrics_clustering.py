import numpy as np
import pytest
from sklearn.metrics import silhouette_score

from fclf.evaluate.metrics import combination_labels, kmeans, kmeans_purity, silhouettes


def _blobs(n_per=20, k=3, dim=6, spread=0.6, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, dim)) * 3
    labels = np.repeat(np.arange(k), n_per)
    return (centers[labels] + spread * rng.standard_normal((len(labels), dim))).astype(
        np.float32
    ), labels


@pytest.mark.parametrize("block", [8, 2048])
def test_silhouette_matches_sklearn_for_two_labelings(block):
    x, labels = _blobs(n_per=17, k=3)
    other = np.random.default_rng(1).integers(0, 4, len(x))
    got = silhouettes(x, [labels, other], block_size=block)
    assert got[0] == pytest.approx(silhouette_score(x, labels), abs=1e-5)
    assert got[1] == pytest.approx(silhouette_score(x, other), abs=1e-5)
    assert got[0] > 0.5 > got[1]


def test_silhouette_with_singleton_clusters_matches_sklearn():
    x, _ = _blobs(n_per=5, k=2)
    labels = np.array([0, 1, 2, 2, 2, 3, 3, 3, 3, 4])  # two singletons
    assert silhouettes(x, [labels])[0] == pytest.approx(silhouette_score(x, labels), abs=1e-5)


def test_degenerate_cases_do_not_crash():
    x, labels = _blobs()
    assert silhouettes(x, [np.zeros(len(x))]) == [0.0]  # one cluster
    same = np.ones((30, 4), np.float32)
    assert silhouettes(same, [np.arange(30) % 3]) == [0.0]  # all identical
    # collapse onto one point per label: tight separate clusters read as ~1
    prototypes = np.eye(4, dtype=np.float32)[labels]
    assert silhouettes(prototypes, [labels])[0] == pytest.approx(1.0, abs=1e-6)


def test_combination_labels_encode_bits():
    attrs = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 1], [1, 1, 1]], np.int8)
    np.testing.assert_array_equal(combination_labels(attrs), [0, 1, 6, 7])


def test_kmeans_purity_on_separated_blobs_and_degenerate_inputs():
    x, labels = _blobs(n_per=30, k=4, spread=0.1)
    assert kmeans_purity(x, labels, seed=0) == 1.0
    assert kmeans_purity(x, np.zeros(len(x)), seed=0) == 1.0
    # fewer distinct points than clusters: still a valid purity
    same = np.ones((12, 3), np.float32)
    purity = kmeans_purity(same, np.arange(12) % 3, seed=0)
    assert purity == pytest.approx(1 / 3)


def test_kmeans_is_seeded():
    x, _ = _blobs(n_per=25, k=5, spread=2.0)
    np.testing.assert_array_equal(kmeans(x, 5, seed=3), kmeans(x, 5, seed=3))
