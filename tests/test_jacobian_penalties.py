"""The probe estimators of (tr J)^2 and ||J - J^T||_F^2 are unbiased (and the naive one is not).

Each point is repeated M times; every copy draws its own probes, so the M
per-copy estimates are independent samples of the estimator. Their mean must
match the exact value from a jacrev Jacobian within 4 standard errors (the
standard error is computed from the same samples). Seeds are fixed, so the
tests are deterministic; with other seeds they fail with probability ~1e-4.
"""

from __future__ import annotations

import pytest
import torch
from torch.func import jacrev

from fclf.model.field import Condition, VectorField
from fclf.model.flow import flow_velocity, project_tangent, tangent_jvp
from fclf.model.jacobian_penalties import estimate_penalties, exact_penalties, rademacher

DIM, K, N = 6, 3, 4
REPEATS = 20_000
Z_TOL = 4.0



def setup_case(sphere: bool):
    field, z, y, jac = case_with_jacobian(sphere)
    return field, z, y, exact_penalties(jac), jac.diagonal(dim1=-2, dim2=-1).sum(-1)


def case_with_jacobian(sphere: bool):
    torch.manual_seed(0)
    field = VectorField(DIM, K, hidden_dim=16, attribute_embed_dim=4, init_scale=0.7).double()
    gen = torch.Generator().manual_seed(1)
    z = torch.nn.functional.normalize(torch.randn(N, DIM, generator=gen, dtype=torch.float64),
                                      dim=-1)
    y = torch.randint(0, 2, (N, K), generator=gen).double()
    delta = (2 * y - 1) * torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)  # 2 of 3 change
    y = Condition.of(y, delta)

    def fn(zz):
        v = field(zz, y)
        return project_tangent(zz, v) if sphere else v

    full = jacrev(fn)(z).detach()
    idx = torch.arange(N)
    jac = full[idx, :, idx, :]
    if sphere:  # the tangent Jacobian P J P (see fclf.model.flow.tangent_jvp)
        proj = torch.eye(DIM, dtype=z.dtype) - z[:, :, None] * z[:, None, :]
        jac = proj @ jac @ proj
    return field, z, y, jac


def repeat(condition: Condition, times: int) -> Condition:
    return Condition.of(condition.target.repeat(times, 1), condition.delta.repeat(times, 1))


def sample_estimates(field, z, y, sphere, probes=1, repeats=REPEATS, seed=5,
                     estimator="paired"):
    """(repeats, N) independent draws of the divergence and curl estimators."""
    zr, yr = z.repeat(repeats, 1), repeat(y, repeats)
    with torch.no_grad():
        _, v, cache = flow_velocity(field, zr, yr, sphere)
        est = estimate_penalties(field, cache, zr, v, sphere, probes,
                                 torch.Generator().manual_seed(seed), estimator)
    return est.divergence.view(repeats, N), est.curl.view(repeats, N)


def z_scores(samples: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    se = samples.std(0) / len(samples) ** 0.5
    return (samples.mean(0) - exact) / se


@pytest.mark.parametrize("estimator", ["paired", "corrected"])
@pytest.mark.parametrize("sphere", [False, True], ids=["ambient", "tangent"])
def test_estimators_are_unbiased(sphere, estimator):
    field, z, y, exact, _ = setup_case(sphere)
    assert (exact.divergence > 1e-3).all() and (exact.curl > 1e-1).all(), "non-trivial targets"
    div, curl = sample_estimates(field, z, y, sphere, estimator=estimator)
    assert z_scores(div, exact.divergence).abs().max() < Z_TOL
    assert z_scores(curl, exact.curl).abs().max() < Z_TOL


@pytest.mark.parametrize("sphere", [False, True], ids=["ambient", "tangent"])
def test_naive_squared_single_probe_is_biased(sphere):
    """E[(eps^T J eps)^2] = (tr J)^2 + Var: why two independent probe groups are multiplied."""
    field, z, y, exact, trace = setup_case(sphere)
    zr, yr = z.repeat(REPEATS, 1), repeat(y, REPEATS)
    with torch.no_grad():
        _, v, cache = flow_velocity(field, zr, yr, sphere)
        eps = rademacher((1, len(zr), DIM), torch.Generator().manual_seed(6), zr.device, zr.dtype)
        quad = (eps * tangent_jvp(field, cache, zr, v, eps, sphere)).sum(-1).view(REPEATS, N)
    # The single-probe trace estimate itself is unbiased ...
    assert z_scores(quad, trace).abs().max() < Z_TOL
    # ... but its square overestimates (tr J)^2 by far more than the statistical tolerance
    # by exactly Var(eps^T J eps) = sum_{i != j} J_ij (J_ij + J_ji) for Rademacher probes.
    assert (z_scores(quad**2, exact.divergence) > 3 * Z_TOL).all()
    jac = case_with_jacobian(sphere)[3]
    off = jac * (1 - torch.eye(DIM, dtype=jac.dtype))
    bias = (off * (off + off.transpose(1, 2))).sum((1, 2))
    assert (bias > 0.05 * exact.divergence).all(), "a bias worth showing"
    assert z_scores(quad**2, exact.divergence + bias).abs().max() < Z_TOL


@pytest.mark.parametrize("sphere", [False, True], ids=["ambient", "tangent"])
def test_more_probes_stay_unbiased_and_reduce_variance(sphere):
    field, z, y, exact, _ = setup_case(sphere)
    div1, curl1 = sample_estimates(field, z, y, sphere, probes=1, repeats=4000, seed=7)
    div4, curl4 = sample_estimates(field, z, y, sphere, probes=4, repeats=4000, seed=8)
    assert z_scores(div4, exact.divergence).abs().max() < Z_TOL
    assert z_scores(curl4, exact.curl).abs().max() < Z_TOL
    # Averaging 4 probes divides the curl estimator's variance by 4 (allow sampling slack).
    ratio = curl1.var(0) / curl4.var(0)
    assert ((ratio > 3.0) & (ratio < 5.3)).all(), ratio
    assert (div4.var(0) < div1.var(0)).all()


def test_estimates_have_per_point_shape_and_follow_the_generator():
    field, z, y, _, _ = setup_case(True)
    _, v, cache = flow_velocity(field, z, y, True)
    a = estimate_penalties(field, cache, z, v, True, 2, torch.Generator().manual_seed(3))
    b = estimate_penalties(field, cache, z, v, True, 2, torch.Generator().manual_seed(3))
    c = estimate_penalties(field, cache, z, v, True, 2, torch.Generator().manual_seed(4))
    assert a.divergence.shape == a.curl.shape == (N,)
    assert torch.equal(a.divergence, b.divergence) and torch.equal(a.curl, b.curl)
    assert not torch.equal(a.curl, c.curl)
    assert (a.curl >= 0).all()


def test_rademacher_is_plus_minus_one_with_equal_probability():
    r = rademacher((200_000,), torch.Generator().manual_seed(0), "cpu", torch.float32)
    assert set(r.unique().tolist()) == {-1.0, 1.0}
    assert abs(float(r.mean())) < 4 / 200_000**0.5


def test_exact_penalties_on_a_known_matrix():
    jac = torch.tensor([[[1.0, 2.0], [0.0, 3.0]]])
    exact = exact_penalties(jac)
    assert exact.divergence.item() == 16.0  # (1 + 3)^2
    assert exact.curl.item() == 8.0  # J - J^T = [[0, 2], [-2, 0]]
