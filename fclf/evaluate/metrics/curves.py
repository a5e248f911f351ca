"""One-number summaries of trade-off curves (edit strength sweeps).

A method traced over strengths gives points (flip success, preservation):
stronger edits flip more and preserve less. Comparing methods at one strength
compares arbitrary operating points, so summarise the whole curve instead:

- pareto_area: area under the upper-left envelope over flip in [0, 1]; each
  flip level x scores the best preservation any point reaches with flip >= x
  (0 where none does). Dominated points add nothing, and a method that never
  flips much cannot make it up with preservation.
- value_at: the curve read at a given x (e.g. preservation at 80% flip), by
  linear interpolation where the curve first reaches it.
"""

from __future__ import annotations

import numpy as np


def _finite_pairs(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([np.nan if v is None else v for v in np.ravel(x)], np.float64)
    y = np.array([np.nan if v is None else v for v in np.ravel(y)], np.float64)
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
    return x, y


def pareto_area(flip: np.ndarray, preservation: np.ndarray) -> float:
    """Area under the step envelope max{preservation_s : flip_s >= x} for x in [0, 1].

    Points with a missing (None/nan) coordinate are ignored; flips are clipped
    to [0, 1]. 0.0 for no points; a single point (f, p) gives f * p.
    """
    f, p = _finite_pairs(flip, preservation)
    keep = np.isfinite(f) & np.isfinite(p)
    f, p = np.clip(f[keep], 0.0, 1.0), p[keep]
    if len(f) == 0:
        return 0.0
    order = np.argsort(-f, kind="stable")
    f, best = f[order], np.maximum.accumulate(p[order])
    widths = f - np.append(f[1:], 0.0)  # (f_(i+1), f_(i)] is scored by the best up to i
    return float((best * widths).sum())


def value_at(x: np.ndarray, y: np.ndarray, x0: float) -> float | None:
    """y at x0, interpolated linearly on the first segment (in curve order) that reaches x0.

    None if the curve never reaches x0 (or has no points).
    """
    xs, ys = _finite_pairs(x, y)
    for i in range(len(xs)):
        if xs[i] == x0:
            return float(ys[i])
        if i + 1 < len(xs) and (xs[i] - x0) * (xs[i + 1] - x0) < 0:
            t = (x0 - xs[i]) / (xs[i + 1] - xs[i])
            return float(ys[i] + t * (ys[i + 1] - ys[i]))
    return None
