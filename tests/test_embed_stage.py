"""The `embed` stage run as DVC runs it: a script, in a working folder, with a params file."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fclf.data.embeddings_io import EmbeddingSplit, read_split, write_split
from fclf.data.truth import read_truth
from fclf.errors import DataError

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "stages" / "embed.py"
SPLITS = ("train", "val", "test", "judge")
ATTRIBUTES = ["Smiling", "Young", "Male", "Eyeglasses", "Mustache"]
# A small contextual world: 1 + 5 + (2 * 5 + 5 * 4) + 4 + identities <= 64 dimensions.
SMALL = f"""\
data:
  attributes: [{", ".join(ATTRIBUTES)}]
  seed: 3
  synthetic:
    dim: 64
    train_identities: 12
    val_identities: 4
    test_identities: 4
    judge_identities: 5
    images_per_identity: 3
    identity_groups: 2
    nuisance_rank: 4
    identity_rank: 16
"""
OUTPUTS = sorted([f"{s}.parquet" for s in SPLITS] + ["truth.npz"])


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
        ("data:\n  synthetic:\n    dim: 64\n",
         ["bad.yaml", "data.synthetic.dim = 64 is too small", ">= 143"]),
        ("data:\n  synthetic:\n    look_alike_cosine: 0.9\n",
         ["data.synthetic.look_alike_cosine = 0.9", "strictly between"]),
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
    assert sorted(p.name for p in out.iterdir()) == OUTPUTS

    splits = {s: read_split(out / f"{s}.parquet", attribute_names=ATTRIBUTES, dim=64)
              for s in SPLITS}
    identities = [set(splits[s].identities.tolist()) for s in SPLITS]
    assert [len(i) for i in identities] == [12, 4, 4, 5]
    for a in range(len(SPLITS)):
        for b in range(a):
            assert not identities[a] & identities[b], (SPLITS[a], SPLITS[b])
    truth = read_truth(out / "truth.npz", attribute_names=ATTRIBUTES, dim=64)
    assert truth.context == 0.75 and truth.num_groups == 2  # the params defaults, and SMALL's
    for name, split in splits.items():
        truth.check_split(name, split, out / f"{name}.parquet")
        rows = np.arange(len(split))
        np.testing.assert_allclose(truth.counterfactual(name, rows, split.attributes),
                                   split.embeddings, atol=1e-5)
    assert "truth.npz" in first.stdout
    for name, split in splits.items():
        assert split.metadata["split"] == name and split.metadata["source"] == "synthetic"
        np.testing.assert_allclose(np.linalg.norm(split.embeddings, axis=1), 1.0, atol=1e-5)
        assert f"{name}.parquet ({len(split)} rows" in first.stdout
    with pytest.raises(DataError):  # the files carry the params' attributes, in order
        read_split(out / "train.parquet", attribute_names=ATTRIBUTES[::-1])

    before = {name: (out / name).read_bytes() for name in OUTPUTS}
    second = run_stage(tmp_path, "--params", "params.yaml")
    assert second.returncode == 0, second.stderr
    assert {name: (out / name).read_bytes() for name in OUTPUTS} == before


def test_seed_changes_the_data(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, seed in ((a, 3), (b, 4)):
        folder.mkdir()
        (folder / "params.yaml").write_text(SMALL.replace("seed: 3", f"seed: {seed}"))
        assert run_stage(folder, "--params", "params.yaml").returncode == 0
    path = Path("data/embeddings/train.parquet")
    assert (a / path).read_bytes() != (b / path).read_bytes()


def test_linear_preset_fits_a_small_dim(tmp_path):
    """The documented linear preset needs only attributes + 2 dimensions for the world (the
    model's frozen directions need their own room: none frozen here)."""
    preset = ("    attribute_context: 0\n    identity_groups: 1\n    nuisance_rank: 0\n"
              "    identity_rank: 0\nmodel:\n  frozen_identity_rank: 0\n")
    text = SMALL.replace("    dim: 64\n", "    dim: 16\n").replace(
        "    identity_groups: 2\n    nuisance_rank: 4\n    identity_rank: 16\n", preset)
    (tmp_path / "params.yaml").write_text(text)
    done = run_stage(tmp_path, "--params", "params.yaml")
    assert done.returncode == 0, done.stderr
    truth = read_truth(tmp_path / "data" / "embeddings" / "truth.npz")
    assert truth.context == 0 and truth.dim == 16


def _stage_module(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "stages"))
    spec = importlib.util.spec_from_file_location("embed_stage_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _celeba_like_train(n_people: int = 40) -> EmbeddingSplit:
    rng = np.random.default_rng(0)
    ids = np.concatenate([np.repeat(np.arange(n_people) + 100, 3), [-1, -1]])
    emb = rng.standard_normal((len(ids), 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return EmbeddingSplit(
        image_ids=np.array([f"{i:06d}.jpg" for i in range(len(ids))], dtype=object),
        identities=ids.astype(np.int64),
        attributes=rng.integers(0, 2, (len(ids), len(ATTRIBUTES))).astype(np.int8),
        embeddings=emb, attribute_names=tuple(ATTRIBUTES),
        metadata={"source": "celeba", "split": "train"},
    )


def test_celeba_train_is_carved_into_train_and_judge(tmp_path, monkeypatch):
    """What the stage does after the encoder wrote data/embeddings/train.parquet."""
    stage = _stage_module(monkeypatch)
    monkeypatch.chdir(tmp_path)
    train_path = tmp_path / "data" / "embeddings" / "train.parquet"
    original = _celeba_like_train()
    write_split(train_path, original)
    stage._carve_celeba_judge(ATTRIBUTES)
    rest = read_split(train_path, attribute_names=ATTRIBUTES)
    judge = read_split(train_path.with_name("judge.parquet"), attribute_names=ATTRIBUTES)
    assert len(rest) + len(judge) == len(original)
    assert len(set(judge.identities.tolist())) == 4  # 10 % of 40 people
    assert not set(rest.identities.tolist()) & set(judge.identities.tolist())
    assert judge.metadata["split"] == "judge" and rest.metadata["split"] == "train"
    with pytest.raises(DataError, match="already carved"):  # never carve twice
        stage._carve_celeba_judge(ATTRIBUTES)
