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

`calibrate_strength` picks the strength whose mean movement matches FCLF's
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


def _walk_coefficients(
    start: torch.Tensor, u: torch.Tensor, strength: float, num_steps: int
) -> tuple[list[torch.Tensor], list[torch.Tensor], tuple[torch.Tensor, ...]]:
    """Per-point scalars (A_t, B_t) with x_t = A_t x_0 + B_t u, for t = 0..num_steps.

    The walk x <- normalise(x + h (u - <u, x> x)) never leaves span{x_0, u}, so
    it reduces to a recurrence on two scalars per point: no per-step (N, d)
    dot products or norms, and end points cost O(N) per strength.
    """
    xu = torch.einsum("nd,nd->n", start.double(), u.double())
    xx = torch.linalg.vector_norm(start.double(), dim=1) ** 2
    uu = torch.linalg.vector_norm(u.double(), dim=1) ** 2
    a, b = torch.ones_like(xx), torch.zeros_like(xx)
    coef_a, coef_b = [a], [b]
    h = strength / num_steps
    for _ in range(num_steps):
        along = a * xu + b * uu  # <u, x_t>
        a, b = (1 - h * along) * a, (1 - h * along) * b + h
        norm = torch.sqrt(a * a * xx + 2 * a * b * xu + b * b * uu).clamp_min(1e-12)
        a, b = a / norm, b / norm
        coef_a.append(a)
        coef_b.append(b)
    return coef_a, coef_b, (xx, xu, uu)


def sphere_walk(
    start: np.ndarray, direction: torch.Tensor, strength: float, num_steps: int
) -> np.ndarray:
    """Walk from `start` along the tangent part of `direction` (N, d), renormalising each step.

    x <- normalise(x + h (u - <u, x> x)) with h = strength / num_steps.
    Returns the (num_steps+1, N, d) float32 frames; frames[0] is `start`.
    """
    start = np.ascontiguousarray(start, np.float32)
    x0 = torch.from_numpy(start)
    u = torch.as_tensor(direction, dtype=torch.float32)
    coef_a, coef_b, _ = _walk_coefficients(x0, u, strength, num_steps)
    frames = np.empty((num_steps + 1, *start.shape), np.float32)
    frames[0] = start
    out = torch.from_numpy(frames)
    for t in range(1, num_steps + 1):
        torch.mul(x0, coef_a[t].float()[:, None], out=out[t])
        out[t].addcmul_(u, coef_b[t].float()[:, None])
    return frames


def walk_movement_at(
    start: np.ndarray, direction: torch.Tensor, strength: float, num_steps: int
) -> float:
    """Mean |x_T - x_0| of `sphere_walk`, from its scalar recurrence alone."""
    x0 = torch.as_tensor(np.asarray(start, np.float32))
    u = torch.as_tensor(direction, dtype=torch.float32)
    coef_a, coef_b, (xx, xu, uu) = _walk_coefficients(x0, u, strength, num_steps)
    a, b = coef_a[-1] - 1, coef_b[-1]
    dist2 = (a * a * xx + 2 * a * b * xu + b * b * uu).clamp_min(0)
    return float(torch.sqrt(dist2).mean())


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
    """Strength with movement_at(strength) ~= target (within rel_tol, relative).

    Brackets the target by doubling from 1, then closes the bracket by
    bisection-safeguarded false position (Illinois), which needs far fewer walks
    than plain bisection. movement_at should increase with strength over the
    bracket (true for these walks until they swing past a direction's pole).
    """
    if target <= 0:
        return Calibration(0.0, movement_at(0.0), target, True)
    lo, f_lo = 0.0, movement_at(0.0) - target
    hi, f_hi = 1.0, movement_at(1.0) - target
    while f_hi < 0 and hi < max_strength:
        lo, f_lo = hi, f_hi
        hi *= 2
        f_hi = movement_at(hi) - target
    if f_hi < 0:
        return Calibration(hi, f_hi + target, target, False)
    best, f_best = (hi, f_hi) if abs(f_hi) < abs(f_lo) else (lo, f_lo)
    side = 0
    for _ in range(max_iter):
        if abs(f_best) <= rel_tol * target:
            break
        s = (lo * f_hi - hi * f_lo) / (f_hi - f_lo) if f_hi != f_lo else 0.5 * (lo + hi)
        if not lo < s < hi:
            s = 0.5 * (lo + hi)
        f_s = movement_at(s) - target
        if abs(f_s) < abs(f_best):
            best, f_best = s, f_s
        if f_s < 0:
            lo, f_lo = s, f_s
            if side == -1:
                f_hi /= 2  # Illinois: stop the other end from sticking
            side = -1
        else:
            hi, f_hi = s, f_s
            if side == 1:
                f_lo /= 2
            side = 1
    return Calibration(best, f_best + target, target, True)


def walk_movement(walk: DirectionWalk, z: np.ndarray, targets: np.ndarray) -> Callable:
    """movement_at(strength) of `walk` on (z, targets), for `calibrate_strength`."""
    z = np.ascontiguousarray(z, np.float32)
    direction = walk.signed_direction(z, targets)  # independent of strength: read once

    def movement_at(strength: float) -> float:
        return walk_movement_at(z, direction, strength, walk.num_steps)

    return movement_at
