"""Straight-line peers: a fixed displacement per attribute, or per pair of attribute codes.

- `MeanDirection`: the sum over requested attributes of delta_j times the train
  class-mean difference of attribute j.
- `ConditionalDirection` (InterFaceGAN, Shen et al., CVPR 2020): a logistic
  probe per attribute (train, inverse regularisation `c`); each unit normal has
  the other normals projected out, so walking one attribute does not move the
  probes' readings of the others; its length is the class-mean difference's
  extent along it. It reads sources with its own probes.
- `CodeLine`: one displacement per (source code -> target code) pair, the
  difference of the two codes' train means (a "code" is a whole attribute
  vector), shrunk toward the mean-direction displacement by
  `n / (n + shrinkage)` with n the smaller code's train count: rare codes have
  noisy means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from fclf.evaluate.editors import EditBatch
from fclf.evaluate.metrics import combination_labels
from fclf.evaluate.peers.base import Peer, TrainData, change
from fclf.evaluate.probes import AttributeProbes


@dataclass(eq=False)
class MeanDirection(Peer):
    name = "mean_direction"
    data: TrainData
    alpha: float = 1.0

    def hyper(self) -> dict:
        return {"alpha": self.alpha}

    @classmethod
    def restore(cls, hyper: dict, state: dict, data: TrainData) -> MeanDirection:
        return cls(data, float(hyper["alpha"]))

    def displacement(self, batch: EditBatch) -> np.ndarray:
        return change(batch) @ self.data.mean_differences


def conditional_normals(weights: np.ndarray) -> np.ndarray:
    """(k, d): each unit normal with the span of the other normals projected out."""
    w = np.asarray(weights, np.float64)
    w = w / np.linalg.norm(w, axis=1, keepdims=True)
    out = np.empty_like(w)
    for j in range(len(w)):  # loop over attributes (k), not points
        others = np.delete(w, j, axis=0)
        coef = np.linalg.lstsq(others.T, w[j], rcond=None)[0] if len(others) else 0.0
        out[j] = w[j] - (others.T @ coef if len(others) else 0.0)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


@dataclass(eq=False)
class ConditionalDirection(Peer):
    name = "conditional_direction"
    data: TrainData
    c: float = 1.0
    alpha: float = 1.0
    probes: AttributeProbes | None = None
    directions: np.ndarray = field(default=None, repr=False)  # (k, d) scaled directions

    def __post_init__(self) -> None:
        if self.directions is None:
            probes = self.probes or AttributeProbes.fit_fast(
                self.data.embeddings, self.data.attributes, self.data.reader.attribute_names,
                c=self.c)
            self.probes = probes
            normals = conditional_normals(probes.weights)
            extent = np.abs((self.data.mean_differences * normals).sum(1, keepdims=True))
            self.directions = normals * extent

    def hyper(self) -> dict:
        return {"c": self.c, "alpha": self.alpha}

    def state(self) -> dict[str, np.ndarray]:
        return {"directions": self.directions, "weights": self.probes.weights,
                "bias": self.probes.bias}

    @classmethod
    def restore(cls, hyper: dict, state: dict, data: TrainData) -> ConditionalDirection:
        probes = AttributeProbes.from_parameters(state["weights"], state["bias"],
                                                 data.reader.attribute_names, c=hyper["c"])
        return cls(data, float(hyper["c"]), float(hyper["alpha"]), probes,
                   np.asarray(state["directions"], np.float64))

    def read(self, z: np.ndarray) -> np.ndarray:
        return self.probes.predict(z)

    def displacement(self, batch: EditBatch) -> np.ndarray:
        return change(batch) @ self.directions


@dataclass(eq=False)
class CodeLine(Peer):
    name = "code_line"
    data: TrainData
    shrinkage: float = 20.0
    alpha: float = 1.0

    def hyper(self) -> dict:
        return {"shrinkage": self.shrinkage, "alpha": self.alpha}

    @classmethod
    def restore(cls, hyper: dict, state: dict, data: TrainData) -> CodeLine:
        return cls(data, float(hyper["shrinkage"]), float(hyper["alpha"]))

    @cached_property
    def _code_means(self) -> tuple[dict[int, np.ndarray], dict[int, int]]:
        codes = self.data.codes
        x = np.asarray(self.data.embeddings, np.float64)
        present, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
        sums = np.zeros((len(present), x.shape[1]))
        np.add.at(sums, inverse, x)
        means = sums / counts[:, None]
        return ({int(c): means[i] for i, c in enumerate(present)},
                {int(c): int(n) for c, n in zip(present, counts, strict=True)})

    def displacement(self, batch: EditBatch) -> np.ndarray:
        means, counts = self._code_means
        fallback = change(batch) @ self.data.mean_differences
        out = fallback.copy()
        pairs = np.stack([combination_labels(batch.source), combination_labels(batch.target)], 1)
        for (s, t) in np.unique(pairs, axis=0):
            n = min(counts.get(int(s), 0), counts.get(int(t), 0))
            if n == 0:
                continue
            rows = np.flatnonzero((pairs[:, 0] == s) & (pairs[:, 1] == t))
            line = means[int(t)] - means[int(s)]
            out[rows] = (n * line + self.shrinkage * fallback[rows]) / (n + self.shrinkage)
        return out
