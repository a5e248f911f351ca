"""A non-parametric local analogy: move like the nearest faces that differ as requested.

For a source z with source code s and target code t (codes: whole attribute
vectors), the displacement is

    mean of the k nearest train faces with code t  -  mean of the k nearest with code s

(cosine neighbours; a code with fewer than k train faces uses all of them; a
code absent from train falls back to the mean-direction displacement). Near z,
both sets show people like z; their difference is the change of attributes
as it looks on such people. Nothing is trained; k and the walk length are
chosen on val.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from fclf.evaluate.editors import EditBatch
from fclf.evaluate.metrics import combination_labels
from fclf.evaluate.peers.base import Peer, TrainData, change

QUERY_BLOCK = 2048


@dataclass(eq=False)
class KnnAnalogy(Peer):
    name = "knn_analogy"
    data: TrainData
    k: int = 50
    alpha: float = 1.0

    def hyper(self) -> dict:
        return {"k": self.k, "alpha": self.alpha}

    @classmethod
    def restore(cls, hyper: dict, state: dict, data: TrainData) -> KnnAnalogy:
        return cls(data, int(hyper["k"]), float(hyper["alpha"]))

    @cached_property
    def _by_code(self) -> dict[int, torch.Tensor]:
        x = torch.from_numpy(self.data.embeddings)
        codes = self.data.codes
        return {int(c): x[torch.from_numpy(np.flatnonzero(codes == c))]
                for c in np.unique(codes)}

    def local_means(self, z: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """((N, d) mean of each row's k nearest train faces of its code, (N,) found mask)."""
        out = np.zeros((len(z), z.shape[1]))
        found = np.zeros(len(z), bool)
        zt = torch.as_tensor(np.asarray(z, np.float32))
        for code in np.unique(codes):
            pool = self._by_code.get(int(code))
            if pool is None:
                continue
            rows = np.flatnonzero(codes == code)
            k = min(self.k, len(pool))
            for start in range(0, len(rows), QUERY_BLOCK):
                part = rows[start : start + QUERY_BLOCK]
                sims = zt[part] @ pool.T
                nearest = sims.topk(k, dim=1).indices
                # the mean of the k neighbours as one matmul: a row of weights 1/k at them
                weights = sims.zero_().scatter_(1, nearest, 1.0 / k)
                out[part] = (weights @ pool).double().numpy()
            found[rows] = True
        return out, found

    def displacement(self, batch: EditBatch) -> np.ndarray:
        to_target, has_t = self.local_means(batch.z, combination_labels(batch.target))
        to_source, has_s = self.local_means(batch.z, combination_labels(batch.source))
        out = to_target - to_source
        missing = ~(has_t & has_s)
        if missing.any():
            out[missing] = change(batch.subset(np.flatnonzero(missing))) \
                @ self.data.mean_differences
        return out
