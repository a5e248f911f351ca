"""The yardstick against cheaters: edits built to game it must be caught (collapse, realism or
the gate), with the synthetic truth and without it (as on real CelebA).

Every edit is scored through `score_external`, the path `fclf score` uses, on a small
contextual synthetic world. The oracle (the true counterfactual) and an honest peer must
pass and rank first; the no-op must fail; prototype pulls, prototypes plus noise, snapping
to a handful of real points per target and pure noise must be caught; so must, without the
truth, an honest editor plus isotropic noise, the exact counterfactual walked twice as far,
and a walk along a train-fitted class-balanced probe to margin 10. Thresholds are the params
defaults (what `fclf gate` enforces), not values tuned for this test.
"""

from __future__ import annotations

import numpy as np
import pytest

from fclf.attributes import DEFAULT_ATTRIBUTES
from fclf.config import EvalConfig, GateConfig
from fclf.data.synthetic import generate_world
from fclf.evaluate import cheaters
from fclf.evaluate.editors import EditBatch, FixedEdits, slerp
from fclf.evaluate.gate import threshold_checks
from fclf.evaluate.peers.base import TrainData
from fclf.evaluate.peers.lines import CodeLine
from fclf.evaluate.protocol import ProtocolSettings, Yardstick, score_external
from fclf.evaluate.request import apply_request, sample_requests
from fclf.evaluate.selection import SelectionRule, rank

SIZES = {"train": 300, "val": 40, "test": 120, "judge": 150}
EVAL = EvalConfig()
SETTINGS = ProtocolSettings(bootstrap_resamples=100, curve_samples=200, collapse_samples=None,
                            max_off_manifold=EVAL.max_off_manifold,
                            max_overshoot_rate=EVAL.max_overshoot_rate,
                            overshoot_quantile=EVAL.overshoot_quantile)
GATE = GateConfig()
TRUTH = (True, False)


@pytest.fixture(scope="module")
def world():
    splits, truth = generate_world(DEFAULT_ATTRIBUTES, SIZES, images_per_identity=8, dim=512,
                                   seed=3, attribute_context=1.0, identity_groups=20,
                                   nuisance_rank=32)
    test = splits["test"]
    index = np.arange(len(test))
    request = sample_requests(test.attributes, "single", 0)
    targets = apply_request(request, test.attributes)
    cf = truth.counterfactual("test", index, targets)
    yardstick = Yardstick.fit(splits["judge"], splits["train"], SETTINGS)
    return splits, truth, request, targets, cf, yardstick


def score(world, edited, noop=None, with_truth=True) -> dict:
    """The told-mode blocks of `fclf score` for these edits (the oracle beside them)."""
    splits, truth, request, *_, yardstick = world
    test = splits["test"]
    rows = np.arange(len(test))
    counterfactual = (lambda r, t: truth.counterfactual("test", r, t)) if with_truth else None
    noop = test.embeddings if noop is None else noop
    edits = FixedEdits(rows, cheaters.unit(edited), None, noop)
    return score_external({"told": edits}, splits["train"], yardstick, "test", test, rows,
                          request, counterfactual, SETTINGS).metrics["told"]


def verdict(blocks: dict) -> tuple[bool, list[str]]:
    """(caught, why): collapsed, unrealistic, or a failed gate check."""
    block = blocks["edits"]
    checks = threshold_checks(block, GATE, "")
    failed = [c.name for c in checks if not c.passed]
    return bool(failed), failed + (block.get("collapse_reasons") or []) + (
        block.get("realism_reasons") or [])


def honest_peer(world) -> np.ndarray:
    """An honest editor that is not the truth: the line per code pair (train means)."""
    splits, _, _, targets, *_ = world
    test = splits["test"]
    batch = EditBatch(test.embeddings, np.arange(len(test)), test.attributes.astype(np.int8),
                      targets)
    return CodeLine(TrainData.of(splits["train"]), 20.0, 1.0).end(batch)[0]


def train_arrays(world):
    train = world[0]["train"]
    return train.embeddings, train.attributes


@pytest.mark.parametrize("with_truth", TRUTH)
def test_the_oracle_and_an_honest_peer_pass_every_check(world, with_truth) -> None:
    cf = world[4]
    for edited in (cf, honest_peer(world)):
        blocks = score(world, edited, with_truth=with_truth)
        caught, why = verdict(blocks)
        assert not caught, why
    if with_truth:
        exact = score(world, cf)["edits"]
        assert exact["counterfactual_relative_error"] < 1e-4
        assert exact["displacement_cosine"] > 0.999


@pytest.mark.parametrize("with_truth", TRUTH)
def test_the_noop_fails(world, with_truth) -> None:
    sources = world[0]["test"].embeddings
    caught, why = verdict(score(world, sources, with_truth=with_truth))
    assert caught
    assert "flip_success_linear" in why


def test_edits_without_a_noop_cannot_pass(world) -> None:
    splits, truth, request, *_, yardstick = world
    test = splits["test"]
    rows = np.arange(len(test))
    edits = FixedEdits(rows, world[4])  # the exact answer, but no answer to "change nothing"
    blocks = score_external({"told": edits}, splits["train"], yardstick, "test", test, rows,
                            request, None, SETTINGS).metrics["told"]
    caught, why = verdict(blocks)
    assert caught and "noop.movement_ratio" in why and "noop.cosine" in why


def test_a_noop_that_moves_fails(world) -> None:
    cf, sources = world[4], world[0]["test"].embeddings
    wobbly = cheaters.with_noise(sources, 0.05, 9)
    caught, why = verdict(score(world, cf, noop=wobbly))
    assert caught and "noop.movement_ratio" in why


@pytest.mark.parametrize("with_truth", TRUTH)
@pytest.mark.parametrize("pull", [0.5, 0.85, 1.0])
def test_prototype_pulls_are_caught(world, pull: float, with_truth) -> None:
    edited = cheaters.prototype_pull(world[0]["test"].embeddings, *train_arrays(world),
                                     world[3], pull)
    caught, why = verdict(score(world, edited, with_truth=with_truth))
    assert caught, f"pull {pull} passed: {why}"


@pytest.mark.parametrize("with_truth", TRUTH)
def test_prototype_plus_noise_is_caught(world, with_truth) -> None:
    edited = cheaters.prototype_noise(*train_arrays(world), world[3])
    caught, why = verdict(score(world, edited, with_truth=with_truth))
    assert caught, why


@pytest.mark.parametrize("with_truth", TRUTH)
def test_snapping_to_a_few_real_points_per_target_is_caught(world, with_truth) -> None:
    edited = cheaters.snap(*train_arrays(world), world[3])
    caught, why = verdict(score(world, edited, with_truth=with_truth))
    assert caught, why


@pytest.mark.parametrize("with_truth", TRUTH)
def test_pure_noise_is_caught(world, with_truth) -> None:
    sources = world[0]["test"].embeddings
    caught, why = verdict(score(world, cheaters.pure_noise(sources), with_truth=with_truth))
    assert caught, why


CHEATS = {
    "honest + noise 0.3": lambda w: cheaters.with_noise(honest_peer(w), 0.3, 3),
    "truth + noise 0.3": lambda w: cheaters.with_noise(w[4], 0.3, 4),
    "truth walked 2x": lambda w: cheaters.overshoot(w[0]["test"].embeddings, w[4], 2.0),
    "probe walk to margin 10": lambda w: cheaters.probe_walk(
        w[0]["test"].embeddings, *train_arrays(w), DEFAULT_ATTRIBUTES, w[2], w[3], 10.0),
}


@pytest.mark.parametrize("with_truth", TRUTH)
@pytest.mark.parametrize("cheat", list(CHEATS))
def test_noise_and_overshoot_are_refused_without_the_truth_too(world, cheat, with_truth):
    """They read as the target to the judge (flip success is high); realism refuses them."""
    blocks = score(world, CHEATS[cheat](world), with_truth=with_truth)
    caught, why = verdict(blocks)
    assert caught, f"{cheat} passed: {why}"
    assert blocks["edits"]["realistic"] is False, why
    assert blocks["edits"]["flip_success_linear"] > 0.6  # the judge alone would let it pass


def test_without_the_truth_the_selection_rule_ranks_honest_editors_above_every_cheat(world):
    blocks = {"honest": score(world, honest_peer(world), with_truth=False)["edits"]}
    for cheat, make in CHEATS.items():
        blocks[cheat] = score(world, make(world), with_truth=False)["edits"]
    ranked = rank(blocks, SelectionRule.from_gate(GATE), truth=False)
    assert ranked[0].name == "honest" and ranked[0].eligible
    assert not any(r.eligible for r in ranked[1:])


def test_identity_does_not_reward_standing_still(world) -> None:
    """Retrieval among the people carrying the target attributes: no edit scores below the
    exact edit (the old retrieval among unedited faces rewarded it)."""
    sources, cf = world[0]["test"].embeddings, world[4]
    for with_truth in TRUTH:
        still = score(world, sources, with_truth=with_truth)["edits"]
        exact = score(world, cf, with_truth=with_truth)["edits"]
        assert still["identity_top1_target"] < exact["identity_top1_target"], with_truth
    old = score(world, sources)["edits"], score(world, cf)["edits"]
    assert old[0]["identity_top1_source"] > old[1]["identity_top1_source"]  # the old flaw


def test_overshoot_is_worse_than_the_truth_and_shows_as_a_drop(world) -> None:
    """Judge flip success rewards going too far; the counterfactual does not."""
    splits, truth, request, targets, cf, yardstick = world
    sources = splits["test"].embeddings
    exact, twice = score(world, cf)["edits"], score(world, slerp(sources, cf, 2.0))["edits"]
    assert twice["flip_success_linear"] >= exact["flip_success_linear"] - 0.02
    assert twice["counterfactual_relative_error"] > 0.8
    assert twice["displacement_cosine"] > 0.95  # the right direction, just too far
    assert twice["counterfactual_cosine"] < exact["counterfactual_cosine"] - 0.02
    rows = np.arange(len(sources))
    result = score_external({"told": FixedEdits(rows, cheaters.unit(cf), None, sources)},
                            splits["train"], yardstick, "test", splits["test"], rows, request,
                            lambda r, t: truth.counterfactual("test", r, t), SETTINGS)
    curve = {r["strength"]: r for r in result.curves if r["method"] == "oracle"}
    peak = max(curve, key=lambda s: curve[s]["counterfactual_cosine"])
    assert peak == 1.0
    assert curve[2.0]["counterfactual_cosine"] < curve[1.0]["counterfactual_cosine"] - 0.02
    assert curve[2.0]["flip_success_linear"] >= curve[1.0]["flip_success_linear"] - 0.02
    assert curve[2.0]["overshoot_rate"] > curve[1.0]["overshoot_rate"] + 0.2


def test_intervals_bracket_the_point_estimates(world) -> None:
    block = score(world, world[4])["edits"]
    for metric, (low, high) in block["intervals"].items():
        assert low <= block[metric] + 1e-9 and block[metric] <= high + 1e-9, metric
