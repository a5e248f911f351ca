"""The supervised contrastive loss and the FCLF objective."""

from __future__ import annotations

import math

import pytest
import torch

from fclf.model.field import VectorField
from fclf.model.flow import integrate, retract
from fclf.train.losses import COMPONENTS, ObjectiveWeights, fclf_objective, supervised_contrastive


def reference_supcon(features: torch.Tensor, labels: torch.Tensor, temperature: float) -> float:
    """Straightforward loops: positives = other rows with the identical label vector."""
    x = [f / math.sqrt(sum(float(v) ** 2 for v in f)) for f in features.double()]
    rows = [tuple(int(v) for v in row) for row in labels]
    n = len(x)
    sim = [[float(x[i] @ x[j]) / temperature for j in range(n)] for i in range(n)]
    per_anchor = []
    for i in range(n):
        positives = [j for j in range(n) if j != i and rows[j] == rows[i]]
        if not positives:
            continue
        log_denominator = math.log(sum(math.exp(sim[i][k]) for k in range(n) if k != i))
        per_anchor.append(-sum(sim[i][j] - log_denominator for j in positives) / len(positives))
    return sum(per_anchor) / len(per_anchor) if per_anchor else 0.0


LABELS = torch.tensor([
    [0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0],  # an all-zero pair: positives (the old y·yᵀ == 5 rule missed them)
    [1, 1, 1, 1, 1],
    [1, 1, 1, 1, 1],
    [1, 1, 1, 1, 1],
    [1, 0, 1, 0, 0],
    [1, 0, 1, 0, 1],  # differs from the row above in one attribute only: not a positive
    [0, 1, 0, 0, 0],  # no positive at all: skipped as an anchor
])


@pytest.mark.parametrize("temperature", [0.07, 0.5, 2.0])
def test_matches_the_loop_reference(temperature):
    features = torch.randn(len(LABELS), 6, generator=torch.Generator().manual_seed(0),
                           dtype=torch.float64)
    got = supervised_contrastive(features * 3.0, LABELS, temperature)  # scale-invariant
    assert got.item() == pytest.approx(reference_supcon(features, LABELS, temperature), rel=1e-12)


def test_matches_the_reference_on_random_batches_with_many_attributes():
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        labels = torch.randint(0, 2, (24, 3), generator=gen)  # 8 codes: plenty of positives
        labels[:, 2] = 0
        features = torch.randn(24, 4, generator=gen, dtype=torch.float64)
        got = supervised_contrastive(features, labels, 0.1).item()
        assert got == pytest.approx(reference_supcon(features, labels, 0.1), rel=1e-12)


def test_all_zero_rows_are_positives_of_each_other():
    labels = torch.tensor([[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]])
    close = torch.tensor([[1.0, 0.0], [0.9, 0.1], [-1.0, 0.0]], dtype=torch.float64)
    far = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.9, 0.1]], dtype=torch.float64)
    loss_close = supervised_contrastive(close, labels, 0.5)
    loss_far = supervised_contrastive(far, labels, 0.5)
    assert loss_close.item() > 0
    assert loss_close < loss_far, "pulling the two all-zero rows together lowers the loss"
    assert loss_close.item() == pytest.approx(reference_supcon(close, labels, 0.5), rel=1e-12)


def test_self_is_not_a_positive_nor_in_the_denominator():
    # Two identical labels, features at an angle: the loss is -log softmax over the other row
    # only, i.e. exactly 0 (a row paired with itself would contribute log 2 or more).
    labels = torch.tensor([[1, 0], [1, 0]])
    features = torch.tensor([[1.0, 0.0], [0.6, 0.8]], dtype=torch.float64)
    assert supervised_contrastive(features, labels, 0.1).item() == pytest.approx(0.0, abs=1e-12)


def test_anchors_without_positives_are_skipped():
    labels = LABELS[:2].clone()
    features = torch.randn(2, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    extra_labels = torch.cat([labels, torch.tensor([[0, 1, 1, 1, 1]])])
    extra_features = torch.cat([features, features[:1] * -1])
    # The third row has no positive: it changes the denominators of rows 0 and 1 but adds
    # no anchor of its own.
    got = supervised_contrastive(extra_features, extra_labels, 0.2).item()
    assert got == pytest.approx(reference_supcon(extra_features, extra_labels, 0.2), rel=1e-12)


def test_small_temperature_with_large_logits_stays_finite():
    gen = torch.Generator().manual_seed(3)
    base = torch.randn(1, 16, generator=gen)
    features = (base + 1e-3 * torch.randn(32, 16, generator=gen)) * 1e4  # cosine ~1: logits ~100
    features.requires_grad_(True)
    labels = torch.randint(0, 2, (32, 2), generator=gen)
    loss = supervised_contrastive(features, labels, 0.01)
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(features.grad).all()
    assert loss.item() == pytest.approx(reference_supcon(features.detach(), labels, 0.01),
                                        rel=1e-4)


def test_no_positives_gives_zero_with_a_gradient():
    features = torch.randn(3, 4, requires_grad=True)
    labels = torch.tensor([[0, 0], [0, 1], [1, 0]])
    loss = supervised_contrastive(features, labels, 0.07)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(features.grad, torch.zeros_like(features))


# --- the FCLF objective ------------------------------------------------------------------


def objective_setup(seed: int = 0):
    torch.manual_seed(seed)
    field = VectorField(8, 3, hidden_dim=16, attribute_embed_dim=4)
    gen = torch.Generator().manual_seed(seed + 1)
    z = retract(torch.randn(24, 8, generator=gen))
    targets = torch.randint(0, 2, (24, 3), generator=gen, dtype=torch.int8)
    return field, z, targets


TERMS = {
    "contr": dict(lambda_contrastive=1.0, lambda_curl=0.0, lambda_div=0.0, lambda_identity=0.0),
    "curl": dict(lambda_contrastive=0.0, lambda_curl=1.0, lambda_div=0.0, lambda_identity=0.0),
    "div": dict(lambda_contrastive=0.0, lambda_curl=0.0, lambda_div=1.0, lambda_identity=0.0),
    "ident": dict(lambda_contrastive=0.0, lambda_curl=0.0, lambda_div=0.0, lambda_identity=1.0),
}


@pytest.mark.parametrize("sphere", [True, False])
@pytest.mark.parametrize("term", list(TERMS))
def test_every_term_alone_sends_gradients_to_the_field(term, sphere):
    field, z, targets = objective_setup()
    weights = ObjectiveWeights(**TERMS[term])
    parts = fclf_objective(field, z, targets, weights, alpha=0.1, sphere=sphere,
                           generator=torch.Generator().manual_seed(0))
    assert set(parts) == set(COMPONENTS)
    assert parts["loss"].item() == pytest.approx(parts[term].item(), rel=1e-6)
    parts["loss"].backward()
    grads = {name: p.grad for name, p in field.named_parameters()}
    for name in ("input_z.weight", "input_y.weight", "attribute_embed.weight", "output.weight"):
        assert grads[name] is not None and grads[name].abs().max() > 0, (term, name)


@pytest.mark.parametrize(("integrator", "flow_steps"), [("euler", 3), ("midpoint", 1), ("rk4", 2)])
def test_objective_with_other_integrators(integrator, flow_steps):
    field, z, targets = objective_setup()
    weights = ObjectiveWeights(lambda_contrastive=0.0, lambda_curl=0.0, lambda_div=0.0,
                               lambda_identity=1.0)
    parts = fclf_objective(field, z, targets, weights, alpha=0.1, flow_steps=flow_steps,
                           integrator=integrator)
    with torch.no_grad():
        end = integrate(field, z, targets.float(), num_steps=flow_steps, step_size=0.1,
                        integrator=integrator)
    assert parts["ident"].item() == pytest.approx((end - z).pow(2).sum(-1).mean().item(),
                                                  rel=1e-5)
    parts["loss"].backward()
    assert field.output.weight.grad.abs().max() > 0


def test_objective_total_is_the_weighted_sum():
    field, z, targets = objective_setup()
    weights = ObjectiveWeights(lambda_contrastive=0.5, lambda_curl=2.0, lambda_div=3.0,
                               lambda_identity=4.0, probes=2)
    parts = fclf_objective(field, z, targets, weights, alpha=0.2,
                           generator=torch.Generator().manual_seed(0))
    total = (0.5 * parts["contr"] + 2.0 * parts["curl"] + 3.0 * parts["div"]
             + 4.0 * parts["ident"])
    assert parts["loss"].item() == pytest.approx(total.item(), rel=1e-6)
    # The euler/one-step shortcut agrees with the integrator.
    with torch.no_grad():
        end = integrate(field, z, targets.float(), num_steps=1, step_size=0.2)
    assert parts["ident"].item() == pytest.approx((end - z).pow(2).sum(-1).mean().item(),
                                                  rel=1e-5)
    assert parts["contr"].item() == pytest.approx(
        supervised_contrastive(end, targets, weights.temperature).item(), rel=1e-5)
