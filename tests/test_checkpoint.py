"""Checkpoints: fingerprints, safe loading, and the stale-checkpoint cleanup."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fclf.config import Config
from fclf.errors import FclfError
from fclf.train import checkpoint
from fclf.train.checkpoint import LATEST, RUN_MARKER, clean_stale, fingerprint
from fclf.train.run_definition import compute_fingerprint

DEFINITION = {"model": {"hidden_dim": 8}, "loss": {"lambda_curl": 0.01}, "data": "abc"}


class Arbitrary:
    """Not a tensor/container: weights_only loading must refuse it."""

    def __reduce__(self):
        return (print, ("this must never run on load",))


def write_checkpoint(directory, fp: str) -> None:
    checkpoint.save(directory / LATEST, {"fingerprint": fp, "epoch": 1,
                                         "model": {"w": torch.ones(2)}})


def test_save_and_load_round_trip(tmp_path):
    state = {"fingerprint": "f", "epoch": 3, "model": {"w": torch.arange(4.0)},
             "history": [{"epoch": 1, "loss": 0.5}], "torch_rng": torch.get_rng_state()}
    checkpoint.save(tmp_path / "c.pt", state)
    loaded = checkpoint.load(tmp_path / "c.pt")
    assert loaded["epoch"] == 3 and loaded["history"] == state["history"]
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"], "no temp files left behind"


def test_load_refuses_arbitrary_objects(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"payload": Arbitrary()}, path)
    with pytest.raises(FclfError, match="not a readable checkpoint"):
        checkpoint.load(path)
    assert "must never run" not in capsys.readouterr().out


def test_load_reports_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FclfError, match="checkpoint not found"):
        checkpoint.load(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(FclfError, match="junk.pt: not a readable checkpoint"):
        checkpoint.load(tmp_path / "junk.pt")


def test_fingerprint_is_order_independent_and_sensitive():
    same = {"data": "abc", "loss": {"lambda_curl": 0.01}, "model": {"hidden_dim": 8}}
    assert fingerprint(DEFINITION) == fingerprint(same)
    other = {**DEFINITION, "loss": {"lambda_curl": 0.02}}
    assert fingerprint(other) != fingerprint(DEFINITION)


def test_array_digest_identifies_the_data():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert checkpoint.array_digest(a) == checkpoint.array_digest(torch.from_numpy(a.copy()))
    assert checkpoint.array_digest(a) != checkpoint.array_digest(a.reshape(3, 2))
    assert checkpoint.array_digest(a) != checkpoint.array_digest(a.astype(np.float64))
    b = a.copy()
    b[0, 0] = 1e-9
    assert checkpoint.array_digest(a) != checkpoint.array_digest(b)


def test_describe_difference_lists_nested_changes():
    now = {"model": {"hidden_dim": 16}, "loss": {"lambda_curl": 0.01}, "extra": 1}
    diffs = checkpoint.describe_difference(DEFINITION, now)
    assert "model.hidden_dim: checkpoint has 8, now 16" in diffs
    assert "data: checkpoint has 'abc', now '<absent>'" in diffs
    assert "extra: checkpoint has '<absent>', now 1" in diffs
    assert not any(d.startswith("loss") for d in diffs)


def test_clean_stale_absent(tmp_path):
    assert clean_stale(tmp_path / "checkpoints", "fp") == "absent"
    (tmp_path / "checkpoints").mkdir()
    assert clean_stale(tmp_path / "checkpoints", "fp") == "absent"
    (tmp_path / "checkpoints" / RUN_MARKER).write_text("{}")
    assert clean_stale(tmp_path / "checkpoints", "fp") == "absent"
    assert (tmp_path / "checkpoints" / RUN_MARKER).exists()


def test_clean_stale_keeps_the_same_run(tmp_path):
    directory = tmp_path / "checkpoints"
    directory.mkdir()
    write_checkpoint(directory, "fp-a")
    (directory / RUN_MARKER).write_text("{}")
    before = (directory / LATEST).read_bytes()
    assert clean_stale(directory, "fp-a") == "kept"
    assert (directory / LATEST).read_bytes() == before


def test_clean_stale_removes_another_run_but_keeps_the_marker(tmp_path):
    directory = tmp_path / "checkpoints"
    (directory / "sub" / "deeper").mkdir(parents=True)
    (directory / "sub" / "deeper" / "x.pt").write_bytes(b"x")
    (directory / "epoch_1.pt").write_bytes(b"y")
    write_checkpoint(directory, "fp-a")
    (directory / RUN_MARKER).write_text('{"fingerprint": "fp-a"}')
    assert clean_stale(directory, "fp-b") == "removed"
    assert [p.name for p in directory.iterdir()] == [RUN_MARKER]
    assert (directory / RUN_MARKER).read_text() == '{"fingerprint": "fp-a"}'


def test_clean_stale_removes_unreadable_checkpoints(tmp_path):
    directory = tmp_path / "checkpoints"
    directory.mkdir()
    (directory / LATEST).write_bytes(b"not a checkpoint")
    assert clean_stale(directory, "fp") == "removed"
    assert not any(directory.iterdir())


def test_clean_stale_refuses_a_symlinked_directory(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    write_checkpoint(real, "fp-a")
    (tmp_path / "checkpoints").symlink_to(real, target_is_directory=True)
    with pytest.raises(FclfError, match="symlink"):
        clean_stale(tmp_path / "checkpoints", "fp-b")
    assert (real / LATEST).exists()


def test_clean_stale_unlinks_symlinks_without_following_them(tmp_path):
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "keep" / "precious.txt").write_text("precious")
    (outside / "file.pt").write_text("also precious")
    write_checkpoint(outside, "fp-b")  # a linked latest.pt must not count as this run's
    directory = tmp_path / "checkpoints"
    directory.mkdir()
    (directory / "dir_link").symlink_to(outside / "keep", target_is_directory=True)
    (directory / "file_link.pt").symlink_to(outside / "file.pt")
    (directory / LATEST).symlink_to(outside / LATEST)
    (directory / "dangling").symlink_to(tmp_path / "missing")
    assert clean_stale(directory, "fp-b") == "removed"
    assert not any(directory.iterdir())
    assert (outside / "keep" / "precious.txt").read_text() == "precious"
    assert (outside / "file.pt").read_text() == "also precious"
    assert (outside / LATEST).exists()


def config_with(**train) -> Config:
    config = Config()
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **train))


def test_epochs_define_the_run_and_a_changed_count_cleans_the_checkpoint(tmp_path):
    """The cosine schedule spans train.epochs: 15 -> 20 epochs is another run (trained from
    scratch), while the device and gradient checkpointing do not change the math."""
    z, y = np.zeros((4, 3), np.float32), np.zeros((4, 2), np.int64)
    fp15, definition = compute_fingerprint(config_with(epochs=15), z, y)
    fp20, definition20 = compute_fingerprint(config_with(epochs=20), z, y)
    assert definition["train"]["epochs"] == 15 and fp15 != fp20
    assert checkpoint.describe_difference(definition, definition20) == [
        "train.epochs: checkpoint has 15, now 20"
    ]
    same = config_with(epochs=15, device="cpu", checkpoint_gradients=True)
    assert compute_fingerprint(same, z, y)[0] == fp15

    directory = tmp_path / "checkpoints"
    directory.mkdir()
    write_checkpoint(directory, fp15)
    assert clean_stale(directory, fp15) == "kept"
    assert clean_stale(directory, fp20) == "removed"
    assert not any(directory.iterdir())
