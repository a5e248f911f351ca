"""Axis limits that follow the bulk of the points, and what to do with the rest.

Limits come from percentiles, not extremes: the real cloud's central box,
widened to hold the central box of each other point set, counting only the
points within `max_growth` times the real cloud's span of it. A collapsed run whose
edits all fly far away therefore cannot shrink the real cloud to a dot; its
points are drawn on the border (as crosses) and counted in the panel instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes

Limits = np.ndarray  # (2, 2): [[x_low, x_high], [y_low, y_high]]


def _box(xy: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray] | None:
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    xy = xy[np.isfinite(xy).all(axis=1)]
    if not len(xy):
        return None
    low, high = np.percentile(xy, [q, 100 - q], axis=0)
    return low, high


def robust_limits(reference: np.ndarray, others: Sequence[np.ndarray] = (), q: float = 0.5,
                  pad: float = 0.08, max_growth: float = 0.5) -> Limits:
    """Limits holding the [q, 100 - q] percentile box of `reference` and of each of `others`,
    padded by `pad`. Only the points of `others` within `max_growth` x the reference span of
    the reference box count, so far-away points (a run that flew off) never widen the view."""
    box = _box(reference, q)
    if box is None:
        return np.array([[-1.0, 1.0], [-1.0, 1.0]])
    low, high = box
    span = np.where(high > low, high - low, np.maximum(np.abs(high), 1.0))
    floor, ceiling = low - max_growth * span, high + max_growth * span
    for xy in others:
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        near = xy[((xy >= floor) & (xy <= ceiling)).all(axis=1)]
        other = _box(near, q)
        if other is not None:
            low, high = np.minimum(low, other[0]), np.maximum(high, other[1])
    span = np.where(high > low, high - low, np.maximum(np.abs(high), 1.0))
    return np.stack([low - pad * span, high + pad * span], axis=1)


def inside(xy: np.ndarray, limits: Limits) -> np.ndarray:
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    return ((xy >= limits[:, 0]) & (xy <= limits[:, 1])).all(axis=1)


def clip(xy: np.ndarray, limits: Limits) -> np.ndarray:
    """Points moved onto the nearest border of the view (NaN stays NaN)."""
    return np.clip(np.asarray(xy, np.float64), limits[:, 0], limits[:, 1])


def apply_limits(ax: Axes, limits: Limits) -> None:
    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])


def span_of(limits: Limits) -> float:
    return float((limits[:, 1] - limits[:, 0]).max())
