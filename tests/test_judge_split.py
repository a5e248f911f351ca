"""The CelebA judge split: a seeded-hash 10 % of the train people (fclf.data.judge_split)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from fclf.data.embeddings_io import EmbeddingSplit
from fclf.data.judge_split import METADATA_KEY, carve_judge, identity_hash, judge_identities
from fclf.errors import DataError


def make_split(identities, seed: int = 0) -> EmbeddingSplit:
    identities = np.asarray(identities, np.int64)
    n = len(identities)
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return EmbeddingSplit(
        image_ids=np.array([f"{i:06d}.jpg" for i in range(n)], dtype=object),
        identities=identities,
        attributes=rng.integers(0, 2, (n, 2)).astype(np.int8),
        embeddings=emb,
        attribute_names=("Male", "Smiling"),
        metadata={"source": "celeba", "split": "train", "encoder": "clip"},
    )


@pytest.fixture
def train() -> EmbeddingSplit:
    """300 people with 1-6 images each, in shuffled row order, plus 7 rows without identity."""
    rng = np.random.default_rng(1)
    people = rng.choice(np.arange(10_000), 300, replace=False) + 1
    ids = np.repeat(people, rng.integers(1, 7, 300))
    ids = np.concatenate([ids, np.full(7, -1)])
    return make_split(rng.permutation(ids))


def test_identity_disjoint_and_nothing_lost(train):
    rest, judge = carve_judge(train)
    assert not set(rest.identities.tolist()) & set(judge.identities.tolist())
    assert len(rest) + len(judge) == len(train)
    both = np.concatenate([rest.image_ids, judge.image_ids])
    assert sorted(both.tolist()) == sorted(train.image_ids.tolist())
    # Rows keep their content and their original order.
    lookup = {name: i for i, name in enumerate(train.image_ids)}
    for part in (rest, judge):
        index = np.array([lookup[name] for name in part.image_ids])
        assert (np.diff(index) > 0).all()
        np.testing.assert_array_equal(part.embeddings, train.embeddings[index])
        np.testing.assert_array_equal(part.attributes, train.attributes[index])
        np.testing.assert_array_equal(part.identities, train.identities[index])


def test_ten_percent_of_the_people_and_rows_without_identity_stay_in_train(train):
    rest, judge = carve_judge(train)
    assert len(set(judge.identities.tolist())) == 30  # 10 % of 300 people
    assert (judge.identities >= 0).all()
    assert (rest.identities == -1).sum() == 7


def test_deterministic_and_independent_of_row_order(train):
    chosen = judge_identities(train.identities)
    np.testing.assert_array_equal(chosen, judge_identities(train.identities))
    shuffled = np.random.default_rng(9).permutation(train.identities)
    np.testing.assert_array_equal(chosen, judge_identities(shuffled))
    assert not np.array_equal(chosen, judge_identities(train.identities, seed=1))
    # The hash is a fixed function of (seed, id): stable across runs and platforms.
    assert identity_hash(42, 0) == identity_hash(42, 0) != identity_hash(42, 1)
    expected = hashlib.blake2b(b"0:42", digest_size=8).digest()
    assert identity_hash(42, 0) == int.from_bytes(expected, "big")


def test_metadata_records_the_carve(train):
    rest, judge = carve_judge(train, fraction=0.2, seed=3)
    assert judge.metadata["split"] == "judge" and rest.metadata["split"] == "train"
    assert judge.metadata["source"] == "celeba"
    assert rest.metadata[METADATA_KEY]["role"] == "train_rest"
    assert judge.metadata[METADATA_KEY] == {
        "fraction": 0.2, "seed": 3, "judge_identities": 60, "role": "judge",
        "carved_from": "train"}
    assert METADATA_KEY not in train.metadata  # the input is not modified


def test_small_splits_keep_someone_on_each_side():
    rest, judge = carve_judge(make_split([5, 5, 7, 7, 7]))
    assert len(set(judge.identities.tolist())) == 1 and len(set(rest.identities.tolist())) == 1
    rest, judge = carve_judge(make_split([1, 2, 3]), fraction=0.9)
    assert len(set(rest.identities.tolist())) == 1


@pytest.mark.parametrize("ids", [[-1, -1, -1], [4, 4, -1], []])
def test_too_few_people_is_a_data_error(ids):
    with pytest.raises(DataError, match="cannot carve a judge split"):
        carve_judge(make_split(ids))


def test_fraction_must_be_a_proper_share(train):
    for fraction in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="fraction"):
            carve_judge(train, fraction=fraction)
