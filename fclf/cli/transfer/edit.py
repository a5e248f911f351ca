"""The edit of `fclf transfer`: one embedding flowed toward the target, read at every step.

`run_transfer` flows one embedding toward the target attributes with the model's own
integrator (an `EditFn`) and reads every step with the frozen probes and the nearest real
face, giving a `TransferPath`. The flow is told the source the command shows (the probes'
reading, overridden by `--source-attr`), so delta = target - source is exactly the `--set`
change: an attribute that is not set has delta 0 and no head of the field pushes it (the
model's own source reader, which could disagree with the probes, is not used). Pure and
vectorised (arrays and objects in, arrays out: one face takes milliseconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fclf.cli.transfer.nearest import Gallery
from fclf.evaluate.probes import AttributeProbes


@dataclass
class TransferPath:
    """One face's flow, read at every step (index 0 is the source)."""

    attribute_names: tuple[str, ...]
    target: np.ndarray  # (k,) int8
    trajectory: np.ndarray  # (S+1, d) float32
    probabilities: np.ndarray  # (S+1, k)
    cosine_to_source: np.ndarray  # (S+1,)
    nearest: np.ndarray  # (S+1,) gallery indices
    nearest_cosine: np.ndarray  # (S+1,)
    nearest_ids: list[str]
    nearest_identities: list[int | None]
    seconds: float = 0.0  # flow + probes + nearest-neighbour search
    gallery_size: int = 0

    @property
    def num_steps(self) -> int:
        return len(self.trajectory) - 1


EditFn = Callable[..., np.ndarray]
"""fclf.model.model_io.edit_function's contract: (z (N, d), targets (N, k), sources=(N, k))
-> (S+1, N, d); delta = targets - sources."""


def run_transfer(
    edit: EditFn, probes: AttributeProbes, gallery: Gallery, z: np.ndarray,
    source: np.ndarray, target: np.ndarray, exclude: int | None = None,
) -> TransferPath:
    """Flow `z` from `source` toward `target` with `edit` (delta = target - source) and read
    every step (probes, nearest real)."""
    start = time.perf_counter()
    z = np.asarray(z, np.float32)
    trajectory = _flow(edit, z, source, target)
    probabilities = probes.predict_proba(trajectory)
    unit = trajectory / np.linalg.norm(trajectory, axis=1, keepdims=True).clip(1e-12)
    cosine = unit @ (z / max(float(np.linalg.norm(z)), 1e-12))
    nearest, nearest_cos = gallery.nearest(trajectory, exclude)
    seconds = time.perf_counter() - start
    return TransferPath(
        attribute_names=tuple(probes.attribute_names),
        target=np.asarray(target, np.int8),
        trajectory=trajectory,
        probabilities=probabilities,
        cosine_to_source=cosine,
        nearest=nearest,
        nearest_cosine=nearest_cos,
        nearest_ids=[gallery.image_id(i) for i in nearest],
        nearest_identities=[gallery.identity(i) for i in nearest],
        seconds=seconds,
        gallery_size=len(gallery),
    )


def _flow(edit: EditFn, z: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(S+1, d): one point's path, with the source given explicitly."""
    return np.asarray(edit(
        np.asarray(z, np.float32)[None], np.asarray(target, np.float32)[None],
        sources=np.asarray(source, np.float32)[None],
    ))[:, 0]


REACH_FACTOR = 10
"""How far `target_reach` continues an unreached edit: up to this many times its steps."""


def target_reach(
    path: TransferPath, source: np.ndarray, longer: EditFn, probes: AttributeProbes,
    z: np.ndarray, step_size: float,
) -> dict[str, Any]:
    """Did the probes read the changed attributes as the target at the last step, and if
    not, how many steps at the same step size would it take?

    Every attribute whose target differs from `source` is *reached* when its probe
    probability at the last step is on the target's side of 0.5 (>= 0.5 for 1, < 0.5 for 0).
    For the unreached ones the flow is continued (`longer`: the same integrator and step
    size for `REACH_FACTOR` times the steps, from the same `source`; the first steps are the
    path itself) and
    `steps_needed` is the first step, counted from the source, at or after the last one,
    whose reading is on the target's side (None: not within `searched_steps`).
    """
    names = path.attribute_names
    target = np.asarray(path.target, np.int8)
    changed = np.flatnonzero(target != np.asarray(source, np.int8))
    final = path.probabilities[-1]

    def on_side(p: np.ndarray, t: int) -> np.ndarray:
        return p >= 0.5 if t == 1 else p < 0.5

    unreached = [int(i) for i in changed if not on_side(final[i], int(target[i]))]
    searched = path.num_steps * REACH_FACTOR
    probs = None
    if unreached:
        trajectory = _flow(longer, z, source, target)
        probs = probes.predict_proba(trajectory[path.num_steps:])  # from the last step on
        searched = len(trajectory) - 1
    attributes = {}
    for i in changed:
        entry: dict[str, Any] = {
            "target": int(target[i]), "final_probability": round(float(final[i]), 6),
            "reached": int(i) not in unreached,
        }
        if int(i) in unreached:
            hits = np.flatnonzero(on_side(probs[:, i], int(target[i])))  # type: ignore[index]
            entry["steps_needed"] = int(path.num_steps + hits[0]) if len(hits) else None
        attributes[names[i]] = entry
    return {
        "reached": not unreached, "steps": path.num_steps, "step_size": float(step_size),
        "searched_steps": searched, "attributes": attributes,
    }


def reach_lines(reach: dict[str, Any]) -> list[str]:
    """One stderr line per changed attribute the edit did not reach (empty: all reached)."""
    lines = []
    for name, a in reach.get("attributes", {}).items():
        if a["reached"]:
            continue
        side = ">= 0.5" if a["target"] == 1 else "< 0.5"
        head = (f"transfer: target not reached: {name}->{a['target']} ends at probe "
                f"{a['final_probability']:.3f} after {reach['steps']} steps")
        if a["steps_needed"] is None:
            tail = (f"; the probe does not read {side} within {reach['searched_steps']} steps "
                    f"at step size {reach['step_size']:g} either")
        else:
            more = a["steps_needed"] - reach["steps"]
            tail = (f"; at step size {reach['step_size']:g} the probe reads {side} after "
                    f"{a['steps_needed']} steps ({more} more: --steps {a['steps_needed']})")
        lines.append(head + tail)
    return lines
