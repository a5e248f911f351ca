"""The edit of `fclf transfer`: one embedding flowed toward the target, read at every step.

`run_transfer` flows one embedding toward the target attributes with the model's own
integrator (an `EditFn`) and reads every step with the frozen probes and the nearest real
face, giving a `TransferPath`. Pure and vectorised (arrays and objects in, arrays out: one
face takes milliseconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

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


EditFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""fclf.model.model_io.edit_function's contract: (z (N, d), targets (N, k)) -> (S+1, N, d)."""


def run_transfer(
    edit: EditFn, probes: AttributeProbes, gallery: Gallery, z: np.ndarray,
    target: np.ndarray, exclude: int | None = None,
) -> TransferPath:
    """Flow `z` toward `target` with `edit` and read every step (probes, nearest real)."""
    start = time.perf_counter()
    z = np.asarray(z, np.float32)
    trajectory = np.asarray(edit(z[None], np.asarray(target, np.float32)[None]))[:, 0]
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
