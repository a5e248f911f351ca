"""The objective families: registry, contrastive (end point vs real bank points), flow matching."""

from __future__ import annotations

import math

import pytest
import torch

from fclf.config import OBJECTIVES as CONFIG_OBJECTIVES
from fclf.model.field import Condition, VectorField
from fclf.model.flow import geodesic_angle, integrate, retract, slerp, slerp_velocity
from fclf.train.bank import CodeBank, row_codes
from fclf.train.objectives import (
    OBJECTIVES,
    Batch,
    FlowSettings,
    ObjectiveWeights,
    components,
    fclf_objective,
    get_objective,
)
from fclf.train.objectives.contrastive import bank_contrastive, draw_pool
from fclf.train.objectives.flow_matching import target_velocity


def contrastive_weights(**weights) -> ObjectiveWeights:
    """Weights of the contrastive family (the default family is flow_matching)."""
    return ObjectiveWeights(objective="contrastive", **weights)

DIM, K, N = 8, 3, 24


def test_registry_matches_the_params_schema_and_every_family_has_the_interface():
    assert tuple(OBJECTIVES) == CONFIG_OBJECTIVES
    for name, module in OBJECTIVES.items():
        assert module.COMPONENTS[0] == "loss" and len(set(module.COMPONENTS)) > 1
        assert callable(module.batch_loss)
        assert components(name) == module.COMPONENTS
    with pytest.raises(ValueError, match="unknown objective 'gan'"):
        get_objective("gan")


# --- the contrastive loss against real bank points ---------------------------------------


def reference_bank_contrastive(anchors, pool, positive, temperature) -> float:
    """Loops: -log(sum over positives of exp(cos/t) / sum over the pool), averaged."""
    def unit(v):
        return v / math.sqrt(sum(float(x) ** 2 for x in v))

    a = [unit(x) for x in anchors.double()]
    p = [unit(x) for x in pool.double()]
    losses = []
    for i in range(len(a)):
        sims = [math.exp(float(a[i] @ p[j]) / temperature) for j in range(len(p))]
        pos = sum(s for j, s in enumerate(sims) if positive[i, j])
        if pos:
            losses.append(-math.log(pos / sum(sims)))
    return sum(losses) / len(losses) if losses else 0.0


@pytest.mark.parametrize("temperature", [0.07, 0.5, 2.0])
def test_bank_contrastive_matches_the_loop_reference(temperature):
    gen = torch.Generator().manual_seed(0)
    anchors = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    pool = torch.randn(9, 5, generator=gen, dtype=torch.float64)
    positive = torch.rand(6, 9, generator=gen) < 0.3
    positive[0] = False  # an anchor without positives is skipped
    positive[1, 0] = True
    got = bank_contrastive(anchors * 3.0, pool, positive, temperature).item()
    want = reference_bank_contrastive(anchors, pool, positive, temperature)
    assert got == pytest.approx(want, rel=1e-12)


def test_bank_contrastive_is_lower_near_a_positive_and_finite_at_small_temperatures():
    pool = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    positive = torch.tensor([[True, False, False]])
    near = bank_contrastive(torch.tensor([[0.9, 0.1]], dtype=torch.float64), pool, positive, 0.1)
    far = bank_contrastive(torch.tensor([[0.1, 0.9]], dtype=torch.float64), pool, positive, 0.1)
    assert near < far
    anchors = (pool[:1] * 1e4).requires_grad_(True)
    loss = bank_contrastive(anchors, pool, positive, 1e-3)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(anchors.grad).all()


def test_bank_contrastive_without_positives_is_zero_with_a_gradient():
    anchors = torch.randn(3, 4, requires_grad=True)
    loss = bank_contrastive(anchors, torch.randn(5, 4), torch.zeros(3, 5, dtype=torch.bool), 0.1)
    assert loss.item() == 0.0 and loss.requires_grad


# --- a small world ----------------------------------------------------------------------


def world(seed: int = 0, n_bank: int = 200):
    torch.manual_seed(seed)
    field = VectorField(DIM, K, hidden_dim=16, attribute_embed_dim=4, init_scale=0.1)
    gen = torch.Generator().manual_seed(seed + 1)
    bank_y = torch.randint(0, 2, (n_bank, K), generator=gen)
    bank_z = retract(torch.randn(n_bank, DIM, generator=gen) + 0.5 * (2 * bank_y.float() - 1)
                     @ torch.randn(K, DIM, generator=gen))
    source = bank_y[:N].clone()
    target = source.clone()
    target[: N // 2, 0] = 1 - target[: N // 2, 0]  # half the rows flip attribute 0
    target[: N // 4, 1] = 1 - target[: N // 4, 1]  # a quarter flip attribute 1 too
    return field, Batch(bank_z[:N], target, source), CodeBank(bank_z, bank_y)


TERMS = {
    "contr": dict(lambda_contrastive=1.0, lambda_curl=0.0, lambda_div=0.0, lambda_identity=0.0),
    "curl": dict(lambda_contrastive=0.0, lambda_curl=1.0, lambda_div=0.0, lambda_identity=0.0),
    "div": dict(lambda_contrastive=0.0, lambda_curl=0.0, lambda_div=1.0, lambda_identity=0.0),
    "ident": dict(lambda_contrastive=0.0, lambda_curl=0.0, lambda_div=0.0, lambda_identity=1.0),
}


@pytest.mark.parametrize("sphere", [True, False])
@pytest.mark.parametrize("term", list(TERMS))
def test_every_contrastive_term_alone_sends_gradients_to_the_field(term, sphere):
    field, batch, bank = world()
    parts = fclf_objective(field, batch, bank, contrastive_weights(**TERMS[term]),
                           FlowSettings(num_steps=3, sphere=sphere),
                           torch.Generator().manual_seed(0))
    assert set(parts) == set(components("contrastive"))
    assert parts["loss"].item() == pytest.approx(parts[term].item(), rel=1e-6)
    parts["loss"].backward()
    grads = {name: p.grad for name, p in field.named_parameters()}
    for name in ("input_z.weight", "input_y.weight", "attribute_embed.weight", "output.weight"):
        assert grads[name] is not None and grads[name].abs().max() > 0, (term, name)


@pytest.mark.parametrize(("integrator", "num_steps", "step_size"),
                         [("euler", 10, 0.1), ("euler", 3, 0.2), ("midpoint", 2, 0.5),
                          ("rk4", 2, 0.3)])
def test_contrastive_reads_the_end_of_the_whole_horizon(integrator, num_steps, step_size):
    """ident is the end-point displacement of the full flow (no-op rows: exactly 0), and the
    contrastive term is computed on those end points."""
    field, batch, bank = world()
    weights = contrastive_weights(lambda_curl=0.0, lambda_div=0.0, lambda_identity=1.0)
    flow = FlowSettings(num_steps=num_steps, step_size=step_size, integrator=integrator)
    parts = fclf_objective(field, batch, bank, weights, flow, torch.Generator().manual_seed(4))
    with torch.no_grad():
        end = integrate(field, batch.z, batch.condition(), num_steps=num_steps,
                        step_size=step_size, integrator=integrator)
    moved = (end - batch.z).pow(2).sum(-1)
    assert torch.equal(moved[N // 2:], torch.zeros(N - N // 2)), "no-op rows do not move"
    assert parts["ident"].item() == pytest.approx(moved.mean().item(), rel=1e-5)
    active = torch.arange(N // 2)
    pool, mask, _ = draw_pool(bank, batch.target[active], weights.positives,
                              _generator_after_penalties(batch, weights, flow, 4))
    want = bank_contrastive(end[active], bank.embeddings[pool], mask, weights.temperature)
    assert parts["contr"].item() == pytest.approx(want.item(), rel=1e-5)


def _generator_after_penalties(batch, weights, flow, seed):
    """The generator state the contrastive objective draws its pool with (after the probes)."""
    gen = torch.Generator().manual_seed(seed)
    n_active = int(batch.condition().active.sum())
    torch.randn((weights.probes, n_active, batch.z.shape[1]), generator=gen)
    return gen


def test_contrastive_total_is_the_weighted_sum_and_no_op_batches_are_zero():
    field, batch, bank = world()
    weights = contrastive_weights(lambda_contrastive=0.5, lambda_curl=2.0, lambda_div=3.0,
                               lambda_identity=4.0, probes=2)
    parts = fclf_objective(field, batch, bank, weights, FlowSettings(),
                           torch.Generator().manual_seed(0))
    total = (0.5 * parts["contr"] + 2.0 * parts["curl"] + 3.0 * parts["div"]
             + 4.0 * parts["ident"])
    assert parts["loss"].item() == pytest.approx(total.item(), rel=1e-6)
    noop = Batch(batch.z, batch.source, batch.source)
    for name in OBJECTIVES:
        zero = fclf_objective(field, noop, bank, ObjectiveWeights(objective=name),
                              FlowSettings(), torch.Generator().manual_seed(0))
        assert all(float(v.detach()) == 0.0 for v in zero.values())
        zero["loss"].backward()  # still a graph (a batch with nothing to learn is legal)


# --- flow matching ----------------------------------------------------------------------


# the entropic C2OT coupling itself: tests/test_coupling.py


@pytest.mark.parametrize(("num_steps", "step_size"), [(10, 0.1), (4, 0.25), (8, 0.25)])
def test_integrating_the_exact_target_velocity_lands_on_the_partner(num_steps, step_size):
    """The FM target is scaled so the flow's horizon num_steps * step_size covers time 1."""
    gen = torch.Generator().manual_seed(0)
    z = retract(torch.randn(5, DIM, generator=gen, dtype=torch.float64))
    x1 = retract(torch.randn(5, DIM, generator=gen, dtype=torch.float64))
    horizon = num_steps * step_size
    angle = geodesic_angle(z, x1)

    class ExactField(torch.nn.Module):
        """The autonomous field whose flow is the geodesic z -> x1 traversed in `horizon`."""

        def forward(self, point, condition):
            towards = x1 - point * (x1 * point).sum(-1, keepdim=True)
            towards = torch.nn.functional.normalize(towards, dim=-1)
            return towards * angle[:, None] / horizon

    cond = Condition.of(torch.ones(5, 1, dtype=torch.float64),
                        torch.ones(5, 1, dtype=torch.float64))
    # the horizon's own steps land close; refined steps (same horizon) converge onto x1
    errors = []
    for refine in (1, 10, 100):
        end = integrate(ExactField(), z, cond, num_steps=num_steps * refine,
                        step_size=step_size / refine)
        errors.append(float((end - x1).norm(dim=-1).max()))
    assert errors[0] < 0.1 and errors[2] < 1e-3
    assert errors[2] < errors[1] / 5 < errors[0] / 25  # first order: the integrator's error
    # and that field is what flow matching regresses on, at every t
    t = torch.tensor([0.0, 0.2, 0.5, 0.8, 0.95], dtype=torch.float64)
    z_t, u = target_velocity(z, x1, t, horizon)
    torch.testing.assert_close(z_t, slerp(z, x1, t))
    torch.testing.assert_close(u, ExactField()(z_t, cond), rtol=0, atol=1e-9)
    torch.testing.assert_close(u * horizon, slerp_velocity(z, x1, t))


def test_flow_matching_loss_and_gradients():
    field, batch, bank = world()
    weights = ObjectiveWeights(objective="flow_matching", lambda_curl=0.5, lambda_div=0.25)
    parts = fclf_objective(field, batch, bank, weights, FlowSettings(),
                           torch.Generator().manual_seed(0))
    assert set(parts) == set(components("flow_matching"))
    total = parts["fm"] + 0.5 * parts["curl"] + 0.25 * parts["div"]
    assert parts["loss"].item() == pytest.approx(total.item(), rel=1e-6)
    assert parts["fm"] > 0 and parts["pair"] > 0
    parts["loss"].backward()
    assert field.output.weight.grad.abs().max() > 0
    assert field.input_z.weight.grad.abs().max() > 0
    flat = fclf_objective(field, batch, bank, weights, FlowSettings(sphere=False),
                          torch.Generator().manual_seed(0))
    assert torch.isfinite(flat["loss"]) and flat["fm"] > 0


def test_flat_flow_matching_target_is_the_straight_line_over_the_horizon():
    """model.sphere: false: z_t on the segment, constant velocity (x1 - z) / T; Euler over the
    horizon lands exactly on x1."""
    gen = torch.Generator().manual_seed(1)
    z = retract(torch.randn(4, DIM, generator=gen, dtype=torch.float64))
    x1 = retract(torch.randn(4, DIM, generator=gen, dtype=torch.float64))
    t = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    z_t, u = target_velocity(z, x1, t, 2.0, sphere=False)
    torch.testing.assert_close(z_t, z + t[:, None] * (x1 - z))
    point = z.clone()
    for _ in range(8):
        point = point + 0.25 * (x1 - z) / 2.0
    torch.testing.assert_close(point, x1)
    torch.testing.assert_close(u, (x1 - z) / 2.0)


def test_codes_are_whole_label_vectors():
    labels = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 0, 1], [1, 0, 1], [1, 0, 1]])
    codes = row_codes(labels)
    assert codes.tolist() == [0, 1, 4, 5, 5]
