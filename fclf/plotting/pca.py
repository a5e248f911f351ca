"""The 2-D PCA plane of the real embeddings, with a fixed sign so reruns draw the same picture."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Plane:
    mean: np.ndarray  # (d,)
    components: np.ndarray  # (2, d), orthonormal rows
    explained: np.ndarray  # (2,) fraction of the total variance along each component

    def project(self, x: np.ndarray) -> np.ndarray:
        """(..., d) -> (..., 2) coordinates in the plane."""
        return (np.asarray(x, np.float64) - self.mean) @ self.components.T

    def axis_labels(self) -> tuple[str, str]:
        return tuple(  # type: ignore[return-value]
            f"PC{i + 1} ({100 * e:.1f}% of real variance)" for i, e in enumerate(self.explained)
        )


def fit_plane(x: np.ndarray) -> Plane:
    """Top-2 principal axes of `x` (N, d). Each axis's largest-|loading| entry is positive."""
    x64 = np.asarray(x, np.float64)
    if x64.ndim != 2 or len(x64) < 2:
        raise ValueError(f"need an (N >= 2, d) array to fit a PCA plane, got shape {x64.shape}")
    mean = x64.mean(axis=0)
    centred = x64 - mean
    cov = centred.T @ centred / (len(x64) - 1)
    values, vectors = np.linalg.eigh(cov)  # ascending
    order = np.argsort(values)[::-1][:2]
    components = vectors[:, order].T.copy()
    if len(components) < 2:  # d == 1: pad with a zero axis
        components = np.vstack([components, np.zeros_like(components)])
    for row in components:
        if row[np.argmax(np.abs(row))] < 0:
            row *= -1
    total = float(values.clip(min=0).sum())
    top = values[order].clip(min=0)
    explained = top / total if total > 0 else np.zeros(2)
    explained = np.pad(explained, (0, 2 - len(explained)))
    return Plane(mean, components, explained)
