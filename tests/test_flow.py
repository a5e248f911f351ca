"""Integrators: on the sphere or in R^d, euler / midpoint / rk4 and their convergence; rows
with nothing to change stay put; geodesics of the sphere."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from fclf.model.field import Condition, VectorField
from fclf.model.flow import (
    INTEGRATORS,
    flow_velocity,
    geodesic_angle,
    integrate,
    log_map,
    make_step,
    project_tangent,
    retract,
    slerp,
    slerp_velocity,
)

DIM, K, N = 8, 3, 6



def setup(init_scale: float = 0.5, dtype=torch.float64):
    torch.manual_seed(0)
    field = VectorField(DIM, K, hidden_dim=16, attribute_embed_dim=4, init_scale=init_scale)
    field = field.to(dtype)
    gen = torch.Generator().manual_seed(1)
    z = retract(torch.randn(N, DIM, generator=gen, dtype=dtype))
    y = torch.randint(0, 2, (N, K), generator=gen).to(dtype)
    delta = torch.zeros(N, K, dtype=dtype)
    delta[:, 0] = 2 * y[:, 0] - 1  # every row changes attribute 0 toward its target
    delta[::2, 1] = 2 * y[::2, 1] - 1  # and half the rows attribute 1 too
    return field, z, Condition.of(y, delta)


def test_project_tangent_is_orthogonal_to_z_and_idempotent():
    _, z, _ = setup()
    v = torch.randn(N, DIM, dtype=torch.float64)
    p = project_tangent(z, v)
    torch.testing.assert_close((p * z).sum(-1), torch.zeros(N, dtype=torch.float64),
                               rtol=0, atol=1e-14)
    torch.testing.assert_close(project_tangent(z, p), p, rtol=0, atol=1e-14)


@pytest.mark.parametrize("integrator", INTEGRATORS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sphere_flow_stays_on_the_unit_sphere(integrator, dtype):
    field, z, y = setup(init_scale=2.0, dtype=dtype)  # big steps: a strong field
    with torch.no_grad():
        traj = integrate(field, z, y, num_steps=20, step_size=0.3, sphere=True,
                         integrator=integrator, keep_trajectory=True)
    assert traj.shape == (21, N, DIM)
    assert torch.equal(traj[0], z)
    atol = 1e-6 if dtype == torch.float32 else 1e-14
    norms = traj.norm(dim=-1)
    torch.testing.assert_close(norms, torch.ones_like(norms), rtol=0, atol=atol)
    assert (traj[-1] - z).norm(dim=-1).min() > 0.1, "the points really moved"


def test_ambient_euler_is_exactly_z_plus_alpha_v():
    field, z, y = setup()
    alpha = 0.1
    with torch.no_grad():
        traj = integrate(field, z, y, num_steps=3, step_size=alpha, sphere=False,
                         integrator="euler", keep_trajectory=True)
        for i in range(3):
            assert torch.equal(traj[i + 1], traj[i] + alpha * field(traj[i], y))
        end = integrate(field, z, y, num_steps=3, step_size=alpha, sphere=False)
    assert torch.equal(end, traj[-1])
    assert (traj[-1].norm(dim=-1) - 1).abs().max() > 1e-3, "no renormalisation off the sphere"


def test_sphere_euler_is_the_retracted_tangent_step():
    field, z, y = setup()
    with torch.no_grad():
        got = make_step(field, y, 0.1, True, "euler")(z)
        want = retract(z + 0.1 * project_tangent(z, field(z, y)))
    assert torch.equal(got, want)


@pytest.mark.parametrize("sphere", [True, False])
def test_integrators_converge_to_the_same_end_point(sphere):
    field, z, y = setup()
    total = 0.6
    with torch.no_grad():
        euler = integrate(field, z, y, num_steps=2000, step_size=total / 2000, sphere=sphere)
        others = {
            name: integrate(field, z, y, num_steps=40, step_size=total / 40, sphere=sphere,
                            integrator=name)
            for name in ("midpoint", "rk4")
        }
    moved = (euler - z).norm(dim=-1).min()
    assert moved > 0.05
    for name, end in others.items():
        # Euler with h = 3e-4 is within ~1e-4 of the exact flow.
        assert (end - euler).norm(dim=-1).max() < 3e-4, name
    assert (others["midpoint"] - others["rk4"]).norm(dim=-1).max() < 1e-4


@functools.cache
def reference_end_point(sphere: bool) -> torch.Tensor:
    field, z, y = setup()
    with torch.no_grad():
        return integrate(field, z, y, num_steps=256, step_size=0.6 / 256, sphere=sphere,
                         integrator="rk4")


@pytest.mark.parametrize("sphere", [True, False])
@pytest.mark.parametrize(("integrator", "order"), [("euler", 1), ("midpoint", 2), ("rk4", 4)])
def test_convergence_order(sphere, integrator, order):
    """Halving the step divides the end-point error by ~2^order (retracted stages included)."""
    field, z, y = setup()
    total = 0.6
    with torch.no_grad():
        ref = reference_end_point(sphere)

        def error(steps: int) -> float:
            end = integrate(field, z, y, num_steps=steps, step_size=total / steps,
                            sphere=sphere, integrator=integrator)
            return float((end - ref).norm(dim=-1).max())

        coarse, fine = error(8), error(16)
    observed = math.log2(coarse / fine)
    assert abs(observed - order) < 0.2, (coarse, fine, observed)


def test_unknown_integrator_is_rejected():
    field, _, y = setup()
    with pytest.raises(ValueError, match="unknown integrator 'heun'"):
        make_step(field, y, 0.1, True, "heun")


def test_integration_is_differentiable_in_the_parameters():
    field, z, y = setup()
    end = integrate(field, z, y, num_steps=3, step_size=0.1, sphere=True, integrator="rk4")
    end.sum().backward()
    assert field.output.weight.grad is not None and field.output.weight.grad.abs().max() > 0


@pytest.mark.parametrize("integrator", INTEGRATORS)
def test_rows_without_a_change_stay_exactly_put(integrator):
    field, z, cond = setup(init_scale=2.0)
    delta = cond.delta.clone()
    delta[[1, 4]] = 0
    cond = Condition.of(cond.target, delta)
    with torch.no_grad():
        traj = integrate(field, z, cond, num_steps=5, step_size=0.2, integrator=integrator,
                         keep_trajectory=True)
        active = integrate(field, z[[0, 2, 3, 5]], cond.select(torch.tensor([0, 2, 3, 5])),
                           num_steps=5, step_size=0.2, integrator=integrator)
    for row in (1, 4):
        assert all(torch.equal(traj[s, row], z[row]) for s in range(6))
    assert torch.equal(traj[-1, [0, 2, 3, 5]], active)
    assert ((traj[-1, [0, 2, 3, 5]] - z[[0, 2, 3, 5]]).norm(dim=-1) > 0.1).all()
    nothing = Condition.of(cond.target, torch.zeros_like(delta))
    assert torch.equal(integrate(field, z, nothing, num_steps=3, step_size=0.1), z)


def test_gradients_flow_through_the_kept_rows_only():
    field, z, cond = setup()
    delta = cond.delta.clone()
    delta[0] = 0
    z = z.clone().requires_grad_(True)
    end = integrate(field, z, Condition.of(cond.target, delta), num_steps=3, step_size=0.1)
    end.sum().backward()
    assert torch.equal(z.grad[0], torch.ones(DIM, dtype=torch.float64))  # identity map
    assert field.output.weight.grad.abs().max() > 0


@pytest.mark.parametrize("integrator", INTEGRATORS)
def test_initial_velocity_and_checkpointing_change_nothing(integrator):
    field, z, cond = setup()
    f, _, _ = flow_velocity(field, z, cond, True)
    plain = integrate(field, z, cond, num_steps=4, step_size=0.1, integrator=integrator)
    reused = integrate(field, z, cond, num_steps=4, step_size=0.1, integrator=integrator,
                       initial_velocity=f)
    torch.testing.assert_close(reused, plain, rtol=0, atol=1e-15)
    grads = []
    for checkpointed in (False, True):
        field.zero_grad()
        end = integrate(field, z, cond, num_steps=4, step_size=0.1, integrator=integrator,
                        checkpoint_gradients=checkpointed)
        end.pow(2).sum().backward()
        grads.append(field.input_z.weight.grad.clone())
    torch.testing.assert_close(grads[1], grads[0], rtol=0, atol=1e-14)


# --- geodesics ---------------------------------------------------------------------------


def unit_pairs(n: int = 7, seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    a = retract(torch.randn(n, DIM, generator=gen, dtype=torch.float64))
    b = retract(torch.randn(n, DIM, generator=gen, dtype=torch.float64))
    b[0] = a[0]  # a zero-length geodesic
    b[1] = retract(a[1] + 1e-6 * b[1])  # a tiny one
    return a, b


def test_slerp_ends_at_the_end_points_and_stays_on_the_sphere():
    a, b = unit_pairs()
    torch.testing.assert_close(slerp(a, b, torch.zeros(7)), a, rtol=0, atol=1e-12)
    torch.testing.assert_close(slerp(a, b, torch.ones(7)), b, rtol=0, atol=1e-12)
    t = torch.rand(7, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    mid = slerp(a, b, t)
    torch.testing.assert_close(mid.norm(dim=-1), torch.ones(7, dtype=torch.float64))
    # constant speed: the angle travelled is t * the whole angle
    torch.testing.assert_close(geodesic_angle(a, mid), t * geodesic_angle(a, b),
                               rtol=0, atol=1e-9)


def test_slerp_velocity_is_the_finite_difference_derivative():
    a, b = unit_pairs()
    t = torch.tensor([0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0], dtype=torch.float64)
    h = 1e-6
    lo, hi = (t - h).clamp_min(0), (t + h).clamp_max(1)
    fd = (slerp(a, b, hi) - slerp(a, b, lo)) / (hi - lo)[:, None]
    torch.testing.assert_close(slerp_velocity(a, b, t), fd, rtol=0, atol=1e-6)
    # tangent, of constant norm = the angle, and equal to log_{z_t}(b) / (1 - t)
    v = slerp_velocity(a, b, t)
    zt = slerp(a, b, t)
    torch.testing.assert_close((v * zt).sum(-1), torch.zeros(7, dtype=torch.float64),
                               rtol=0, atol=1e-12)
    torch.testing.assert_close(v.norm(dim=-1), geodesic_angle(a, b), rtol=0, atol=1e-9)
    inner = t < 1
    torch.testing.assert_close(v[inner], log_map(zt, b)[inner] / (1 - t[inner, None]),
                               rtol=0, atol=1e-7)


def test_log_map_points_to_the_target_with_the_geodesic_length():
    a, b = unit_pairs()
    log = log_map(a, b)
    torch.testing.assert_close(log.norm(dim=-1), geodesic_angle(a, b), rtol=0, atol=1e-9)
    # the exponential map of the log map returns b
    norm = log.norm(dim=-1, keepdim=True)
    back = torch.where(norm > 0, torch.cos(norm) * a + torch.sin(norm) * log / norm.clamp_min(
        1e-30), a)
    torch.testing.assert_close(back, b, rtol=0, atol=1e-9)
