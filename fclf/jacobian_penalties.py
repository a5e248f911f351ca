"""Unbiased probe estimators of the divergence and curl penalties.

For the Jacobian J of the flow's velocity w.r.t. z at a point:

- R_div  = (tr J)^2. One Hutchinson probe ε (E[εεᵀ] = I) gives εᵀJε with mean
  tr J, but E[(εᵀJε)^2] = (tr J)^2 + Var, so squaring one probe is biased.
  The product of two *independent* probes' estimates is unbiased:
  E[(ε₁ᵀJε₁)(ε₂ᵀJε₂)] = (tr J)^2.
- R_curl = ||J - Jᵀ||_F^2 = E[||(J - Jᵀ)ε||^2] for any ε with E[εεᵀ] = I,
  and (J - Jᵀ)ε = Jε - Jᵀε is one JVP minus one VJP.

With `probes` = K, K Rademacher probes get both a JVP and a VJP (curl and the
first divergence factor), and K more get a JVP (the second factor); the
estimates average over each group. Cost: 2K JVPs + K VJPs per point.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fclf.field import ForwardCache, VectorField
from fclf.flow import tangent_jvp, tangent_vjp


@dataclass
class JacobianPenalties:
    divergence: torch.Tensor  # per point, unbiased for (tr J)^2
    curl: torch.Tensor  # per point, unbiased for ||J - J^T||_F^2


def rademacher(shape: tuple[int, ...], generator: torch.Generator | None, device, dtype):
    """±1 entries with equal probability (the sign of a Gaussian: 3x cheaper than randint)."""
    return torch.randn(shape, generator=generator).sign_().to(device=device, dtype=dtype)


def estimate_penalties(
    field: VectorField, cache: ForwardCache, z: torch.Tensor, v: torch.Tensor,
    sphere: bool, probes: int = 1, generator: torch.Generator | None = None,
) -> JacobianPenalties:
    """Per-point unbiased estimates of (tr J)^2 and ||J - Jᵀ||_F^2."""
    n, d = z.shape
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
