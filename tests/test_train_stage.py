"""The embed -> clean-checkpoints -> train stages run as DVC runs them, in a scratch folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from fclf.model.model_io import load_model
from fclf.train import checkpoint

REPO = Path(__file__).resolve().parents[1]
STAGES = REPO / "stages"
ATTRIBUTES = ["Smiling", "Young", "Male", "Eyeglasses", "Mustache"]
PARAMS = f"""\
data:
  attributes: [{", ".join(ATTRIBUTES)}]
  seed: 0
  synthetic:
    dim: 32
    train_identities: 60
    val_identities: 10
    test_identities: 10
    images_per_identity: 5
    attribute_context: 0.0
model:
  hidden_dim: 32
  attribute_embed_dim: 8
train:
  learning_rate: 0.001
  batch_size: 64
  epochs: 2
  device: cpu
loss:
  objective: contrastive
  lambda_identity: 0.1
"""
COMPONENTS = {"loss", "contr", "curl", "div", "ident"}  # the contrastive family's parts


def run_stage(cwd: Path, name: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "OMP_NUM_THREADS": "1",  # tiny model: threads only add contention
        "DVCLIVE_OPEN": "false",
        "DO_NOT_TRACK": "1",
    }
    done = subprocess.run(
        [sys.executable, str(STAGES / f"{name.replace('-', '_')}.py"), "--params", "params.yaml"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    return done


def history(cwd: Path) -> list[dict]:
    return checkpoint.load(cwd / "checkpoints" / "latest.pt")["history"]


def test_train_stage_end_to_end_with_resume_and_stale_cleanup(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS)
    run_stage(tmp_path, "embed")
    first_clean = run_stage(tmp_path, "clean-checkpoints")
    assert "absent" in first_clean.stdout
    marker = json.loads((tmp_path / "checkpoints" / "run.json").read_text())

    # --- train 2 epochs ---------------------------------------------------------------------
    run_stage(tmp_path, "train")
    model_path = tmp_path / "models" / "fclf.pt"
    field, model_config, record = load_model(model_path)
    assert field.dim == 32 and record["attributes"] == ATTRIBUTES
    assert model_config.hidden_dim == 32
    assert record["flow"] == {"num_steps": 10, "step_size": 0.1, "integrator": "euler"}
    assert bool(field.reader.fitted), "the model file carries its source reader"
    assert record["fingerprint"] == marker["fingerprint"]
    metrics = json.loads((tmp_path / "metrics" / "train.json").read_text())
    assert set(metrics) == {"epochs", "train", "val", "wall_seconds", "samples_per_s", "device"}
    assert metrics["epochs"] == 2 and metrics["device"] == "cpu"
    assert set(metrics["train"]) == set(metrics["val"]) == COMPONENTS
    state = checkpoint.load(tmp_path / "checkpoints" / "latest.pt")
    assert state["epoch"] == 2 and state["fingerprint"] == marker["fingerprint"]
    assert all(torch.equal(state["model"][k], v) for k, v in field.state_dict().items())
    two_epochs = history(tmp_path)
    assert [row["epoch"] for row in two_epochs] == [1, 2]
    assert metrics["val"]["loss"] == two_epochs[-1]["val_loss"]
    assert (tmp_path / "dvclive" / "train").is_dir()

    # --- more epochs: the same run, so training resumes -----------------------------------
    # (train applies the same stale-checkpoint rule as clean-checkpoints before it starts;
    # running clean-checkpoints here too would only cost another interpreter start.)
    params.write_text(PARAMS.replace("epochs: 2", "epochs: 3"))
    resumed = run_stage(tmp_path, "train")
    assert "removed stale" not in resumed.stdout
    assert "resumed" in resumed.stdout and "at epoch 2" in resumed.stdout
    assert "epoch 1/3" not in resumed.stdout and "epoch 3/3" in resumed.stdout
    three_epochs = history(tmp_path)
    assert [row["epoch"] for row in three_epochs] == [1, 2, 3]
    assert three_epochs[:2] == two_epochs
    assert json.loads((tmp_path / "metrics" / "train.json").read_text())["epochs"] == 3

    # --- another loss weight: a different run, the checkpoint is removed ------------------
    params.write_text(PARAMS.replace("epochs: 2", "epochs: 3")
                      .replace("lambda_identity: 0.1", "lambda_identity: 0.2"))
    removed = run_stage(tmp_path, "clean-checkpoints")
    assert "removed" in removed.stdout
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["run.json"]
    new_marker = json.loads((tmp_path / "checkpoints" / "run.json").read_text())
    assert new_marker["fingerprint"] != marker["fingerprint"]
