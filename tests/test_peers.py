"""The peers: each one's geometry against an exact reference, the no-op, what it learns, and
its file round trip. Small worlds; the tuning test checks the rule picks what it should."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from fclf.attributes import DEFAULT_ATTRIBUTES
from fclf.data.synthetic import generate, generate_world
from fclf.evaluate.editors import EditBatch, exp_map, slerp
from fclf.evaluate.metrics import combination_labels, counterfactual_relative_error
from fclf.evaluate.peers.analogy import KnnAnalogy
from fclf.evaluate.peers.base import TrainData
from fclf.evaluate.peers.conditional_flow import ConditionalFlow
from fclf.evaluate.peers.lines import (
    CodeLine,
    ConditionalDirection,
    MeanDirection,
    conditional_normals,
)
from fclf.evaluate.peers.reference import Reference
from fclf.evaluate.peers.store import load_peers, save_peers
from fclf.evaluate.probes import AttributeProbes
from fclf.evaluate.request import sample_targets


@lru_cache(maxsize=1)
def linear_world():
    ids = {"train": 200, "val": 30, "test": 60}
    return generate(DEFAULT_ATTRIBUTES, ids, images_per_identity=6, dim=64, seed=0)


@lru_cache(maxsize=1)
def contextual_world():
    ids = {"train": 250, "val": 30, "test": 60}
    return generate_world(DEFAULT_ATTRIBUTES, ids, images_per_identity=8, dim=128, seed=1,
                          attribute_context=0.75, identity_groups=4, nuisance_rank=8)


@lru_cache(maxsize=1)
def linear_data() -> TrainData:
    return TrainData.of(linear_world()["train"])


def told_batch(split, seed=0, mode="single") -> EditBatch:
    targets = sample_targets(split.attributes, mode, seed)
    return EditBatch(split.embeddings, np.arange(len(split)), split.attributes.astype(np.int8),
                     targets)


def test_exp_map_walks_the_angle_it_is_told_and_a_zero_move_stays_exactly():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((50, 16)).astype(np.float32)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    d = 0.4 * rng.standard_normal((50, 16))  # angles below pi
    d[:5] = 0.0
    d[5:10] = z[5:10] * 3  # no tangent part either
    out = exp_map(z, d, 0.7)
    tangent = d - (d * z).sum(1, keepdims=True) * z
    angle = np.arccos(np.clip((out.astype(np.float64) * z).sum(1), -1, 1))
    np.testing.assert_allclose(angle[10:], 0.7 * np.linalg.norm(tangent[10:], axis=1), atol=1e-5)
    np.testing.assert_array_equal(out[:10], z[:10])
    # the walk is the great circle: halfway along it is slerp's midpoint
    np.testing.assert_allclose(exp_map(z, d, 0.35)[10:], slerp(z, out, 0.5)[10:], atol=1e-5)


def test_conditional_normals_are_orthogonal_to_the_other_normals():
    normals = AttributeProbes.fit_fast(linear_data().embeddings, linear_data().attributes,
                                       DEFAULT_ATTRIBUTES).weights
    cond = conditional_normals(normals)
    np.testing.assert_allclose(np.linalg.norm(cond, axis=1), 1.0)
    unit = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    dots = cond @ unit.T
    assert np.abs(dots[~np.eye(len(dots), dtype=bool)]).max() < 1e-8
    assert (np.diag(dots) > 0).all()


def test_mean_difference_is_the_class_mean_difference():
    data = linear_data()
    y, x = data.attributes.astype(bool), data.embeddings.astype(np.float64)
    expected = np.stack([x[y[:, j]].mean(0) - x[~y[:, j]].mean(0) for j in range(y.shape[1])])
    np.testing.assert_allclose(data.mean_differences, expected, atol=1e-10)


def test_code_line_is_the_code_mean_difference_and_rare_codes_shrink_to_the_mean_walk():
    data = linear_data()
    batch = told_batch(linear_world()["test"])
    codes = data.codes
    x = data.embeddings.astype(np.float64)
    line = CodeLine(data, shrinkage=0.0).displacement(batch)
    s, t = combination_labels(batch.source), combination_labels(batch.target)
    present = np.isin(s, codes) & np.isin(t, codes)
    i = np.flatnonzero(present)[0]
    np.testing.assert_allclose(line[i], x[codes == t[i]].mean(0) - x[codes == s[i]].mean(0),
                               atol=1e-10)
    huge = CodeLine(data, shrinkage=1e12).displacement(batch)
    np.testing.assert_allclose(huge, MeanDirection(data).displacement(batch), atol=1e-8)


def test_knn_analogy_with_every_face_as_neighbours_is_the_code_mean_difference():
    data = linear_data()
    batch = told_batch(linear_world()["test"])
    everyone = KnnAnalogy(data, k=len(data.embeddings)).displacement(batch)
    np.testing.assert_allclose(everyone, CodeLine(data, shrinkage=0.0).displacement(batch),
                               atol=1e-6)


@pytest.mark.parametrize("make", [
    lambda d: MeanDirection(d, 1.0), lambda d: ConditionalDirection(d, c=0.01, alpha=1.5),
    lambda d: CodeLine(d, 20.0, 1.0), lambda d: KnnAnalogy(d, 20, 1.5)])
def test_line_peers_flip_the_requested_attribute_and_leave_a_noop_exactly_alone(make):
    data, test = linear_data(), linear_world()["test"]
    peer = make(data)
    batch = told_batch(test, seed=1)
    edited, steps = peer.end(batch)
    asked = batch.target != batch.source
    read = data.reader.predict(edited)
    assert (read[asked] == batch.target[asked]).mean() > 0.85
    assert steps.shape == (peer.num_steps, len(test))
    np.testing.assert_array_equal(peer.end(batch.noop())[0], test.embeddings)


def test_the_conditional_flow_regenerates_what_it_inverts():
    """Two attributes that shift faces along their own axes: inverted with the source labels
    and regenerated with the target ones, a face moves to the target class."""
    rng = np.random.default_rng(0)
    n, d = 3000, 16
    y = rng.integers(0, 2, (n, 2)).astype(np.int8)
    x = np.ones((n, d)) + 0.05 * rng.standard_normal((n, d))
    x[:, 1:3] += 0.4 * (2 * y - 1)
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    names = ("A", "B")
    data = TrainData(x, y, AttributeProbes.fit_fast(x, y, names))
    flow = ConditionalFlow(data, rank=d, transforms=2, hidden=64, epochs=100).fit()
    targets = y.copy()
    targets[:, 0] = 1 - y[:, 0]
    batch = EditBatch(x, np.arange(n), y, targets)
    same = EditBatch(x, np.arange(n), y, y)
    assert np.abs(flow.displacement(same)).max() < 1e-4  # f(f^-1(z; s); s) = z
    read = data.reader.predict(flow.end(batch)[0])
    assert (read[:, 0] == targets[:, 0]).mean() > 0.9
    assert (read[:, 1] == y[:, 1]).mean() > 0.9


def test_the_reference_learns_from_true_pairs_what_no_line_can():
    splits, truth = contextual_world()
    data = TrainData.of(splits["train"])
    reference = Reference(data, hidden=128, epochs=40).fit(
        lambda rows, t: truth.counterfactual("train", rows, t))
    test = splits["test"]
    batch = told_batch(test)
    cf = truth.counterfactual("test", batch.rows, batch.target)
    errors = {name: counterfactual_relative_error(test.embeddings, peer.end(batch)[0], cf)
              for name, peer in (("reference", reference), ("line", CodeLine(data)))}
    assert errors["reference"] < 0.7 * errors["line"], errors
    np.testing.assert_array_equal(reference.end(batch.noop())[0], test.embeddings)


def test_peers_come_back_from_their_file_editing_exactly_as_before(tmp_path):
    splits, truth = contextual_world()
    data = TrainData.of(splits["train"])
    peers = {"mean_direction": MeanDirection(data, 0.75),
             "conditional_direction": ConditionalDirection(data, c=0.1, alpha=1.25),
             "code_line": CodeLine(data, 20.0, 0.9), "knn_analogy": KnnAnalogy(data, 10, 0.5),
             "conditional_flow": ConditionalFlow(data, 8, 1, 16, 1, alpha=1.1).fit()}
    reference = Reference(data, hidden=16, epochs=1).fit(
        lambda rows, t: truth.counterfactual("train", rows, t))
    save_peers(tmp_path / "peers.pt", peers, reference, data, {"note": "test"})
    loaded, loaded_reference, report = load_peers(tmp_path / "peers.pt", splits["train"])
    assert report == {"note": "test"} and set(loaded) == set(peers)
    batch = told_batch(splits["test"])
    for name, peer in peers.items():
        assert loaded[name].hyper() == peer.hyper()
        np.testing.assert_allclose(loaded[name].end(batch)[0], peer.end(batch)[0], atol=1e-6)
        np.testing.assert_array_equal(loaded[name].read(batch.z), peer.read(batch.z))
    np.testing.assert_allclose(loaded_reference.end(batch)[0], reference.end(batch)[0],
                               atol=1e-6)
