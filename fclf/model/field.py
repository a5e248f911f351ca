"""The conditional vector field v(z, s, y) = sum_j delta_j h_j(z, y), delta = y - s.

`s` is the source's attribute reading, `y` the target, both 0/1 vectors of k
attributes, so delta is in {-1, 0, 1}^k and says which attributes must change
and in which direction. The MLP over [z, e(y)] ends in one linear layer of size
k * d, read as k heads h_j(z, y) in R^d, which the field contracts with delta:

- delta = 0 gives v = 0 *exactly*: a point that already has its target does
  not move (by construction, not by training);
- the field knows which attributes to change: only the heads of changed
  attributes are evaluated, and a head moves its attribute in both directions
  (the sign of delta_j picks the direction).

Only the (row, attribute) pairs with delta != 0 are computed (`Condition.rows`
lists them per attribute), so the output layer costs nnz(delta) * hidden * d
instead of N * k * hidden * d: with one or two changed attributes per row, a
fraction of the dense cost.

Besides the forward pass, the field computes Jacobian-vector products J_v·t
and vector-Jacobian products J_vᵀ·g with respect to z *by hand*, reusing the
forward pass's pre-activations (delta and y are fixed along a flow, so
J_v = sum_j delta_j J_{h_j}). Both are a few batched matmuls with the same
weights, stay differentiable w.r.t. the parameters, and cost far less than
torch.func transforms or finite differences: the curl/divergence penalties
need them at every training step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from fclf.model.source_reader import SourceReader


@dataclass(frozen=True)
class Condition:
    """What a flow is conditioned on: the target y and the change delta = y - s.

    `rows[j]` are the rows whose attribute j changes (delta_j != 0) and `coef[j]`
    their signs: precomputed once per flow, since delta is fixed along it.
    """

    target: torch.Tensor  # (N, k) 0/1, float
    delta: torch.Tensor  # (N, k) in {-1, 0, 1}, float
    rows: tuple[torch.Tensor, ...]
    coef: tuple[torch.Tensor, ...]

    @classmethod
    def of(cls, target: torch.Tensor, delta: torch.Tensor) -> Condition:
        """The condition for targets y and changes delta (same shape, same device)."""
        if target.shape != delta.shape or target.ndim != 2:
            raise ValueError(
                f"target {tuple(target.shape)} and delta {tuple(delta.shape)} must both be (N, k)"
            )
        rows = tuple(delta[:, j].nonzero().squeeze(1) for j in range(delta.shape[1]))
        coef = tuple(delta[r, j] for j, r in enumerate(rows))
        return cls(target, delta, rows, coef)

    @classmethod
    def from_source(cls, target: torch.Tensor, source: torch.Tensor, dtype=None) -> Condition:
        """delta = target - source for 0/1 attribute vectors."""
        dtype = dtype or torch.get_default_dtype()
        target = target.to(dtype)
        return cls.of(target, target - source.to(dtype))

    @property
    def active(self) -> torch.Tensor:
        """(N,) bool: rows with something to change (the others have v = 0)."""
        return self.delta.ne(0).any(-1)

    def select(self, index: torch.Tensor) -> Condition:
        """The condition of rows `index` (a 1-D LongTensor)."""
        return Condition.of(self.target[index], self.delta[index])

    def to(self, dtype: torch.dtype) -> Condition:
        return Condition.of(self.target.to(dtype), self.delta.to(dtype))


@dataclass
class ForwardCache:
    """What the JVP/VJP need from a forward pass: hidden pre-activation slopes and the heads'
    rows and signs."""

    pre_activations: list[torch.Tensor]
    activation_grads: list[torch.Tensor]
    condition: Condition


def _silu_grad(h: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(h)
    return s * (1 + h * (1 - s))


class VectorField(nn.Module):
    """v(z, s, y) = F sum_j delta_j (W_j a(z, y) + b_j), a = silu(… silu(W_z z + W_y e(y) + b) …),
    F = I - B Bᵀ the projection off the frozen directions B (none by default: F = I).

    The heads W_j (one linear layer of size k * d) start tiny (`init_scale`) so
    a fresh field is close to the identity flow. SiLU keeps v smooth in z, so
    its Jacobian is well defined. `reader` is the model's own attribute reader
    (logistic, fitted on train embeddings by the training wing), which gives s
    when only (z, y) are known (evaluation, `fclf transfer`).
    """

    def __init__(
        self,
        dim: int,
        num_attributes: int,
        hidden_dim: int = 256,
        num_layers: int = 2,
        attribute_embed_dim: int = 32,
        init_scale: float = 0.01,
        frozen_rank: int = 0,
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
        self.output = nn.Linear(hidden_dim, num_attributes * dim)
        nn.init.normal_(self.output.weight, std=init_scale)
        nn.init.zeros_(self.output.bias)
        self.reader = SourceReader(dim, num_attributes)
        # orthonormal columns the output is kept orthogonal to (fclf.model.frozen_directions);
        # zeros until `set_frozen_directions` (a zero column removes nothing)
        self.register_buffer("frozen_directions", torch.zeros(dim, frozen_rank))

    def set_frozen_directions(self, basis: torch.Tensor) -> None:
        """Keep v orthogonal to the span of `basis` (dim, frozen_rank), orthonormal columns."""
        basis = torch.as_tensor(basis, dtype=self.frozen_directions.dtype)
        if basis.shape != self.frozen_directions.shape:
            raise ValueError(f"frozen directions of shape {tuple(basis.shape)}, expected "
                             f"{tuple(self.frozen_directions.shape)}")
        gram = basis.T @ basis
        if not torch.allclose(gram, torch.eye(len(gram), dtype=gram.dtype), atol=1e-4):
            raise ValueError("frozen directions must have orthonormal columns")
        self.frozen_directions.copy_(basis.to(self.frozen_directions.device))

    def _free(self, x: torch.Tensor) -> torch.Tensor:
        """x without its component in the frozen span: (I - B Bᵀ) x (symmetric, so the
        same map serves the forward pass, the JVP and the VJP)."""
        basis = self.frozen_directions.to(x.dtype)
        if basis.shape[1] == 0:
            return x
        return x - (x @ basis) @ basis.T

    def _head_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        k, d = self.num_attributes, self.dim
        return self.output.weight.view(k, d, -1), self.output.bias.view(k, d)

    def _heads(self, a: torch.Tensor, condition: Condition, bias: bool) -> torch.Tensor:
        """sum_j delta_j (W_j a (+ b_j)) for a of shape (..., N, H), only where delta_j != 0."""
        weight, b = self._head_weights()
        out = a.new_zeros((*a.shape[:-1], self.dim))
        for j, (rows, coef) in enumerate(zip(condition.rows, condition.coef, strict=True)):
            if rows.numel() == 0:
                continue
            h = a.index_select(-2, rows) @ weight[j].T
            if bias:
                h = h + b[j]
            out = out.index_add(-2, rows, h * coef[:, None].to(h.dtype))
        return out

    def _heads_transposed(self, g: torch.Tensor, condition: Condition) -> torch.Tensor:
        """sum_j delta_j W_jᵀ g for g of shape (..., N, d): the heads' VJP."""
        weight, _ = self._head_weights()
        out = g.new_zeros((*g.shape[:-1], weight.shape[-1]))
        for j, (rows, coef) in enumerate(zip(condition.rows, condition.coef, strict=True)):
            if rows.numel() == 0:
                continue
            u = g.index_select(-2, rows) @ weight[j]
            out = out.index_add(-2, rows, u * coef[:, None].to(u.dtype))
        return out

    def forward_cached(
        self, z: torch.Tensor, condition: Condition
    ) -> tuple[torch.Tensor, ForwardCache]:
        e = F.silu(self.attribute_embed(condition.target.to(z.dtype)))
        h = self.input_z(z) + self.input_y(e)
        pres = [h]
        a = F.silu(h)
        for layer in self.hidden:
            h = layer(a)
            pres.append(h)
            a = F.silu(h)
        v = self._free(self._heads(a, condition, bias=True))
        return v, ForwardCache(pres, [_silu_grad(p) for p in pres], condition)

    def forward(self, z: torch.Tensor, condition: Condition) -> torch.Tensor:
        return self.forward_cached(z, condition)[0]

    def jvp(self, cache: ForwardCache, tangents: torch.Tensor) -> torch.Tensor:
        """J_v · t for tangents of shape (P, N, dim): P probes per point."""
        u = tangents @ self.input_z.weight.T
        grads = cache.activation_grads
        for grad, layer in zip(grads[:-1], self.hidden, strict=True):
            u = (grad * u) @ layer.weight.T
        return self._free(self._heads(grads[-1] * u, cache.condition, bias=False))

    def vjp(self, cache: ForwardCache, cotangents: torch.Tensor) -> torch.Tensor:
        """J_vᵀ · g for cotangents of shape (P, N, dim)."""
        grads = cache.activation_grads
        u = self._heads_transposed(self._free(cotangents), cache.condition) * grads[-1]
        for grad, layer in zip(reversed(grads[:-1]), reversed(self.hidden), strict=True):
            u = (u @ layer.weight) * grad
        return u @ self.input_z.weight

    def condition(self, z: torch.Tensor, target: torch.Tensor) -> Condition:
        """The condition of a flow from z toward `target`, with s read by `self.reader`."""
        return Condition.from_source(target, self.reader.read(z), z.dtype)


def build_field(dim: int, num_attributes: int, model_config) -> VectorField:
    """A VectorField sized by a ModelConfig (fclf.config)."""
    return VectorField(
        dim,
        num_attributes,
        hidden_dim=model_config.hidden_dim,
        num_layers=model_config.num_layers,
        attribute_embed_dim=model_config.attribute_embed_dim,
        init_scale=model_config.init_scale,
        frozen_rank=model_config.frozen_identity_rank + model_config.frozen_nuisance_rank,
    )
