import numpy as np
import pytest

from fclf.evaluate.metrics import identity_cosine, movement, step_lengths, step_statistics


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_identity_map_moves_nothing():
    z = _unit(np.random.default_rng(0).standard_normal((20, 8)))
    traj = np.stack([z] * 4)
    assert movement(z, z) == 0.0
    assert identity_cosine(z, z, z.mean(axis=0)) == pytest.approx(1.0, abs=1e-6)
    assert step_statistics(step_lengths(traj)) == (0.0, 0.0)


def test_movement_between_orthogonal_units():
    eye = np.eye(4, dtype=np.float32)
    assert movement(eye[:2], eye[2:]) == pytest.approx(np.sqrt(2), abs=1e-6)


def test_identity_cosine_is_measured_around_the_center():
    center = np.array([1.0, 0.0, 0.0], np.float32)
    a = np.array([[1.0, 0.2, 0.0]], np.float32)
    b = np.array([[1.0, -0.2, 0.0]], np.float32)  # raw cosine ~0.92, centred: opposite
    assert identity_cosine(a, b, center) == pytest.approx(-1.0, abs=1e-6)
    assert identity_cosine(a, b, np.zeros(3)) == pytest.approx(0.96 / 1.04, abs=1e-6)


def test_step_statistics_of_uneven_steps():
    # one point walking 0 -> 1 -> 3 along an axis: steps 1 and 2
    traj = np.zeros((3, 1, 2), np.float32)
    traj[1, 0, 0], traj[2, 0, 0] = 1.0, 3.0
    np.testing.assert_array_equal(step_lengths(traj), [[1.0], [2.0]])
    mean, std = step_statistics(step_lengths(traj))
    assert mean == pytest.approx(1.5)
    assert std == pytest.approx(0.5)
