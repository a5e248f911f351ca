"""Flow-matching family: conditional flow matching on the sphere with entropic C2OT couplings.

For a batch of real sources z with targets y and source readings s
(delta = y - s):

1. Rows with delta = 0 are no-ops: their target velocity is zero, and the
   field gives exactly zero there (v = 0 by construction), so they add zeros.
2. Every other source draws one REAL train point of its target code from the
   bank (`fclf.train.bank`; an absent code uses the nearest present code), so
   the drawn targets have the sources' code counts. Sources and draws are
   then coupled by an *entropic* minibatch optimal-transport plan with a
   *condition-aware* cost (C2OT: Cheng & Schwing 2025, "The Curse of
   Conditions: Analyzing and Improving Optimal Transport for Conditional
   Flow-Based Generation", arXiv:2503.10636):
       cost(z, x1) = lambda_identity · θ(z, x1)²  +  (∞ if code(x1) != code(y)),
       plan ∝ exp(-cost), with uniform marginals within each code,
   θ the geodesic distance (radians). The infinite condition term makes the
   plan block-diagonal: it never pairs across codes (plain minibatch OT,
   ignoring conditions, would send sources to targets of the wrong code and
   skew the targets' distribution per condition, which C2OT's condition
   forbids). Within a code block of n_g sources and n_g draws the plan is the
   entropic OT coupling (Sinkhorn, Cuturi 2013) that minimises
       lambda_identity · E_plan[θ²]  -  H(plan),
   computed in float64 by log-space Sinkhorn iterations until every source's
   row mass is within `loss.sinkhorn_tolerance` (relative) of 1/n_g (the
   column masses are exact after each column update), checked every
   `CHECK_EVERY` iterations, at most `MAX_ITERATIONS` (deterministic: the
   stopping rule depends on the data only). A fixed count is not enough: 200
   iterations left 0.2–0.6 % marginal error at lambda_identity = 100 and 6 %
   at 1000, while at the default 10 about 30 suffice.
   Each source then SAMPLES its partner from its row of the plan with the
   objective's generator (deterministic per seed).

   Meaning of `loss.lambda_identity` here: the weight of identity
   preservation in the coupling, i.e. the inverse temperature trading the
   expected squared geodesic distance to the partner against the coupling's
   randomness. 0 gives the independent coupling (every draw of the code is
   an equally likely partner: uniform within the code); larger values
   concentrate each source's row on nearby draws, and as lambda_identity
   -> ∞ the plan tends to the exact per-code assignment (minimum total θ²,
   identity-preserving partners). θ² between two people is ~1 rad² on the
   default data, so the change happens for lambda_identity between ~1 and
   ~100 (at 100 a default batch's mean partner θ² is within ~0.2 % of the
   exact assignment's). The contrastive family uses the same parameter as the
   weight of ||z_end - z||² in its loss: in both, larger = more identity
   preservation.
3. t ~ U[0, 1], z_t = slerp(z, x1, t), and the target is the geodesic's
   velocity at z_t (constant speed θ, pointing to x1; equal to
   log_{z_t}(x1) / (1 - t)). The flow runs for the horizon
   T = flow.num_steps · flow.step_size, which covers interpolation time 1,
   so the field must move 1/T times as fast: the target is velocity / T
   (with the defaults T = 10 · 0.1 = 1).
4. L_fm = mean over the batch of ||P(z_t) v(z_t) - u_t / T||², plus the
   curl and divergence penalties at z_t.

With `model.sphere: false` (the unnormalised flow z + step_size·v) the path is
the straight line z_t = (1 - t) z + t x1 with velocity x1 - z, and the field
is not projected; the coupling cost stays geodesic (the points are unit
vectors either way).

loss = L_fm + lambda_curl·R_curl + lambda_div·R_div. Logged besides: `pair`,
the mean θ² of the sampled partners (the identity cost the coupling trades off),
and `sinkhorn`, the iterations the plan took.
"""

from __future__ import annotations

import torch

from fclf.model.field import VectorField
from fclf.model.flow import flow_velocity, geodesic_angle, slerp, slerp_velocity
from fclf.train.bank import CodeBank
from fclf.train.objectives.base import (
    Batch,
    FlowSettings,
    ObjectiveWeights,
    jacobian_terms,
    moving_rows,
    zero_like_graph,
)

COMPONENTS = ("loss", "fm", "curl", "div", "pair", "sinkhorn")


def coupling_cost(
    sources: torch.Tensor, targets: torch.Tensor, source_groups: torch.Tensor,
    target_groups: torch.Tensor, lambda_identity: float,
) -> torch.Tensor:
    """(n, m) C2OT cost: lambda_identity · geodesic distance² + ∞ across codes (float64)."""
    cos = (sources.double() @ targets.double().T).clamp(-1.0, 1.0)
    cost = lambda_identity * torch.arccos(cos).pow(2).cpu()
    mismatch = source_groups.cpu()[:, None] != target_groups.cpu()[None, :]
    return cost.masked_fill(mismatch, float("inf"))


SINKHORN_TOLERANCE = 1e-3  # the params schema's default of loss.sinkhorn_tolerance
MAX_ITERATIONS = 5000
CHECK_EVERY = 10


def _code_blocks(groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(codes, counts, index (G, m)): index[g, s] = the s-th row of code g (-1 = padding)."""
    codes, inverse, counts = torch.unique(groups, return_inverse=True, return_counts=True)
    order = torch.argsort(inverse, stable=True)
    slot = torch.arange(len(groups)) - (torch.cumsum(counts, 0) - counts).repeat_interleave(counts)
    index = torch.full((len(codes), int(counts.max())), -1, dtype=torch.int64)
    index[inverse[order], slot] = order
    return codes, counts, index


def sinkhorn_plan(
    cost: torch.Tensor, source_groups: torch.Tensor, target_groups: torch.Tensor,
    iterations: int | None = None, tolerance: float = SINKHORN_TOLERANCE,
) -> torch.Tensor:
    """`sinkhorn`'s plan (see there)."""
    return sinkhorn(cost, source_groups, target_groups, iterations, tolerance)[0]


def sinkhorn(
    cost: torch.Tensor, source_groups: torch.Tensor, target_groups: torch.Tensor,
    iterations: int | None = None, tolerance: float = SINKHORN_TOLERANCE,
) -> tuple[torch.Tensor, int]:
    """((n, m) float64 entropic OT plan ∝ exp(-cost), block-diagonal by code; iterations).

    `cost` is `coupling_cost`'s (∞ across codes). Each code's block is a coupling
    of its sources and targets with uniform marginals (1/n_g per source and per
    target, so a block sums to 1); entries across codes are exactly 0. Computed
    with log-space Sinkhorn updates (rows, then columns) on all codes at once,
    each code padded to the largest one: exactly `iterations` of them when given,
    else until the largest relative row-mass error is below `tolerance` (checked
    every CHECK_EVERY iterations, at most MAX_ITERATIONS). Every code needs as
    many targets as sources (the balanced problem).
    """
    src = source_groups.cpu()
    tgt = target_groups.cpu()
    codes, counts, rows = _code_blocks(src)
    tcodes, tcounts, cols = _code_blocks(tgt)
    if not (torch.equal(codes, tcodes) and torch.equal(counts, tcounts)):
        raise ValueError(
            "every code group needs as many targets as sources: sources per code "
            f"{dict(zip(codes.tolist(), counts.tolist(), strict=True))}, targets per code "
            f"{dict(zip(tcodes.tolist(), tcounts.tolist(), strict=True))}")
    real_rows, real_cols = rows >= 0, cols >= 0
    inside = real_rows[:, :, None] & real_cols[:, None, :]
    padding = ~real_rows[:, :, None] & ~real_cols[:, None, :]
    log_k = -cost.double().cpu()[rows.clamp_min(0)[:, :, None], cols.clamp_min(0)[:, None, :]]
    # padding rows and columns form their own uniform block, so no row is all -inf
    log_k = torch.where(inside, log_k, torch.where(padding, 0.0, float("-inf")))
    log_marginal = torch.where(real_rows, -torch.log(counts.double())[:, None], 0.0)
    f = torch.zeros_like(log_marginal)
    g = torch.zeros_like(log_marginal)
    limit = MAX_ITERATIONS if iterations is None else iterations
    done = 0
    while done < limit:
        f = log_marginal - torch.logsumexp(log_k + g[:, None, :], 2)
        g = log_marginal - torch.logsumexp(log_k + f[:, :, None], 1)
        done += 1
        if iterations is None and done % CHECK_EVERY == 0:
            row_mass = f + torch.logsumexp(log_k + g[:, None, :], 2)
            error = torch.expm1(row_mass - log_marginal).abs().masked_fill(~real_rows, 0.0)
            if float(error.max()) < tolerance:
                break
    block = torch.exp(f[:, :, None] + log_k + g[:, None, :])
    plan = torch.zeros(len(src), len(tgt), dtype=torch.float64)
    r = rows[:, :, None].expand_as(inside)[inside]
    c = cols[:, None, :].expand_as(inside)[inside]
    plan[r, c] = block[inside]
    return plan, done


def sample_partners(plan: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """(n,) one target per source, drawn from its row of `plan` (normalised)."""
    return torch.multinomial(plan, 1, generator=generator)[:, 0]


def c2ot_partners(
    bank: CodeBank, z: torch.Tensor, targets: torch.Tensor, lambda_identity: float,
    generator: torch.Generator | None, tolerance: float = SINKHORN_TOLERANCE,
) -> tuple[torch.Tensor, int]:
    """((n,) bank positions of the sources' partners, Sinkhorn iterations): one draw per
    source, then a partner sampled from each source's row of the entropic C2OT plan."""
    with torch.no_grad():
        groups = bank.groups(targets)
        drawn = bank.sample(groups, 1, generator)[:, 0]
        cost = coupling_cost(z, bank.embeddings[drawn], groups, groups, lambda_identity)
        plan, iterations = sinkhorn(cost, groups, groups, tolerance=tolerance)
        choice = sample_partners(plan, generator)
    return drawn[choice.to(drawn.device)], iterations


def target_velocity(z: torch.Tensor, x1: torch.Tensor, t: torch.Tensor,
                    horizon: float, sphere: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(z_t, u_t / T): the point at time t of the path z -> x1 (the geodesic on the sphere,
    else the straight line) and the velocity the field must have there to arrive at x1
    after flowing for `horizon` T."""
    if not sphere:
        t = t.reshape(-1, 1).to(z.dtype)
        return (1 - t) * z + t * x1, (x1 - z) / horizon
    return slerp(z, x1, t), slerp_velocity(z, x1, t) / horizon


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
    chosen, iterations = c2ot_partners(bank, z, batch.target[index], weights.lambda_identity,
                                       generator, weights.sinkhorn_tolerance)
    partners = bank.embeddings[chosen]
    t = torch.rand(len(index), generator=generator).to(z.device, z.dtype)
    z_t, u = target_velocity(z, partners, t, flow.horizon, flow.sphere)
    f, v, cache = flow_velocity(field, z_t, condition.select(index), flow.sphere)
    fm = (f - u).pow(2).sum(-1).sum() / n
    curl, div = jacobian_terms(field, cache, z_t, v, weights, flow, generator, n)
    pair = geodesic_angle(z, partners).pow(2).sum() / n
    total = fm + weights.lambda_curl * curl + weights.lambda_div * div
    return {"loss": total, "fm": fm, "curl": curl, "div": div, "pair": pair.detach(),
            "sinkhorn": torch.tensor(float(iterations))}
