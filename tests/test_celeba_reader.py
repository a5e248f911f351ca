"""fclf.data.celeba: reading the CelebA text files, and every way they can be wrong."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from mini_celeba import MiniCeleba, write_mini_celeba

from fclf.attributes import CELEBA_ATTRIBUTES
from fclf.data.celeba import read_celeba
from fclf.errors import DataError

ATTRS = ["Smiling", "Male", "Young"]


@pytest.fixture
def mini(tmp_path: Path) -> MiniCeleba:
    return write_mini_celeba(tmp_path / "celeba", n=12)


def edit_line(path: Path, number: int, change: Callable[[str], str | None]) -> None:
    """Replace line `number` (1-based) by change(line); None deletes it."""
    lines = path.read_text().split("\n")
    new = change(lines[number - 1])
    if new is None:
        del lines[number - 1]
    else:
        lines[number - 1] = new
    path.write_text("\n".join(lines))


def test_reads_the_official_format(mini: MiniCeleba) -> None:
    index = read_celeba(mini.root, ATTRS)
    assert index.image_names == tuple(mini.names)
    np.testing.assert_array_equal(index.splits, mini.splits)
    np.testing.assert_array_equal(index.identities, mini.identities)
    assert index.has_identities
    columns = [CELEBA_ATTRIBUTES.index(a) for a in ATTRS]
    np.testing.assert_array_equal(index.attributes, (mini.values[:, columns] == 1).astype(np.int8))
    assert index.attributes.dtype == np.int8
    assert index.attribute_names == tuple(ATTRS)
    assert list(index.attr_lines) == list(range(3, 3 + len(mini.names)))
    assert [int(index.split_mask(s).sum()) for s in ("train", "val", "test")] == [7, 2, 3]


def test_any_of_the_40_attributes_in_any_order(mini: MiniCeleba) -> None:
    chosen = list(reversed(CELEBA_ATTRIBUTES))
    index = read_celeba(mini.root, chosen)
    np.testing.assert_array_equal(index.attributes, (mini.values[:, ::-1] == 1).astype(np.int8))


def test_identity_file_is_optional(mini: MiniCeleba) -> None:
    mini.identity_file.unlink()
    index = read_celeba(mini.root, ATTRS)
    assert not index.has_identities
    assert (index.identities == -1).all() and index.identities.dtype == np.int64


def test_crlf_and_trailing_spaces_are_accepted(tmp_path: Path, mini: MiniCeleba) -> None:
    crlf = write_mini_celeba(tmp_path / "crlf", n=12, newline="  \r\n")
    assert b"\r\n" in crlf.attr_file.read_bytes()
    a, b = read_celeba(mini.root, ATTRS), read_celeba(crlf.root, ATTRS)
    assert a.image_names == b.image_names
    np.testing.assert_array_equal(a.attributes, b.attributes)
    np.testing.assert_array_equal(a.splits, b.splits)
    np.testing.assert_array_equal(a.identities, b.identities)


def test_blank_lines_at_the_end_are_accepted(mini: MiniCeleba) -> None:
    with mini.partition_file.open("a") as f:
        f.write("\n\n   \n")
    assert len(read_celeba(mini.root, ATTRS)) == 12


def _swap(old: str, new: str) -> Callable[[str], str]:
    return lambda line: line.replace(old, new, 1)


def _drop_last_token(line: str) -> str:
    return " ".join(line.split()[:-1])


# (file, line to edit, change, expected "file:line" in the message, expected words)
BAD_EDITS = [
    ("attr", 1, lambda _: "13", "list_attr_celeba.txt:1", "count line says 13"),
    ("attr", 1, lambda _: "twelve", "list_attr_celeba.txt:1", "number of images"),
    ("attr", 2, _swap("Smiling", "Smiled"), "list_attr_celeba.txt:2", "missing ['Smiling']"),
    ("attr", 2, _drop_last_token, "list_attr_celeba.txt:2", "missing ['Young']"),
    ("attr", 5, lambda s: s[:-2] + " 0", "list_attr_celeba.txt:5", "value '0' for Young"),
    ("attr", 6, _drop_last_token, "list_attr_celeba.txt:6", "expected 41 columns"),
    ("attr", 7, lambda s: s + " 1", "list_attr_celeba.txt:7", "got 42"),
    ("attr", 8, _swap("000006.jpg", "000001.jpg"), "list_attr_celeba.txt:8",
     "duplicate image '000001.jpg' (first at line 3)"),
    ("attr", 4, lambda _: "", "list_attr_celeba.txt:4", "empty line"),
    ("attr", 9, _swap("000007.jpg", "../x.jpg"), "list_attr_celeba.txt:9", "plain image file"),
    ("partition", 3, _swap("000003.jpg", "999999.jpg"), "list_eval_partition.txt:3",
     "unknown image '999999.jpg'"),
    ("partition", 12, lambda _: None, "list_attr_celeba.txt:14", "'000012.jpg' has no row in"),
    ("partition", 2, _swap(" 0", " 3"), "list_eval_partition.txt:2", "partition 3"),
    ("partition", 2, lambda s: s + " 0", "list_eval_partition.txt:2", "expected 2 columns"),
    ("partition", 4, _swap("000004.jpg", "000002.jpg"), "list_eval_partition.txt:4",
     "duplicate image '000002.jpg' (first at line 2)"),
    ("identity", 5, _swap("000005.jpg", "000099.jpg"), "identity_CelebA.txt:5",
     "unknown image '000099.jpg'"),
    ("identity", 1, lambda _: None, "list_attr_celeba.txt:3", "'000001.jpg' has no row in"),
    ("identity", 6, lambda s: s.split()[0] + " x7", "identity_CelebA.txt:6", "identity 'x7'"),
]


@pytest.mark.parametrize(("which", "number", "change", "where", "words"), BAD_EDITS)
def test_bad_text_files_name_file_and_line(
    mini: MiniCeleba, which: str, number: int, change: Callable, where: str, words: str
) -> None:
    path = {"attr": mini.attr_file, "partition": mini.partition_file,
            "identity": mini.identity_file}[which]
    edit_line(path, number, change)
    with pytest.raises(DataError) as info:
        read_celeba(mini.root, ATTRS)
    message = str(info.value)
    assert re.search(re.escape(where) + r"\b", message), message
    assert words in message, message


@pytest.mark.parametrize("name", ["list_attr_celeba.txt", "list_eval_partition.txt"])
def test_missing_file_is_named(mini: MiniCeleba, name: str) -> None:
    (mini.root / name).unlink()
    with pytest.raises(DataError, match=re.escape(name) + ": file not found"):
        read_celeba(mini.root, ATTRS)


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="CelebA folder not found"):
        read_celeba(tmp_path / "nowhere", ATTRS)


def test_header_only_file_is_read_as_empty(mini: MiniCeleba) -> None:
    lines = mini.attr_file.read_text().split("\n")
    mini.attr_file.write_text("0\n" + lines[1] + "\n")
    with pytest.raises(DataError, match="list_eval_partition.txt:1: unknown image"):
        read_celeba(mini.root, ATTRS)
