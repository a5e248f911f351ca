"""Carve an identity-disjoint judge split out of a train split (CelebA has no judge split).

The evaluation fits its judge on people nobody trained on. For CelebA the
judge split is a deterministic share of the train partition's identities:
each identity id is hashed with a seed (BLAKE2b, so the choice does not
depend on row order, platform or Python's hash randomisation) and the
identities with the smallest hashes go to the judge. Rows without an identity
(-1) stay in train. Pure: arrays in, arrays out.
"""

from __future__ import annotations

import hashlib

import numpy as np

from fclf.data.embeddings_io import EmbeddingSplit
from fclf.errors import DataError

JUDGE_FRACTION = 0.1
JUDGE_SEED = 0
METADATA_KEY = "judge_split"  # recorded in both outputs' metadata


def identity_hash(identity: int, seed: int = JUDGE_SEED) -> int:
    """A stable 64-bit hash of one identity id."""
    digest = hashlib.blake2b(f"{seed}:{int(identity)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def judge_identities(
    identities: np.ndarray, fraction: float = JUDGE_FRACTION, seed: int = JUDGE_SEED
) -> np.ndarray:
    """The sorted identity ids (>= 0) that go to the judge split.

    round(fraction * people), at least 1 and at most people - 1, so both sides
    keep someone. Fewer than 2 known people is a DataError.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
    people = np.unique(np.asarray(identities, np.int64))
    people = people[people >= 0]
    if len(people) < 2:
        raise DataError(
            f"cannot carve a judge split: the train split has {len(people)} known "
            "identities, the judge needs people of its own (is identity_CelebA.txt there?)"
        )
    count = min(max(round(fraction * len(people)), 1), len(people) - 1)
    hashes = np.array([identity_hash(i, seed) for i in people], dtype=np.uint64)
    chosen = people[np.argsort(hashes, kind="stable")[:count]]
    return np.sort(chosen)


def carve_judge(
    train: EmbeddingSplit, fraction: float = JUDGE_FRACTION, seed: int = JUDGE_SEED
) -> tuple[EmbeddingSplit, EmbeddingSplit]:
    """(train_rest, judge): identity-disjoint, rows in their original order."""
    chosen = judge_identities(train.identities, fraction, seed)
    to_judge = np.isin(train.identities, chosen)
    record = {"fraction": fraction, "seed": seed, "judge_identities": int(len(chosen))}
    rest = train.subset(np.flatnonzero(~to_judge))
    judge = train.subset(np.flatnonzero(to_judge))
    rest.metadata = {**train.metadata, METADATA_KEY: {**record, "role": "train_rest"}}
    judge.metadata = {**train.metadata, "split": "judge",
                      METADATA_KEY: {**record, "role": "judge", "carved_from": "train"}}
    return rest, judge
