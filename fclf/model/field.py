"""The conditional vector field v(z, y): an MLP over [z, embed(y)].

Besides the forward pass, the field computes Jacobian-vector products J_v·t
and vector-Jacobian products J_vᵀ·g with respect to z *by hand*, reusing the
forward pass's pre-activations. Both are a few batched matmuls with the same
weights, stay differentiable w.r.t. the parameters, and cost far less than
torch.func transforms or finite differences: the curl/divergence penalties
need them at every training step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class ForwardCache:
    """What the JVP/VJP need from a forward pass: pre-activations of hidden layers."""

    pre_activations: list[torch.Tensor]
    activation_grads: list[torch.Tensor]


def _silu_grad(h: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(h)
    return s * (1 + h * (1 - s))


class VectorField(nn.Module):
    """v(z, y) = W_out · silu(… silu(W_z z + W_y e(y) + b) …), e(y) a learned embedding.

    The output layer starts tiny (`init_scale`) so a fresh field is close to the
    identity flow. SiLU keeps v smooth in z, so its Jacobian is well defined.
    """

    def __init__(
        self,
        dim: int,
        num_attributes: int,
        hidden_dim: int = 256,
        num_layers: int = 2,
        attribute_embed_dim: int = 32,
        init_scale: float = 0.01,
    ):
        super().__init__()
        self.dim = dim
        self.num_attributes = num_attributes
        self.attribute_embed = nn.Linear(num_attributes, attribute_embed_dim)
        self.input_z = nn.Linear(dim, hidden_dim)
        self.input_y = nn.Linear(attribute_embed_dim, hidden_dim, bias=False)
        self.hidden = nn.ModuleList(
            nn.Linear(hidden_dim, hidden_dim) for _ in range(num_layers - 1)
        )
        self.output = nn.Linear(hidden_dim, dim)
        nn.init.normal_(self.output.weight, std=init_scale)
        nn.init.zeros_(self.output.bias)

    def forward_cached(self, z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ForwardCache]:
        e = F.silu(self.attribute_embed(y.to(z.dtype)))
        h = self.input_z(z) + self.input_y(e)
        pres = [h]
        a = F.silu(h)
        for layer in self.hidden:
            h = layer(a)
            pres.append(h)
            a = F.silu(h)
        v = self.output(a)
        return v, ForwardCache(pres, [_silu_grad(p) for p in pres])

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.forward_cached(z, y)[0]

    def jvp(self, cache: ForwardCache, tangents: torch.Tensor) -> torch.Tensor:
        """J_v · t for tangents of shape (P, N, dim): P probes per point."""
        u = tangents @ self.input_z.weight.T
        layers = list(self.hidden) + [self.output]
        for grad, layer in zip(cache.activation_grads, layers, strict=True):
            u = (grad * u) @ layer.weight.T
        return u

    def vjp(self, cache: ForwardCache, cotangents: torch.Tensor) -> torch.Tensor:
        """J_vᵀ · g for cotangents of shape (P, N, dim)."""
        layers = list(self.hidden) + [self.output]
        u = cotangents
        for grad, layer in zip(reversed(cache.activation_grads), reversed(layers), strict=True):
            u = (u @ layer.weight) * grad
        return u @ self.input_z.weight


def build_field(dim: int, num_attributes: int, model_config) -> VectorField:
    """A VectorField sized by a ModelConfig (fclf.config)."""
    return VectorField(
        dim,
        num_attributes,
        hidden_dim=model_config.hidden_dim,
        num_layers=model_config.num_layers,
        attribute_embed_dim=model_config.attribute_embed_dim,
        init_scale=model_config.init_scale,
    )
