"""The embeddings Parquet format: lossless round trip and a reader that rejects bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fclf.data.embeddings_io import (
    FORMAT_VERSION,
    METADATA_KEY,
    EmbeddingSplit,
    read_metadata,
    read_split,
    write_split,
)
from fclf.errors import DataError

NAMES = ("Male", "Young", "Smiling")


def make_split(n: int = 7, dim: int = 8, names=NAMES, seed: int = 0) -> EmbeddingSplit:
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    identities = rng.integers(0, 3, n).astype(np.int64)
    identities[0] = -1  # unknown identity
    return EmbeddingSplit(
        image_ids=np.array([f"{i + 1:06d}.jpg" for i in range(n)], dtype=object),
        identities=identities,
        attributes=rng.integers(0, 2, (n, len(names))).astype(np.int8),
        embeddings=emb,
        attribute_names=tuple(names),
        metadata={"source": "synthetic", "split": "train", "extra": {"seed": seed}},
    )


@pytest.fixture
def written(tmp_path) -> tuple[Path, EmbeddingSplit]:
    path = tmp_path / "emb" / "train.parquet"
    split = make_split()
    write_split(path, split)
    return path, split


def rewrite(path: Path, change) -> None:
    """Rewrite the file after `change(table) -> table`, keeping its metadata."""
    table = pq.read_table(path)
    metadata = table.schema.metadata
    table = change(table)
    if table.schema.metadata is None:
        table = table.replace_schema_metadata(metadata)
    pq.write_table(table, path)


def set_column(table: pa.Table, name: str, array: pa.Array) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, array)


def set_meta(path: Path, **updates) -> None:
    def change(table):
        meta = json.loads(table.schema.metadata[METADATA_KEY])
        meta.update(updates)
        return table.replace_schema_metadata({METADATA_KEY: json.dumps(meta)})

    rewrite(path, change)


def data_error(path: Path, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        read_split(path, **kwargs)
    message = str(info.value)
    assert str(path) in message, "the error names the file"
    return message


# -- round trip -------------------------------------------------------------------------


def test_round_trip_preserves_everything(written):
    path, split = written
    back = read_split(path, attribute_names=NAMES, dim=8)
    np.testing.assert_array_equal(back.embeddings, split.embeddings)
    np.testing.assert_array_equal(back.attributes, split.attributes)
    np.testing.assert_array_equal(back.identities, split.identities)
    assert back.image_ids.tolist() == split.image_ids.tolist()
    assert back.attribute_names == NAMES
    assert back.embeddings.dtype == np.float32 and back.attributes.dtype == np.int8
    assert back.identities.dtype == np.int64
    for key, value in split.metadata.items():
        assert back.metadata[key] == value
    assert back.metadata["format_version"] == FORMAT_VERSION
    assert back.metadata["dim"] == 8 and back.metadata["attributes"] == list(NAMES)
    assert read_metadata(path) == back.metadata
    assert len(back) == 7 and back.dim == 8 and not back.has_identities


def test_round_trip_without_attributes(tmp_path):
    split = make_split(names=())
    write_split(tmp_path / "x.parquet", split)
    back = read_split(tmp_path / "x.parquet", attribute_names=())
    assert back.attributes.shape == (7, 0)
    np.testing.assert_array_equal(back.embeddings, split.embeddings)


def test_subset_and_has_identities():
    split = make_split()
    part = split.subset(np.array([1, 3]))
    assert len(part) == 2 and part.has_identities
    np.testing.assert_array_equal(part.embeddings, split.embeddings[[1, 3]])
    assert part.image_ids.tolist() == [split.image_ids[1], split.image_ids[3]]


def test_rewriting_a_read_split_with_other_attributes_updates_the_metadata(written, tmp_path):
    # A split read from disk carries the old file's metadata; a relabelled copy of it
    # must still be written with its own attributes and dim.
    path, _ = written
    back = read_split(path)
    relabelled = EmbeddingSplit(back.image_ids, back.identities, back.attributes[:, :1],
                                back.embeddings, ("Male",), back.metadata)
    write_split(tmp_path / "relabelled.parquet", relabelled)
    again = read_split(tmp_path / "relabelled.parquet", attribute_names=("Male",), dim=8)
    assert again.metadata["attributes"] == ["Male"]
    assert again.metadata["source"] == "synthetic"


# -- the reader rejects bad files -------------------------------------------------------


def test_missing_file(tmp_path):
    message = data_error(tmp_path / "nope.parquet")
    assert "not found" in message and "embed stage" in message


def test_not_a_parquet_file(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"not parquet at all")
    assert "not a readable Parquet file" in data_error(path)


def test_parquet_without_fclf_metadata(tmp_path):
    path = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), path)
    assert "'fclf' metadata" in data_error(path)


def test_metadata_that_is_not_json(written):
    path, _ = written
    rewrite(path, lambda t: t.replace_schema_metadata({METADATA_KEY: b"{oops"}))
    assert "not valid JSON" in data_error(path)


def test_wrong_dim(written):
    path, _ = written
    message = data_error(path, dim=16)
    assert "dim 8" in message and "expected 16" in message


def test_dim_disagreeing_with_metadata(written):
    path, _ = written
    set_meta(path, dim=9)
    assert "metadata dim 9" in data_error(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_embeddings(tmp_path, bad):
    split = make_split()
    split.embeddings[4, 2] = bad
    path = tmp_path / "x.parquet"
    write_split(path, split)
    message = data_error(path)
    assert "non-finite" in message and "row 4" in message


def test_null_embedding_row(written):
    path, _ = written

    def change(table):
        emb = table.column("embedding").combine_chunks()
        mask = pa.array([False, False, True] + [False] * (len(emb) - 3))
        nulled = pa.FixedSizeListArray.from_arrays(emb.flatten(), 8, mask=mask)
        return set_column(table, "embedding", nulled)

    rewrite(path, change)
    message = data_error(path)
    assert "null" in message and "row 2" in message


def test_non_unit_norm(tmp_path):
    split = make_split()
    split.embeddings[3] *= 1.5
    path = tmp_path / "x.parquet"
    write_split(path, split)
    message = data_error(path)
    assert "not unit norm" in message and "row 3" in message and "1.5000" in message


def test_embedding_column_of_variable_length_lists(written):
    path, _ = written

    def change(table):
        values = table.column("embedding").combine_chunks().to_pylist()
        return set_column(table, "embedding", pa.array(values, pa.list_(pa.float32())))

    rewrite(path, change)
    assert "fixed-size list" in data_error(path)


@pytest.mark.parametrize("column", ["image_id", "identity", "Young", "embedding"])
def test_missing_column(written, column):
    path, _ = written
    rewrite(path, lambda t: t.drop_columns([column]))
    message = data_error(path)
    assert "missing column" in message and repr(column) in message


def test_attributes_differing_from_params(written):
    path, _ = written
    message = data_error(path, attribute_names=("Male", "Smiling", "Young"))
    assert "differ from the params" in message
    assert "['Male', 'Young', 'Smiling']" in message


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        (pa.array([0, 1, 2, 0, 1, 0, 1], pa.int8()), "row 2 has 2"),
        (pa.array([0, -1, 1, 0, 1, 0, 1], pa.int8()), "row 1 has -1"),  # CelebA's -1/1 coding
        (pa.array([0, 1, 1, 256, 1, 0, 1], pa.int64()), "row 3 has 256"),  # not wrapped to 0
        (pa.array([0, 1, 1, 0, None, 0, 1], pa.int8()), "null"),
        (pa.array([0, 1, 1, 0.5, 1, 0, 1], pa.float64()), "expected integers"),
    ],
)
def test_attribute_values_must_be_0_or_1(written, values, fragment):
    path, _ = written
    rewrite(path, lambda t: set_column(t, "Young", values))
    message = data_error(path)
    assert "'Young'" in message and fragment in message


def test_null_identity(written):
    path, _ = written
    rewrite(path, lambda t: set_column(t, "identity", pa.array([1, None, 2, 0, 1, 0, 1],
                                                                   pa.int64())))
    assert "'identity'" in data_error(path)


@pytest.mark.parametrize("version", [2, 0, None, "1"])
def test_wrong_format_version(written, version):
    path, _ = written
    set_meta(path, format_version=version)
    message = data_error(path)
    assert "format_version" in message and f"expected {FORMAT_VERSION}" in message


# -- atomic writes ----------------------------------------------------------------------


def test_failed_write_keeps_the_previous_file_and_leaves_no_temp_files(
    written, monkeypatch
):
    path, split = written
    before = path.read_bytes()

    def broken_write(table, where, *args, **kwargs):
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken_write)
    with pytest.raises(OSError, match="disk full"):
        write_split(path, make_split(seed=1))
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    monkeypatch.undo()
    np.testing.assert_array_equal(read_split(path).embeddings, split.embeddings)


def test_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    def broken_write(table, where, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken_write)
    with pytest.raises(OSError):
        write_split(tmp_path / "out" / "train.parquet", make_split())
    assert list((tmp_path / "out").iterdir()) == []
