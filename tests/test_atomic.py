"""Atomic writes: the target is either the old file or the complete new one."""

from __future__ import annotations

import json
import os
import stat

import pytest

from fclf.atomic import atomic_path, torch_save, write_json, write_text


def names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_text_creates_parents_and_leaves_only_the_target(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"
    write_text(target, "héllo\n")
    assert target.read_text(encoding="utf-8") == "héllo\n"
    assert names(target.parent) == ["out.txt"]


def test_write_json_round_trip_and_replaces(tmp_path):
    target = tmp_path / "m.json"
    write_json(target, {"x": 1})
    write_json(target, {"y": [1.5, None]})
    assert json.loads(target.read_text()) == {"y": [1.5, None]}
    assert target.read_text().endswith("\n")
    assert names(tmp_path) == ["m.json"]


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failure_mid_write_keeps_the_old_file_and_removes_the_temp(tmp_path, error):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(type(error)), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_text("half of the new")
        raise error
    assert target.read_text() == "old"
    assert names(tmp_path) == ["out.txt"]


def test_failure_before_the_first_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "new.txt") as tmp:
        tmp.write_text("partial")
        raise RuntimeError
    assert names(tmp_path) == []


def test_temp_file_removed_when_the_body_deletes_nothing_and_writes_nothing(tmp_path):
    # The body never touches the temp file: the result is an empty target, no leftovers.
    with atomic_path(tmp_path / "empty.txt"):
        pass
    assert (tmp_path / "empty.txt").read_bytes() == b""
    assert names(tmp_path) == ["empty.txt"]


def test_result_has_the_mode_a_plain_open_gives(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "atomic.txt", "x")
        (tmp_path / "plain.txt").write_text("x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "atomic.txt").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == 0o644


def test_torch_save_is_atomic(tmp_path):
    torch = pytest.importorskip("torch")
    target = tmp_path / "m.pt"
    torch_save({"w": torch.arange(3)}, target)
    assert torch.equal(torch.load(target)["w"], torch.arange(3))
    assert names(tmp_path) == ["m.pt"]


def test_torch_save_bytes_depend_only_on_the_object(tmp_path):
    import hashlib

    import torch

    from fclf.atomic import torch_save

    record = {"w": torch.arange(6.0).reshape(2, 3), "name": "x"}
    torch_save(record, tmp_path / "a.pt")
    torch_save(record, tmp_path / "sub_b.pt")
    digests = {hashlib.md5((tmp_path / n).read_bytes()).hexdigest() for n in ("a.pt", "sub_b.pt")}
    assert len(digests) == 1
    assert torch.equal(torch.load(tmp_path / "a.pt", weights_only=True)["w"], record["w"])
