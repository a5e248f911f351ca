"""The truth-free realism measures against exact references and against the cheats they exist
for: noise (off the data) and overshoot (past nearly every real face)."""

from __future__ import annotations

import numpy as np
import pytest

from fclf.evaluate.editors import slerp
from fclf.evaluate.metrics.realism import (
    AttributeRange,
    Typicality,
    off_manifold_per_point,
    overshoot_per_point,
)


def test_energy_is_the_mahalanobis_form_of_the_fitted_gaussian():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, 6)) @ np.diag([3.0, 2.0, 1.0, 0.5, 0.2, 0.1])
    fit = Typicality.fit(x)
    cov = np.linalg.inv(fit.precision)
    # Ledoit-Wolf shrinks toward a multiple of the identity; with n >> d it barely does
    np.testing.assert_allclose(cov, np.cov(x.T, bias=True), atol=0.05)
    points = rng.standard_normal((5, 6))
    d = points - fit.mean
    np.testing.assert_allclose(fit.energy(points),
                               np.einsum("nd,de,ne->n", d, fit.precision, d))
    # a real point's expected energy is the dimension
    assert fit.energy(x).mean() == pytest.approx(6.0, rel=0.05)


def test_noise_leaves_the_data_and_a_move_inside_it_does_not():
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.standard_normal((64, 64)))[0]
    spread = np.r_[np.full(16, 1.0), np.full(48, 0.01)]  # faces use 16 of 64 directions
    real = (rng.standard_normal((3000, 64)) * spread) @ basis.T
    fit = Typicality.fit(real)
    sources = (rng.standard_normal((500, 64)) * spread) @ basis.T
    inside = sources + 0.5 * (rng.standard_normal((500, 64)) * (spread > 0.1)) @ basis.T
    noisy = sources + 0.5 * rng.standard_normal((500, 64)) / 8
    ratio = {name: np.divide(*(v.sum() for v in off_manifold_per_point(fit, sources, edited)))
             for name, edited in (("inside", inside), ("noisy", noisy))}
    assert ratio["inside"] < 1.5 < 5 < ratio["noisy"]


def test_percentiles_are_oriented_toward_the_target():
    logits = np.array([[-3.0], [-2.0], [-1.0], [1.0], [2.0], [3.0]])
    labels = np.array([[0], [0], [0], [1], [1], [1]])
    ranges = AttributeRange.of(logits, labels)
    edits = np.array([[2.5], [10.0], [0.0], [-2.5]])
    targets = np.array([[1], [1], [1], [0]])
    mask = np.ones((4, 1), bool)
    reach = ranges.percentile(edits, targets, mask)[:, 0]
    # toward 1: share of real positives at or below; toward 0: share of negatives at or above
    np.testing.assert_allclose(reach, [2 / 3, 1.0, 0.0, 2 / 3])
    over, scored, total = overshoot_per_point(reach[:, None], mask, 0.9)
    np.testing.assert_array_equal(over, [0, 1, 0, 0])
    np.testing.assert_array_equal(scored, [1, 1, 1, 1])
    assert total.sum() == pytest.approx(reach.sum())
    unmasked = ranges.percentile(edits, targets, np.zeros((4, 1), bool))
    assert np.isnan(unmasked).all()


def test_overshooting_the_truth_shows_and_the_truth_does_not():
    """A 1-D attribute: real faces at +-s with per-image ambiguity; the exact flip lands among
    the real faces of the other class, twice as far lands past nearly all of them."""
    rng = np.random.default_rng(2)
    n, d = 4000, 8
    axis = np.eye(d)[0]
    y = rng.integers(0, 2, n)
    base = rng.standard_normal((n, d)) * 0.05
    real = base + ((2 * y - 1) * 0.3 + rng.standard_normal(n) * 0.05)[:, None] * axis
    real /= np.linalg.norm(real + 1.0, axis=1, keepdims=True)  # any monotone read-out will do
    logits = real @ axis
    ranges = AttributeRange.of(logits[:, None], y[:, None])
    flip = (1 - y)[:, None]
    exact = base + ((2 * flip[:, 0] - 1) * 0.3 + rng.standard_normal(n) * 0.05)[:, None] * axis
    exact /= np.linalg.norm(exact + 1.0, axis=1, keepdims=True)
    twice = slerp(real, exact, 2.0)
    mask = np.ones((n, 1), bool)
    rate = {name: overshoot_per_point(ranges.percentile((p @ axis)[:, None], flip, mask),
                                      mask, 0.99)[0].mean()
            for name, p in (("exact", exact), ("twice", twice))}
    assert rate["exact"] < 0.03 < 0.3 < rate["twice"]
