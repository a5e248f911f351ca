"""The synthetic data set behaves like CLIP ViT-B/32 embeddings of CelebA.

Reference numbers (CelebA, all 202,599 images):
  rates         Smiling 48.2%, Young 77.4%, Male 41.7%, Eyeglasses 6.5%, Mustache 4.2%
  conditionals  P(Mustache|Male) 9.6%, P(Mustache|Female) 0.3%, P(Eyeglasses|Male) 12.3%,
                P(Smiling|Male) 39.8%, P(Young|Male) 63.8%
and linear-probe accuracies of CLIP embeddings on CelebA: Male ~0.98-0.99, Eyeglasses
>= 0.97, Mustache ~0.95-0.97, Smiling ~0.90, Young ~0.85.

Rate tolerances are 4 cluster-robust standard errors (images of one person are
correlated, so the person is the sampling unit) plus 0.002 for the rounding of
the published rates; probe tolerances are +-0.03.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fclf.attributes import DEFAULT_ATTRIBUTES
from fclf.config import load_config
from fclf.data.synthetic import ALL_SPLITS, SPLITS, generate, generate_world, required_dim

REPO = Path(__file__).resolve().parents[1]

CELEBA_RATES = {"Smiling": 0.482, "Young": 0.774, "Male": 0.417, "Eyeglasses": 0.065,
                "Mustache": 0.042}
CELEBA_GIVEN_MALE = {"Mustache": 0.096, "Eyeglasses": 0.123, "Smiling": 0.398, "Young": 0.638}
CELEBA_GIVEN_FEMALE = {"Mustache": 0.003}
# (target, tolerance) of a logistic probe's test accuracy, from CLIP on CelebA.
PROBE_TARGETS = {"Male": (0.985, 0.03), "Eyeglasses": (0.98, 0.03), "Mustache": (0.96, 0.03),
                 "Smiling": (0.90, 0.03), "Young": (0.85, 0.03)}
ROUNDING = 0.002


def small(seed: int = 0, names=DEFAULT_ATTRIBUTES, dim: int = 32, **kwargs):
    return generate(list(names), {"train": 30, "val": 8, "test": 8}, dim=dim, seed=seed,
                    **kwargs)


@pytest.fixture(scope="module")
def large():
    """Many people in a small dimension: tight rate estimates in well under a second."""
    split = generate(list(DEFAULT_ATTRIBUTES), {"train": 30000, "val": 1, "test": 1},
                     dim=16, seed=11)["train"]
    return split


def params_world(**overrides):
    """(splits, truth) exactly as params.yaml makes them (default sizes, dim 512)."""
    config = load_config(REPO / "params.yaml")
    syn = config.data.synthetic
    knobs = {
        "images_per_identity": syn.images_per_identity, "dim": syn.dim,
        "cone_cosine": syn.cone_cosine, "same_identity_cosine": syn.same_identity_cosine,
        "attribute_strength": syn.attribute_strength, "seed": config.data.seed,
        "attribute_context": syn.attribute_context, "identity_groups": syn.identity_groups,
        "look_alike_cosine": syn.look_alike_cosine, "nuisance_rank": syn.nuisance_rank,
        "identity_rank": syn.identity_rank,
    }
    sizes = {"train": syn.train_identities, "val": syn.val_identities,
             "test": syn.test_identities, "judge": syn.judge_identities}
    return generate_world(config.data.attributes, sizes, **{**knobs, **overrides})


@pytest.fixture(scope="module")
def default_world():
    return params_world()


@pytest.fixture(scope="module")
def default_splits(default_world):
    return default_world[0]


def column(split, name: str) -> np.ndarray:
    return split.attributes[:, split.attribute_names.index(name)].astype(float)


def rate_and_se(values: np.ndarray, identities: np.ndarray) -> tuple[float, float]:
    """Mean and its cluster-robust standard error (clusters = identities)."""
    p = float(values.mean())
    _, cluster = np.unique(identities, return_inverse=True)
    residual_sums = np.bincount(cluster, weights=values - p)
    return p, float(np.sqrt((residual_sums**2).sum()) / len(values))


def agreement_with_identity_majority(values: np.ndarray, identities: np.ndarray) -> float:
    _, cluster = np.unique(identities, return_inverse=True)
    share = np.bincount(cluster, weights=values) / np.bincount(cluster)
    majority = (share >= 0.5).astype(float)
    return float((values == majority[cluster]).mean())


# -- attribute statistics ---------------------------------------------------------------


@pytest.mark.parametrize("name", list(CELEBA_RATES))
def test_attribute_rates_match_celeba(large, name):
    rate, se = rate_and_se(column(large, name), large.identities)
    assert abs(rate - CELEBA_RATES[name]) <= 4 * se + ROUNDING, (rate, se)


@pytest.mark.parametrize(
    ("name", "male", "target"),
    [(n, 1, p) for n, p in CELEBA_GIVEN_MALE.items()]
    + [(n, 0, p) for n, p in CELEBA_GIVEN_FEMALE.items()],
)
def test_conditional_rates_match_celeba(large, name, male, target):
    rows = column(large, "Male") == male
    rate, se = rate_and_se(column(large, name)[rows], large.identities[rows])
    assert abs(rate - target) <= 4 * se + ROUNDING, (rate, se)


def test_male_is_constant_per_identity(large):
    assert agreement_with_identity_majority(column(large, "Male"), large.identities) == 1.0


def test_young_is_mostly_constant_per_identity_and_smiling_varies(large):
    young = agreement_with_identity_majority(column(large, "Young"), large.identities)
    smiling = agreement_with_identity_majority(column(large, "Smiling"), large.identities)
    assert 0.95 <= young < 1.0
    assert smiling < 0.85
    # Almost every person with several images is seen both smiling and not smiling.
    ids, counts = np.unique(large.identities, return_counts=True)
    several = ids[counts >= 6]
    smile = column(large, "Smiling")
    varies = [np.ptp(smile[large.identities == i]) > 0 for i in several[:500]]
    assert np.mean(varies) > 0.9


def test_other_celeba_attributes_are_supported_with_their_rates():
    splits = small(names=("Bald", "Male", "Wearing_Hat"),
                   rates={"Bald": 0.02, "Wearing_Hat": 0.05})
    for split in splits.values():
        assert split.attribute_names == ("Bald", "Male", "Wearing_Hat")
        assert split.attributes.shape == (len(split), 3)
        assert set(np.unique(split.attributes)) <= {0, 1}


# -- structure --------------------------------------------------------------------------


def test_splits_are_identity_disjoint_and_image_ids_unique():
    splits = small()
    assert set(splits) == set(SPLITS)
    ids = [set(splits[s].identities.tolist()) for s in SPLITS]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert [len(i) for i in ids] == [30, 8, 8]
    image_ids = np.concatenate([splits[s].image_ids for s in SPLITS])
    assert len(set(image_ids.tolist())) == len(image_ids)


def test_every_identity_has_at_least_one_image_and_about_the_mean():
    split = generate(["Male"], {"train": 2000, "val": 1, "test": 1}, images_per_identity=4,
                     dim=16, seed=2)["train"]
    _, counts = np.unique(split.identities, return_counts=True)
    assert len(counts) == 2000 and counts.min() >= 1
    assert abs(counts.mean() - 4) < 0.2  # 1 + Poisson(3): sd of the mean ~0.04


def test_embeddings_are_unit_norm_float32():
    for split in small().values():
        assert split.embeddings.dtype == np.float32
        assert split.embeddings.shape == (len(split), 32)
        np.testing.assert_allclose(np.linalg.norm(split.embeddings, axis=1), 1.0, atol=1e-5)
        assert split.attributes.dtype == np.int8
        assert split.identities.dtype == np.int64
        assert split.metadata["source"] == "synthetic"


def test_same_seed_is_identical_and_different_seed_differs():
    a, b, c = small(seed=5), small(seed=5), small(seed=6)
    for s in SPLITS:
        np.testing.assert_array_equal(a[s].embeddings, b[s].embeddings)
        np.testing.assert_array_equal(a[s].attributes, b[s].attributes)
        np.testing.assert_array_equal(a[s].identities, b[s].identities)
        np.testing.assert_array_equal(a[s].image_ids, b[s].image_ids)
        assert a[s].embeddings.shape != c[s].embeddings.shape or not np.allclose(
            a[s].embeddings, c[s].embeddings
        )
    assert not np.array_equal(a["train"].attributes[:50], c["train"].attributes[:50])


def test_invalid_arguments_are_rejected():
    with pytest.raises(ValueError, match="same_identity_cosine"):
        small(cone_cosine=0.8, same_identity_cosine=0.7)
    with pytest.raises(ValueError, match="too small"):
        small(dim=6)
    with pytest.raises(ValueError, match="unknown split"):
        generate(["Male"], {"train": 3, "holdout": 2}, dim=16)
    with pytest.raises(ValueError, match="look_alike_cosine"):
        small(identity_groups=3, look_alike_cosine=0.9)
    with pytest.raises(ValueError, match="look_alike_cosine"):
        small(identity_groups=3, look_alike_cosine=0.5)
    small(identity_groups=1, look_alike_cosine=0.9)  # unused without groups


def test_too_small_dim_names_the_dim_the_world_needs():
    need = required_dim(5, attribute_context=1.0, identity_groups=4, nuisance_rank=8)
    assert need == 1 + 5 + (4 * 5 + 5 * 4) + 8 + 1
    with pytest.raises(ValueError, match=f"needs dim >= {need}"):
        small(dim=need - 1, attribute_context=1.0, identity_groups=4, nuisance_rank=8)
    small(dim=need, attribute_context=1.0, identity_groups=4, nuisance_rank=8)
    assert required_dim(5) == 7  # the linear world: axis, 5 directions, 1 identity dim


# -- the judge split and the world knobs ------------------------------------------------


def test_judge_split_is_identity_disjoint_and_leaves_the_others_unchanged():
    sizes = {"train": 30, "val": 8, "test": 8}
    without = small()
    with_judge = generate(list(DEFAULT_ATTRIBUTES), {**sizes, "judge": 12}, dim=32, seed=0)
    assert tuple(with_judge) == ALL_SPLITS
    for s in SPLITS:
        np.testing.assert_array_equal(without[s].embeddings, with_judge[s].embeddings)
        np.testing.assert_array_equal(without[s].image_ids, with_judge[s].image_ids)
    judge = with_judge["judge"]
    assert len(set(judge.identities.tolist())) == 12
    others = set(np.concatenate([with_judge[s].identities for s in SPLITS]).tolist())
    assert not others & set(judge.identities.tolist())
    image_ids = np.concatenate([with_judge[s].image_ids for s in ALL_SPLITS])
    assert len(set(image_ids.tolist())) == len(image_ids)
    assert judge.metadata["split"] == "judge"


WORLD = {"attribute_context": 1.0, "identity_groups": 4, "look_alike_cosine": 0.7,
         "nuisance_rank": 8, "identity_rank": 40}


def test_world_knobs_change_geometry_not_people_or_labels():
    sizes = {"train": 40, "val": 8, "test": 8, "judge": 8}
    linear = generate(list(DEFAULT_ATTRIBUTES), sizes, dim=128, seed=3)
    world = generate(list(DEFAULT_ATTRIBUTES), sizes, dim=128, seed=3, **WORLD)
    for s in ALL_SPLITS:
        np.testing.assert_array_equal(linear[s].attributes, world[s].attributes)
        np.testing.assert_array_equal(linear[s].identities, world[s].identities)
        np.testing.assert_array_equal(linear[s].image_ids, world[s].image_ids)
        assert not np.allclose(linear[s].embeddings, world[s].embeddings)
        np.testing.assert_allclose(np.linalg.norm(world[s].embeddings, axis=1), 1.0, atol=1e-5)


def test_the_world_is_deterministic_in_the_seed():
    sizes = {"train": 20, "test": 5}
    a, b = (generate(list(DEFAULT_ATTRIBUTES), sizes, dim=128, seed=4, **WORLD) for _ in "ab")
    c = generate(list(DEFAULT_ATTRIBUTES), sizes, dim=128, seed=5, **WORLD)
    for s in sizes:
        np.testing.assert_array_equal(a[s].embeddings, b[s].embeddings)
    assert not np.allclose(a["train"].embeddings[:20], c["train"].embeddings[:20])


def test_look_alikes_are_closer_than_strangers():
    splits, truth = generate_world(["Male"], {"train": 600}, dim=256, seed=1,
                                   identity_groups=10, look_alike_cosine=0.7)
    train = splits["train"]
    latents = truth.latents("train")
    group = latents.identity_groups[latents.identity_index]
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(train), (2, 40000))
    cos = (train.embeddings[i] * train.embeddings[j]).sum(1)
    others = train.identities[i] != train.identities[j]
    same_group = cos[others & (group[i] == group[j])].mean()
    strangers = cos[others & (group[i] != group[j])].mean()
    assert abs(strangers - 0.55) < 0.07 and abs(same_group - 0.7) < 0.07


# -- geometry ---------------------------------------------------------------------------


def pair_cosines(split, rng: np.random.Generator, n: int = 20000):
    """Mean cosine of random pairs of different people, and of pairs of one person."""
    e, ids = split.embeddings, split.identities
    i, j = rng.integers(0, len(e), (2, n))
    different = ids[i] != ids[j]
    between = float((e[i[different]] * e[j[different]]).sum(1).mean())
    order = np.argsort(ids, kind="stable")
    same = ids[order][1:] == ids[order][:-1]
    a, b = order[:-1][same], order[1:][same]
    within = float((e[a] * e[b]).sum(1).mean())
    return between, within


def test_embeddings_sit_in_a_cone_and_people_cluster(default_splits):
    between, within = pair_cosines(default_splits["test"], np.random.default_rng(0))
    assert 0.4 <= between <= 0.7  # not centred: like CLIP faces, far from zero
    assert within >= between + 0.15
    assert abs(between - 0.55) < 0.1 and abs(within - 0.8) < 0.1  # the params' knobs


def test_identity_retrieval_is_hard_but_possible(default_splits):
    """Look-alikes and low-rank nuisance: the nearest other test image is the same
    person most of the time, not always (it always was in the linear world)."""
    from fclf.evaluate.metrics import identity_top1, nearest_other

    test = default_splits["test"]
    top1 = identity_top1(nearest_other(test.embeddings), test.identities, test.identities)
    assert 0.5 <= top1 <= 0.9, top1


def test_straight_lines_are_not_enough_in_the_default_world(default_world):
    """Mean cosine of each true single-flip displacement with the best global direction
    for its attribute and sign: ~1 in the linear world, well below in the default one."""
    from test_truth import straight_line_cosine

    splits, truth = default_world
    cosine = straight_line_cosine(truth, "test", splits["test"].embeddings)
    assert 0.55 <= cosine <= 0.8, cosine


def test_cone_knobs_move_the_cosines():
    split = generate(["Male"], {"train": 400, "val": 1, "test": 1}, dim=128, cone_cosine=0.3,
                     same_identity_cosine=0.6, seed=1)["train"]
    between, within = pair_cosines(split, np.random.default_rng(0))
    assert abs(between - 0.3) < 0.07 and abs(within - 0.6) < 0.07


# -- linear probes ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def probe_accuracies(default_splits):
    from sklearn.linear_model import LogisticRegression

    train, test = default_splits["train"], default_splits["test"]
    out = {}
    for j, name in enumerate(train.attribute_names):
        probe = LogisticRegression(C=1.0, max_iter=1000)
        probe.fit(train.embeddings, train.attributes[:, j])
        majority = max(test.attributes[:, j].mean(), 1 - test.attributes[:, j].mean())
        out[name] = (probe.score(test.embeddings, test.attributes[:, j]), majority)
    return out


@pytest.mark.parametrize("name", list(PROBE_TARGETS))
def test_probe_accuracy_matches_clip_on_celeba(probe_accuracies, name):
    accuracy, majority = probe_accuracies[name]
    target, tolerance = PROBE_TARGETS[name]
    assert abs(accuracy - target) <= tolerance, accuracy
    assert accuracy > majority + 0.005, (accuracy, majority)  # the probe learns something


def test_eyeglasses_probe_reaches_097(probe_accuracies):
    assert probe_accuracies["Eyeglasses"][0] >= 0.97


def test_attribute_strength_makes_probes_easier():
    from sklearn.linear_model import LogisticRegression

    def young_accuracy(strength: float) -> float:
        s = generate(["Young", "Male"], {"train": 600, "val": 1, "test": 300}, dim=64,
                     attribute_strength=strength, seed=4)
        probe = LogisticRegression(C=1.0, max_iter=1000)
        probe.fit(s["train"].embeddings, s["train"].attributes[:, 0])
        return probe.score(s["test"].embeddings, s["test"].attributes[:, 0])

    assert young_accuracy(3.0) > young_accuracy(0.3) + 0.05


# --- attributes without a calibration ----------------------------------------------------


def test_the_config_knows_which_attributes_are_calibrated() -> None:
    from fclf.config import SYNTHETIC_CALIBRATED
    from fclf.data.synthetic import CELEBA_LIKE

    assert set(SYNTHETIC_CALIBRATED) == set(CELEBA_LIKE)


def test_uncalibrated_attributes_need_a_rate() -> None:
    with pytest.raises(ValueError, match=r"no calibration for attribute\(s\) \['Bald'\]: the "
                       r"synthetic world knows Male, Young, Smiling, Eyeglasses, Mustache"):
        small(names=["Smiling", "Bald"])
    with pytest.raises(ValueError, match="rates given for calibrated attribute"):
        small(names=["Smiling", "Bald"], rates={"Bald": 0.2, "Smiling": 0.5})
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        small(names=["Bald"], rates={"Bald": 1.0})


def test_a_given_rate_is_used_for_both_sexes_per_image() -> None:
    from fclf.data.synthetic import GIVEN_RATE_SEPARATION, attribute_models

    model = attribute_models(["Male", "Bald"], {"Bald": 0.2})[1]
    assert (model.p_male, model.p_female, model.level) == (0.2, 0.2, "image")
    assert model.separation == GIVEN_RATE_SEPARATION
    split = generate(["Male", "Bald"], {"train": 4000, "val": 1, "test": 1}, dim=16, seed=2,
                     rates={"Bald": 0.2})["train"]
    male, bald = split.attributes[:, 0] == 1, split.attributes[:, 1] == 1
    assert abs(bald.mean() - 0.2) < 0.02
    assert abs(bald[male].mean() - bald[~male].mean()) < 0.03  # no Male dependency
