"""The `embed` stage run as DVC runs it: a script, in a working folder, with a params file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fclf.data.embeddings_io import read_split
from fclf.errors import DataError

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "stages" / "embed.py"
SPLITS = ("train", "val", "test")
ATTRIBUTES = ["Smiling", "Young", "Male", "Eyeglasses", "Mustache"]
SMALL = f"""\
data:
  attributes: [{", ".join(ATTRIBUTES)}]
  seed: 3
  synthetic:
    dim: 32
    train_identities: 12
    val_identities: 4
    test_identities: 4
    images_per_identity: 3
"""


def run_stage(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def assert_clean_failure(done: subprocess.CompletedProcess, cwd: Path, *fragments: str):
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert not (cwd / "data").exists(), "nothing is written on a bad params file"


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("loss:\n  lamda_identity: 0.1\n",
         ["bad.yaml:2", "'loss.lamda_identity'", "did you mean 'lambda_identity'"]),
        ("train:\n  flip_prob: 1.5\n", ["bad.yaml:2", "train.flip_prob = 1.5", "<= 1"]),
        ("data:\n  attributes: [Smiling, Smiling]\n", ["bad.yaml:2", "data.attributes"]),
        ("train:\n  epochs: [1\n", ["bad.yaml:", "not valid YAML"]),
    ],
)
def test_bad_params_fail_readably_and_write_nothing(tmp_path, text, fragments):
    (tmp_path / "bad.yaml").write_text(text)
    assert_clean_failure(run_stage(tmp_path, "--params", "bad.yaml"), tmp_path, *fragments)


def test_missing_params_file(tmp_path):
    done = run_stage(tmp_path, "--params", "nope.yaml")
    assert_clean_failure(done, tmp_path, "nope.yaml", "not found")


def test_help_explains_the_stage(tmp_path):
    done = run_stage(tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    for fragment in ("--params", "data/embeddings", "synthetic", "celeba"):
        assert fragment in done.stdout
    assert not (tmp_path / "data").exists()


def test_writes_readable_splits_and_rerun_is_byte_identical(tmp_path):
    (tmp_path / "params.yaml").write_text(SMALL)
    first = run_stage(tmp_path, "--params", "params.yaml")
    assert first.returncode == 0, first.stderr
    out = tmp_path / "data" / "embeddings"
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.parquet" for s in SPLITS)

    splits = {s: read_split(out / f"{s}.parquet", attribute_names=ATTRIBUTES, dim=32)
              for s in SPLITS}
    identities = [set(splits[s].identities.tolist()) for s in SPLITS]
    assert [len(i) for i in identities] == [12, 4, 4]
    assert not set.intersection(*identities[:2]) and not set.intersection(*identities[1:])
    for name, split in splits.items():
        assert split.metadata["split"] == name and split.metadata["source"] == "synthetic"
        np.testing.assert_allclose(np.linalg.norm(split.embeddings, axis=1), 1.0, atol=1e-5)
        assert f"{name}.parquet ({len(split)} rows" in first.stdout
    with pytest.raises(DataError):  # the files carry the params' attributes, in order
        read_split(out / "train.parquet", attribute_names=ATTRIBUTES[::-1])

    before = {s: (out / f"{s}.parquet").read_bytes() for s in SPLITS}
    second = run_stage(tmp_path, "--params", "params.yaml")
    assert second.returncode == 0, second.stderr
    assert {s: (out / f"{s}.parquet").read_bytes() for s in SPLITS} == before


def test_seed_changes_the_data(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, seed in ((a, 3), (b, 4)):
        folder.mkdir()
        (folder / "params.yaml").write_text(SMALL.replace("seed: 3", f"seed: {seed}"))
        assert run_stage(folder, "--params", "params.yaml").returncode == 0
    path = Path("data/embeddings/train.parquet")
    assert (a / path).read_bytes() != (b / path).read_bytes()
