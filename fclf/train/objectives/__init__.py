"""The objective families: name -> module. A new family is one new module here.

Each module exposes `COMPONENTS` (logged parts, "loss" first) and
`batch_loss(field, batch, bank, weights, flow, generator) -> dict` (see
`base`). `loss.objective` in params picks one; its choices are
`fclf.config.OBJECTIVES` (the config cannot import this wing; a test keeps the
two lists equal).

- contrastive: flow the whole horizon, SupCon of the end points against real
  bank points of the target code, identity = end-point displacement.
- flow_matching: conditional flow matching on the sphere toward real points
  of the target code, paired by condition-aware minibatch OT (C2OT).
"""

from __future__ import annotations

from types import ModuleType

import torch

from fclf.model.field import VectorField
from fclf.train.bank import CodeBank
from fclf.train.objectives import contrastive, flow_matching
from fclf.train.objectives.base import Batch, FlowSettings, ObjectiveWeights

OBJECTIVES: dict[str, ModuleType] = {
    "contrastive": contrastive,
    "flow_matching": flow_matching,
}


def get_objective(name: str) -> ModuleType:
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise ValueError(
            f"unknown objective {name!r}; expected one of {', '.join(OBJECTIVES)}"
        ) from None


def components(name: str) -> tuple[str, ...]:
    return get_objective(name).COMPONENTS


def fclf_objective(
    field: VectorField, batch: Batch, bank: CodeBank, weights: ObjectiveWeights,
    flow: FlowSettings, generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """The loss parts of `weights.objective` for one batch."""
    return get_objective(weights.objective).batch_loss(field, batch, bank, weights, flow,
                                                       generator)


__all__ = ["OBJECTIVES", "Batch", "FlowSettings", "ObjectiveWeights", "components",
           "fclf_objective", "get_objective"]
