"""The frozen directions: fitted from embeddings, labels and identity ids only, they find
the planted person and photo directions and leave the attribute directions alone."""

from __future__ import annotations

import numpy as np
import pytest

from fclf.model.frozen_directions import fit_frozen_directions

D, K, PEOPLE, PHOTOS = 40, 3, 300, 4


def planted_world(seed: int = 0):
    """Unit-ish points = person offset (in span P, rank 4) + photo nuisance (span N, rank 3)
    + attribute directions (span A, k = 3; attributes vary between and within people)."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(D, D)))[0]
    person_dirs, nuisance_dirs, attr_dirs = basis[:, :4], basis[:, 4:7], basis[:, 7:10]
    rest = basis[:, 10:]
    ids = np.repeat(np.arange(PEOPLE), PHOTOS)
    base = rng.integers(0, 2, size=(PEOPLE, K))
    labels = base[ids].copy()
    flip = rng.random(labels.shape) < 0.2
    labels[flip] = 1 - labels[flip]
    z = (3 * rng.normal(size=(PEOPLE, 4))[ids] @ person_dirs.T
         + 2 * rng.normal(size=(len(ids), 3)) @ nuisance_dirs.T
         + 1.5 * labels @ attr_dirs.T
         + 0.05 * rng.normal(size=(len(ids), D - 10)) @ rest.T)
    return z, labels.astype(np.int8), ids, person_dirs, nuisance_dirs, attr_dirs


def captured(span: np.ndarray, basis: np.ndarray) -> float:
    """Mean share of each column of `span` that lies in span(basis): 1 = all of it."""
    return float(((basis.T @ span) ** 2).sum() / span.shape[1])


def test_it_finds_the_planted_person_and_photo_directions_and_spares_the_attributes():
    z, labels, ids, person, nuisance, attrs = planted_world()
    basis = fit_frozen_directions(z, labels, ids, identity_rank=4, nuisance_rank=3)
    assert basis.shape == (D, 7) and basis.dtype == np.float32
    np.testing.assert_allclose(basis.T @ basis, np.eye(7), atol=1e-5)
    assert captured(person, basis) > 0.95
    assert captured(nuisance, basis) > 0.93
    # what is left is the tilt of the estimated attribute directions (person-to-person
    # differences are 2x the attribute effect here): small, and not growing with the ranks
    assert captured(attrs, basis) < 0.08
    only_people = fit_frozen_directions(z, labels, ids, identity_rank=4, nuisance_rank=0)
    assert captured(person, only_people) > 0.95 and captured(nuisance, only_people) < 0.05


def test_too_many_directions_still_spare_the_attributes():
    """Ranks beyond the planted ones take noise directions, never the attribute span."""
    z, labels, ids, *_, attrs = planted_world(1)
    small = fit_frozen_directions(z, labels, ids, identity_rank=4, nuisance_rank=3)
    basis = fit_frozen_directions(z, labels, ids, identity_rank=12, nuisance_rank=12)
    assert captured(attrs, basis) < captured(attrs, small) + 0.01 < 0.09


def test_rows_of_unknown_identity_are_ignored_and_zero_ranks_give_nothing():
    z, labels, ids, person, *_ = planted_world(2)
    unknown = ids.copy()
    unknown[::7] = -1
    noisy = z.copy()
    noisy[::7] += 100.0  # would dominate any principal direction if it were used
    basis = fit_frozen_directions(noisy, labels, unknown, identity_rank=4, nuisance_rank=0)
    assert captured(person, basis) > 0.95
    assert fit_frozen_directions(z, labels, ids, 0, 0).shape == (D, 0)


def test_it_refuses_what_it_cannot_estimate():
    z, labels, ids, *_ = planted_world(3)
    with pytest.raises(ValueError, match="known identities"):
        fit_frozen_directions(z[:40], labels[:40], ids[:40], identity_rank=8, nuisance_rank=0)
    constant = labels.copy()
    constant[:, 1] = 1
    with pytest.raises(ValueError, match=r"attribute column\(s\) \[1\]"):
        fit_frozen_directions(z, constant, ids, identity_rank=2, nuisance_rank=0)
    singles = np.arange(len(z))  # every photo its own person: no within-person variation
    with pytest.raises(ValueError, match="several photos"):
        fit_frozen_directions(z, labels, singles, identity_rank=2, nuisance_rank=3)
    # D = 40 with k = 3 attributes: 2k protected + 1 to move in leaves 33 to freeze
    assert fit_frozen_directions(z, labels, ids, identity_rank=30, nuisance_rank=3).shape == (D, 33)
    with pytest.raises(ValueError, match="at most 33 directions"):
        fit_frozen_directions(z, labels, ids, identity_rank=30, nuisance_rank=4)
