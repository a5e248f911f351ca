"""What every objective family shares: its inputs (batch, bank, weights, horizon) and helpers.

A family is a module with `COMPONENTS` (names of the logged parts, "loss"
first) and `batch_loss(field, batch, bank, weights, flow, generator)` returning
a dict of those parts as tensors, "loss" being the weighted total that is
minimised. See `fclf.train.objectives` for the registry.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fclf.model.field import Condition, ForwardCache, VectorField
from fclf.model.jacobian_penalties import estimate_penalties


@dataclass(frozen=True)
class ObjectiveWeights:
    """The `loss` params; defaults equal the params schema's (a test keeps them in sync)."""

    objective: str = "flow_matching"
    temperature: float = 0.07
    lambda_contrastive: float = 1.0
    positives: int = 2
    lambda_curl: float = 1e-4
    lambda_div: float = 1e-4
    lambda_identity: float = 10.0
    probes: int = 1
    div_estimator: str = "corrected"
    sinkhorn_tolerance: float = 1e-3


@dataclass(frozen=True)
class FlowSettings:
    """The horizon (`flow` params) and how training integrates it."""

    num_steps: int = 10
    step_size: float = 0.1
    integrator: str = "euler"
    sphere: bool = True
    checkpoint_gradients: bool = False

    @property
    def horizon(self) -> float:
        """Total flow time num_steps * step_size."""
        return self.num_steps * self.step_size


@dataclass(frozen=True)
class Batch:
    """Real source points z, their targets y and source readings s (0/1, (N, k))."""

    z: torch.Tensor
    target: torch.Tensor
    source: torch.Tensor

    def condition(self) -> Condition:
        return Condition.from_source(self.target, self.source, self.z.dtype)


def zero_like_graph(field: VectorField) -> torch.Tensor:
    """A zero that still has a graph to the parameters (a batch with nothing to learn)."""
    return sum(p.sum() for p in field.parameters()) * 0.0


def moving_rows(batch: Batch):
    """(row indices with delta != 0, the batch's condition), or None when no row moves.

    Rows with delta = 0 have v = 0 by construction: every family skips them.
    """
    condition = batch.condition()
    index = condition.active.nonzero().squeeze(1)
    return (index, condition) if len(index) else None


def jacobian_terms(
    field: VectorField, cache: ForwardCache, z: torch.Tensor, v: torch.Tensor,
    weights: ObjectiveWeights, flow: FlowSettings, generator: torch.Generator | None,
    batch_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(curl, div) averaged over the whole batch: rows not in `z` have v = 0, so J = 0."""
    penalties = estimate_penalties(field, cache, z, v, flow.sphere, weights.probes, generator,
                                   weights.div_estimator)
    return penalties.curl.sum() / batch_size, penalties.divergence.sum() / batch_size
