"""The FCLF objective: contrastive + curl + divergence + identity terms."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from fclf.model.field import VectorField
from fclf.model.flow import flow_velocity, integrate, retract
from fclf.model.jacobian_penalties import estimate_penalties

COMPONENTS = ("loss", "contr", "curl", "div", "ident")


def _row_codes(labels: torch.Tensor) -> torch.Tensor:
    """One integer per row such that equal codes <=> equal 0/1 label vectors."""
    weights = 2 ** torch.arange(labels.shape[1], device=labels.device, dtype=torch.int64)
    return (labels.to(torch.int64) * weights).sum(-1)


def supervised_contrastive(
    features: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    """SupCon loss: positives share the *whole* label vector (self excluded).

    Anchors without a positive in the batch are skipped; the log-softmax uses
    logsumexp so small temperatures stay finite. Returns 0 when no anchor has
    a positive.
    """
    x = F.normalize(features, dim=-1)
    logits = x @ x.T / temperature
    n = len(x)
    self_mask = torch.eye(n, dtype=torch.bool, device=x.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    codes = _row_codes(labels)
    same = (codes[:, None] == codes[None, :]) & ~self_mask
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    n_pos = same.sum(1)
    has_pos = n_pos > 0
    if not has_pos.any():
        return features.sum() * 0.0
    pos_log_prob = torch.where(same, log_prob, torch.zeros_like(log_prob)).sum(1)
    return -(pos_log_prob[has_pos] / n_pos[has_pos]).mean()


@dataclass(frozen=True)
class ObjectiveWeights:
    """The loss weights; defaults equal the params schema's (a test keeps them in sync)."""

    temperature: float = 0.07
    lambda_contrastive: float = 1.0
    lambda_curl: float = 1e-4
    lambda_div: float = 1e-4
    lambda_identity: float = 30.0
    probes: int = 1
    div_estimator: str = "corrected"


def fclf_objective(
    field: VectorField, z: torch.Tensor, targets: torch.Tensor, weights: ObjectiveWeights,
    *, alpha: float, flow_steps: int = 1, sphere: bool = True, integrator: str = "euler",
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """All loss components for a batch; 'loss' is the weighted total.

    The Jacobian penalties are taken at the batch points z (where the field
    is queried first); one forward pass serves both them and the first Euler step.
    """
    y = targets.to(z.dtype)
    f, v, cache = flow_velocity(field, z, y, sphere)
    if flow_steps == 1 and integrator == "euler":
        z_flowed = retract(z + alpha * f) if sphere else z + alpha * f
    else:
        z_flowed = integrate(
            field, z, y, num_steps=flow_steps, step_size=alpha, sphere=sphere,
            integrator=integrator,
        )
    penalties = estimate_penalties(
        field, cache, z, v, sphere, weights.probes, generator, weights.div_estimator
    )
    contr = supervised_contrastive(z_flowed, targets, weights.temperature)
    curl = penalties.curl.mean()
    div = penalties.divergence.mean()
    ident = (z_flowed - z).pow(2).sum(-1).mean()
    total = (
        weights.lambda_contrastive * contr + weights.lambda_curl * curl
        + weights.lambda_div * div + weights.lambda_identity * ident
    )
    return {"loss": total, "contr": contr, "curl": curl, "div": div, "ident": ident}
