"""How close edits land to known true counterfactuals.

Where the answer is known (synthetic data: the same person with the attribute
changed), an edit can be scored directly against it instead of through probes.
Four readings, each per point (for the bootstrap) and as a scalar:

- counterfactual_cosine: cos(edit - c, cf - c) around the train mean c (faces
  sit in a narrow cone, so raw cosines between any two faces are high);
- counterfactual_error: |edit - cf|;
- counterfactual_relative_error: sum |edit - cf| / sum |cf - source|, 0 when
  exact and 1 when as wrong as not editing at all (a ratio of sums, so the
  per-point version returns both terms);
- displacement_cosine: cos(edit - source, cf - source), right direction
  regardless of step length; 0 for a no-op.

Rows are processed in float64 chunks: float32 differences of nearby unit
vectors lose digits, and chunks keep memory at a few MB.
"""

from __future__ import annotations

import numpy as np

CHUNK = 4096
ZERO_TOL = 1e-6  # a displacement shorter than this x |source| counts as no move


def _chunks(n: int):
    for start in range(0, n, CHUNK):
        yield slice(start, min(start + CHUNK, n))


def _f64(x: np.ndarray, rows: slice) -> np.ndarray:
    return np.asarray(x[rows], np.float64)


def _check(*arrays: np.ndarray) -> int:
    shapes = {np.shape(a) for a in arrays}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"expected (N, d) arrays of one shape, got {sorted(shapes)}")
    return len(arrays[0])


def _cosines(a: np.ndarray, b: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Row cosines; 0 where either row has zero norm or `valid` is False."""
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    ok = (na > 0) & (nb > 0) if valid is None else valid & (na > 0) & (nb > 0)
    dots = np.einsum("ij,ij->i", a, b)
    return np.where(ok, dots / np.where(ok, na * nb, 1.0), 0.0)


def counterfactual_cosine_per_point(
    edited: np.ndarray, counterfactuals: np.ndarray, center: np.ndarray
) -> np.ndarray:
    """(N,) float64 cos(edit - center, cf - center); 0 where either sits on the center."""
    n = _check(edited, counterfactuals)
    c = np.asarray(center, np.float64)
    out = np.empty(n)
    for rows in _chunks(n):
        out[rows] = _cosines(_f64(edited, rows) - c, _f64(counterfactuals, rows) - c)
    return out


def counterfactual_cosine(
    edited: np.ndarray, counterfactuals: np.ndarray, center: np.ndarray
) -> float:
    """Mean centred cosine between each edit and its true counterfactual."""
    return float(counterfactual_cosine_per_point(edited, counterfactuals, center).mean())


def counterfactual_error_per_point(edited: np.ndarray, counterfactuals: np.ndarray) -> np.ndarray:
    """(N,) float64 Euclidean distances |edit - cf|."""
    n = _check(edited, counterfactuals)
    out = np.empty(n)
    for rows in _chunks(n):
        out[rows] = np.linalg.norm(_f64(edited, rows) - _f64(counterfactuals, rows), axis=1)
    return out


def counterfactual_error(edited: np.ndarray, counterfactuals: np.ndarray) -> float:
    """Mean Euclidean distance between each edit and its true counterfactual."""
    return float(counterfactual_error_per_point(edited, counterfactuals).mean())


def counterfactual_relative_error_per_point(
    sources: np.ndarray, edited: np.ndarray, counterfactuals: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(|edit - cf|, |cf - source|), each (N,): the numerator and denominator terms.

    Kept apart because the statistic is a ratio of sums (a per-point ratio
    explodes where the counterfactual barely moves); feed both to the bootstrap.
    """
    n = _check(sources, edited, counterfactuals)
    errors, needed = np.empty(n), np.empty(n)
    for rows in _chunks(n):
        cf = _f64(counterfactuals, rows)
        errors[rows] = np.linalg.norm(_f64(edited, rows) - cf, axis=1)
        needed[rows] = np.linalg.norm(cf - _f64(sources, rows), axis=1)
    return errors, needed


def counterfactual_relative_error(
    sources: np.ndarray, edited: np.ndarray, counterfactuals: np.ndarray
) -> float | None:
    """sum |edit - cf| / sum |cf - source|: 0 exact, 1 as wrong as not editing.

    None when no counterfactual differs from its source (undefined).
    """
    errors, needed = counterfactual_relative_error_per_point(sources, edited, counterfactuals)
    total = needed.sum()
    return float(errors.sum() / total) if total > 0 else None


def displacement_cosine_per_point(
    sources: np.ndarray, edited: np.ndarray, counterfactuals: np.ndarray
) -> np.ndarray:
    """(N,) float64 cos(edit - source, cf - source).

    0 where either displacement is shorter than ZERO_TOL x |source|: a no-op
    (or a point that needs no change) has no direction, and scoring it 0 keeps
    float noise from reading as a random +-1.
    """
    n = _check(sources, edited, counterfactuals)
    out = np.empty(n)
    for rows in _chunks(n):
        src = _f64(sources, rows)
        moved, needed = _f64(edited, rows) - src, _f64(counterfactuals, rows) - src
        tol = ZERO_TOL * np.linalg.norm(src, axis=1)
        valid = (np.linalg.norm(moved, axis=1) > tol) & (np.linalg.norm(needed, axis=1) > tol)
        out[rows] = _cosines(moved, needed, valid)
    return out


def displacement_cosine(
    sources: np.ndarray, edited: np.ndarray, counterfactuals: np.ndarray
) -> float:
    """Mean cosine between the edit's move and the move the counterfactual needed."""
    return float(displacement_cosine_per_point(sources, edited, counterfactuals).mean())
