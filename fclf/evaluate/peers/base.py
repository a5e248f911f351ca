"""What every peer shares: the train data it learns from, its reader, and the walk it makes.

Each peer is a `PointEditor` with a name, its hyper-parameters (`hyper`), its
learned arrays (`state`), and a way back from those (`restore`). `alpha` is a
walk length multiplier that every peer has (chosen on val like any other
hyper-parameter): the edit walks the geodesic from z along the tangent part of
the peer's displacement, by alpha times its length.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np

from fclf.evaluate.editors import EditBatch, PointEditor, exp_map
from fclf.evaluate.metrics import combination_labels
from fclf.evaluate.probes import AttributeProbes


@dataclass(eq=False)
class TrainData:
    """The train split as peers see it (embeddings, labels, identities) and the plain probe
    (logistic, C = 1, fitted on train) that peers read sources with in blind mode."""

    embeddings: np.ndarray  # (N, d) float32
    attributes: np.ndarray  # (N, k) int8
    reader: AttributeProbes

    @classmethod
    def of(cls, split, reader: AttributeProbes | None = None) -> TrainData:
        reader = reader or AttributeProbes.fit_fast(split.embeddings, split.attributes,
                                                    split.attribute_names, c=1.0)
        return cls(np.ascontiguousarray(split.embeddings, np.float32),
                   np.asarray(split.attributes, np.int8), reader)

    @cached_property
    def codes(self) -> np.ndarray:
        return combination_labels(self.attributes)

    @cached_property
    def mean_differences(self) -> np.ndarray:
        """(k, d) float64 mean(z | y_j = 1) - mean(z | y_j = 0)."""
        x = np.asarray(self.embeddings, np.float64)
        y = self.attributes.astype(bool)
        if (y.all(axis=0) | ~y.any(axis=0)).any():
            raise ValueError("every attribute needs both classes in train to define a direction")
        pos = (y.T.astype(np.float64) @ x) / y.sum(axis=0)[:, None]
        neg = ((~y).T.astype(np.float64) @ x) / (~y).sum(axis=0)[:, None]
        return pos - neg


def change(batch: EditBatch) -> np.ndarray:
    """(N, k) float64 delta = target - source in {-1, 0, 1}."""
    return batch.target.astype(np.float64) - batch.source.astype(np.float64)


class Peer(PointEditor):
    """A peer: `displacement(batch)` (N, d) walked by `alpha` times its length."""

    name: ClassVar[str]
    data: TrainData
    alpha: float

    def hyper(self) -> dict:
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def read(self, z: np.ndarray) -> np.ndarray:
        return self.data.reader.predict(z)

    def displacement(self, batch: EditBatch) -> np.ndarray:
        raise NotImplementedError

    def move(self, batch: EditBatch) -> np.ndarray:
        return exp_map(batch.z, self.displacement(batch), self.alpha)
