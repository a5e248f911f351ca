"""Flowing embeddings along the field, on the unit sphere or (for comparison) in R^d.

On the sphere each step projects v onto the tangent plane at z, moves, and
renormalises (a retraction). `sphere=False` reproduces the original,
unnormalised update z + alpha * v.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fclf.model.field import ForwardCache, VectorField

INTEGRATORS = ("euler", "midpoint", "rk4")


def project_tangent(z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """P(z) v = v - z (z·v): the component of v tangent to the sphere at unit z."""
    return v - z * (z * v).sum(-1, keepdim=True)


def retract(z: torch.Tensor) -> torch.Tensor:
    return z / z.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def flow_velocity(
    field: VectorField, z: torch.Tensor, y: torch.Tensor, sphere: bool
) -> tuple[torch.Tensor, torch.Tensor, ForwardCache]:
    """(f, v, cache): f = P(z)v on the sphere, else v."""
    v, cache = field.forward_cached(z, y)
    return (project_tangent(z, v) if sphere else v), v, cache


def _tangent_restricted(
    product: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor, v: torch.Tensor,
    eps: torch.Tensor,
) -> torch.Tensor:
    """P M P ε - (z·v) P ε for M = J_v (product = JVP) or J_vᵀ (product = VJP)."""
    eps_t = project_tangent(z, eps)
    zv = (z * v).sum(-1, keepdim=True)
    return project_tangent(z, product(eps_t)) - zv * eps_t


def tangent_jvp(
    field: VectorField, cache: ForwardCache, z: torch.Tensor, v: torch.Tensor,
    eps: torch.Tensor, sphere: bool,
) -> torch.Tensor:
    """J ε for the flow's Jacobian J (ambient J_v if not `sphere`).

    On the sphere J is the *tangent* Jacobian of f = P(z) v, i.e. the covariant
    derivative P J_f P = P J_v P - (z·v) P: the ambient Jacobian of P v would
    also contain z vᵀ, whose antisymmetric part penalises plain speed (a
    projected constant field, a gradient field on the sphere, would look curly).
    """
    if not sphere:
        return field.jvp(cache, eps)
    return _tangent_restricted(lambda e: field.jvp(cache, e), z, v, eps)


def tangent_vjp(
    field: VectorField, cache: ForwardCache, z: torch.Tensor, v: torch.Tensor,
    eps: torch.Tensor, sphere: bool,
) -> torch.Tensor:
    """Jᵀ ε: on the sphere P J_vᵀ P ε - (z·v) P ε (the transpose of `tangent_jvp`'s J)."""
    if not sphere:
        return field.vjp(cache, eps)
    return _tangent_restricted(lambda e: field.vjp(cache, e), z, v, eps)


def make_step(
    field: VectorField, y: torch.Tensor, step_size: float, sphere: bool, integrator: str
) -> Callable[[torch.Tensor], torch.Tensor]:
    """One integration step z -> z' with the chosen scheme."""
    if integrator not in INTEGRATORS:
        raise ValueError(f"unknown integrator {integrator!r}; expected one of {INTEGRATORS}")

    def f(z: torch.Tensor) -> torch.Tensor:
        v = field(z, y)
        return project_tangent(z, v) if sphere else v

    def move(z: torch.Tensor, dz: torch.Tensor) -> torch.Tensor:
        return retract(z + dz) if sphere else z + dz

    h = step_size

    def step(z: torch.Tensor) -> torch.Tensor:
        if integrator == "euler":
            return move(z, h * f(z))
        if integrator == "midpoint":
            return move(z, h * f(move(z, 0.5 * h * f(z))))
        k1 = f(z)
        k2 = f(move(z, 0.5 * h * k1))
        k3 = f(move(z, 0.5 * h * k2))
        k4 = f(move(z, h * k3))
        return move(z, h / 6 * (k1 + 2 * k2 + 2 * k3 + k4))

    return step


def integrate(
    field: VectorField, z: torch.Tensor, y: torch.Tensor, *, num_steps: int,
    step_size: float, sphere: bool = True, integrator: str = "euler",
    keep_trajectory: bool = False,
) -> torch.Tensor:
    """Flow z toward attributes y; returns the end point, or (num_steps+1, N, d) if kept."""
    step = make_step(field, y, step_size, sphere, integrator)
    points = [z]
    for _ in range(num_steps):
        z = step(z)
        if keep_trajectory:
            points.append(z)
    return torch.stack(points) if keep_trajectory else z
