from functools import cache, lru_cache

import numpy as np
import pytest

from fclf.evaluate.metrics import (
    collapse_verdict,
    combination_labels,
    density_coverage,
    distinct_fraction,
    effective_rank,
    nearest_neighbours,
    neighbourhood_preservation,
    silhouettes,
)
from fclf.evaluate.request import sample_targets

HEALTHY = {
    "distinct_fraction": 0.95,
    "neighbourhood_preservation": 0.6,
    "coverage": 0.8,
    "density": 0.9,
    "silhouette_by_target": 0.05,
}


def test_healthy_set_is_not_collapsed():
    assert collapse_verdict(HEALTHY) == (False, [])


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("distinct_fraction", 0.3),
        ("neighbourhood_preservation", 0.01),
        ("coverage", 0.1),
        ("density", 0.05),
        ("silhouette_by_target", 0.95),
    ],
)
def test_each_rule_fires_alone_and_names_itself(name, value):
    collapsed, reasons = collapse_verdict({**HEALTHY, name: value})
    assert collapsed and len(reasons) == 1 and reasons[0].startswith(name)


def test_thresholds_are_strict_configurable_and_can_be_turned_off():
    limits = {
        "min_distinct": 0.5,
        "min_neighbourhood": 0.2,
        "min_coverage": 0.3,
        "min_density": 0.4,
        "max_silhouette": 0.9,
    }
    at_limits = {
        "distinct_fraction": 0.5,
        "neighbourhood_preservation": 0.2,
        "coverage": 0.3,
        "density": 0.4,
        "silhouette_by_target": 0.9,
    }
    assert collapse_verdict(at_limits, **limits) == (False, [])
    bad = {"distinct_fraction": 0.1, "neighbourhood_preservation": 0.0, "coverage": 0.0,
           "density": 0.0, "silhouette_by_target": 1.0}  # fmt: skip
    assert len(collapse_verdict(bad, **limits)[1]) == 5
    off = dict.fromkeys(limits)
    assert collapse_verdict(bad, **off) == (False, [])
    reasons = collapse_verdict({**HEALTHY, "density": 0.5}, min_density=0.6)[1]
    assert reasons == ["density 0.500 < 0.6"]


def test_missing_or_none_measures_are_skipped_nan_fails_other_keys_are_ignored():
    single_target = {**HEALTHY, "silhouette_by_target": None}
    assert collapse_verdict(single_target) == (False, [])
    assert collapse_verdict({"distinct_fraction": 0.9}) == (False, [])
    assert collapse_verdict({**HEALTHY, "flip_success": 0.1, "rank_ratio": 0.01})[0] is False
    collapsed, reasons = collapse_verdict({**HEALTHY, "density": float("nan")})
    assert collapsed and reasons == ["density is nan"]


# --- cheater scenarios on synthetic CLIP-like data --------------------------------------
# Unit vectors in a narrow cone: a shared face axis, a vector per person, a vector per
# image and +-shifts along 4 attribute directions (the first fixed per person). Edits of
# test faces toward single-attribute flips are scored as the pipeline would: distinct
# nearest real neighbours among the test faces, neighbourhoods of the sources, density and
# coverage against train faces of the target code (k=20: more than the 10 images per
# person, so balls reach past a person's own images), silhouette by target code.

K_BALLS = 20
DIM = 256
N_ATTRS = 4


def _faces(basis, n_people, rng, per_person=10):
    """(embeddings (n, DIM) float32, attributes (n, N_ATTRS) int8), people in blocks."""
    axis, attr_dirs, rest = basis[:, 0], basis[:, 1 : 1 + N_ATTRS], basis[:, 1 + N_ATTRS :]
    owner = np.repeat(np.arange(n_people), per_person)
    attrs = (rng.random((len(owner), N_ATTRS)) < 0.4).astype(np.int8)
    attrs[:, 0] = rng.random(n_people)[owner] < 0.5  # fixed per person
    person = _unit(rng.standard_normal((n_people, rest.shape[1])))[owner] * np.sqrt(0.25)
    image = _unit(rng.standard_normal((len(owner), rest.shape[1]))) * np.sqrt(0.2)
    raw = np.sqrt(0.55) * axis + (person + image) @ rest.T + 0.35 * (attrs - 0.5) @ attr_dirs.T
    return _unit(raw), attrs


@lru_cache(maxsize=1)
def _world():
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
    train, test = _Split(*_faces(basis, 500, rng)), _Split(*_faces(basis, 150, rng))
    targets = sample_targets(test.attributes, "single", seed=0)
    x, y = train.embeddings.astype(np.float64), train.attributes.astype(bool)
    shifts = np.stack([x[y[:, j]].mean(0) - x[~y[:, j]].mean(0) for j in range(N_ATTRS)])
    honest = _unit(test.embeddings + (targets - test.attributes) @ shifts)
    return train, test, combination_labels(targets), honest


class _Split:
    def __init__(self, embeddings, attributes):
        self.embeddings, self.attributes = embeddings, attributes


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _per_target(codes, train, pick):
    """Fill each target code's rows with pick(rows, real rows of that code)."""
    train_codes = combination_labels(train.attributes)
    out = np.empty((len(codes), train.embeddings.shape[1]), np.float32)
    for code in np.unique(codes):
        rows = np.flatnonzero(codes == code)
        reals = np.flatnonzero(train_codes == code)
        out[rows] = pick(rows, reals if len(reals) else np.arange(len(train_codes)))
    return out


def _scenario(name):
    train, test, codes, honest = _world()
    rng = np.random.default_rng(1)
    dim = honest.shape[1]

    def noisy(x, norm):
        return _unit(x + norm * rng.standard_normal(x.shape) / np.sqrt(dim))

    def prototypes(count):
        def pick(rows, reals):
            chosen = train.embeddings[rng.choice(reals, min(count, len(reals)), replace=False)]
            return chosen[np.argmax(honest[rows] @ chosen.T, axis=1)]

        return _per_target(codes, train, pick)

    def class_mean(rows, reals):
        return _unit(train.embeddings[reals].astype(np.float64).mean(0, keepdims=True))

    def random_real(rows, reals):
        return train.embeddings[rng.choice(reals, len(rows))]

    def shuffled(rows, reals):
        return honest[rng.permutation(rows)]

    scenarios = {
        "honest": lambda: honest,
        "honest + small noise": lambda: noisy(honest, 0.1),
        "one prototype per target": lambda: _per_target(codes, train, class_mean),
        "jittered prototype per target": lambda: noisy(_per_target(codes, train, class_mean), 0.5),
        "15 prototypes per target": lambda: prototypes(15),
        "jittered 15 prototypes": lambda: noisy(prototypes(15), 0.8),
        "random real of the target": lambda: _per_target(codes, train, random_real),
        "honest edits shuffled within target": lambda: _per_target(codes, train, shuffled),
        "honest + large noise": lambda: noisy(honest, 0.5),
        "random unit vectors": lambda: _unit(rng.standard_normal(honest.shape)),
        "rotated honest edits": lambda: _unit(
            honest @ np.linalg.qr(rng.standard_normal((dim, dim)))[0].T
        ),
    }
    return test, codes, train, scenarios[name]()


@cache
def _measures(name):
    test, codes, train, edited = _scenario(name)
    nearest, _ = nearest_neighbours(edited, test.embeddings)
    scores = density_coverage(
        train.embeddings, combination_labels(train.attributes), edited, codes, k=K_BALLS
    )
    return {
        "distinct_fraction": distinct_fraction(nearest),
        "neighbourhood_preservation": neighbourhood_preservation(test.embeddings, edited),
        "coverage": scores["coverage"],
        "density": scores["density"],
        "silhouette_by_target": silhouettes(edited, [codes])[0],
    }


@pytest.mark.parametrize("name", ["honest", "honest + small noise"])
def test_honest_edits_pass(name):
    measures = _measures(name)
    assert collapse_verdict(measures) == (False, []), measures


@pytest.mark.parametrize(
    ("name", "caught_by"),
    [
        ("one prototype per target", {"distinct_fraction", "neighbourhood_preservation"}),
        ("jittered prototype per target", {"neighbourhood_preservation"}),
        ("15 prototypes per target", {"distinct_fraction", "neighbourhood_preservation"}),
        ("jittered 15 prototypes", {"neighbourhood_preservation", "coverage", "density"}),
        ("random real of the target", {"neighbourhood_preservation"}),
        ("honest edits shuffled within target", {"neighbourhood_preservation"}),
        ("honest + large noise", {"coverage", "density"}),
        ("random unit vectors", {"neighbourhood_preservation", "coverage", "density"}),
        ("rotated honest edits", {"coverage", "density"}),
    ],
)
def test_cheats_are_caught(name, caught_by):
    measures = _measures(name)
    collapsed, reasons = collapse_verdict(measures)
    fired = {reason.split()[0] for reason in reasons}
    assert collapsed and caught_by <= fired, (measures, reasons)


def test_the_old_rule_passed_jittered_collapse_and_rank_is_no_defence():
    # jitter restores distinct nearest neighbours and inflates the effective rank
    measures = _measures("jittered 15 prototypes")
    test, _, _, edited = _scenario("jittered 15 prototypes")
    rank_ratio = effective_rank(edited) / effective_rank(test.embeddings)
    assert measures["distinct_fraction"] > 0.5 and rank_ratio > 1.0
    # the old rule: distinct_fraction < 0.5 or rank_ratio < 0.25 or silhouette > 0.9
    old = (measures["distinct_fraction"] < 0.5 or rank_ratio < 0.25
           or measures["silhouette_by_target"] > 0.9)
    assert not old
    assert collapse_verdict(measures)[0]


def test_only_neighbourhoods_see_a_shuffle():
    # the same edited points, handed to the wrong people: every set-level measure is unchanged
    honest, shuffled = _measures("honest"), _measures("honest edits shuffled within target")
    for key in ("coverage", "density", "silhouette_by_target"):
        assert shuffled[key] == pytest.approx(honest[key], abs=1e-6)
    assert collapse_verdict(shuffled)[1][0].startswith("neighbourhood_preservation")
