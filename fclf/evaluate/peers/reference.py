"""The supervised reference: an editor fitted on exact counterfactual pairs of train rows.

Not a peer and never a baseline: it *uses the truth* (the synthetic world's
counterfactual of every train row, `fclf.data.truth`), which no method may, so
it marks how far an editor of this size can get when told the answer during
training (the headroom). Synthetic data only; on real data it does not exist.

z' = normalise(z + sum_j delta_j h_j([z, y])), delta = y - s, an MLP whose
output is read as one head per attribute (delta = 0 leaves z exactly where it
is), fitted by mean squared error to the counterfactual of each train row
under random requests of 1..2 attributes (fresh each epoch). Like every peer it
reads sources with the plain train probe in blind mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from fclf.evaluate.editors import EditBatch, exp_map
from fclf.evaluate.peers.base import Peer, TrainData, change

BATCH_SIZE = 256
LEARNING_RATE = 1e-3
MAX_CHANGES = 2
CHUNK = 8192


class _Heads(nn.Module):
    def __init__(self, dim: int, k: int, hidden: int):
        super().__init__()
        self.k, self.dim = k, dim
        self.body = nn.Sequential(nn.Linear(dim + k, hidden), nn.SiLU(),
                                  nn.Linear(hidden, hidden), nn.SiLU())
        self.heads = nn.Linear(hidden, k * dim)

    def forward(self, z: torch.Tensor, target: torch.Tensor,
                delta: torch.Tensor) -> torch.Tensor:
        a = self.body(torch.cat([z, target], dim=1))
        heads = self.heads(a).view(len(z), self.k, self.dim)
        return torch.einsum("nk,nkd->nd", delta, heads)


def _random_requests(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Targets: each row's labels with 1..MAX_CHANGES distinct attributes changed."""
    n, k = labels.shape
    count = torch.randint(1, min(MAX_CHANGES, k) + 1, (n,), generator=generator)
    ranks = torch.rand(n, k, generator=generator).argsort(1).argsort(1)
    return torch.where(ranks < count[:, None], 1 - labels, labels)


@dataclass(eq=False)
class Reference(Peer):
    name = "reference"
    data: TrainData
    hidden: int = 256
    epochs: int = 10
    seed: int = 0
    alpha: float = 1.0
    net: _Heads | None = field(default=None, repr=False)

    def hyper(self) -> dict:
        return {"hidden": self.hidden, "epochs": self.epochs, "seed": self.seed,
                "alpha": self.alpha}

    def state(self) -> dict:
        return {f"net.{k}": v for k, v in self.net.state_dict().items()}

    @classmethod
    def restore(cls, hyper: dict, state: dict, data: TrainData) -> Reference:
        peer = cls(data, int(hyper["hidden"]), int(hyper["epochs"]), int(hyper["seed"]),
                   float(hyper["alpha"]))
        peer.net = _Heads(data.embeddings.shape[1], data.attributes.shape[1], peer.hidden)
        peer.net.load_state_dict({k[4:]: torch.as_tensor(v) for k, v in state.items()})
        peer.net.eval()
        return peer

    def fit(self, counterfactual: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Reference:
        """Fit on train rows and their exact counterfactuals `counterfactual(rows, targets)`."""
        z = torch.from_numpy(self.data.embeddings)
        labels = torch.from_numpy(self.data.attributes.astype(np.int64))
        generator = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            net = _Heads(z.shape[1], labels.shape[1], self.hidden)
        optimiser = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
        steps = self.epochs * -(-len(z) // BATCH_SIZE)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
        net.train()
        with torch.enable_grad():
            for _ in range(self.epochs):
                targets = _random_requests(labels, generator)
                goal = torch.from_numpy(np.asarray(counterfactual(
                    np.arange(len(z)), targets.numpy().astype(np.int8)), np.float32))
                delta = (targets - labels).float()
                for rows in torch.randperm(len(z), generator=generator).split(BATCH_SIZE):
                    moved = z[rows] + net(z[rows], targets[rows].float(), delta[rows])
                    moved = moved / moved.norm(dim=1, keepdim=True)
                    loss = (moved - goal[rows]).pow(2).sum(1).mean()
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    optimiser.step()
                    schedule.step()
        net.eval()
        self.net = net
        return self

    @torch.no_grad()
    def displacement(self, batch: EditBatch) -> np.ndarray:
        out = np.empty(batch.z.shape)
        delta = torch.from_numpy(change(batch).astype(np.float32))
        target = torch.from_numpy(batch.target.astype(np.float32))
        z = torch.from_numpy(np.asarray(batch.z, np.float32))
        for start in range(0, len(z), CHUNK):
            rows = slice(start, start + CHUNK)
            out[rows] = self.net(z[rows], target[rows], delta[rows]).double().numpy()
        return out

    def move(self, batch: EditBatch) -> np.ndarray:
        """normalise(z + alpha * the net's displacement): the map it was fitted as."""
        if self.alpha == 1.0:
            moved = np.asarray(batch.z, np.float64) + self.displacement(batch)
            return (moved / np.linalg.norm(moved, axis=1, keepdims=True)).astype(np.float32)
        return exp_map(batch.z, self.displacement(batch), self.alpha)
