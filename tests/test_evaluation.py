"""The protocol end to end on a small contextual world: who sees what, and what comes out."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fclf.attributes import DEFAULT_ATTRIBUTES
from fclf.data.embeddings_io import EmbeddingSplit
from fclf.data.synthetic import generate_world
from fclf.evaluate.baselines import mean_directions, sphere_walk
from fclf.evaluate.methods import curve_fractions, run_edit, slerp
from fclf.evaluate.protocol import METHODS, ProtocolSettings, evaluate_transfer
from fclf.evaluate.targets import sample_targets, subsample_indices

STEPS = 4
SIZES = {"train": 200, "val": 30, "test": 40, "judge": 80}
SETTINGS = ProtocolSettings(num_steps=STEPS, bootstrap_resamples=50, curve_samples=60,
                            collapse_samples=None)


@pytest.fixture(scope="module")
def world():
    return generate_world(DEFAULT_ATTRIBUTES, SIZES, images_per_identity=6, dim=256, seed=1,
                          attribute_context=0.75, identity_groups=8, nuisance_rank=16)


def walk_factory(train: EmbeddingSplit, strength: float = 0.3):
    """A stand-in flow: walk toward every target value along the train mean directions."""
    dirs = mean_directions(train.embeddings, train.attributes)

    def make(num_steps: int):
        def edit(z, targets):
            signs = np.where(np.asarray(targets) == 1, 1.0, -1.0)
            return sphere_walk(z, signs @ dirs, strength * num_steps / STEPS, num_steps)
        return edit

    return make


def truths(truth):
    return {s: (lambda name: lambda rows, t: truth.counterfactual(name, rows, t))(s)
            for s in ("val", "test")}


@pytest.fixture(scope="module")
def result(world):
    splits, truth = world
    return evaluate_transfer(walk_factory(splits["train"]), splits["train"], splits["judge"],
                             {"val": splits["val"], "test": splits["test"]},
                             truths=truths(truth), settings=SETTINGS)


def test_metrics_are_plain_json_with_both_splits_and_every_method(result) -> None:
    metrics = json.loads(json.dumps(result.metrics))  # no numpy scalars anywhere
    assert set(metrics) == {"judge", "calibration", "val", "test"}
    for split in ("val", "test"):
        block = metrics[split]
        assert set(METHODS) <= set(block)
        for method in METHODS:
            m = block[method]
            for key in ("flip_success_linear", "preservation_mlp", "counterfactual_cosine",
                        "counterfactual_relative_error", "identity_top1",
                        "neighbourhood_preservation", "coverage", "collapsed", "noop",
                        "curve", "intervals"):
                assert key in m, (split, method, key)
        assert set(block["comparisons"]) == {f"fclf_minus_{m}" for m in METHODS if m != "fclf"}
    assert metrics["judge"]["fitted_on"] == "judge split"


def test_the_oracle_is_exact_and_the_noop_of_the_oracle_does_not_move(result) -> None:
    oracle = result.metrics["test"]["oracle"]
    assert oracle["counterfactual_relative_error"] < 1e-4
    assert oracle["noop"]["movement"] < 1e-4
    assert not oracle["collapsed"]


def test_the_judge_is_fitted_on_the_judge_split_only(world) -> None:
    """Shuffling train labels changes the baselines' own probes, never the judge."""
    splits, truth = world
    train = splits["train"]
    rng = np.random.default_rng(0)
    scrambled = EmbeddingSplit(train.image_ids, train.identities,
                               train.attributes[rng.permutation(len(train))],
                               train.embeddings, train.attribute_names, train.metadata)
    evaluated = {"val": splits["val"], "test": splits["test"]}
    make = walk_factory(train)
    a = evaluate_transfer(make, train, splits["judge"], evaluated, settings=SETTINGS)
    b = evaluate_transfer(make, scrambled, splits["judge"], evaluated, settings=SETTINGS)
    assert a.metrics["judge"] == b.metrics["judge"]
    assert a.metrics["test"]["fclf"]["flip_success_linear"] == \
        b.metrics["test"]["fclf"]["flip_success_linear"]
    assert a.metrics["calibration"] != b.metrics["calibration"]  # baselines read train


def test_baselines_are_calibrated_to_the_fclf_movement_on_val(result) -> None:
    cal = result.metrics["calibration"]
    assert cal["split"] == "val"
    for method in ("baseline_mean_direction", "baseline_conditional_direction"):
        assert cal[method]["reached"]
        assert cal[method]["movement"] == pytest.approx(cal["target_movement"], rel=2e-3)


def test_without_truth_there_is_no_oracle_and_no_faked_ground_truth(world) -> None:
    splits, _ = world
    out = evaluate_transfer(walk_factory(splits["train"]), splits["train"], splits["judge"],
                            {"val": splits["val"], "test": splits["test"]}, settings=SETTINGS)
    block = out.metrics["test"]
    assert "oracle" not in block
    for key in ("counterfactual_cosine", "counterfactual_relative_error", "displacement_cosine"):
        assert block["fclf"][key] is None
    assert "counterfactual_cosine" not in block["fclf"]["intervals"]


def test_curves_cover_zero_to_twice_the_operating_point_for_every_method(result) -> None:
    curves = result.splits["test"].curves
    fractions = curve_fractions(STEPS)
    for method in METHODS:
        rows = [r for r in curves if r["method"] == method]
        assert [r["strength"] for r in rows] == pytest.approx(fractions)
        assert rows[0]["movement"] == pytest.approx(0.0, abs=1e-6)
        moved = [r["movement"] for r in rows]
        assert moved == sorted(moved)


def test_intervals_bracket_point_estimates_and_differences_are_paired(result) -> None:
    block = result.metrics["test"]
    for method in METHODS:
        for metric, (low, high) in block[method]["intervals"].items():
            assert low - 1e-9 <= block[method][metric] <= high + 1e-9, (method, metric)
    diff = block["comparisons"]["fclf_minus_oracle"]["flip_success_linear"]
    expected = block["fclf"]["flip_success_linear"] - block["oracle"]["flip_success_linear"]
    assert diff["difference"] == pytest.approx(expected)
    assert diff["low"] <= diff["difference"] <= diff["high"]


def test_protocol_files_say_what_was_edited(result, world) -> None:
    splits, _ = world
    proto = result.splits["test"].protocol
    assert str(proto["split"]) == "test"
    rows = proto["source_rows"]
    assert rows.dtype == np.int64 and proto["targets"].dtype == np.int8
    np.testing.assert_array_equal(proto["source_attributes"], splits["test"].attributes[rows])
    assert list(proto["attribute_names"]) == list(DEFAULT_ATTRIBUTES)
    assert ((proto["targets"] != proto["source_attributes"]).sum(1) == 1).all()


def test_deterministic_for_a_seed(world, result) -> None:
    splits, truth = world
    again = evaluate_transfer(walk_factory(splits["train"]), splits["train"], splits["judge"],
                              {"val": splits["val"], "test": splits["test"]},
                              truths=truths(truth), settings=SETTINGS)
    assert json.dumps(again.metrics) == json.dumps(result.metrics)


def test_edit_function_contract_is_checked() -> None:
    z = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="shape"):
        run_edit(lambda z, t: np.stack([z, z]), z, np.zeros((3, 1)), num_steps=2)
    with pytest.raises(ValueError, match="must equal the sources"):
        run_edit(lambda z, t: np.stack([z + 1, z]), z, np.zeros((3, 1)), num_steps=1)


def test_slerp_hits_both_ends_and_continues_past_the_goal() -> None:
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((5, 8)) for _ in range(2))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    np.testing.assert_allclose(slerp(a, b, 0.0), a, atol=1e-6)
    np.testing.assert_allclose(slerp(a, b, 1.0), b, atol=1e-6)
    angle = np.arccos(np.clip((a * b).sum(1), -1, 1))
    twice = slerp(a, b, 2.0)
    np.testing.assert_allclose(np.arccos(np.clip((a * twice).sum(1), -1, 1)),
                               np.minimum(2 * angle, 2 * np.pi - 2 * angle), atol=1e-5)


def test_targets_flip_as_requested_and_are_seeded() -> None:
    attrs = np.random.default_rng(0).integers(0, 2, (50, 5)).astype(np.int8)
    single = sample_targets(attrs, "single", 3)
    assert ((single != attrs).sum(1) == 1).all()
    multi = sample_targets(attrs, "multi", 3)
    assert set(np.unique((multi != attrs).sum(1))) <= {2, 3}
    np.testing.assert_array_equal(single, sample_targets(attrs, "single", 3))
    assert subsample_indices(10, None, 0).tolist() == list(range(10))
    assert len(subsample_indices(10, 4, 0)) == 4
