"""The yardstick against cheaters: edits built to game it must be caught (collapse or gate).

Every edit is scored through `score_edits`, the path `fclf score` uses, on a
small contextual synthetic world that knows each face's exact counterfactual.
The oracle (the true counterfactual) must pass; the no-op must fail; prototype
pulls of several strengths, prototypes plus noise, snapping to a handful of
real points per target, and pure noise must each be caught. Thresholds are the
params defaults (what `fclf gate` enforces), not values tuned for this test.
"""

from __future__ import annotations

import numpy as np
import pytest

from fclf.attributes import DEFAULT_ATTRIBUTES
from fclf.config import GateConfig
from fclf.data.synthetic import generate_world
from fclf.evaluate.gate import threshold_checks
from fclf.evaluate.methods import FixedEdits, slerp
from fclf.evaluate.metrics import combination_labels
from fclf.evaluate.protocol import ProtocolSettings, fit_judge, protocol_arrays, score_edits
from fclf.evaluate.targets import sample_targets

SIZES = {"train": 300, "val": 40, "test": 120, "judge": 150}
SETTINGS = ProtocolSettings(bootstrap_resamples=100, curve_samples=200, collapse_samples=None)
GATE = GateConfig()


@pytest.fixture(scope="module")
def world():
    splits, truth = generate_world(DEFAULT_ATTRIBUTES, SIZES, images_per_identity=8, dim=512,
                                   seed=3, attribute_context=1.0, identity_groups=20,
                                   nuisance_rank=32)
    test = splits["test"]
    index = np.arange(len(test))
    targets = sample_targets(test.attributes, "single", 0)
    protocol = protocol_arrays("test", index, test.attributes, targets, DEFAULT_ATTRIBUTES)
    cf = truth.counterfactual("test", index, targets)
    judge = fit_judge(splits["judge"], SETTINGS)
    return splits, truth, protocol, cf, judge


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def score(world, edited, noop=None, trajectories=None) -> dict:
    splits, truth, protocol, _, judge = world

    def counterfactual(rows, targets):
        return truth.counterfactual("test", rows, targets)

    return score_edits(FixedEdits(unit(edited), trajectories, noop), splits["train"],
                       splits["judge"], "test", splits["test"], protocol, counterfactual,
                       SETTINGS, judge=judge).metrics


def verdict(block: dict) -> tuple[bool, list[str]]:
    """(caught, why): collapsed, or a failed gate check."""
    checks = threshold_checks(block["edits"], GATE, "")
    failed = [c.name for c in checks if not c.passed]
    return bool(block["edits"]["collapsed"] or failed), failed + block["edits"]["collapse_reasons"]


def prototypes(world) -> np.ndarray:
    """(N, d): each edit's target-class mean of real train points (nearest code if absent)."""
    splits, _, protocol, *_ = world
    train = splits["train"]
    codes = combination_labels(train.attributes)
    wanted = combination_labels(protocol["targets"])
    out = np.empty((len(wanted), train.embeddings.shape[1]))
    for code in np.unique(wanted):
        pool = codes == code
        if not pool.any():  # the code closest in Hamming distance
            hamming = [bin(int(c) ^ int(code)).count("1") for c in codes]
            pool = codes == codes[int(np.argmin(hamming))]
        out[wanted == code] = train.embeddings[pool].mean(axis=0)
    return out


def test_the_oracle_passes_every_check(world) -> None:
    cf = world[3]
    sources = world[0]["test"].embeddings
    block = score(world, cf, noop=sources)
    caught, why = verdict(block)
    assert not caught, why
    assert block["edits"]["counterfactual_relative_error"] < 1e-4
    assert block["edits"]["displacement_cosine"] > 0.999


def test_the_noop_fails(world) -> None:
    sources = world[0]["test"].embeddings
    caught, why = verdict(score(world, sources, noop=sources))
    assert caught
    assert "flip_success_linear" in why


@pytest.mark.parametrize("pull", [0.5, 0.85, 1.0])
def test_prototype_pulls_are_caught(world, pull: float) -> None:
    sources = world[0]["test"].embeddings
    edited = (1 - pull) * sources + pull * prototypes(world)
    caught, why = verdict(score(world, edited, noop=sources))
    assert caught, f"pull {pull} passed: {why}"


def test_prototype_plus_noise_is_caught(world) -> None:
    sources = world[0]["test"].embeddings
    rng = np.random.default_rng(0)
    proto = unit(prototypes(world))
    edited = proto + 0.3 * rng.standard_normal(proto.shape) / np.sqrt(proto.shape[1])
    caught, why = verdict(score(world, edited, noop=sources))
    assert caught, why


def test_snapping_to_a_few_real_points_per_target_is_caught(world) -> None:
    splits, _, protocol, *_ = world
    sources = splits["test"].embeddings
    rng = np.random.default_rng(1)
    codes = combination_labels(splits["train"].attributes)
    wanted = combination_labels(protocol["targets"])
    edited = np.empty_like(sources)
    for code in np.unique(wanted):
        pool = np.flatnonzero(codes == code)
        if len(pool) == 0:
            pool = np.arange(len(codes))
        chosen = rng.choice(pool, size=min(3, len(pool)), replace=False)
        rows = np.flatnonzero(wanted == code)
        edited[rows] = splits["train"].embeddings[rng.choice(chosen, size=len(rows))]
    caught, why = verdict(score(world, edited, noop=sources))
    assert caught, why


def test_pure_noise_is_caught(world) -> None:
    sources = world[0]["test"].embeddings
    rng = np.random.default_rng(2)
    edited = sources + 2.0 * rng.standard_normal(sources.shape) / np.sqrt(sources.shape[1])
    caught, why = verdict(score(world, edited, noop=sources))
    assert caught, why


def test_overshoot_is_worse_than_the_truth_and_shows_as_a_drop(world) -> None:
    """Judge flip success rewards going too far; the counterfactual does not."""
    splits, truth, protocol, cf, judge = world
    sources = splits["test"].embeddings
    exact, twice = score(world, cf)["edits"], score(world, slerp(sources, cf, 2.0))["edits"]
    assert twice["flip_success_linear"] >= exact["flip_success_linear"] - 0.02
    assert twice["counterfactual_relative_error"] > 0.8
    assert twice["displacement_cosine"] > 0.95  # the right direction, just too far
    assert twice["counterfactual_cosine"] < exact["counterfactual_cosine"] - 0.02
    # the oracle's curve (slerp toward the truth, continued past it) peaks at s = 1
    result = score_edits(FixedEdits(unit(cf)), splits["train"], splits["judge"], "test",
                         splits["test"], protocol,
                         lambda rows, t: truth.counterfactual("test", rows, t), SETTINGS,
                         judge=judge)
    curve = {r["strength"]: r for r in result.curves if r["method"] == "oracle"}
    peak = max(curve, key=lambda s: curve[s]["counterfactual_cosine"])
    assert peak == 1.0
    assert curve[2.0]["counterfactual_cosine"] < curve[1.0]["counterfactual_cosine"] - 0.02
    assert curve[2.0]["flip_success_linear"] >= curve[1.0]["flip_success_linear"] - 0.02


def test_intervals_bracket_the_point_estimates(world) -> None:
    block = score(world, world[3])["edits"]
    for metric, (low, high) in block["intervals"].items():
        assert low <= block[metric] + 1e-9 and block[metric] <= high + 1e-9, metric
