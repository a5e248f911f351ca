"""Did the edit flip what it was asked to flip, and leave the rest alone?

Both scores read attributes with the frozen probes: `before` is the reading of
the sources, `after` the reading of the final edited points.
"""

from __future__ import annotations

import numpy as np


def _fraction(hits: np.ndarray, mask: np.ndarray) -> float | None:
    """Mean of `hits` over `mask`; None when the mask is empty (undefined, JSON null)."""
    count = int(mask.sum())
    return float(hits[mask].sum() / count) if count else None


def transfer_scores(
    before: np.ndarray,
    after: np.ndarray,
    targets: np.ndarray,
    flipped: np.ndarray,
    attribute_names: tuple[str, ...] | list[str],
) -> dict:
    """flip_success / preservation, overall and per attribute.

    flip_success: over flipped (sample, attribute) pairs, the reading after the
    edit equals the target. preservation: over the other pairs, the reading is
    unchanged from the source's reading.
    """
    before, after, targets = (np.asarray(a) for a in (before, after, targets))
    flipped = np.asarray(flipped, bool)
    hit = after == targets
    kept = after == before
    kept_mask = ~flipped
    return {
        "flip_success": _fraction(hit, flipped),
        "flip_success_per_attribute": {
            name: _fraction(hit[:, j], flipped[:, j]) for j, name in enumerate(attribute_names)
        },
        "preservation": _fraction(kept, kept_mask),
        "preservation_per_attribute": {
            name: _fraction(kept[:, j], kept_mask[:, j]) for j, name in enumerate(attribute_names)
        },
    }
