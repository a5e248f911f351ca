"""Flow-matching family: conditional flow matching on the sphere with C2OT couplings.

For a batch of real sources z with targets y and source readings s
(delta = y - s):

1. Rows with delta = 0 are no-ops: their target velocity is zero, and the
   field gives exactly zero there (v = 0 by construction), so they add zeros.
2. Every other source draws one REAL train point of its target code from the
   bank (`fclf.train.bank`; an absent code uses the nearest present code), so
   the drawn targets have the sources' code counts. Sources and targets are
   then paired by minibatch optimal transport with a *condition-aware* cost
   (C2OT, Cheng & Schwing 2025):
       cost(z, x1) = lambda_identity · θ(z, x1)²  +  (∞ if code(x1) != code(y)),
   θ the geodesic distance. The infinite condition term makes the problem
   block-diagonal, so it is solved exactly per code with
   scipy.optimize.linear_sum_assignment: a bijection within each code that
   never pairs across codes (plain minibatch OT, ignoring conditions, would
   send sources to targets of the wrong code). lambda_identity keeps its
   meaning, the weight of identity preservation: > 0 pairs each source with
   the closest targets of its code (minimum total geodesic distance²); 0 makes
   every pairing equally cheap, i.e. the independent coupling of the draws.
   (With an infinite condition term only its sign changes the assignment.)
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
the mean θ² of the coupling (the identity cost the OT minimises).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from fclf.model.field import VectorField
from fclf.model.flow import flow_velocity, geodesic_angle, slerp, slerp_velocity
from fclf.train.bank import CodeBank
from fclf.train.objectives.base import (
    Batch,
    FlowSettings,
    ObjectiveWeights,
    jacobian_terms,
    zero_like_graph,
)

COMPONENTS = ("loss", "fm", "curl", "div", "pair")


def coupling_cost(
    sources: torch.Tensor, targets: torch.Tensor, source_groups: torch.Tensor,
    target_groups: torch.Tensor, lambda_identity: float,
) -> torch.Tensor:
    """(n, m) C2OT cost: lambda_identity · geodesic distance² + ∞ across codes (float64)."""
    cos = (sources.double() @ targets.double().T).clamp(-1.0, 1.0)
    cost = lambda_identity * torch.arccos(cos).pow(2).cpu()
    mismatch = source_groups.cpu()[:, None] != target_groups.cpu()[None, :]
    return cost.masked_fill(mismatch, float("inf"))


def assign(cost: torch.Tensor, source_groups: torch.Tensor,
           target_groups: torch.Tensor) -> torch.Tensor:
    """perm (n,): source i is paired with target perm[i]; a bijection that stays in each code.

    Exact per code block (the infinite condition term decouples the blocks). Every
    code needs as many targets as sources.
    """
    source_groups = source_groups.cpu().numpy()
    target_groups = target_groups.cpu().numpy()
    perm = np.empty(len(source_groups), np.int64)
    matrix = cost.numpy()
    for group in np.unique(source_groups):
        rows = np.flatnonzero(source_groups == group)
        cols = np.flatnonzero(target_groups == group)
        if len(rows) != len(cols):
            raise ValueError(f"code group {group}: {len(rows)} sources but {len(cols)} targets")
        r, c = linear_sum_assignment(matrix[np.ix_(rows, cols)])
        perm[rows[r]] = cols[c]
    return torch.from_numpy(perm)


def c2ot_partners(
    bank: CodeBank, z: torch.Tensor, targets: torch.Tensor, lambda_identity: float,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """(n,) bank positions of the sources' partners: one draw per source, then C2OT."""
    with torch.no_grad():
        groups = bank.groups(targets)
        drawn = bank.sample(groups, 1, generator)[:, 0]
        cost = coupling_cost(z, bank.embeddings[drawn], groups, groups, lambda_identity)
        perm = assign(cost, groups, groups)
    return drawn[perm.to(drawn.device)]


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
    condition = batch.condition()
    index = condition.active.nonzero().squeeze(1)
    if len(index) == 0:
        zero = zero_like_graph(field)
        return dict.fromkeys(COMPONENTS, zero)
    z = batch.z[index]
    partners = bank.embeddings[
        c2ot_partners(bank, z, batch.target[index], weights.lambda_identity, generator)
    ]
    t = torch.rand(len(index), generator=generator).to(z.device, z.dtype)
    z_t, u = target_velocity(z, partners, t, flow.horizon, flow.sphere)
    f, v, cache = flow_velocity(field, z_t, condition.select(index), flow.sphere)
    fm = (f - u).pow(2).sum(-1).sum() / n
    curl, div = jacobian_terms(field, cache, z_t, v, weights, flow, generator, n)
    pair = geodesic_angle(z, partners).pow(2).sum() / n
    total = fm + weights.lambda_curl * curl + weights.lambda_div * div
    return {"loss": total, "fm": fm, "curl": curl, "div": div, "pair": pair.detach()}
