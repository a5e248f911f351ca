"""Contrastive family: flow the whole horizon, then pull the END point toward REAL points.

For a batch of real sources z with targets y and source readings s:

1. delta = y - s. Rows with delta = 0 do not move (v = 0 by construction) and
   contribute nothing but zeros; the others are integrated for the whole
   horizon (flow.num_steps steps of flow.step_size, gradients through every
   step; `flow.checkpoint_gradients` recomputes steps in backward).
2. The END points are anchors. Each anchor draws `weights.positives` REAL,
   unedited train embeddings carrying its whole target code from the bank
   (rare codes always get them; an absent code uses the nearest code, see
   `fclf.train.bank`); as many bank points of any code are drawn as
   negatives. The pool is the union over the batch: for an anchor, every pool
   point of its target code is a positive, every other one a negative. Flowed
   points are never positives of each other, so the loss cannot be lowered by
   collapsing the flowed points onto one another (the old dynamic).
3. L_con = mean over anchors of -log(sum_pos exp(s/τ) / sum_pool exp(s/τ)),
   s the cosine (the "L_in" form of SupCon, i.e. soft nearest neighbours): it
   is satisfied once the end point is closer to *some* real points of the
   target code than to real points of other codes, instead of pulling every
   edit toward the mean of its code (L_out), which would trade identity for a
   class centroid.
4. L_id = mean ||z_end - z||² (zero for rows that do not move), curl and
   divergence of the field at the batch points (exact zeros where v = 0).

loss = lambda_contrastive·L_con + lambda_curl·R_curl + lambda_div·R_div + lambda_identity·L_id
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from fclf.model.field import VectorField
from fclf.model.flow import flow_velocity, integrate
from fclf.train.bank import CodeBank
from fclf.train.objectives.base import (
    Batch,
    FlowSettings,
    ObjectiveWeights,
    jacobian_terms,
    moving_rows,
    zero_like_graph,
)

COMPONENTS = ("loss", "contr", "curl", "div", "ident")


def bank_contrastive(
    anchors: torch.Tensor, pool: torch.Tensor, positive: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Mean over anchors with a positive of -log(Σ_pos exp(cos/τ) / Σ_pool exp(cos/τ)).

    `positive` is (anchors, pool) bool. Computed with logsumexp (finite at small
    temperatures). Returns a zero with a graph when no anchor has a positive.
    """
    x = F.normalize(anchors, dim=-1)
    p = F.normalize(pool, dim=-1)
    logits = x @ p.T / temperature
    has = positive.any(1)
    if not bool(has.any()):
        return anchors.sum() * 0.0
    log_all = torch.logsumexp(logits, 1)
    log_pos = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), 1)
    return (log_all - log_pos)[has].mean()


def draw_pool(
    bank: CodeBank, targets: torch.Tensor, positives: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(pool bank positions, (anchors, pool) positive mask, anchors' groups).

    `positives` draws from each anchor's target group, then one uniform bank
    draw per anchor as negatives; the mask marks every pool point in an
    anchor's group (its own draws and other anchors' draws of the same code).
    """
    groups = bank.groups(targets)
    own = bank.sample(groups, positives, generator).reshape(-1)
    others = bank.sample_any(len(groups), generator)
    pool = torch.cat([own, others])
    mask = groups.to(bank.group.device)[:, None] == bank.group[pool][None, :]
    return pool, mask, groups


def batch_loss(
    field: VectorField, batch: Batch, bank: CodeBank, weights: ObjectiveWeights,
    flow: FlowSettings, generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """All components for a batch; 'loss' is the weighted total."""
    n = len(batch.z)
    moving = moving_rows(batch)
    if moving is None:
        return dict.fromkeys(COMPONENTS, zero_like_graph(field))
    index, condition = moving
    z = batch.z[index]
    sub = condition.select(index)
    f, v, cache = flow_velocity(field, z, sub, flow.sphere)
    curl, div = jacobian_terms(field, cache, z, v, weights, flow, generator, n)
    end = integrate(
        field, z, sub, num_steps=flow.num_steps, step_size=flow.step_size, sphere=flow.sphere,
        integrator=flow.integrator, initial_velocity=f,
        checkpoint_gradients=flow.checkpoint_gradients,
    )
    pool, mask, _ = draw_pool(bank, batch.target[index], weights.positives, generator)
    contr = bank_contrastive(end, bank.embeddings[pool], mask, weights.temperature)
    ident = (end - z).pow(2).sum(-1).sum() / n
    total = (
        weights.lambda_contrastive * contr + weights.lambda_curl * curl
        + weights.lambda_div * div + weights.lambda_identity * ident
    )
    return {"loss": total, "contr": contr, "curl": curl, "div": div, "ident": ident}
