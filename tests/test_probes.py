from functools import lru_cache

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fclf.attributes import DEFAULT_ATTRIBUTES
from fclf.data.synthetic import generate
from fclf.errors import DataError
from fclf.evaluate.probes import AttributeProbes


@lru_cache(maxsize=1)
def _splits():
    ids = {"train": 150, "val": 20, "test": 60}
    return generate(DEFAULT_ATTRIBUTES, ids, images_per_identity=5, dim=64, seed=0)


@lru_cache(maxsize=1)
def _probes():
    return AttributeProbes.from_split(_splits()["train"], c=1.0)


def test_probes_read_real_test_points_well():
    test = _splits()["test"]
    accuracy = (_probes().predict(test.embeddings) == test.attributes).mean(axis=0)
    assert (accuracy > 0.75).all(), accuracy


def test_raw_space_probe_equals_a_standardised_sklearn_pipeline():
    train, test = _splits()["train"], _splits()["test"]
    probes = _probes()
    for j in range(len(DEFAULT_ATTRIBUTES)):
        pipe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        pipe.fit(train.embeddings.astype(np.float64), train.attributes[:, j])
        expected = pipe.predict_proba(test.embeddings.astype(np.float64))[:, 1]
        np.testing.assert_allclose(probes.predict_proba(test.embeddings)[:, j], expected, atol=1e-6)
        np.testing.assert_array_equal(probes.predict(test.embeddings)[:, j], expected >= 0.5)


def test_probes_are_frozen():
    probes = _probes()
    assert not hasattr(probes, "fit")
    with pytest.raises(ValueError):
        probes.weights[0, 0] = 1.0
    with pytest.raises(ValueError):
        probes.bias[0] = 1.0
    before = probes.weights.copy()
    probes.predict(np.random.default_rng(0).standard_normal((10, 64)).astype(np.float32))
    np.testing.assert_array_equal(probes.weights, before)


def test_refitting_on_the_same_train_split_is_deterministic():
    again = AttributeProbes.from_split(_splits()["train"], c=1.0)
    np.testing.assert_array_equal(again.weights, _probes().weights)


def test_single_class_attribute_is_a_data_error():
    train = _splits()["train"]
    attrs = train.attributes.copy()
    attrs[:, 3] = 0
    with pytest.raises(DataError, match="Eyeglasses"):
        AttributeProbes(train.embeddings, attrs, train.attribute_names)


def test_class_weight_is_passed_to_the_logistic_regressions():
    train, test = _splits()["train"], _splits()["test"]
    balanced = AttributeProbes.from_split(train, c=1.0, class_weight="balanced")
    assert balanced.class_weight == "balanced" and _probes().class_weight is None
    for j in range(len(DEFAULT_ATTRIBUTES)):
        pipe = make_pipeline(
            StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced")
        )
        pipe.fit(train.embeddings.astype(np.float64), train.attributes[:, j])
        expected = pipe.predict_proba(test.embeddings.astype(np.float64))[:, 1]
        np.testing.assert_allclose(
            balanced.predict_proba(test.embeddings)[:, j], expected, atol=1e-6
        )
    # Balancing moves every rare attribute's threshold towards its positives.
    rare = [j for j in range(len(DEFAULT_ATTRIBUTES)) if train.attributes[:, j].mean() < 0.2]
    assert rare
    plain_rate = _probes().predict(test.embeddings)[:, rare].mean(axis=0)
    balanced_rate = balanced.predict(test.embeddings)[:, rare].mean(axis=0)
    assert (balanced_rate > plain_rate).all(), (balanced_rate, plain_rate)
