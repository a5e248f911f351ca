"""The whole pipeline on real-format data: a miniature CelebA and a tiny random CLIP.

Runs the command docs/real_celeba.md gives for switching the data source,
`dvc exp run -S data.source=celeba -S embed.model_path=...`, in a scratch copy of the
pipeline (see test_pipeline_dvc.py) with CelebA under data/celeba, the default
`data.celeba_root`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mini_celeba import save_tiny_clip, write_mini_celeba
from test_pipeline_dvc import (
    STAGES,
    TINY_PARAMS,
    check_outputs,
    check_transfer_metrics,
    make_pipeline_repo,
)

from fclf.config import load_config
from fclf.data.embeddings_io import read_split

pytest.importorskip("transformers")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command"),
]

ATTRIBUTES = ["Smiling", "Male", "Young", "Eyeglasses"]
N_IMAGES = 60  # 36 train, 12 val, 12 test; 3 images per person, people stay in one split
ROWS = {"train": 36, "val": 12, "test": 12}
CELEBA_PARAMS = {
    **TINY_PARAMS,
    "data.attributes": ATTRIBUTES,
    "embed.batch_size": 8,
    "embed.chunk_size": 32,
    "embed.workers": 0,
    "train.batch_size": 16,
    "model.frozen_identity_rank": 0,  # 12 train people: too few to fit person-to-person ones
}


def test_celeba_source_runs_the_whole_pipeline(tmp_path: Path) -> None:
    pipeline = make_pipeline_repo(tmp_path / "repo", CELEBA_PARAMS)
    # data/ is git-ignored: the images and weights stay out of git, as for a user.
    write_mini_celeba(pipeline.root / "data" / "celeba", n=N_IMAGES)
    clip = save_tiny_clip(pipeline.root / "data" / "clip-tiny", "full")
    assert pipeline.git("status", "--porcelain") == ""

    done = pipeline.dvc(
        "exp", "run", "-n", "celeba",
        "-S", "data.source=celeba", "-S", "embed.model_path=data/clip-tiny",
    )
    output = done.stdout + done.stderr
    for stage in STAGES:
        assert f"Running stage '{stage}'" in output, output
    assert "0 of 2 chunk(s) already encoded" in output, output

    config = load_config(pipeline.root / "params.yaml")
    assert config.data.source == "celeba" and config.embed.model_path == "data/clip-tiny"
    check_outputs(pipeline.root, ATTRIBUTES, epochs=CELEBA_PARAMS["train.epochs"],
                  synthetic=False)

    projection_dim = json.loads((clip / "config.json").read_text())["projection_dim"]
    folder = pipeline.root / "data" / "embeddings"
    sizes = {}
    for split in (*ROWS, "judge"):
        data = read_split(folder / f"{split}.parquet", ATTRIBUTES)
        assert data.dim == projection_dim and data.has_identities
        sizes[split] = len(data)
    # the judge split is carved out of CelebA's train partition by identity
    assert sizes["train"] + sizes["judge"] == ROWS["train"] and sizes["judge"] > 0
    assert (sizes["val"], sizes["test"]) == (ROWS["val"], ROWS["test"])

    transfer = pipeline.json("metrics/transfer.json")
    check_transfer_metrics(transfer, ATTRIBUTES, synthetic=False)
    told = transfer["test"]["told"]
    assert told["num_samples"] == ROWS["test"]
    # identity among the person's real photos with the target attributes, where there are any
    top1 = told["fclf"]["identity_top1_target"]
    assert top1 is None or 0.0 <= top1 <= 1.0
    assert told["fclf"]["identity_scored_fraction"] <= 1.0
    assert "reference" not in told and "oracle" not in told  # both need the truth

    table = json.loads(pipeline.dvc("exp", "show", "--json").stdout)
    runs = [rev for row in table for exp in row.get("experiments") or [] for rev in exp["revs"]]
    (run,) = [rev for rev in runs if rev["name"] == "celeba"]
    assert run["data"]["params"]["params.yaml"]["data"]["data"]["source"] == "celeba"
    headline = run["data"]["metrics"]["metrics/headline.json"]["data"]["test"]["told"]
    assert headline.get("counterfactual_relative_error") is None  # real data: no ground truth
    assert headline.get("reference_counterfactual_relative_error") is None

    # The experiment's results are in the workspace: nothing is left to run.
    done = pipeline.dvc("repro")
    assert "Running stage" not in done.stdout + done.stderr
