"""Flowing embeddings along the field, on the unit sphere or (for comparison) in R^d.

On the sphere each step projects v onto the tangent plane at z, moves, and
renormalises (a retraction). `sphere=False` reproduces the original,
unnormalised update z + step_size * v.

A flow runs for num_steps * step_size units of time (the *horizon*: the same
for training, evaluation and `fclf transfer`, from the `flow` params, recorded
in the model file). Rows whose condition changes nothing (delta = 0, so v = 0)
are not integrated at all: they stay exactly where they are.

Also here: geodesics of the unit sphere (slerp, its velocity, the log map),
which the flow-matching objective regresses the field onto.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.checkpoint import checkpoint

from fclf.model.field import Condition, ForwardCache, VectorField

INTEGRATORS = ("euler", "midpoint", "rk4")


def project_tangent(z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """P(z) v = v - z (z·v): the component of v tangent to the sphere at unit z."""
    return v - z * (z * v).sum(-1, keepdim=True)


def retract(z: torch.Tensor) -> torch.Tensor:
    return z / z.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def flow_velocity(
    field: VectorField, z: torch.Tensor, condition: Condition, sphere: bool
) -> tuple[torch.Tensor, torch.Tensor, ForwardCache]:
    """(f, v, cache): f = P(z)v on the sphere, else v."""
    v, cache = field.forward_cached(z, condition)
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
    field: VectorField, condition: Condition, step_size: float, sphere: bool, integrator: str,
    initial_velocity: torch.Tensor | None = None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """One integration step z -> z' with the chosen scheme.

    `initial_velocity`, if given, is f at the first point the step is applied to
    (reused instead of one forward pass; only for the first call).
    """
    if integrator not in INTEGRATORS:
        raise ValueError(f"unknown integrator {integrator!r}; expected one of {INTEGRATORS}")
    first = [initial_velocity]

    def f(z: torch.Tensor) -> torch.Tensor:
        v = field(z, condition)
        return project_tangent(z, v) if sphere else v

    def f0(z: torch.Tensor) -> torch.Tensor:
        known, first[0] = first[0], None
        return f(z) if known is None else known

    def move(z: torch.Tensor, dz: torch.Tensor) -> torch.Tensor:
        return retract(z + dz) if sphere else z + dz

    h = step_size

    def step(z: torch.Tensor) -> torch.Tensor:
        if integrator == "euler":
            return move(z, h * f0(z))
        if integrator == "midpoint":
            return move(z, h * f(move(z, 0.5 * h * f0(z))))
        k1 = f0(z)
        k2 = f(move(z, 0.5 * h * k1))
        k3 = f(move(z, 0.5 * h * k2))
        k4 = f(move(z, h * k3))
        return move(z, h / 6 * (k1 + 2 * k2 + 2 * k3 + k4))

    return step


def integrate(
    field: VectorField, z: torch.Tensor, condition: Condition, *, num_steps: int,
    step_size: float, sphere: bool = True, integrator: str = "euler",
    keep_trajectory: bool = False, initial_velocity: torch.Tensor | None = None,
    checkpoint_gradients: bool = False,
) -> torch.Tensor:
    """Flow z under `condition`; returns the end point, or (num_steps+1, N, d) if kept.

    Rows with nothing to change (delta = 0) are copied, not integrated: they end
    exactly where they start. `initial_velocity` (f at z, for the active rows
    when some are inactive) saves one forward pass. `checkpoint_gradients`
    recomputes each step in the backward pass instead of storing its
    activations (torch.utils.checkpoint): memory O(1) in num_steps, ~1.5x time.
    """
    active = condition.active
    if not bool(active.all()):
        index = active.nonzero().squeeze(1)
        if initial_velocity is not None and len(initial_velocity) != len(index):
            raise ValueError("initial_velocity must cover exactly the active rows")
        sub = (
            integrate(field, z[index], condition.select(index), num_steps=num_steps,
                      step_size=step_size, sphere=sphere, integrator=integrator,
                      keep_trajectory=keep_trajectory, initial_velocity=initial_velocity,
                      checkpoint_gradients=checkpoint_gradients)
            if len(index) else None
        )
        if keep_trajectory:
            out = z.unsqueeze(0).expand(num_steps + 1, *z.shape)
            return out if sub is None else out.index_copy(1, index, sub)
        return z if sub is None else z.index_copy(0, index, sub)
    if checkpoint_gradients:
        initial_velocity = None  # a recomputed step must not depend on a cached tensor
    step = make_step(field, condition, step_size, sphere, integrator, initial_velocity)
    points = [z]
    for _ in range(num_steps):
        if checkpoint_gradients and torch.is_grad_enabled():
            z = checkpoint(step, z, use_reentrant=False)
        else:
            z = step(z)
        if keep_trajectory:
            points.append(z)
    return torch.stack(points) if keep_trajectory else z


# --- geodesics of the unit sphere ---------------------------------------------------------

_SMALL_ANGLE = 1e-4


def geodesic_angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N,) angle between unit rows a and b (atan2: accurate at 0 and pi)."""
    cross = (a - b * (a * b).sum(-1, keepdim=True)).norm(dim=-1)
    return torch.atan2(cross, (a * b).sum(-1))


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The constant-speed great-circle path from a (t=0) to b (t=1), at t (N,) or scalar."""
    theta = geodesic_angle(a, b)[:, None]
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device).reshape(-1, 1)
    small = theta < _SMALL_ANGLE
    sin = torch.where(small, torch.ones_like(theta), torch.sin(theta))
    wa = torch.where(small, 1 - t, torch.sin((1 - t) * theta) / sin)
    wb = torch.where(small, t, torch.sin(t * theta) / sin)
    return retract(wa * a + wb * b)


def slerp_velocity(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """d/dt slerp(a, b, t): tangent at slerp(a, b, t), of constant norm angle(a, b)."""
    theta = geodesic_angle(a, b)[:, None]
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device).reshape(-1, 1)
    small = theta < _SMALL_ANGLE
    sin = torch.where(small, torch.ones_like(theta), torch.sin(theta))
    da = torch.where(small, -torch.ones_like(t), -theta * torch.cos((1 - t) * theta) / sin)
    db = torch.where(small, torch.ones_like(t), theta * torch.cos(t * theta) / sin)
    velocity = da * a + db * b
    return project_tangent(slerp(a, b, t), velocity)


def log_map(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log_z(x): the tangent vector at z pointing to x, of norm angle(z, x)."""
    theta = geodesic_angle(z, x)[:, None]
    direction = project_tangent(z, x)
    norm = direction.norm(dim=-1, keepdim=True)
    return torch.where(norm > 0, direction * theta / norm.clamp_min(1e-30),
                       torch.zeros_like(direction))
