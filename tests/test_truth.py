"""The synthetic world's latent factors give exact counterfactuals (fclf.data.truth)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fclf.attributes import DEFAULT_ATTRIBUTES
from fclf.data.synthetic import ALL_SPLITS, generate_world
from fclf.data.truth import SyntheticTruth, read_truth, write_truth
from fclf.errors import DataError

NAMES = list(DEFAULT_ATTRIBUTES)
SIZES = {"train": 40, "val": 8, "test": 12, "judge": 10}
WORLD = {"attribute_context": 1.0, "identity_groups": 4, "look_alike_cosine": 0.7,
         "nuisance_rank": 8, "identity_rank": 40}


def make(seed: int = 0, **knobs):
    return generate_world(NAMES, SIZES, images_per_identity=4, dim=128, seed=seed,
                          **{**WORLD, **knobs})


@pytest.fixture(scope="module")
def world():
    return make()


@pytest.fixture(scope="module")
def linear():
    return generate_world(NAMES, SIZES, images_per_identity=4, dim=32, seed=0)


def straight_line_cosine(truth: SyntheticTruth, split: str, embeddings: np.ndarray) -> float:
    """Mean cosine between each row's true single-flip displacement (cf - z) and the
    normalised mean displacement of its attribute and flip sign over the split."""
    lat = truth.latents(split)
    rows = np.arange(len(lat))
    z = np.asarray(embeddings, np.float64)
    cosines = []
    for j in range(len(truth.attribute_names)):
        targets = lat.attributes.copy()
        targets[:, j] = 1 - targets[:, j]
        delta = truth.counterfactual(split, rows, targets).astype(np.float64) - z
        for sign in (0, 1):
            mine = lat.attributes[:, j] == sign
            if mine.sum() < 2:
                continue
            best = delta[mine].mean(axis=0)
            best /= np.linalg.norm(best)
            cosines.append(delta[mine] @ best / np.linalg.norm(delta[mine], axis=1))
    return float(np.concatenate(cosines).mean())


# -- reproduction -----------------------------------------------------------------------


@pytest.mark.parametrize("which", ["world", "linear"])
def test_own_attributes_reproduce_every_split(request, which):
    splits, truth = request.getfixturevalue(which)
    assert set(truth.splits) == set(ALL_SPLITS)
    for name, split in splits.items():
        rows = np.arange(len(split))
        cf = truth.counterfactual(name, rows, split.attributes)
        assert cf.dtype == np.float32 and cf.shape == split.embeddings.shape
        np.testing.assert_allclose(cf, split.embeddings, atol=1e-5)
        truth.check_split(name, split)  # rows, identities and attributes line up


def test_rows_can_be_any_subset_in_any_order(world):
    splits, truth = world
    rows = np.array([5, 0, 5, 17], dtype=np.int64)
    test = splits["test"]
    cf = truth.counterfactual("test", rows, test.attributes[rows])
    np.testing.assert_allclose(cf, test.embeddings[rows], atol=1e-5)
    assert truth.counterfactual("test", rows[:0], test.attributes[:0]).shape == (0, 128)


# -- what a counterfactual changes -------------------------------------------------------


def test_linear_world_flip_moves_exactly_along_the_attribute_direction(linear):
    splits, truth = linear
    lat = truth.latents("val")
    rows = np.arange(len(lat))
    own = truth.unnormalised("val", rows, lat.attributes)
    for j in range(len(NAMES)):
        targets = lat.attributes.copy()
        targets[:, j] = 1 - targets[:, j]
        moved = truth.unnormalised("val", rows, targets) - own
        step = (targets[:, j] - lat.attributes[:, j])[:, None] * truth.separations[j]
        np.testing.assert_allclose(moved, step * truth.directions[j], atol=1e-12)


def test_context_world_keeps_the_step_along_u_and_bends_the_rest(world):
    splits, truth = world
    lat = truth.latents("test")
    rows = np.arange(len(lat))
    own = truth.unnormalised("test", rows, lat.attributes)
    j = NAMES.index("Smiling")
    targets = lat.attributes.copy()
    targets[:, j] = 1 - targets[:, j]
    moved = truth.unnormalised("test", rows, targets) - own
    step = (targets[:, j] - lat.attributes[:, j]) * truth.separations[j]
    along = moved @ truth.directions.T
    np.testing.assert_allclose(along[:, j], step, atol=1e-12)  # the linear world's step
    np.testing.assert_allclose(np.delete(along, j, axis=1), 0.0, atol=1e-12)
    off = moved - along[:, j:j + 1] * truth.directions[j]
    assert (np.linalg.norm(off, axis=1) > 0.5 * np.abs(step)).all()  # person-specific part
    # Nothing but attributes moves: identity, nuisance and face axis are untouched.
    assert np.abs(moved @ truth.axis).max() < 1e-12
    ident = truth.latents("test").identity_vectors[lat.identity_index]
    assert np.abs((moved * ident).sum(1)).max() < 1e-12
    assert np.abs(moved @ truth.nuisance_basis).max() < 1e-12


def test_directions_depend_on_group_and_other_attributes(world):
    _, truth = world
    lat = truth.latents("train")
    groups = lat.identity_groups[lat.identity_index]
    rows = np.array([0, np.flatnonzero(groups != groups[0])[0]])
    same_y = np.repeat(lat.attributes[:1], 2, axis=0)
    d = truth.attribute_directions("train", rows, same_y)
    assert d.shape == (2, len(NAMES), 128)
    np.testing.assert_allclose(d @ truth.directions.T,  # the u_j component is always u_j
                               np.broadcast_to(np.eye(len(NAMES)), (2, 5, 5)), atol=1e-12)
    assert not np.allclose(d[0], d[1])  # another group: another direction
    flipped = same_y.copy()
    flipped[:, 0] = 1 - flipped[:, 0]
    d_flip = truth.attribute_directions("train", rows, flipped)
    np.testing.assert_allclose(d_flip[:, 0], d[:, 0])  # j's own value does not bend d_j
    assert not np.allclose(d_flip[:, 1], d[:, 1])  # ... it bends every other attribute's


def test_context_makes_straight_lines_fall_short(linear, world):
    splits, truth = linear
    assert straight_line_cosine(truth, "train", splits["train"].embeddings) > 0.98
    splits, truth = world
    assert straight_line_cosine(truth, "train", splits["train"].embeddings) < 0.8


def test_counterfactual_checks_its_inputs(world):
    _, truth = world
    rows = np.array([0, 1])
    good = np.zeros((2, len(NAMES)), np.int8)
    with pytest.raises(ValueError, match="shape"):
        truth.counterfactual("test", rows, good[:, :3])
    with pytest.raises(ValueError, match="0 and 1"):
        truth.counterfactual("test", rows, good + 2)
    with pytest.raises(ValueError, match="rows"):
        truth.counterfactual("test", np.array([0, 10_000]), good)
    with pytest.raises(ValueError, match="integer"):
        truth.counterfactual("test", np.array([0.0, 1.0]), good)
    with pytest.raises(KeyError, match="holdout"):
        truth.counterfactual("holdout", rows, good)


# -- determinism and immutability -------------------------------------------------------


def test_deterministic_in_the_seed(world):
    _, truth = world
    _, again = make()
    _, other = make(seed=1)
    for name in WORLD_ARRAYS_TO_COMPARE:
        np.testing.assert_array_equal(getattr(truth, name), getattr(again, name))
    for split in truth.splits:
        for field in dataclasses.fields(truth.splits[split]):
            np.testing.assert_array_equal(getattr(truth.splits[split], field.name),
                                          getattr(again.splits[split], field.name))
    assert not np.allclose(truth.directions, other.directions)


WORLD_ARRAYS_TO_COMPARE = ("axis", "directions", "rates", "separations", "group_directions",
                           "pair_directions", "nuisance_basis")


def test_truth_is_frozen(world):
    _, truth = world
    with pytest.raises(dataclasses.FrozenInstanceError):
        truth.context = 2.0
    with pytest.raises(ValueError):
        truth.directions[0, 0] = 1.0
    with pytest.raises(ValueError):
        truth.latents("train").eta[0, 0] = 1.0


# -- files ------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["world", "linear"])
def test_write_read_round_trip(request, tmp_path, which):
    splits, truth = request.getfixturevalue(which)
    path = tmp_path / "out" / "truth.npz"
    write_truth(path, truth)
    assert [p.name for p in path.parent.iterdir()] == ["truth.npz"]  # no temp files left
    back = read_truth(path, attribute_names=NAMES, dim=truth.dim)
    assert back.attribute_names == truth.attribute_names and back.seed == truth.seed
    assert back.context == truth.context and back.context_norm == truth.context_norm
    assert back.nuisance_scale == truth.nuisance_scale
    for name in WORLD_ARRAYS_TO_COMPARE:
        np.testing.assert_array_equal(getattr(back, name), getattr(truth, name))
    assert list(back.splits) == list(truth.splits)
    for split, lat in truth.splits.items():
        for field in dataclasses.fields(lat):
            np.testing.assert_array_equal(getattr(back.splits[split], field.name),
                                          getattr(lat, field.name))
    rows = np.arange(len(splits["test"]))
    targets = 1 - splits["test"].attributes
    np.testing.assert_array_equal(back.counterfactual("test", rows, targets),
                                  truth.counterfactual("test", rows, targets))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.npz.*not found"):
        read_truth(tmp_path / "nope.npz")


def test_corrupt_file(tmp_path):
    path = tmp_path / "truth.npz"
    path.write_bytes(b"PK\x03\x04 definitely not a zip archive")
    with pytest.raises(DataError, match=f"{path}.*not a readable synthetic truth file"):
        read_truth(path)
    path.write_text("hello")
    with pytest.raises(DataError, match="not a readable synthetic truth file"):
        read_truth(path)


def rewrite(src, dst, drop=(), **replace):
    with np.load(src) as npz:
        arrays = {k: npz[k] for k in npz.files if k not in drop}
    arrays.update(replace)
    np.savez(dst, **arrays)


@pytest.fixture
def written(world, tmp_path):
    path = tmp_path / "truth.npz"
    write_truth(path, world[1])
    return path


def test_missing_arrays_are_named(written, tmp_path):
    bad = tmp_path / "bad.npz"
    rewrite(written, bad, drop=("directions",))
    with pytest.raises(DataError, match=r"bad.npz: missing array\(s\) \['directions'\]"):
        read_truth(bad)
    rewrite(written, bad, drop=("split.test.eta",))
    with pytest.raises(DataError, match="split.test.eta"):
        read_truth(bad)


def test_mismatched_content_is_a_data_error(written, tmp_path, world):
    bad = tmp_path / "bad.npz"
    rewrite(written, bad, format_version=np.array(99))
    with pytest.raises(DataError, match="format_version 99"):
        read_truth(bad)
    rewrite(written, bad, directions=np.zeros((3, 128)))
    with pytest.raises(DataError, match="bad.npz: inconsistent synthetic truth.*directions"):
        read_truth(bad)
    with np.load(written) as npz:
        eta = npz["split.val.eta"]
    rewrite(written, bad, **{"split.val.eta": eta[:-1]})
    with pytest.raises(DataError, match="split 'val'"):
        read_truth(bad)
    with pytest.raises(DataError, match="attributes"):
        read_truth(written, attribute_names=NAMES[::-1])
    with pytest.raises(DataError, match="dim 128, expected 64"):
        read_truth(written, dim=64)
    rewrite(written, bad, axis=np.full(128, np.nan))
    with pytest.raises(DataError, match="non-finite"):
        read_truth(bad)


def test_check_split_catches_a_split_from_another_world(world, tmp_path):
    splits, truth = world
    other, _ = make(seed=1)
    with pytest.raises(DataError, match="test.parquet: split 'test' does not match"):
        truth.check_split("test", other["test"], tmp_path / "test.parquet")
    with pytest.raises(DataError, match="no split 'holdout'"):
        truth.check_split("holdout", splits["test"])
