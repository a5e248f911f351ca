"""Directions an attribute edit must not move along, estimated on train without the truth.

An edit should change the requested attributes and keep the person and the photo. Flow
matching regresses the field onto displacements toward *other* real faces of the target
code (other people, other photos), so what it learns carries a residue of person-to-person
and photo-to-photo differences that no attribute explains. `fit_frozen_directions` finds
the largest such directions from train embeddings, labels and identity ids only:

- *identity* directions: the top `identity_rank` principal directions of the person means
  (one mean embedding per identity), after regressing out the person-mean labels and their
  pairwise products and removing the *protected* span, so that no attribute direction is
  frozen: the k class-mean differences mean(z | a_j = 1) - mean(z | a_j = 0) and the k
  within-person attribute directions (photo minus person mean regressed on the label
  deviations: free of the person-to-person differences that tilt class means);
- *nuisance* directions: the top `nuisance_rank` principal directions of the within-person
  deviations (each photo minus its person's mean), after regressing out the within-person
  label deviations and removing the protected span (what varies between photos of
  one person besides the attributes).

The field removes the span of these directions from its output (`VectorField`'s
`frozen_directions`), so every velocity, and every edit, is orthogonal to them. Both
ranks are chosen on val (docs/model.md, "Frozen directions").
"""

from __future__ import annotations

import numpy as np


def _residual(x: np.ndarray, features: np.ndarray) -> np.ndarray:
    """x minus its least-squares fit on [1, features]."""
    design = np.c_[np.ones(len(features)), features]
    return x - design @ np.linalg.lstsq(design, x, rcond=None)[0]


def _top_directions(rows: np.ndarray, rank: int) -> np.ndarray:
    """(d, rank) the leading right singular vectors of `rows` (N, d)."""
    if rank == 0:
        return np.zeros((rows.shape[1], 0))
    values, vectors = np.linalg.eigh(rows.T @ rows)  # (d, d): cheaper than an SVD of rows
    return vectors[:, np.argsort(values)[::-1][:rank]]


def _protected_span(class_means: np.ndarray, within: np.ndarray) -> np.ndarray:
    """(d, k) orthonormal: the k-dim span the two (d, k) estimates of the attribute directions
    share (top left singular vectors of their unit columns side by side). Orthonormalising
    all 2k columns instead would add k unit vectors of their *differences*: estimation noise,
    mostly person-to-person directions, which would then never be frozen."""
    columns = np.c_[class_means, within]
    columns = columns / np.maximum(np.linalg.norm(columns, axis=0), 1e-12)
    return np.linalg.svd(columns, full_matrices=False)[0][:, :class_means.shape[1]]


def fit_frozen_directions(
    embeddings: np.ndarray, labels: np.ndarray, identities: np.ndarray,
    identity_rank: int, nuisance_rank: int,
) -> np.ndarray:
    """(d, identity_rank + nuisance_rank) orthonormal columns (float32); see the module doc.

    Rows with an unknown identity (< 0) are left out. ValueError when there are too few
    people (or photos) for the ranks asked for.
    """
    z = np.asarray(embeddings, np.float64)
    if identity_rank + nuisance_rank == 0:
        return np.zeros((z.shape[1], 0), np.float32)
    y = np.asarray(labels, np.float64)
    ids = np.asarray(identities)
    known = ids >= 0
    z, y, ids = z[known], y[known], ids[known]
    k = y.shape[1]
    constant = [j for j in range(k) if y[:, j].min() == y[:, j].max()]
    if constant:
        raise ValueError(f"attribute column(s) {constant} take one value in the training data: "
                         "their class-mean difference (protected from freezing) is undefined")
    room = z.shape[1] - 2 * k - 1  # the protected span takes up to 2k dimensions
    if identity_rank + nuisance_rank > room:
        raise ValueError(f"ranks {identity_rank} + {nuisance_rank} do not fit {z.shape[1]}-dim "
                         f"embeddings with {k} attributes: at most {max(room, 0)} directions "
                         "can be frozen (2 per attribute are protected, 1 is left to move in)")
    _, person, counts = np.unique(ids, return_inverse=True, return_counts=True)
    needed = identity_rank + k * (k + 1) // 2 + 2
    if len(counts) < needed:
        raise ValueError(f"{len(counts)} known identities in the training data: at least "
                         f"{needed} are needed for identity rank {identity_rank}")
    if nuisance_rank and int((counts - 1).sum()) < nuisance_rank + k + 1:
        raise ValueError("too few identities with several photos for nuisance rank "
                         f"{nuisance_rank}")
    means = np.zeros((len(counts), z.shape[1]))
    np.add.at(means, person, z)
    means /= counts[:, None]
    label_means = np.zeros((len(counts), k))
    np.add.at(label_means, person, y)
    label_means /= counts[:, None]
    pairs = [label_means[:, a] * label_means[:, b] for a in range(k) for b in range(a + 1, k)]
    features = np.c_[label_means, np.stack(pairs, 1)] if pairs else label_means
    between = _residual(means, features)
    deviations, label_deviations = z - means[person], y - label_means[person]
    protected = _protected_span(
        np.stack([z[y[:, j] == 1].mean(0) - z[y[:, j] == 0].mean(0) for j in range(k)], 1),
        np.linalg.lstsq(label_deviations, deviations, rcond=None)[0].T)
    between -= (between @ protected) @ protected.T
    within = _residual(deviations, label_deviations)
    within -= (within @ protected) @ protected.T
    basis = np.c_[_top_directions(between, identity_rank), _top_directions(within, nuisance_rank)]
    return np.linalg.qr(basis)[0].astype(np.float32)
