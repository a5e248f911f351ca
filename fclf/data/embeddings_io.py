"""The embeddings file format: one Parquet file per split.

Columns: `image_id` (string), `identity` (int64, -1 if unknown), one int8 0/1
column per attribute, `embedding` (fixed-size list of float32). The Parquet
key-value metadata key `fclf` holds JSON: format version, source, encoder,
dim, normalisation, attribute names, split, and source-specific extras.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fclf.atomic import atomic_path
from fclf.errors import DataError

FORMAT_VERSION = 1
METADATA_KEY = b"fclf"
NORM_TOLERANCE = 1e-3


@dataclass
class EmbeddingSplit:
    """One split held in memory as arrays."""

    image_ids: np.ndarray  # (N,) str
    identities: np.ndarray  # (N,) int64, -1 = unknown
    attributes: np.ndarray  # (N, k) int8 0/1
    embeddings: np.ndarray  # (N, d) float32, unit norm
    attribute_names: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def has_identities(self) -> bool:
        return bool(len(self.identities)) and bool((self.identities >= 0).all())

    def subset(self, index: np.ndarray) -> EmbeddingSplit:
        return EmbeddingSplit(
            self.image_ids[index], self.identities[index], self.attributes[index],
            self.embeddings[index], self.attribute_names, dict(self.metadata),
        )


def write_split(path: str | Path, split: EmbeddingSplit) -> None:
    """Write a split atomically; `split.metadata` goes into the file's metadata."""
    n, dim = split.embeddings.shape
    columns: dict[str, pa.Array] = {
        "image_id": pa.array([str(i) for i in split.image_ids], pa.string()),
        "identity": pa.array(np.asarray(split.identities, np.int64)),
    }
    for j, name in enumerate(split.attribute_names):
        columns[name] = pa.array(np.asarray(split.attributes[:, j], np.int8))
    flat = pa.array(np.ascontiguousarray(split.embeddings, np.float32).reshape(-1))
    columns["embedding"] = pa.FixedSizeListArray.from_arrays(flat, dim)
    # The format's own keys come last: metadata carried over from a file that
    # was read (and then subset or re-labelled) must not override them.
    meta = {
        **split.metadata,
        "format_version": FORMAT_VERSION,
        "dim": int(dim),
        "attributes": list(split.attribute_names),
        "normalisation": "l2",
    }
    table = pa.table(columns).replace_schema_metadata({METADATA_KEY: json.dumps(meta)})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_metadata(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: embeddings file not found (run the embed stage first)")
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    raw = (schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise DataError(f"{path}: no 'fclf' metadata; not written by the embed stage")
    try:
        meta = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: 'fclf' metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}: 'fclf' metadata must be a JSON object, got {meta!r}")
    return meta


def read_split(
    path: str | Path,
    attribute_names: list[str] | tuple[str, ...] | None = None,
    dim: int | None = None,
) -> EmbeddingSplit:
    """Load and validate a split. Every problem is a DataError naming the file."""
    path = Path(path)
    meta = read_metadata(path)
    if meta.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"{path}: format_version {meta.get('format_version')!r}, expected {FORMAT_VERSION}"
        )
    names = tuple(meta.get("attributes", ()))
    if attribute_names is not None and tuple(attribute_names) != names:
        raise DataError(
            f"{path}: attributes {list(names)} differ from the params' data.attributes "
            f"{list(attribute_names)}; re-run the embed stage"
        )
    try:
        table = pq.ParquetFile(path).read()  # read_table would import pandas (~0.5 s)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    required = ["image_id", "identity", *names, "embedding"]
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}")
    emb_col = table.column("embedding").combine_chunks()
    if not pa.types.is_fixed_size_list(emb_col.type):
        raise DataError(f"{path}: column 'embedding' must be a fixed-size list of float32")
    if emb_col.null_count:
        bad = int(np.flatnonzero(emb_col.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{path}: null in 'embedding' (first at row {bad})")
    file_dim = emb_col.type.list_size
    if file_dim != meta.get("dim"):
        raise DataError(f"{path}: embedding width {file_dim} != metadata dim {meta.get('dim')}")
    if dim is not None and file_dim != dim:
        raise DataError(f"{path}: embedding dim {file_dim}, expected {dim}")
    n = table.num_rows
    emb = emb_col.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(n, file_dim)
    if not np.isfinite(emb).all():
        bad = int(np.flatnonzero(~np.isfinite(emb).all(axis=1))[0])
        raise DataError(f"{path}: non-finite values in 'embedding' (first at row {bad})")
    norms = np.linalg.norm(emb, axis=1)
    off = np.flatnonzero(np.abs(norms - 1.0) > NORM_TOLERANCE)
    if len(off):
        raise DataError(
            f"{path}: {len(off)} embedding(s) are not unit norm (row {off[0]} has norm "
            f"{norms[off[0]]:.4f}); embeddings must be L2-normalised"
        )
    attrs = np.zeros((n, len(names)), np.int8)
    for j, name in enumerate(names):
        values = _integer_column(path, table, name)
        bad = np.flatnonzero((values != 0) & (values != 1))
        if len(bad):
            raise DataError(
                f"{path}: attribute column {name!r} must hold only 0 and 1 "
                f"(row {bad[0]} has {values[bad[0]]})"
            )
        attrs[:, j] = values
    image_ids = table.column("image_id")
    is_string = pa.types.is_string(image_ids.type) or pa.types.is_large_string(image_ids.type)
    if not is_string or image_ids.null_count:
        raise DataError(f"{path}: column 'image_id' must hold strings without nulls")
    return EmbeddingSplit(
        image_ids=np.asarray(image_ids.to_pylist(), dtype=object),
        identities=_integer_column(path, table, "identity").astype(np.int64),
        attributes=attrs,
        embeddings=emb,
        attribute_names=names,
        metadata=meta,
    )


def _integer_column(path: Path, table: pa.Table, name: str) -> np.ndarray:
    """A column as an integer array; nulls or a non-integer type are a DataError."""
    column = table.column(name)
    if not pa.types.is_integer(column.type):
        raise DataError(f"{path}: column {name!r} has type {column.type}, expected integers")
    if column.null_count:
        raise DataError(f"{path}: column {name!r} holds {column.null_count} null(s)")
    return column.to_numpy()
