"""`fclf bench interactive` runs in a workspace and reports medians against the targets
(no timing is asserted: speed targets live in the benchmark's output, not in tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml
from typer.testing import CliRunner

from fclf.attributes import DEFAULT_ATTRIBUTES
from fclf.cli.main import app
from fclf.config import ModelConfig
from fclf.data.embeddings_io import write_split
from fclf.data.synthetic import generate_world
from fclf.data.truth import write_truth
from fclf.evaluate.probes import AttributeProbes
from fclf.evaluate.probes_io import save_probes, split_fingerprint
from fclf.evaluate.protocol import protocol_arrays
from fclf.evaluate.request import sample_requests
from fclf.model.field import build_field
from fclf.model.model_io import save_model

REPO = Path(__file__).resolve().parents[1]
DIM = 64


def make_workspace(root: Path) -> None:
    """What `dvc repro` leaves that the interactive commands read, at toy size."""
    names = list(DEFAULT_ATTRIBUTES)
    splits, truth = generate_world(names, {"train": 60, "val": 10, "test": 20, "judge": 30},
                                   images_per_identity=4, dim=DIM, seed=1)
    data = root / "data" / "embeddings"
    for name, split in splits.items():
        write_split(data / f"{name}.parquet", split)
    write_truth(data / "truth.npz", truth)
    test = splits["test"]
    request = sample_requests(test.attributes, "single", 0)
    (root / "eval").mkdir()
    for mode in ("told", "blind"):
        np.savez(root / "eval" / f"protocol_test_{mode}.npz",
                 **protocol_arrays("test", mode, np.arange(len(test)), request,
                                   test.attributes, names))
    config = ModelConfig(hidden_dim=32, attribute_embed_dim=4, frozen_identity_rank=0)
    save_model(root / "models" / "fclf.pt", build_field(DIM, len(names), config), config,
               names)
    save_probes(root / "models" / "probes.pt", AttributeProbes.from_split(splits["train"]),
                split_fingerprint(splits["train"]))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["eval"].update({"bootstrap_resamples": 20, "curve_samples": 10})
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def test_bench_interactive_reports_every_figure_and_its_target(tmp_path: Path) -> None:
    make_workspace(tmp_path)
    result = CliRunner().invoke(app, ["bench", "interactive", "--workspace", str(tmp_path),
                                      "--repeats", "1"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    seconds = {k: v for k, v in report.items() if k.endswith("_seconds")}
    assert set(seconds) == {"interpreter_seconds", "fclf_startup_seconds", "transfer_seconds",
                            "transfer_beyond_startup_seconds", "transfer_in_process_seconds",
                            "score_seconds"}
    assert all(v > 0 for k, v in seconds.items() if k != "transfer_beyond_startup_seconds")
    assert report["targets"] == {"transfer_in_process_seconds": 1.0, "score_seconds": 10.0}
    assert report["met"]["score_seconds"] == (report["score_seconds"] <= 10.0)


def test_bench_interactive_names_what_is_missing(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "interactive", "--workspace", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "models/fclf.pt not found; run `dvc repro` first" in result.output
