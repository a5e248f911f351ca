"""The editors under evaluation, behind one interface.

Every method answers two questions for the same (sources, targets):

- `end(z, targets)`: its edit at its operating point, and the (T, N) step
  lengths along the way (for step statistics);
- `frames(z, targets, fractions)`: its edit at relative strengths s (s = 1 is
  the operating point, s = 2 twice as far), for trade-off curves. Flows read s
  as integration time, walks as walk strength, the oracle as the fraction of the
  geodesic from the source to the true counterfactual (s > 1 overshoots it).

Methods are told only (z, targets), except the oracle, which knows the truth
and exists as the reference row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fclf.evaluate.baselines import DirectionWalk
from fclf.evaluate.metrics import step_lengths

EditFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(z (N, d) float32 unit sources, targets (N, k) int8 0/1) -> (num_steps+1, N, d) float32,
with trajectories[0] == z."""


def run_edit(edit: EditFn, z: np.ndarray, targets: np.ndarray, num_steps: int) -> np.ndarray:
    """Call an edit function and check its contract; returns float32 trajectories."""
    traj = np.asarray(edit(z, targets), dtype=np.float32)
    expected = (num_steps + 1, *z.shape)
    if traj.shape != expected:
        raise ValueError(f"edit function returned shape {traj.shape}, expected {expected}")
    if float(np.abs(traj[0] - np.asarray(z, np.float32)).max(initial=0.0)) > 1e-5:
        raise ValueError("edit function's trajectories[0] must equal the sources z")
    if not np.isfinite(traj[-1]).all():
        raise ValueError("edit function returned non-finite points")
    return traj


CURVE_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


def curve_fractions(num_steps: int) -> list[float]:
    """Relative strengths (0..2, 1 = the operating point) at which curves are read.

    Flows can only stop at whole steps, so each fraction is rounded to one;
    duplicates (few steps) are dropped. 1 and 2 are always present.
    """
    steps = sorted({round(s * num_steps) for s in CURVE_FRACTIONS})
    return [t / num_steps for t in steps]


@dataclass
class FlowMethod:
    """A flow: `make_edit(n)` integrates n steps of the method's own step size."""

    make_edit: Callable[[int], EditFn]
    num_steps: int

    def end(self, z: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        traj = run_edit(self.make_edit(self.num_steps), z, targets, self.num_steps)
        return traj[-1], step_lengths(traj)

    def frames(self, z, targets, fractions: Sequence[float], rows=None) -> list[np.ndarray]:
        steps = [round(s * self.num_steps) for s in fractions]
        traj = run_edit(self.make_edit(max(steps)), z, targets, max(steps))
        return [traj[t] for t in steps]


@dataclass
class WalkMethod:
    """A straight-line walk on the sphere with a calibrated strength."""

    walk: DirectionWalk

    def end(self, z: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.walk.end_and_steps(z, targets)

    def frames(self, z, targets, fractions: Sequence[float], rows=None) -> list[np.ndarray]:
        plan = self.walk.plan(z, targets)
        return [plan.end(s * self.walk.strength, self.walk.num_steps) for s in fractions]


def slerp(a: np.ndarray, b: np.ndarray, fraction: float) -> np.ndarray:
    """Points at `fraction` of the great circle from unit rows a to unit rows b (any real s)."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = np.clip((a64 * b64).sum(1, keepdims=True), -1.0, 1.0)
    theta = np.arccos(cos)
    sin = np.sin(theta)
    small = sin < 1e-9
    safe = np.where(small, 1.0, sin)
    wa = np.where(small, 1.0 - fraction, np.sin((1 - fraction) * theta) / safe)
    wb = np.where(small, fraction, np.sin(fraction * theta) / safe)
    out = wa * a64 + wb * b64
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


@dataclass
class OracleMethod:
    """The true counterfactual, reached along the geodesic in `num_steps` equal steps.

    `truth(split_rows, targets)` gives exact counterfactuals of rows of the
    evaluated split; `index` maps protocol positions to those rows.
    """

    truth: Callable[[np.ndarray, np.ndarray], np.ndarray]
    index: np.ndarray
    num_steps: int

    def end(self, z: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        goal = np.asarray(self.truth(self.index, targets), np.float32)
        # equal steps along the geodesic: each is the chord of angle theta / num_steps
        cos = np.clip((np.asarray(z, np.float64) * goal).sum(1), -1.0, 1.0)
        chord = 2 * np.sin(np.arccos(cos) / (2 * self.num_steps))
        return goal, np.tile(chord, (self.num_steps, 1))

    def frames(self, z, targets, fractions: Sequence[float], rows=None) -> list[np.ndarray]:
        index = self.index if rows is None else self.index[rows]
        goal = self.truth(index, targets)
        return [slerp(z, goal, s) for s in fractions]


@dataclass
class FixedEdits:
    """Edits made elsewhere (`fclf score`): end points in protocol order, optionally with
    trajectories (their frames give the curve up to s = 1; there is no overshoot part)."""

    edited: np.ndarray  # (N, d)
    trajectories: np.ndarray | None = None  # (T+1, N, d)
    noop: np.ndarray | None = None  # (N, d) the editor's answer to target = source labels

    def end(self, z: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.trajectories is None:
            return self.edited, np.zeros((0, len(z)))
        return self.edited, step_lengths(self.trajectories)

    def frames(self, z, targets, fractions: Sequence[float], rows=None) -> list[np.ndarray]:
        if self.trajectories is None:
            return []
        t_max = len(self.trajectories) - 1
        picked = slice(None) if rows is None else rows
        return [self.trajectories[round(s * t_max), picked] for s in fractions if s <= 1.0]


def noop_points(method, z: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
    """The method's edit toward the attributes the points already have (None if unknown)."""
    if isinstance(method, FixedEdits):
        return method.noop
    return method.end(z, labels)[0]
