"""Reader for the text files of the standard CelebA release.

`root` holds `img_align_celeba/*.jpg`, `list_attr_celeba.txt` (a count line, a
header of the 40 attribute names, then `name v1 ... v40` with values -1/1),
`list_eval_partition.txt` (`name 0|1|2` = train/val/test) and, optionally,
`identity_CelebA.txt` (`name id`). Columns are separated by one or more spaces;
CRLF line endings, trailing spaces and blank lines at the end of a file are
accepted. Every problem is a DataError naming the file and the line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fclf.attributes import CELEBA_ATTRIBUTES
from fclf.errors import DataError

IMAGE_DIR = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
IDENTITY_FILE = "identity_CelebA.txt"
SPLIT_NAMES = ("train", "val", "test")  # partition codes 0, 1, 2
UNKNOWN_IDENTITY = -1


@dataclass(frozen=True)
class CelebaIndex:
    """Everything the text files say, one row per image in list_attr_celeba.txt order."""

    root: Path
    image_names: tuple[str, ...]
    attr_lines: np.ndarray  # (N,) line of each image in list_attr_celeba.txt
    splits: np.ndarray  # (N,) int8: 0 train, 1 val, 2 test
    identities: np.ndarray  # (N,) int64, -1 without identity_CelebA.txt
    attribute_names: tuple[str, ...]
    attributes: np.ndarray  # (N, k) int8 0/1, columns in `attribute_names` order
    has_identities: bool

    def __len__(self) -> int:
        return len(self.image_names)

    @property
    def image_dir(self) -> Path:
        return self.root / IMAGE_DIR

    def split_mask(self, split: str) -> np.ndarray:
        return self.splits == SPLIT_NAMES.index(split)


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, whitespace-separated tokens) of every line; blank lines only at the end."""
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected part of the CelebA release)")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    rows = []
    for number, line in enumerate(lines, start=1):
        tokens = line.split()
        if not tokens:
            raise DataError(f"{path}:{number}: empty line")
        rows.append((number, tokens))
    return rows


def _is_count(token: str) -> bool:
    return token.isascii() and token.isdigit()


def _check_name(path: Path, number: int, name: str, seen: dict[str, int]) -> None:
    if "/" in name or "\\" in name or name.startswith("."):
        raise DataError(f"{path}:{number}: {name!r} is not a plain image file name")
    if name in seen:
        raise DataError(f"{path}:{number}: duplicate image {name!r} (first at line {seen[name]})")
    seen[name] = number


def read_attribute_file(path: Path) -> tuple[tuple[str, ...], dict[str, int], np.ndarray]:
    """(header names, image name -> line, values as int8 0/1 of shape (N, 40))."""
    rows = _rows(path)
    if len(rows) < 2:
        raise DataError(
            f"{path}: expected a count line and a header line, found {len(rows)} line(s)"
        )
    (count_line, count_tokens), (header_line, header) = rows[0], rows[1]
    if len(count_tokens) != 1 or not _is_count(count_tokens[0]):
        raise DataError(
            f"{path}:{count_line}: expected the number of images, got {' '.join(count_tokens)!r}"
        )
    missing = [a for a in CELEBA_ATTRIBUTES if a not in header]
    extra = [a for a in header if a not in CELEBA_ATTRIBUTES]
    if missing or extra or len(header) != len(CELEBA_ATTRIBUTES):
        detail = f"missing {missing}" if missing else f"unexpected {extra}" if extra else "repeats"
        raise DataError(
            f"{path}:{header_line}: header must be the 40 CelebA attribute names ({detail})"
        )
    width = len(header) + 1
    names: dict[str, int] = {}
    values: list[list[str]] = []
    for number, tokens in rows[2:]:
        if len(tokens) != width:
            raise DataError(
                f"{path}:{number}: expected {width} columns (name + 40 values), got {len(tokens)}"
            )
        _check_name(path, number, tokens[0], names)
        row = tokens[1:]
        if not set(row) <= {"1", "-1"}:
            bad = next(v for v in row if v not in ("1", "-1"))
            column = header[row.index(bad)]
            raise DataError(f"{path}:{number}: value {bad!r} for {column}; expected -1 or 1")
        values.append(row)
    if int(count_tokens[0]) != len(values):
        raise DataError(
            f"{path}:{count_line}: count line says {count_tokens[0]} images but the file has "
            f"{len(values)} rows"
        )
    array = (np.array(values).reshape(len(values), len(header)) == "1").astype(np.int8)
    return tuple(header), names, array


def read_two_column_file(path: Path, what: str) -> tuple[dict[str, int], dict[str, int]]:
    """(image name -> integer value, image name -> line) of a `name value` file."""
    values: dict[str, int] = {}
    lines: dict[str, int] = {}
    for number, tokens in _rows(path):
        if len(tokens) != 2:
            raise DataError(f"{path}:{number}: expected 2 columns (name {what}), got {len(tokens)}")
        name, value = tokens
        _check_name(path, number, name, lines)
        if not _is_count(value):
            raise DataError(f"{path}:{number}: {what} {value!r} is not a non-negative integer")
        values[name] = int(value)
    return values, lines


def _check_same_images(
    attr_path: Path, attr_lines: dict[str, int], other_path: Path, other_lines: dict[str, int]
) -> None:
    for name, number in other_lines.items():
        if name not in attr_lines:
            raise DataError(
                f"{other_path}:{number}: unknown image {name!r} (not in {attr_path.name})"
            )
    absent = [name for name in attr_lines if name not in other_lines]
    if absent:
        raise DataError(
            f"{attr_path}:{attr_lines[absent[0]]}: image {absent[0]!r} has no row in "
            f"{other_path} ({len(absent)} image(s) of {attr_path.name} are missing there)"
        )


def read_celeba(root: str | Path, attributes: Sequence[str]) -> CelebaIndex:
    """Read and cross-check the release's text files; images are not opened."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: CelebA folder not found (data.celeba_root)")
    attr_path = root / ATTR_FILE
    header, attr_lines, values = read_attribute_file(attr_path)
    unknown = [a for a in attributes if a not in header]
    if unknown:
        raise DataError(f"{attr_path}: no column for attribute(s) {unknown}")
    names = tuple(attr_lines)

    part_path = root / PARTITION_FILE
    partition, part_lines = read_two_column_file(part_path, "partition")
    for name, code in partition.items():
        if code >= len(SPLIT_NAMES):
            raise DataError(
                f"{part_path}:{part_lines[name]}: partition {code} for {name!r}; expected 0, 1 or 2"
            )
    _check_same_images(attr_path, attr_lines, part_path, part_lines)

    id_path = root / IDENTITY_FILE
    has_identities = id_path.exists()
    if has_identities:
        identity, id_lines = read_two_column_file(id_path, "identity")
        _check_same_images(attr_path, attr_lines, id_path, id_lines)
        identities = np.array([identity[n] for n in names], np.int64)
    else:
        identities = np.full(len(names), UNKNOWN_IDENTITY, np.int64)

    columns = [header.index(a) for a in attributes]
    return CelebaIndex(
        root=root,
        image_names=names,
        attr_lines=np.array([attr_lines[n] for n in names], np.int64),
        splits=np.array([partition[n] for n in names], np.int8),
        identities=identities,
        attribute_names=tuple(attributes),
        attributes=np.ascontiguousarray(values[:, columns]),
        has_identities=has_identities,
    )
