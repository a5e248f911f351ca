"""The real faces of `fclf transfer`: the nearest real face to each step of a flow.

`Gallery` holds every split's real embeddings, searched split by split (nothing is copied)
for the real face of highest cosine to each flowed point; there is no decoder, so the nearest
real face stands in for the picture of each step. Pure and vectorised: arrays in, arrays out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from fclf.data.embeddings_io import EmbeddingSplit
from fclf.errors import FclfError


@dataclass(frozen=True)
class Gallery:
    """The real embeddings of every split, searched split by split (nothing is copied)."""

    parts: tuple[tuple[str, EmbeddingSplit], ...]

    @classmethod
    def from_splits(cls, splits: Mapping[str, EmbeddingSplit]) -> Gallery:
        return cls(tuple(splits.items()))

    @property
    def offsets(self) -> np.ndarray:
        return np.cumsum([0, *(len(s) for _, s in self.parts)])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def row(self, index: int) -> tuple[str, EmbeddingSplit, int]:
        """(split name, split, row in it) of a gallery index."""
        part = int(np.searchsorted(self.offsets, index, side="right")) - 1
        name, split = self.parts[part]
        return name, split, int(index - self.offsets[part])

    def image_id(self, index: int) -> str:
        _, split, row = self.row(index)
        return str(split.image_ids[row])

    def identity(self, index: int) -> int | None:
        """The person's id, or None where the data has none (-1)."""
        _, split, row = self.row(index)
        value = int(split.identities[row])
        return value if value >= 0 else None

    def locate(self, image_id: str, split: str) -> int:
        """Gallery index of `image_id` in `split`; a missing id is an FclfError."""
        offsets = self.offsets
        for (name, part), offset in zip(self.parts, offsets, strict=False):
            if name == split:
                rows = np.flatnonzero(part.image_ids == image_id)
                if len(rows):
                    return int(offset + rows[0])
        elsewhere = [
            name for name, part in self.parts
            if name != split and (part.image_ids == image_id).any()
        ]
        if elsewhere:
            raise FclfError(
                f"--image-id {image_id}: not in split {split!r} but in {elsewhere[0]!r}; "
                f"pass --split {elsewhere[0]}"
            )
        names = [name for name, _ in self.parts]
        if split not in names:
            raise FclfError(f"--split {split}: no such split in the embeddings (have {names})")
        part = dict(self.parts)[split]
        example = f", e.g. {part.image_ids[0]}" if len(part) else ""
        raise FclfError(
            f"--image-id {image_id}: no such image id in any split ({len(self)} real faces"
            f"{example})"
        )

    def nearest(
        self, points: np.ndarray, exclude: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(index (S,), cosine (S,)): each point's real embedding of highest cosine,
        never `exclude` (the source itself when it comes from the data)."""
        z = np.asarray(points, np.float32)
        z = z / np.linalg.norm(z, axis=1, keepdims=True).clip(1e-12)
        best = np.full(len(z), -np.inf, np.float32)
        where = np.zeros(len(z), np.int64)
        for (_, part), offset in zip(self.parts, self.offsets, strict=False):
            if not len(part):
                continue
            sims = z @ part.embeddings.T
            if exclude is not None and offset <= exclude < offset + len(part):
                sims[:, exclude - offset] = -np.inf
            col = sims.argmax(axis=1)
            value = sims[np.arange(len(z)), col]
            better = value > best
            best[better] = value[better]
            where[better] = col[better] + offset
        return where, best
