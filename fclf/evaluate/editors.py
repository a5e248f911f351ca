"""The editors under evaluation, behind one interface.

An editor answers, for an `EditBatch` (sources z, their rows in the evaluated
split, the source attributes it starts from and the target attributes):

- `end(batch)`: its edit at its operating point, and the (T, N) step lengths
  along the way (None when it has no steps of its own);
- `frames(batch, fractions)`: its edit at relative strengths s (s = 1 is the
  operating point, s = 2 twice as far), for trade-off curves.

and `read(z)`: its own reading of the sources' attributes (blind mode; see
`fclf.evaluate.request`). What `source` holds is the protocol's business: the
labels in told mode, the editor's own reading in blind mode.

Three shapes of editor:

- `FlowEditor` (FCLF): integrates its field for s·T steps (s read as time);
- `PointEditor`: any editor that maps a source to one end point (every peer,
  the supervised reference, the oracle); frames follow the great circle from
  the source through the end point (s > 1 continues past it), steps are equal
  arcs of it;
- `FixedEdits`: end points made elsewhere (`fclf score`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fclf.evaluate.metrics import step_lengths

EditFn = Callable[..., np.ndarray]
"""(z (N, d) float32 unit sources, targets (N, k) 0/1, sources= (N, k) 0/1) ->
(num_steps+1, N, d) float32 trajectories, trajectories[0] == z."""
Reader = Callable[[np.ndarray], np.ndarray]  # (N, d) points -> (N, k) int8 readings

CURVE_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


@dataclass(frozen=True)
class EditBatch:
    """What an editor is given: sources, their split rows, source and target attributes."""

    z: np.ndarray  # (N, d) float32 unit sources
    rows: np.ndarray  # (N,) rows of the evaluated split (the truth is indexed by them)
    source: np.ndarray  # (N, k) int8 0/1: the labels (told) or the editor's reading (blind)
    target: np.ndarray  # (N, k) int8 0/1

    def subset(self, positions: np.ndarray) -> EditBatch:
        return EditBatch(self.z[positions], self.rows[positions], self.source[positions],
                         self.target[positions])

    def noop(self) -> EditBatch:
        """The same sources asked for the attributes they start from."""
        return EditBatch(self.z, self.rows, self.source, self.source)


def curve_fractions(num_steps: int) -> list[float]:
    """Relative strengths (0..2, 1 = the operating point) at which curves are read.

    Flows can only stop at whole steps, so each fraction is rounded to one;
    duplicates (few steps) are dropped. 1 and 2 are always present.
    """
    steps = sorted({round(s * num_steps) for s in CURVE_FRACTIONS})
    return [t / num_steps for t in steps]


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


def exp_map(z: np.ndarray, displacement: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Walk from unit rows z along the tangent part of `displacement` by the angle
    scale * |tangent part| (the sphere's exponential map); a row with no tangent part stays
    exactly where it is."""
    z = torch.as_tensor(np.ascontiguousarray(z, np.float32))
    d = torch.as_tensor(np.asarray(displacement), dtype=torch.float64)
    tangent = d - (d * z).sum(1, keepdim=True) * z  # in float64: cancellation near radial d
    norm = tangent.norm(dim=1, keepdim=True)
    still = norm[:, 0] <= 1e-6 * d.norm(dim=1)  # nothing but float32 rounding
    angle = (scale * norm).float()
    direction = (tangent / torch.where(norm > 0, norm, 1.0)).float()
    out = torch.cos(angle) * z + torch.sin(angle) * direction
    out = out / out.norm(dim=1, keepdim=True)
    out[still] = z[still]
    return out.numpy()


def arc_steps(z: np.ndarray, end: np.ndarray, num_steps: int) -> np.ndarray:
    """(num_steps, N) chord lengths of `num_steps` equal arcs of the geodesic z -> end."""
    cos = np.clip((np.asarray(z, np.float64) * np.asarray(end, np.float64)).sum(1), -1.0, 1.0)
    chord = 2 * np.sin(np.arccos(cos) / (2 * num_steps))
    return np.tile(chord, (num_steps, 1))


def run_edit(edit: EditFn, batch: EditBatch, num_steps: int) -> np.ndarray:
    """Call an edit function with the batch's sources and check its contract."""
    traj = np.asarray(edit(batch.z, batch.target, sources=batch.source), dtype=np.float32)
    expected = (num_steps + 1, *batch.z.shape)
    if traj.shape != expected:
        raise ValueError(f"edit function returned shape {traj.shape}, expected {expected}")
    if float(np.abs(traj[0] - np.asarray(batch.z, np.float32)).max(initial=0.0)) > 1e-5:
        raise ValueError("edit function's trajectories[0] must equal the sources z")
    if not np.isfinite(traj[-1]).all():
        raise ValueError("edit function returned non-finite points")
    return traj


@dataclass
class FlowEditor:
    """A flow: `make_edit(n)` integrates n steps of the field's own step size."""

    make_edit: Callable[[int], EditFn]
    read: Reader
    num_steps: int

    def end(self, batch: EditBatch) -> tuple[np.ndarray, np.ndarray | None]:
        traj = run_edit(self.make_edit(self.num_steps), batch, self.num_steps)
        return traj[-1], step_lengths(traj)

    def frames(self, batch: EditBatch, fractions: Sequence[float]) -> list[np.ndarray]:
        steps = [round(s * self.num_steps) for s in fractions]
        traj = run_edit(self.make_edit(max(steps)), batch, max(steps))
        return [traj[t] for t in steps]


class PointEditor:
    """An editor that maps each source to one end point (`move`); see the module doc.

    Rows asked for no change (target == source) are not passed to `move`: they stay
    exactly where they are, as any editor asked for nothing should.
    """

    num_steps: int = 10

    def read(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def move(self, batch: EditBatch) -> np.ndarray:
        """(N, d) unit end points of rows that ask for a change."""
        raise NotImplementedError

    def _end_points(self, batch: EditBatch) -> np.ndarray:
        edited = np.array(batch.z, np.float32)
        moving = np.flatnonzero((batch.target != batch.source).any(1))
        if len(moving):
            edited[moving] = np.asarray(self.move(batch.subset(moving)), np.float32)
        return edited

    def end(self, batch: EditBatch) -> tuple[np.ndarray, np.ndarray | None]:
        edited = self._end_points(batch)
        return edited, arc_steps(batch.z, edited, self.num_steps)

    def frames(self, batch: EditBatch, fractions: Sequence[float]) -> list[np.ndarray]:
        edited = self._end_points(batch)
        return [slerp(batch.z, edited, s) for s in fractions]


Truth = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (split rows, targets) -> (N, d)


@dataclass
class OracleEditor(PointEditor):
    """The true counterfactual of each row (synthetic data): same person and photo, target
    attributes. It knows the labels, so it is the same in both modes."""

    truth: Truth
    num_steps: int = 10

    def read(self, z: np.ndarray) -> np.ndarray:  # never asked: the oracle is mode-free
        raise TypeError("the oracle knows the labels; it has no reading of its own")

    def move(self, batch: EditBatch) -> np.ndarray:
        return np.asarray(self.truth(batch.rows, batch.target), np.float32)


@dataclass
class FixedEdits:
    """Edits made elsewhere (`fclf score`): end points in the protocol's row order
    (`rows`), optionally with trajectories (their frames give the curve up to s = 1; there
    is no overshoot part) and the editor's answer to the no-op request."""

    rows: np.ndarray  # (N,) the protocol's source rows, in the order of `edited`
    edited: np.ndarray  # (N, d)
    trajectories: np.ndarray | None = None  # (T+1, N, d)
    noop: np.ndarray | None = None  # (N, d)

    def _positions(self, batch: EditBatch) -> np.ndarray:
        order = np.argsort(self.rows, kind="stable")
        found = order[np.searchsorted(self.rows, batch.rows, sorter=order)]
        if not np.array_equal(self.rows[found], batch.rows):
            raise ValueError("the batch asks for rows these edits do not have")
        return found

    def end(self, batch: EditBatch) -> tuple[np.ndarray, np.ndarray | None]:
        at = self._positions(batch)
        steps = None if self.trajectories is None else step_lengths(self.trajectories[:, at])
        return self.edited[at], steps

    def frames(self, batch: EditBatch, fractions: Sequence[float]) -> list[np.ndarray]:
        if self.trajectories is None:
            return []
        at = self._positions(batch)
        t_max = len(self.trajectories) - 1
        return [self.trajectories[round(s * t_max), at] for s in fractions if s <= 1.0]
