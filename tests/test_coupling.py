"""Flow matching's entropic C2OT coupling: plan ∝ exp(-lambda_identity · θ²) within each code."""

from __future__ import annotations

import pytest
import torch
from scipy.optimize import linear_sum_assignment

from fclf.model.flow import geodesic_angle, retract
from fclf.train.bank import CodeBank
from fclf.train.objectives.flow_matching import (
    SINKHORN_TOLERANCE,
    c2ot_partners,
    coupling_cost,
    sample_partners,
    sinkhorn,
    sinkhorn_plan,
)

DIM = 8


def points(n: int, seed: int, spread: float = 1.0) -> torch.Tensor:
    """Unit rows in a cone (spread < 1 narrows it, like face embeddings)."""
    gen = torch.Generator().manual_seed(seed)
    axis = torch.zeros(DIM)
    axis[0] = 1.0
    return retract(axis + spread * torch.randn(n, DIM, generator=gen, dtype=torch.float64))


def problem(n: int = 40, codes: int = 5, seed: int = 0, spread: float = 0.2):
    """Sources, targets and their codes; the targets' rows are in another order. The default
    spread gives squared geodesic distances of 0.1-2 rad², as between faces on the default data
    (0.3-1.6)."""
    gen = torch.Generator().manual_seed(seed)
    source_groups = torch.randint(0, codes, (n,), generator=gen)
    target_groups = source_groups[torch.randperm(n, generator=gen)]
    return points(n, seed + 1, spread), points(n, seed + 2, spread), source_groups, target_groups


def squared_angles(sources: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.arccos((sources @ targets.T).clamp(-1, 1)).pow(2)


def expected_partner_cost(plan: torch.Tensor, theta2: torch.Tensor) -> float:
    """Mean over sources of E[θ²] of the partner drawn from the source's row."""
    rows = plan / plan.sum(1, keepdim=True)
    return float((rows * theta2.masked_fill(plan == 0, 0.0)).sum(1).mean())


def exact_assignment_cost(theta2, source_groups, target_groups) -> float:
    """Mean θ² of the exact minimal-cost bijection within each code (scipy)."""
    total = 0.0
    for code in source_groups.unique():
        rows = (source_groups == code).nonzero().squeeze(1)
        cols = (target_groups == code).nonzero().squeeze(1)
        block = theta2[rows][:, cols].numpy()
        r, c = linear_sum_assignment(block)
        total += float(block[r, c].sum())
    return total / len(source_groups)


@pytest.mark.parametrize("lam", [0.0, 1.0, 10.0, 100.0])
def test_the_plan_never_pairs_across_codes_and_its_marginals_are_balanced_per_code(lam):
    sources, targets, sg, tg = problem()
    cost = coupling_cost(sources, targets, sg, tg, lam)
    assert torch.isinf(cost[sg[:, None] != tg[None, :]]).all()
    plan = sinkhorn_plan(cost, sg, tg)
    assert plan.dtype == torch.float64 and plan.shape == (40, 40)
    assert (plan[sg[:, None] != tg[None, :]] == 0).all(), "never across codes"
    assert (plan >= 0).all()
    for code in sg.unique():
        rows, cols = sg == code, tg == code
        n_g = int(rows.sum())
        block = plan[rows][:, cols]
        torch.testing.assert_close(block.sum(1), torch.full((n_g,), 1 / n_g, dtype=torch.float64),
                                   rtol=0, atol=0.01 / n_g)  # the fixed iterations' error
        torch.testing.assert_close(block.sum(0), torch.full((n_g,), 1 / n_g, dtype=torch.float64),
                                   rtol=0, atol=1e-9)
    # sampled partners stay within the code, whatever the weight
    partners = sample_partners(plan, torch.Generator().manual_seed(0))
    assert torch.equal(tg[partners], sg)


def test_the_plan_is_the_entropic_ot_solution_within_each_code():
    """Sinkhorn's fixed point: log plan + cost = f_i + g_j on each block (a scaled kernel)."""
    sources, targets, sg, tg = problem()
    cost = coupling_cost(sources, targets, sg, tg, 3.0)
    plan = sinkhorn_plan(cost, sg, tg)
    for code in sg.unique():
        rows, cols = sg == code, tg == code
        m = plan[rows][:, cols].log() + cost[rows][:, cols]
        residual = m - m[:, :1] - m[:1, :] + m[0, 0]
        assert residual.abs().max() < 1e-9


def test_lambda_zero_is_the_independent_coupling_uniform_within_the_code():
    sources, targets, sg, tg = problem()
    plan = sinkhorn_plan(coupling_cost(sources, targets, sg, tg, 0.0), sg, tg)
    for code in sg.unique():
        rows, cols = sg == code, tg == code
        n_g = int(rows.sum())
        torch.testing.assert_close(plan[rows][:, cols], torch.full((n_g, n_g), 1 / n_g**2,
                                   dtype=torch.float64), rtol=0, atol=1e-15)
    # and the draws are uniform over the code's targets (4 standard errors)
    gen = torch.Generator().manual_seed(0)
    draws = 4000
    counts = torch.zeros(40)
    for _ in range(draws // 40):
        counts += torch.bincount(sample_partners(plan, gen), minlength=40)
    for code in sg.unique():
        rows, cols = sg == code, tg == code
        n_g = int(rows.sum())
        p = 1 / n_g
        expected = draws / 40 * n_g * p  # every source of the code draws each target w.p. 1/n_g
        se = (draws / 40 * n_g * p * (1 - p)) ** 0.5
        assert ((counts[cols] - expected).abs() < 4 * se).all(), (code, counts[cols], expected)


def test_mean_partner_distance_falls_monotonically_to_the_exact_assignment():
    sources, targets, sg, _ = problem(n=30, seed=3)
    sg = torch.arange(30) % 3  # three codes of ten
    tg = sg[torch.randperm(30, generator=torch.Generator().manual_seed(0))]
    theta2 = squared_angles(sources, targets)
    exact = exact_assignment_cost(theta2, sg, tg)
    independent = float(theta2.masked_fill(sg[:, None] != tg[None, :], 0).sum(1).mean() / 10)

    def costs(lambdas, iterations=None):
        return [expected_partner_cost(sinkhorn_plan(
            coupling_cost(sources, targets, sg, tg, lam), sg, tg, iterations), theta2)
            for lam in lambdas]

    # the default stopping rule (tolerance), over the weights a sweep uses
    fixed = costs([0.0, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0])
    assert fixed[0] == pytest.approx(independent, rel=1e-12)
    assert all(b < a for a, b in zip(fixed, fixed[1:], strict=False)), fixed
    assert fixed[-1] - exact < 0.02 * (independent - exact), (fixed, exact)
    # converged (more iterations), the limit is the exact assignment, approached from above
    converged = costs([10.0, 30.0, 100.0, 300.0, 1000.0], iterations=5000)
    assert all(b < a for a, b in zip(converged, converged[1:], strict=False)), converged
    assert exact - 1e-9 <= converged[-1] < exact + 0.002 * (independent - exact)
    # ... and each source's most likely partner is its exact-OT partner
    plan = sinkhorn_plan(coupling_cost(sources, targets, sg, tg, 1000.0), sg, tg, 5000)
    likely = plan.argmax(1)
    assert sorted(likely.tolist()) == list(range(30)), "a bijection"
    assert float(theta2[torch.arange(30), likely].mean()) == pytest.approx(exact, rel=1e-12)


def test_sampled_partners_follow_the_plan_and_are_deterministic_per_seed():
    sources, targets, sg, tg = problem()
    theta2 = squared_angles(sources, targets)
    means = []
    for lam in (0.0, 10.0, 100.0):
        plan = sinkhorn_plan(coupling_cost(sources, targets, sg, tg, lam), sg, tg)
        a = sample_partners(plan, torch.Generator().manual_seed(7))
        b = sample_partners(plan, torch.Generator().manual_seed(7))
        assert torch.equal(a, b)
        gen = torch.Generator().manual_seed(1)
        draws = torch.stack([sample_partners(plan, gen) for _ in range(200)])
        means.append(float(theta2[torch.arange(40), draws].mean()))
        assert means[-1] == pytest.approx(expected_partner_cost(plan, theta2), rel=0.02)
    assert means[0] > means[1] > means[2]
    assert means[2] == pytest.approx(exact_assignment_cost(theta2, sg, tg), rel=0.03)


def test_c2ot_partners_are_real_points_of_the_target_code_deterministic_and_closer():
    gen = torch.Generator().manual_seed(1)
    bank_y = torch.randint(0, 2, (400, 3), generator=gen)
    bank_z = retract(torch.randn(400, DIM, generator=gen) + 0.5 * (2 * bank_y.float() - 1)
                     @ torch.randn(3, DIM, generator=gen))
    bank = CodeBank(bank_z, bank_y)
    z, target = bank_z[:60], bank_y[:60].clone()
    target[:, 0] = 1 - target[:, 0]
    partners, iterations = c2ot_partners(bank, z, target, 30.0, torch.Generator().manual_seed(0))
    assert 0 < iterations < 5000
    assert torch.equal(bank.group[partners], bank.groups(target)), "the target's code"
    again, _ = c2ot_partners(bank, z, target, 30.0, torch.Generator().manual_seed(0))
    assert torch.equal(partners, again), "deterministic per seed"
    other, _ = c2ot_partners(bank, z, target, 30.0, torch.Generator().manual_seed(1))
    assert not torch.equal(partners, other)

    def mean_cost(lam: float) -> float:
        return sum(float(geodesic_angle(z, bank.embeddings[c2ot_partners(
            bank, z, target, lam, torch.Generator().manual_seed(s))[0]]).pow(2).mean())
            for s in range(5)) / 5

    assert mean_cost(100.0) < mean_cost(3.0) < mean_cost(0.0)


def test_every_code_needs_as_many_targets_as_sources():
    sources, targets, sg, tg = problem()
    cost = coupling_cost(sources, targets, sg, tg, 1.0)
    with pytest.raises(ValueError, match="as many targets as sources"):
        sinkhorn_plan(cost[:, :39], sg, tg[:39])


@pytest.mark.parametrize("lam", [10.0, 100.0, 1000.0])
def test_sinkhorn_runs_to_its_tolerance_where_a_fixed_count_does_not(lam):
    """Rows reach their mass within the tolerance (columns are exact); 200 fixed iterations
    leave a larger error at large lambda_identity, and the count adapts to the problem."""
    sources, targets, sg, tg = problem(n=60, seed=5)
    cost = coupling_cost(sources, targets, sg, tg, lam)
    counts = torch.bincount(sg).double()

    def row_error(plan):
        return float((plan.sum(1) * counts[sg] - 1).abs().max())

    for tolerance in (SINKHORN_TOLERANCE, *((1e-6,) if lam <= 10 else ())):
        plan, used = sinkhorn(cost, sg, tg, tolerance=tolerance)
        assert row_error(plan) < tolerance and used % 10 == 0
        torch.testing.assert_close(plan.sum(0) * counts[tg], torch.ones(60, dtype=torch.float64),
                                   rtol=0, atol=1e-12)
        again, used_again = sinkhorn(cost, sg, tg, tolerance=tolerance)
        assert torch.equal(plan, again) and used == used_again
    if lam >= 100:
        assert row_error(sinkhorn_plan(cost, sg, tg, iterations=200)) > SINKHORN_TOLERANCE
    assert sinkhorn(cost, sg, tg, iterations=7)[1] == 7
