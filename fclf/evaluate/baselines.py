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


@dataclass
class SphereWalk:
    """The walk x <- normalise(x + h (u - <u, x> x)), h = strength / num_steps, from x_0.

    It never leaves span{x_0, u}: x_t = A_t x_0 + B_t u with two scalars per
    point that follow a recurrence on <x_0, x_0>, <x_0, u>, <u, u>. So frames
    cost one fused pass each, and end points, step lengths and movement cost
    O(N) per strength (cheap calibration, no trajectories needed to score).
    """

    start: torch.Tensor  # (N, d) float32
    direction: torch.Tensor  # (N, d) float32
    xx: torch.Tensor  # (N,) float64 inner products
    xu: torch.Tensor
    uu: torch.Tensor

    @classmethod
    def of(cls, start: np.ndarray, direction: np.ndarray | torch.Tensor) -> SphereWalk:
        x0 = torch.from_numpy(np.ascontiguousarray(start, np.float32))
        u = torch.as_tensor(direction, dtype=torch.float32)
        xu = torch.einsum("nd,nd->n", x0, u).double()
        xx = torch.linalg.vector_norm(x0, dim=1).double() ** 2
        uu = torch.linalg.vector_norm(u, dim=1).double() ** 2
        return cls(x0, u, xx, xu, uu)

    def coefficients(
        self, strength: float, num_steps: int
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """[A_0..A_T], [B_0..B_T] (float64, (N,) each)."""
        a, b = torch.ones_like(self.xx), torch.zeros_like(self.xx)
        coef_a, coef_b = [a], [b]
        h = strength / num_steps
        for _ in range(num_steps):
            shrink = 1 - h * (a * self.xu + b * self.uu)  # 1 - h <u, x_t>
            a, b = shrink * a, shrink * b + h
            norm = self._length(a, b).clamp_min(1e-12)
            a, b = a / norm, b / norm
            coef_a.append(a)
            coef_b.append(b)
        return coef_a, coef_b

    def _length(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """|a x_0 + b u| per point."""
        sq = a * a * self.xx + 2 * a * b * self.xu + b * b * self.uu
        return torch.sqrt(sq.clamp_min(0))

    def frames(self, strength: float, num_steps: int) -> np.ndarray:
        """(num_steps+1, N, d) float32; frames[0] is the start."""
        coef_a, coef_b = self.coefficients(strength, num_steps)
        frames = np.empty((num_steps + 1, *self.start.shape), np.float32)
        out = torch.from_numpy(frames)
        out[0] = self.start
        for t in range(1, num_steps + 1):
            self._combine(coef_a[t], coef_b[t], out[t])
        return frames

    def end(self, strength: float, num_steps: int) -> np.ndarray:
        coef_a, coef_b = self.coefficients(strength, num_steps)
        return self._combine(coef_a[-1], coef_b[-1], torch.empty_like(self.start)).numpy()

    def _combine(self, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        torch.mul(self.start, a.float()[:, None], out=out)
        return out.addcmul_(self.direction, b.float()[:, None])

    def step_lengths(self, strength: float, num_steps: int) -> np.ndarray:
        """(num_steps, N): |x_{t+1} - x_t|."""
        coef_a, coef_b = self.coefficients(strength, num_steps)
        return torch.stack(
            [
                self._length(coef_a[t + 1] - coef_a[t], coef_b[t + 1] - coef_b[t])
                for t in range(num_steps)
            ]
        ).numpy()

    def movement(self, strength: float, num_steps: int) -> float:
        """Mean |x_T - x_0|."""
        coef_a, coef_b = self.coefficients(strength, num_steps)
        return float(self._length(coef_a[-1] - 1, coef_b[-1]).mean())


def sphere_walk(
    start: np.ndarray, direction: np.ndarray | torch.Tensor, strength: float, num_steps: int
) -> np.ndarray:
    """(num_steps+1, N, d) frames of `SphereWalk` from `start` along `direction` (N, d)."""
    return SphereWalk.of(start, direction).frames(strength, num_steps)


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
        signs = (np.where(targets == 1, 1.0, -1.0) * change).astype(np.float32)
        return torch.from_numpy(signs @ np.asarray(self.directions, np.float32))

    def plan(self, z: np.ndarray, targets: np.ndarray) -> SphereWalk:
        return SphereWalk.of(z, self.signed_direction(z, targets))

    def __call__(self, z: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return self.plan(z, targets).frames(self.strength, self.num_steps)

    def end_and_steps(self, z: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(final points, (num_steps, N) step lengths): __call__'s result without the frames."""
        walk = self.plan(z, targets)
        return (
            walk.end(self.strength, self.num_steps),
            walk.step_lengths(self.strength, self.num_steps),
        )


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
    farthest = max((lo, f_lo), (hi, f_hi), key=lambda pair: pair[1])
    while f_hi < 0 and hi < max_strength:
        lo, f_lo = hi, f_hi
        hi *= 2
        f_hi = movement_at(hi) - target
        farthest = max(farthest, (hi, f_hi), key=lambda pair: pair[1])
    if f_hi < 0:  # unreachable: the strength that moved points the farthest
        return Calibration(farthest[0], farthest[1] + target, target, False)
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
    plan = walk.plan(z, targets)  # the readings and directions do not depend on strength

    def movement_at(strength: float) -> float:
        return plan.movement(strength, walk.num_steps)

    return movement_at
