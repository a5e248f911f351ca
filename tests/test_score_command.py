"""`fclf score`: bring your own editor onto the yardstick (files in, verdict and exit code out)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from fclf.attributes import DEFAULT_ATTRIBUTES
from fclf.cli.main import app
from fclf.data.embeddings_io import write_split
from fclf.data.synthetic import generate_world
from fclf.data.truth import write_truth
from fclf.evaluate.protocol import protocol_arrays
from fclf.evaluate.request import apply_request, sample_requests

SIZES = {"train": 150, "val": 20, "test": 60, "judge": 80}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    root = tmp_path_factory.mktemp("score")
    splits, truth = generate_world(DEFAULT_ATTRIBUTES, SIZES, images_per_identity=6, dim=256,
                                   seed=2, attribute_context=0.75, identity_groups=8,
                                   nuisance_rank=16)
    data = root / "data" / "embeddings"
    data.mkdir(parents=True)
    for name, split in splits.items():
        write_split(data / f"{name}.parquet", split)
    write_truth(data / "truth.npz", truth)
    test = splits["test"]
    index = np.arange(len(test))
    request = sample_requests(test.attributes, "single", 0)
    targets = apply_request(request, test.attributes)
    (root / "eval").mkdir()
    for mode in ("told", "blind"):
        np.savez(root / "eval" / f"protocol_test_{mode}.npz",
                 **protocol_arrays("test", mode, index, request, test.attributes,
                                   DEFAULT_ATTRIBUTES))
    params = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())
    params["eval"].update({"bootstrap_resamples": 50, "curve_samples": 40})
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root, truth.counterfactual("test", index, targets), test.embeddings


def run(root: Path, edits: dict, *extra: str):
    np.savez(root / "edits.npz", **edits)
    return CliRunner().invoke(app, [
        "score", "--edits", str(root / "edits.npz"), "--split", "test",
        "--protocol", str(root / "eval" / "protocol_test_told.npz"),
        "--embeddings", str(root / "data" / "embeddings"),
        "--judge", str(root / "no-judge.pt"),  # not there: fitted on the judge split
        "--params", str(root / "params.yaml"), *extra,
    ])


def test_the_true_counterfactual_passes_with_json(workspace) -> None:
    root, cf, sources = workspace
    result = run(root, {"edited": cf, "noop": sources}, "--json")
    assert result.exit_code == 0, result.output
    start = result.output.index("{")
    block = json.loads(result.output[start:result.output.rindex("}") + 1])
    assert block["gate"] == {"passed": True, "failed": []}
    assert block["told"]["edits"]["counterfactual_relative_error"] < 1e-4
    assert "oracle" in block["told"]


def test_blind_edits_are_scored_beside_told_ones_and_not_gated(workspace) -> None:
    root, cf, sources = workspace
    np.savez(root / "blind.npz", edited=sources, noop=sources)  # a blind editor that gave up
    result = run(root, {"edited": cf, "noop": sources}, "--blind-edits",
                 str(root / "blind.npz"), "--json")
    assert result.exit_code == 0, result.output
    block = json.loads(result.output[result.output.index("{"):result.output.rindex("}") + 1])
    assert block["blind"]["edits"]["counterfactual_relative_error"] == pytest.approx(1.0)
    assert block["told"]["edits"]["counterfactual_relative_error"] < 1e-4


def test_edits_without_a_noop_fail_the_gate(workspace) -> None:
    root, cf, _ = workspace
    result = run(root, {"edited": cf})
    assert result.exit_code == 1
    assert "edits.noop.movement_ratio" in result.output


def test_not_editing_fails_the_gate_with_exit_code_1(workspace) -> None:
    root, _, sources = workspace
    result = run(root, {"edited": sources, "noop": sources})
    assert result.exit_code == 1
    assert "edits.flip_success_linear" in result.output


def test_a_wrong_shape_is_named_with_the_file(workspace) -> None:
    root, cf, _ = workspace
    result = run(root, {"edited": cf[:5]})
    assert result.exit_code == 2
    assert "edits.npz" in result.output and "shape" in result.output


def test_missing_protocol_says_which_stage_writes_it(workspace, tmp_path) -> None:
    root, cf, _ = workspace
    np.savez(tmp_path / "e.npz", edited=cf)
    result = CliRunner().invoke(app, [
        "score", "--edits", str(tmp_path / "e.npz"), "--protocol", str(tmp_path / "none.npz"),
        "--judge", str(tmp_path / "no-judge.pt"),
        "--embeddings", str(root / "data" / "embeddings"), "--params", str(root / "params.yaml"),
    ])
    assert result.exit_code == 2
    assert "none.npz" in result.output and "evaluate-transfer" in result.output


@pytest.mark.parametrize("kind", ["npy", "text", "pickle"])
def test_a_file_that_is_not_an_npz_is_one_line_and_exit_code_2(workspace, tmp_path, kind) -> None:
    """Bad input (2) is told apart from a failing editor (1), without a traceback."""
    root, cf, _ = workspace
    path = tmp_path / f"edits.{kind}"
    if kind == "npy":
        np.save(path, cf)  # a bare array, not an archive
    elif kind == "text":
        path.write_text("edited 0.1 0.2\n")
    else:
        np.save(path, np.array([{"edited": 1}], dtype=object), allow_pickle=True)
        path = path.with_name(path.name + ".npy")  # np.save adds the suffix
    result = CliRunner().invoke(app, [
        "score", "--edits", str(path), "--split", "test",
        "--protocol", str(root / "eval" / "protocol_test_told.npz"),
        "--embeddings", str(root / "data" / "embeddings"), "--judge", str(root / "no-judge.pt"),
        "--params", str(root / "params.yaml")])
    assert result.exit_code == 2, result.output
    assert str(path) in result.output and ".npz" in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
