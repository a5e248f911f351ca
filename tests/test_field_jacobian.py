"""The field's hand-written JVP/VJP and the tangent JVP/VJP against torch.func Jacobians;
the delta-contracted heads (v = 0 exactly where nothing changes)."""

from __future__ import annotations

import pytest
import torch
from torch.func import jacrev

from fclf.model.field import Condition, VectorField
from fclf.model.flow import flow_velocity, project_tangent, tangent_jvp, tangent_vjp

DIM, K, N, PROBES = 6, 3, 5, 4


def make_field(num_layers: int = 2, seed: int = 0, frozen_rank: int = 0) -> VectorField:
    torch.manual_seed(seed)
    # A large init_scale: the Jacobian is O(1), not the near-zero of a fresh training field.
    field = VectorField(DIM, K, hidden_dim=16, num_layers=num_layers, attribute_embed_dim=4,
                        init_scale=0.7, frozen_rank=frozen_rank).double()
    if frozen_rank:
        gen = torch.Generator().manual_seed(seed + 7)
        basis = torch.linalg.qr(torch.randn(DIM, frozen_rank, generator=gen,
                                            dtype=torch.float64))[0]
        field.set_frozen_directions(basis)
    return field


def points(seed: int = 1) -> tuple[torch.Tensor, Condition]:
    """N unit points and a condition whose every row changes one to three attributes."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(N, DIM, generator=gen, dtype=torch.float64)
    z = torch.nn.functional.normalize(z, dim=-1)
    y = torch.randint(0, 2, (N, K), generator=gen).double()
    s = torch.randint(0, 2, (N, K), generator=gen).double()
    s[:, 0] = 1 - y[:, 0]  # at least one change per row
    return z, Condition.of(y, y - s)


def per_point_jacobians(fn, z: torch.Tensor) -> torch.Tensor:
    """(N, d, d) Jacobians of a row-wise map (N, d) -> (N, d), via jacrev."""
    full = jacrev(fn)(z)  # (N, d, N, d); row-wise, so only the diagonal blocks are non-zero
    idx = torch.arange(len(z))
    blocks = full[idx, :, idx, :]
    off = full.clone()
    off[idx, :, idx, :] = 0
    assert off.abs().max() == 0, "the field must act on each point separately"
    return blocks


def tangent_restrict(jac: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """P J P with P = I - z zᵀ: the covariant (tangent) Jacobian on the sphere."""
    proj = torch.eye(z.shape[1], dtype=z.dtype) - z[:, :, None] * z[:, None, :]
    return proj @ jac @ proj


def ambient_map(field, cond):
    return lambda z: field(z, cond)


def tangent_map(field, cond):
    return lambda z: project_tangent(z, field(z, cond))


@pytest.mark.parametrize(("num_layers", "frozen_rank"), [(1, 0), (2, 0), (3, 0), (2, 2)])
def test_field_jvp_and_vjp_match_jacrev(num_layers, frozen_rank):
    field = make_field(num_layers, frozen_rank=frozen_rank)
    z, cond = points()
    jac = per_point_jacobians(ambient_map(field, cond), z)
    v, cache = field.forward_cached(z, cond)
    torch.testing.assert_close(v, field(z, cond), rtol=0, atol=0)
    t = torch.randn(PROBES, N, DIM, dtype=torch.float64)
    expected_jvp = torch.einsum("nij,pnj->pni", jac, t)
    expected_vjp = torch.einsum("nji,pnj->pni", jac, t)
    torch.testing.assert_close(field.jvp(cache, t), expected_jvp, rtol=0, atol=1e-10)
    torch.testing.assert_close(field.vjp(cache, t), expected_vjp, rtol=0, atol=1e-10)
    assert jac.abs().max() > 1e-2, "a degenerate (near-zero) Jacobian would prove nothing"


@pytest.mark.parametrize(("sphere", "frozen_rank"), [(True, 0), (False, 0), (True, 2)])
def test_tangent_jvp_and_vjp_match_jacrev(sphere, frozen_rank):
    field = make_field(frozen_rank=frozen_rank)
    z, cond = points()
    fn = tangent_map(field, cond) if sphere else ambient_map(field, cond)
    jac = per_point_jacobians(fn, z)
    if sphere:
        jac = tangent_restrict(jac, z)
    f, v, cache = flow_velocity(field, z, cond, sphere)
    torch.testing.assert_close(f, fn(z), rtol=0, atol=1e-12)
    eps = torch.randn(PROBES, N, DIM, dtype=torch.float64)
    torch.testing.assert_close(
        tangent_jvp(field, cache, z, v, eps, sphere), torch.einsum("nij,pnj->pni", jac, eps),
        rtol=0, atol=1e-10,
    )
    torch.testing.assert_close(
        tangent_vjp(field, cache, z, v, eps, sphere), torch.einsum("nji,pnj->pni", jac, eps),
        rtol=0, atol=1e-10,
    )


def test_tangent_jacobian_differs_from_the_ambient_one():
    """The sphere case is a different map: the projection terms are really exercised."""
    field = make_field()
    z, cond = points()
    ambient = per_point_jacobians(ambient_map(field, cond), z)
    tangent = per_point_jacobians(tangent_map(field, cond), z)
    assert (ambient - tangent).abs().max() > 1e-2


def test_field_output_depends_on_attributes_and_starts_small():
    torch.manual_seed(0)
    field = VectorField(DIM, K, hidden_dim=16, attribute_embed_dim=4).double()
    z, cond = points()
    v = field(z, cond)
    assert v.shape == (N, DIM)
    assert v.abs().max() < 0.2, "init_scale=0.01 keeps a fresh field close to the identity flow"
    assert not torch.allclose(field(z, cond), field(z, Condition.of(1 - cond.target, cond.delta)))


def test_jvp_and_vjp_are_differentiable_in_the_parameters():
    field = make_field()
    z, cond = points()
    _, cache = field.forward_cached(z, cond)
    t = torch.randn(2, N, DIM, dtype=torch.float64)
    (field.jvp(cache, t).pow(2).sum() + field.vjp(cache, t).pow(2).sum()).backward()
    for name, p in field.named_parameters():
        if name == "output.bias":  # J does not depend on the output bias
            assert p.grad is None or p.grad.abs().max() == 0
        else:
            assert p.grad is not None and p.grad.abs().max() > 0, name


def test_projected_constant_field_is_curl_free_on_the_sphere():
    """P(z)c is the sphere gradient of z·c: its tangent Jacobian is symmetric (no curl),
    and its divergence is -(d-1)(z·c): it contracts toward c. The ambient Jacobian of
    P(z)c is not symmetric, which is why the penalties use the tangent one."""
    field = make_field()
    with torch.no_grad():
        field.input_z.weight.zero_()  # v no longer depends on z: v = c(y, delta)
    z, cond = points()
    _, v, cache = flow_velocity(field, z, cond, True)
    eps = torch.randn(PROBES, N, DIM, dtype=torch.float64)
    jvp = tangent_jvp(field, cache, z, v, eps, True)
    vjp = tangent_vjp(field, cache, z, v, eps, True)
    torch.testing.assert_close(jvp, vjp, rtol=0, atol=1e-12)
    ambient = per_point_jacobians(tangent_map(field, cond), z)
    assert (ambient - ambient.transpose(1, 2)).abs().max() > 1e-3
    trace = tangent_restrict(ambient, z).diagonal(dim1=1, dim2=2).sum(-1)
    torch.testing.assert_close(trace, -(DIM - 1) * (z * v).sum(-1), rtol=0, atol=1e-10)


def test_no_change_means_no_velocity_and_no_jacobian_exactly():
    field = make_field()
    z, cond = points()
    delta = cond.delta.clone()
    delta[1] = 0  # row 1 already has its target
    cond = Condition.of(cond.target, delta)
    v, cache = field.forward_cached(z, cond)
    assert torch.equal(v[1], torch.zeros(DIM, dtype=torch.float64))
    assert (v[[0, 2, 3, 4]].abs().sum(-1) > 0).all()
    t = torch.randn(PROBES, N, DIM, dtype=torch.float64)
    assert torch.equal(field.jvp(cache, t)[:, 1], torch.zeros(PROBES, DIM, dtype=torch.float64))
    assert torch.equal(field.vjp(cache, t)[:, 1], torch.zeros(PROBES, DIM, dtype=torch.float64))
    assert not cond.active[1] and cond.active[[0, 2, 3, 4]].all()


def test_heads_are_the_dense_output_contracted_with_delta():
    """v = sum_j delta_j h_j(z, y) with h = the output layer's k*d outputs reshaped (k, d)."""
    field = make_field()
    z, cond = points()
    with torch.no_grad():
        e = torch.nn.functional.silu(field.attribute_embed(cond.target))
        a = torch.nn.functional.silu(field.input_z(z) + field.input_y(e))
        a = torch.nn.functional.silu(field.hidden[0](a))
        heads = field.output(a).view(N, K, DIM)
        dense = torch.einsum("nk,nkd->nd", cond.delta, heads)
    torch.testing.assert_close(field(z, cond), dense, rtol=0, atol=1e-12)
    # each head moves its attribute both ways: flipping the sign of delta flips v
    flipped = Condition.of(cond.target, -cond.delta)
    torch.testing.assert_close(field(z, flipped), -dense, rtol=0, atol=1e-12)


def test_condition_from_source_and_select():
    y = torch.tensor([[1, 0, 1], [0, 0, 1]])
    s = torch.tensor([[0, 0, 1], [0, 0, 1]])
    cond = Condition.from_source(y, s, torch.float64)
    assert cond.delta.tolist() == [[1, 0, 0], [0, 0, 0]]
    assert cond.active.tolist() == [True, False]
    assert [r.tolist() for r in cond.rows] == [[0], [], []]
    sub = cond.select(torch.tensor([1]))
    assert sub.delta.tolist() == [[0, 0, 0]] and sub.target.tolist() == [[0, 0, 1]]
    with pytest.raises(ValueError, match="must both be"):
        Condition.of(y.double(), s[:, :2].double())


def test_frozen_directions_are_never_moved_along_and_no_change_stays_zero():
    field = make_field(frozen_rank=2)
    z, cond = points()
    v, cache = field.forward_cached(z, cond)
    basis = field.frozen_directions
    assert v.abs().max() > 1e-2
    torch.testing.assert_close(v @ basis, torch.zeros(N, 2, dtype=v.dtype), rtol=0, atol=1e-12)
    t = torch.randn(PROBES, N, DIM, dtype=torch.float64)
    torch.testing.assert_close(field.jvp(cache, t) @ basis, torch.zeros(PROBES, N, 2,
                               dtype=v.dtype), rtol=0, atol=1e-12)
    still = Condition.of(cond.target, torch.zeros_like(cond.delta))
    assert field(z, still).abs().max() == 0
    unfrozen = make_field()  # same seed: the same weights, nothing frozen
    assert not torch.allclose(unfrozen(z, cond), v)


def test_frozen_directions_must_be_orthonormal_and_of_the_declared_rank():
    field = make_field(frozen_rank=2)
    with pytest.raises(ValueError, match="orthonormal"):
        field.set_frozen_directions(2 * torch.eye(DIM, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="expected"):
        field.set_frozen_directions(torch.eye(DIM, 3, dtype=torch.float64))
