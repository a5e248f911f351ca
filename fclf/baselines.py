"""Linear-direction baselines with the same edit-function signature as FCLF.

Both walk on the unit sphere along a fixed direction per attribute:

- mean direction: the unit difference of the train class means;
- conditional direction (InterFaceGAN-style): the frozen probe's unit normal
  with the other attributes' normals projected out, so moving along one
  attribute does not move the probes' readings of the others.

An edit is told only (z, targets), like FCLF. Which attributes it must change
is decided by the frozen probes' reading of z: for each attribute whose
reading differs from the target, add +direction (target 1) or -direction
(target 0). Each of num_steps steps moves by strength / num_steps along the
tangent projection of that summed direction, then renormalises.

`calibrate_strength` picks the strength whose mean movement matches FCLF's,
so the comparison is made at equal movement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

Reader = Callable[[np.ndarray], np.ndarray]  # (N, d) points -> (N, k) int8 readings


def _unit(v: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(norms > 0, norms, 1.0)


def mean_directions(embeddings: np.ndarray, attributes: np.ndarray) -> np.ndarray:
    """(k, d) unit vectors mean(z | y_j = 1) - mean(z | y_j = 0), from train data."""
    x = np.asarray(embeddings, np.float64)
    y = np.asarray(attributes, bool)
    if (y.all(axis=0) | ~y.any(axis=0)).any():
        raise ValueError("every attribute needs both classes to define a mean direction")
    pos = (y.T.astype(np.float64) @ x) / y.sum(axis=0)[:, None]
    neg = ((~y).T.astype(np.float64) @ x) / (~y).sum(axis=0)[:, None]
    return _unit(pos - neg)


def conditional_directions(normals: np.ndarray) -> np.ndarray:
    """(k, d): each unit normal with the span of the other normals projected out."""
    w = _unit(np.asarray(normals, np.float64))
    out = np.empty_like(w)
    for j in range(len(w)):  # loop over attributes (k), not points
        others = np.delete(w, j, axis=0)
        if len(others):
            coef, *_ = np.linalg.lstsq(others.T, w[j], rcond=None)
            out[j] = w[j] - others.T @ coef
        else:
            out[j] = w[j]
    return _unit(out)


def sphere_walk(
    start: np.ndarray, direction: torch.Tensor, strength: float, num_steps: int, keep: bool = True
) -> np.ndarray:
    """Walk from `start` along the tangent part of `direction` (N, d), renormalising each step.

    Returns (num_steps+1, N, d) frames if keep, else the (N, d) end points.
    """
    start = np.ascontiguousarray(start, np.float32)
    x = torch.from_numpy(start.copy())
    step = strength / num_steps
    frames = [start] if keep else []
    for _ in range(num_steps):
        tangent = direction - (direction * x).sum(dim=1, keepdim=True) * x
        x = x + step * tangent
        x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
        if keep:
            frames.append(x.numpy())
    return np.stack(frames) if keep else x.numpy()


@dataclass
class DirectionWalk:
    """An edit function: (z (N,d), targets (N,k)) -> trajectories (num_steps+1, N, d)."""

    directions: np.ndarray  # (k, d) unit directions
    read: Reader  # reads the current attributes of the sources (the frozen probes)
    strength: float
    num_steps: int

    def signed_direction(self, z: np.ndarray, targets: np.ndarray) -> torch.Tensor:
        """(N, d): sum of +/- directions of the attributes whose reading differs from target."""
        targets = np.asarray(targets)
        change = targets != self.read(z)
        signs = np.where(targets == 1, 1.0, -1.0) * change
        summed = signs @ np.asarray(self.directions, np.float64)
        return torch.as_tensor(summed, dtype=torch.float32)

    def __call__(self, z: np.ndarray, targets: np.ndarray) -> np.ndarray:
        direction = self.signed_direction(z, targets)
        return sphere_walk(z, direction, self.strength, self.num_steps)


@dataclass(frozen=True)
class Calibration:
    strength: float
    movement: float  # mean movement reached at that strength
    target: float
    reached: bool  # False if even max_strength moves less than the target


def calibrate_strength(
    movement_at: Callable[[float], float],
    target: float,
    *,
    rel_tol: float = 1e-3,
    max_iter: int = 60,
    max_strength: float = 1e3,
) -> Calibration:
    """Bisection on strength so that movement_at(strength) ~= target (relative rel_tol).

    movement_at should increase with strength over the bracket (true for the
    walks here until they swing past the attribute direction's pole).
    """
    if target <= 0:
        return Calibration(0.0, movement_at(0.0), target, True)
    lo, hi = 0.0, 1.0
    m_hi = movement_at(hi)
    while m_hi < target and hi < max_strength:
        lo, hi = hi, hi * 2
        m_hi = movement_at(hi)
    if m_hi < target:
        return Calibration(hi, m_hi, target, False)
    best, best_m = hi, m_hi
    for _ in range(max_iter):
        if abs(best_m - target) <= rel_tol * target:
            break
        mid = 0.5 * (lo + hi)
        m = movement_at(mid)
        if abs(m - target) < abs(best_m - target):
            best, best_m = mid, m
        if m < target:
            lo = mid
        else:
            hi = mid
    return Calibration(best, best_m, target, True)


def walk_movement(walk: DirectionWalk, z: np.ndarray, targets: np.ndarray) -> Callable:
    """movement_at(strength) of `walk` on (z, targets), for `calibrate_strength`."""
    z = np.ascontiguousarray(z, np.float32)
    direction = walk.signed_direction(z, targets)  # independent of strength: read once

    def movement_at(strength: float) -> float:
        end = sphere_walk(z, direction, strength, walk.num_steps, keep=False)
        return float(np.linalg.norm(end - z, axis=1).astype(np.float64).mean())

    return movement_at
