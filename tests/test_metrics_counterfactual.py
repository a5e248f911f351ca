import numpy as np
import pytest

from fclf.evaluate.metrics import (
    counterfactual_cosine,
    counterfactual_cosine_per_point,
    counterfactual_error,
    counterfactual_error_per_point,
    counterfactual_relative_error,
    counterfactual_relative_error_per_point,
    displacement_cosine,
    displacement_cosine_per_point,
)


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _setup(n=50, d=16, seed=0):
    rng = np.random.default_rng(seed)
    sources = _unit(rng.standard_normal((n, d)) + 3.0)  # a cone around (1, ..., 1)
    cfs = _unit(sources + 0.3 * rng.standard_normal((n, d)))
    return sources, cfs, sources.astype(np.float64).mean(axis=0)


def test_exact_edit_scores_perfectly():
    sources, cfs, center = _setup()
    assert counterfactual_cosine(cfs, cfs, center) == pytest.approx(1.0, abs=1e-12)
    assert counterfactual_error(cfs, cfs) == 0.0
    assert counterfactual_relative_error(sources, cfs, cfs) == 0.0
    assert displacement_cosine(sources, cfs, cfs) == pytest.approx(1.0, abs=1e-12)


def test_no_op_is_as_wrong_as_not_editing():
    sources, cfs, _ = _setup()
    assert counterfactual_relative_error(sources, sources, cfs) == pytest.approx(1.0)
    np.testing.assert_array_equal(displacement_cosine_per_point(sources, sources, cfs), 0.0)
    assert counterfactual_error(sources, cfs) == pytest.approx(
        np.linalg.norm(sources.astype(np.float64) - cfs, axis=1).mean()
    )


def test_hand_computed_case():
    center = np.array([1.0, 0.0, 0.0])
    sources = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]], np.float32)
    cfs = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]], np.float32)
    edited = np.array([[1.0, 2.0, 0.0], [1.0, 0.0, 0.0]], np.float32)
    # centred: (0,2,0) vs (0,1,0) -> 1; (0,0,0) vs (0,1,1) -> edit on the center -> 0
    np.testing.assert_allclose(counterfactual_cosine_per_point(edited, cfs, center), [1.0, 0.0])
    np.testing.assert_allclose(counterfactual_error_per_point(edited, cfs), [1.0, np.sqrt(2)])
    errors, needed = counterfactual_relative_error_per_point(sources, edited, cfs)
    np.testing.assert_allclose(needed, [1.0, 1.0])
    assert counterfactual_relative_error(sources, edited, cfs) == pytest.approx(
        (1 + np.sqrt(2)) / 2
    )
    # moves (0,2,0) vs needed (0,1,0): 1; (0,-1,0) vs (0,0,1): 0
    np.testing.assert_allclose(displacement_cosine_per_point(sources, edited, cfs), [1.0, 0.0])


def test_scalars_are_means_of_the_per_point_values():
    sources, cfs, center = _setup(n=30, seed=1)
    edited = _unit(sources + 0.2 * np.random.default_rng(2).standard_normal(sources.shape))
    assert counterfactual_cosine(edited, cfs, center) == pytest.approx(
        counterfactual_cosine_per_point(edited, cfs, center).mean(), abs=0
    )
    assert counterfactual_error(edited, cfs) == counterfactual_error_per_point(edited, cfs).mean()
    assert displacement_cosine(sources, edited, cfs) == pytest.approx(
        displacement_cosine_per_point(sources, edited, cfs).mean(), abs=0
    )
    errors, needed = counterfactual_relative_error_per_point(sources, edited, cfs)
    assert counterfactual_relative_error(sources, edited, cfs) == errors.sum() / needed.sum()


def test_centering_matters_in_a_narrow_cone():
    # two edits on opposite sides of the counterfactual around the center: raw cosine ~1
    center = np.array([1.0, 0.0], np.float32)
    cfs = np.array([[1.0, 0.1]], np.float32)
    edited = np.array([[1.0, -0.1]], np.float32)
    assert counterfactual_cosine(edited, cfs, center) == pytest.approx(-1.0)
    assert counterfactual_cosine(edited, cfs, np.zeros(2)) > 0.98


def test_float_noise_displacement_counts_as_no_move():
    sources, cfs, _ = _setup(n=10)
    nudged = sources + np.float32(1e-9)  # below ZERO_TOL: no direction
    np.testing.assert_array_equal(displacement_cosine_per_point(sources, nudged, cfs), 0.0)
    # and a counterfactual equal to its source scores 0, not nan
    assert displacement_cosine(sources, cfs, sources) == 0.0
    assert counterfactual_relative_error(sources, cfs, sources) is None


def test_long_inputs_are_chunked_consistently():
    sources, cfs, center = _setup(n=9000, d=4, seed=3)
    edited = _unit(sources + 0.1)
    per_point = counterfactual_cosine_per_point(edited, cfs, center)
    a, b = edited.astype(np.float64) - center, cfs.astype(np.float64) - center
    expected = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    np.testing.assert_allclose(per_point, expected, atol=1e-12)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        counterfactual_error(np.zeros((3, 2)), np.zeros((4, 2)))
