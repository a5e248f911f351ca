from functools import lru_cache

import numpy as np
import pytest
import torch

from fclf.attributes import DEFAULT_ATTRIBUTES
from fclf.data.synthetic import generate
from fclf.evaluate.baselines import (
    DirectionWalk,
    SphereWalk,
    calibrate_strength,
    conditional_directions,
    mean_directions,
    sphere_walk,
    walk_movement,
)
from fclf.evaluate.probes import AttributeProbes
from fclf.evaluate.targets import sample_targets


@lru_cache(maxsize=1)
def _splits():
    ids = {"train": 150, "val": 40, "test": 60}
    return generate(DEFAULT_ATTRIBUTES, ids, images_per_identity=5, dim=64, seed=0)


@lru_cache(maxsize=1)
def _probes():
    return AttributeProbes.from_split(_splits()["train"])


def _generator_directions(dim=64, seed=0, k=5):
    """The synthetic generator's attribute axes (columns 1..k of its random basis)."""
    basis, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    return basis[:, 1 : 1 + k].T


def test_mean_directions_are_unit_and_align_with_the_generator():
    train = _splits()["train"]
    dirs = mean_directions(train.embeddings, train.attributes)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1.0)
    cos = np.abs(np.sum(dirs * _generator_directions(), axis=1))
    # Male's class means also differ along Young/Mustache (CelebA-like dependencies)
    assert (cos > 0.5).all(), cos


def test_conditional_directions_are_orthogonal_to_the_other_normals():
    normals = _probes().weights
    cond = conditional_directions(normals)
    np.testing.assert_allclose(np.linalg.norm(cond, axis=1), 1.0)
    unit = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    dots = cond @ unit.T
    off = dots[~np.eye(len(dots), dtype=bool)]
    assert np.abs(off).max() < 1e-8
    assert (np.diag(dots) > 0).all()


def test_sphere_walk_matches_the_stepwise_definition():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((30, 8))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    u = 0.7 * rng.standard_normal((30, 8))
    x, frames = z.copy(), [z]
    for _ in range(6):  # x <- normalise(x + h (u - <u,x> x)), h = 0.9 / 6
        x = x + 0.15 * (u - (u * x).sum(axis=1, keepdims=True) * x)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        frames.append(x)
    got = sphere_walk(z.astype(np.float32), torch.as_tensor(u, dtype=torch.float32), 0.9, 6)
    np.testing.assert_allclose(got, np.stack(frames), atol=2e-6)
    walk = SphereWalk.of(z, u)
    moved = np.linalg.norm(got[-1] - got[0], axis=1).mean()
    assert walk.movement(0.9, 6) == pytest.approx(moved, abs=1e-6)
    np.testing.assert_allclose(walk.end(0.9, 6), got[-1], atol=1e-6)
    steps = np.linalg.norm(np.diff(got, axis=0), axis=2)
    np.testing.assert_allclose(walk.step_lengths(0.9, 6), steps, atol=1e-6)


def test_walk_contract_and_that_unrequested_points_stay():
    test = _splits()["test"]
    z = test.embeddings
    reading = _probes().predict(z)
    targets = sample_targets(reading, "single", seed=0)
    targets[:10] = reading[:10]  # nothing to change for the first 10
    walk = DirectionWalk(mean_directions(z, test.attributes), _probes().predict, 0.5, 4)
    traj = walk(z, targets)
    assert traj.shape == (5, *z.shape) and traj.dtype == np.float32
    np.testing.assert_array_equal(traj[0], z)
    np.testing.assert_allclose(np.linalg.norm(traj, axis=2), 1.0, atol=1e-5)
    np.testing.assert_allclose(traj[-1, :10], z[:10], atol=1e-6)
    assert np.linalg.norm(traj[-1, 10:] - z[10:], axis=1).min() > 0.1
    end, steps = walk.end_and_steps(z, targets)
    np.testing.assert_allclose(end, traj[-1], atol=1e-6)
    np.testing.assert_allclose(steps, np.linalg.norm(np.diff(traj, axis=0), axis=2), atol=1e-6)


@pytest.mark.parametrize("kind", ["mean", "conditional"])
def test_walks_flip_the_requested_attribute(kind):
    train, test = _splits()["train"], _splits()["test"]
    probes = _probes()
    dirs = (
        mean_directions(train.embeddings, train.attributes)
        if kind == "mean"
        else conditional_directions(probes.weights)
    )
    before = probes.predict(test.embeddings)
    targets = sample_targets(before, "single", seed=1)
    end = DirectionWalk(dirs, probes.predict, 0.8, 10)(test.embeddings, targets)[-1]
    flipped = targets != before
    assert (probes.predict(end)[flipped] == targets[flipped]).mean() > 0.9


def test_calibration_reaches_the_target_movement():
    train, val = _splits()["train"], _splits()["val"]
    probes = _probes()
    walk = DirectionWalk(
        mean_directions(train.embeddings, train.attributes), probes.predict, 0.0, 10
    )
    targets = sample_targets(val.attributes, "multi", seed=0)
    movement_at = walk_movement(walk, val.embeddings, targets)
    found = calibrate_strength(movement_at, 0.3)
    assert found.reached
    assert found.movement == pytest.approx(0.3, rel=1e-3)
    walk.strength = found.strength
    end = walk(val.embeddings, targets)[-1]
    assert np.linalg.norm(end - val.embeddings, axis=1).mean() == pytest.approx(0.3, rel=1e-3)


def test_calibration_reports_an_unreachable_target():
    found = calibrate_strength(lambda s: min(s, 2.0) / 10, 0.5, max_strength=100)
    assert not found.reached and found.movement == pytest.approx(0.2)
    # a walk that swings past its pole moves less at huge strengths: keep the farthest
    found = calibrate_strength(lambda s: s / 10 if s <= 4 else 0.1, 0.9, max_strength=100)
    assert not found.reached and found.strength == 4.0 and found.movement == pytest.approx(0.4)
    assert calibrate_strength(lambda s: s, 0.0).strength == 0.0
