"""The embed -> clean-checkpoints -> train stages run as DVC runs them, in a scratch folder."""

from __future__ import annotations

import json
import os
import shutil
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
  frozen_identity_rank: 4  # the default 32 does not fit 32 dims
train:
  learning_rate: 0.001
  batch_size: 64
  epochs: 2
  replicates: 1
  device: cpu
loss:
  objective: contrastive
  lambda_identity: 0.1
"""
COMPONENTS = {"loss", "contr", "curl", "div", "ident"}  # the contrastive family's parts


# Runs the train stage, ending the process right after the checkpoint of epoch
# `kill_after` is written: an interruption at the worst allowed moment.
INTERRUPTED_TRAIN = """\
import os, runpy, sys
from fclf.train import checkpoint
save, kill_after = checkpoint.save, int(os.environ["FCLF_TEST_KILL_AFTER"])
def save_then_die(path, state):
    save(path, state)
    if state["epoch"] == kill_after:
        sys.stdout.flush()
        if os.environ.get("FCLF_TEST_CTRL_C"):
            raise KeyboardInterrupt  # what Ctrl-C raises between two epochs
        os._exit(137)
checkpoint.save = save_then_die
sys.argv = [sys.argv[1], "--params", "params.yaml"]
sys.path.insert(0, os.path.dirname(sys.argv[0]))  # as `python stages/train.py` would
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def stage_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "OMP_NUM_THREADS": "1",  # tiny model: threads only add contention
        "DVCLIVE_OPEN": "false",
        "DO_NOT_TRACK": "1",
    }


def run_stage(cwd: Path, name: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, str(STAGES / f"{name.replace('-', '_')}.py"), "--params", "params.yaml"],
        cwd=cwd, env=stage_env(), capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    return done


def run_train_killed_after(cwd: Path, epoch: int) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_TRAIN, str(STAGES / "train.py")],
        cwd=cwd, env={**stage_env(), "FCLF_TEST_KILL_AFTER": str(epoch)},
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 137, f"train was not interrupted:\n{done.stdout}\n{done.stderr}"
    return done


def weights(cwd: Path, model: str = "fclf.pt") -> dict[str, torch.Tensor]:
    field, _, _ = load_model(cwd / "models" / model)
    return field.state_dict()


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "samples_per_s"} for row in rows]


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


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
    assert set(metrics) == {"epochs", "train", "val", "device"}  # timing: logs/, not metrics
    assert metrics["epochs"] == 2 and metrics["device"] == "cpu"
    assert set(metrics["train"]) == set(metrics["val"]) == COMPONENTS
    state = checkpoint.load(tmp_path / "checkpoints" / "latest.pt")
    assert state["epoch"] == 2 and state["fingerprint"] == marker["fingerprint"]
    assert all(torch.equal(state["model"][k], v) for k, v in field.state_dict().items())
    two_epochs = history(tmp_path)
    assert [row["epoch"] for row in two_epochs] == [1, 2]
    assert metrics["val"]["loss"] == round(two_epochs[-1]["val_loss"], 6)
    assert (tmp_path / "dvclive" / "train").is_dir()

    # --- more epochs: another run (the cosine spans all epochs), so it starts fresh ---------
    params.write_text(PARAMS.replace("epochs: 2", "epochs: 3"))
    cleaned = run_stage(tmp_path, "clean-checkpoints")
    assert "removed" in cleaned.stdout
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["run.json"]
    marker = json.loads((tmp_path / "checkpoints" / "run.json").read_text())
    extended = run_stage(tmp_path, "train")
    assert "resumed" not in extended.stdout and "removed stale" not in extended.stdout
    assert "epoch 1/3" in extended.stdout and "epoch 3/3" in extended.stdout
    three_epochs = history(tmp_path)
    assert [row["epoch"] for row in three_epochs] == [1, 2, 3]
    assert three_epochs[0]["lr"] != two_epochs[0]["lr"], "the schedule spans 3 epochs now"
    assert json.loads((tmp_path / "metrics" / "train.json").read_text())["epochs"] == 3
    assert load_model(model_path)[2]["fingerprint"] == marker["fingerprint"]

    # --- another loss weight: a different run, the checkpoint is removed ------------------
    params.write_text(PARAMS.replace("epochs: 2", "epochs: 3")
                      .replace("lambda_identity: 0.1", "lambda_identity: 0.2"))
    removed = run_stage(tmp_path, "clean-checkpoints")
    assert "removed" in removed.stdout
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["run.json"]
    new_marker = json.loads((tmp_path / "checkpoints" / "run.json").read_text())
    assert new_marker["fingerprint"] != marker["fingerprint"]


def test_editing_epochs_gives_the_weights_of_a_fresh_or_interrupted_run(tmp_path):
    """params.yaml alone decides the weights: 2 epochs then epochs=3, a fresh 3-epoch run and
    a 3-epoch run killed after epoch 1 and re-run all end bit-identical."""
    edited, fresh, interrupted = (tmp_path / name for name in ("edited", "fresh", "interrupted"))
    edited.mkdir()
    (edited / "params.yaml").write_text(PARAMS)
    run_stage(edited, "embed")
    for cwd in (fresh, interrupted):
        shutil.copytree(edited / "data", cwd / "data")
        (cwd / "params.yaml").write_text(PARAMS.replace("epochs: 2", "epochs: 3"))

    run_stage(edited, "train")  # 2 epochs to completion
    (edited / "params.yaml").write_text(PARAMS.replace("epochs: 2", "epochs: 3"))
    # train applies the clean-checkpoints rule itself (a git checkout can skip that stage)
    assert "removed stale" in run_stage(edited, "train").stdout

    run_stage(fresh, "train")

    killed = run_train_killed_after(interrupted, 1)
    assert "epoch 1/3" in killed.stdout and "epoch 2/3" not in killed.stdout
    assert not (interrupted / "models" / "fclf.pt").exists()
    assert "kept" in run_stage(interrupted, "clean-checkpoints").stdout
    resumed = run_stage(interrupted, "train")
    assert "resumed" in resumed.stdout and "at epoch 1 of 3" in resumed.stdout
    assert "epoch 1/3" not in resumed.stdout and "epoch 3/3" in resumed.stdout

    reference = weights(fresh)
    assert same_weights(weights(edited), reference)
    assert same_weights(weights(interrupted), reference)
    assert without_timing(history(edited)) == without_timing(history(fresh))
    assert without_timing(history(interrupted)) == without_timing(history(fresh))


def test_ctrl_c_says_that_rerunning_resumes_and_it_does(tmp_path):
    """An interrupted `dvc repro` used to end with a bare "exited with 130"."""
    (tmp_path / "params.yaml").write_text(PARAMS)
    run_stage(tmp_path, "embed")
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_TRAIN, str(STAGES / "train.py")],
        cwd=tmp_path, env={**stage_env(), "FCLF_TEST_KILL_AFTER": "1", "FCLF_TEST_CTRL_C": "1"},
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 130, done.stderr
    assert "Run `dvc repro` again to resume" in done.stderr
    assert "Traceback" not in done.stderr
    resumed = run_stage(tmp_path, "train")
    assert "resumed" in resumed.stdout and "epoch 2/2" in resumed.stdout


def test_replicates_are_the_same_run_with_the_next_seeds(tmp_path):
    """train.replicates = 2 adds models/replicates/fclf_seed1.pt: exactly the model a run with
    train.seed = 1 makes; the main model is unchanged by asking for replicates."""
    both, seed1, single = (tmp_path / name for name in ("both", "seed1", "single"))
    both.mkdir()
    (both / "params.yaml").write_text(PARAMS.replace("replicates: 1", "replicates: 2"))
    run_stage(both, "embed")
    for cwd, text in ((seed1, PARAMS.replace("  replicates: 1", "  replicates: 1\n  seed: 1")),
                      (single, PARAMS)):
        shutil.copytree(both / "data", cwd / "data")
        (cwd / "params.yaml").write_text(text)
    done = run_stage(both, "train")
    assert "replicate with train.seed = 1" in done.stdout
    run_stage(seed1, "train")
    run_stage(single, "train")
    assert same_weights(weights(both, "replicates/fclf_seed1.pt"), weights(seed1))
    assert same_weights(weights(both), weights(single))
    assert not same_weights(weights(both), weights(seed1))
    assert [p.name for p in (single / "models" / "replicates").iterdir()] == []
