"""Unbiased probe estimators of the divergence and curl penalties.

For the Jacobian J of the flow's velocity w.r.t. z at a point:

- R_curl = ||J - Jᵀ||_F^2 = E[||(J - Jᵀ)ε||^2] for any ε with E[εεᵀ] = I,
  and (J - Jᵀ)ε = Jε - Jᵀε is one JVP minus one VJP.
- R_div = (tr J)^2. One Hutchinson probe gives εᵀJε with mean tr J, but
  squaring it is biased: E[(εᵀJε)^2] = (tr J)^2 + Var(εᵀJε). Two unbiased fixes:
  * "paired": the product of two *independent* probes' estimates,
    E[(ε₁ᵀJε₁)(ε₂ᵀJε₂)] = (tr J)^2. Costs a second JVP per probe.
  * "corrected" (default): for Gaussian ε, Var(εᵀJε) = 2||J_s||_F^2 with
    J_s = (J + Jᵀ)/2, and ||J_s ε||^2 is an unbiased estimate of ||J_s||_F^2
    from the JVP and VJP the curl needs anyway, so
    (εᵀJε)^2 - ½||Jε + Jᵀε||^2 is unbiased for (tr J)^2 at no extra cost.
    (Expectations are linear: that both terms share ε does not matter.)

With `probes` = K, each estimate is averaged over K probes. Cost per point:
K JVPs + K VJPs ("corrected", Gaussian probes) or 2K JVPs + K VJPs
("paired", Rademacher probes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fclf.model.field import ForwardCache, VectorField
from fclf.model.flow import tangent_jvp, tangent_vjp


@dataclass
class JacobianPenalties:
    divergence: torch.Tensor  # per point, unbiased for (tr J)^2
    curl: torch.Tensor  # per point, unbiased for ||J - J^T||_F^2


def rademacher(shape: tuple[int, ...], generator: torch.Generator | None, device, dtype):
    """±1 entries with equal probability (the sign of a Gaussian: 3x cheaper than randint)."""
    return torch.randn(shape, generator=generator).sign_().to(device=device, dtype=dtype)


DIVERGENCE_ESTIMATORS = ("corrected", "paired")


def estimate_penalties(
    field: VectorField, cache: ForwardCache, z: torch.Tensor, v: torch.Tensor,
    sphere: bool, probes: int = 1, generator: torch.Generator | None = None,
    divergence_estimator: str = "corrected",
) -> JacobianPenalties:
    """Per-point unbiased estimates of (tr J)^2 and ||J - Jᵀ||_F^2."""
    n, d = z.shape
    if divergence_estimator == "corrected":
        eps = torch.randn((probes, n, d), generator=generator).to(z.device, z.dtype)
        jeps = tangent_jvp(field, cache, z, v, eps, sphere)
        jteps = tangent_vjp(field, cache, z, v, eps, sphere)
        quad = (eps * jeps).sum(-1)
        divergence = (quad.pow(2) - 0.5 * (jeps + jteps).pow(2).sum(-1)).mean(0)
        curl = (jeps - jteps).pow(2).sum(-1).mean(0)
        return JacobianPenalties(divergence=divergence, curl=curl)
    if divergence_estimator != "paired":
        raise ValueError(f"unknown divergence_estimator {divergence_estimator!r}")
    eps = rademacher((2 * probes, n, d), generator, z.device, z.dtype)
    jeps = tangent_jvp(field, cache, z, v, eps, sphere)  # (2K, N, d)
    jteps = tangent_vjp(field, cache, z, v, eps[:probes], sphere)  # (K, N, d)
    quad = (eps * jeps).sum(-1)  # (2K, N): each an unbiased estimate of tr J
    divergence = quad[:probes].mean(0) * quad[probes:].mean(0)
    curl = (jeps[:probes] - jteps).pow(2).sum(-1).mean(0)
    return JacobianPenalties(divergence=divergence, curl=curl)


def exact_penalties(jacobian: torch.Tensor) -> JacobianPenalties:
    """Reference values from full Jacobians (N, d, d); for tests and diagnostics."""
    trace = jacobian.diagonal(dim1=-2, dim2=-1).sum(-1)
    antisym = jacobian - jacobian.transpose(-1, -2)
    return JacobianPenalties(divergence=trace**2, curl=antisym.pow(2).sum((-1, -2)))
