"""Integrators: on the sphere or in R^d, euler / midpoint / rk4 and their convergence."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from fclf.model.field import VectorField
from fclf.model.flow import INTEGRATORS, integrate, make_step, project_tangent, retract

DIM, K, N = 8, 3, 6



def setup(init_scale: float = 0.5, dtype=torch.float64):
    torch.manual_seed(0)
    field = VectorField(DIM, K, hidden_dim=16, attribute_embed_dim=4, init_scale=init_scale)
    field = field.to(dtype)
    gen = torch.Generator().manual_seed(1)
    z = retract(torch.randn(N, DIM, generator=gen, dtype=dtype))
    y = torch.randint(0, 2, (N, K), generator=gen).to(dtype)
    return field, z, y


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
