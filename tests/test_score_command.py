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
    (root / "metrics").mkdir()
    (root / "metrics" / "transfer.json").write_text(json.dumps(workspace_metrics(len(test))))
    params = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())
    params["eval"].update({"bootstrap_resamples": 50, "curve_samples": 40})
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root, truth.counterfactual("test", index, targets), test.embeddings


def editor_block(role: str, error: float, **extra) -> dict:
    """A metrics-file editor block with the keys the score summary reads."""
    return {"role": role, "counterfactual_relative_error": error, "flip_success_linear": 0.7,
            "preservation_linear": 0.97, "identity_top1_target": 0.6, "off_manifold": 1.04,
            "overshoot_rate": 0.008, "movement": 0.2, "mean_step": 0.021, "collapsed": False,
            "realistic": True, "noop": {"cosine": 1.0, "movement": 0.0, "movement_ratio": 0.0},
            "curve": {"pareto_area_linear": 0.88}, **extra}


def workspace_metrics(num_samples: int) -> dict:
    """A pipeline metrics file: the reference and FCLF's extra seed have lower errors than
    every peer and the pipeline's val pick (`best_baseline`) is not the lowest on test, so
    only the lowest-error peer is the best baseline; blind mode has another best peer."""
    told = {"num_samples": num_samples, "best_baseline": "mean_direction",
            "oracle": editor_block("oracle", 0.0),
            "fclf": editor_block("fclf", 0.4174, flip_success_linear=0.9999999999999997,
                          overshoot_rate=0.0083834),
            "mean_direction": editor_block("peer", 0.7956),
            "code_line": editor_block("peer", 0.59, mean_step=0.02193),
            "reference": editor_block("reference", 0.1581),
            "fclf_seed1": editor_block("replicate", 0.4162),
            "comparisons": {}, "seeds": None}
    blind = {**told, "fclf": editor_block("fclf", 0.4509, curve=None),
             "mean_direction": editor_block("peer", 0.55, curve=None),
             "code_line": editor_block("peer", 0.6061, curve=None)}
    return {"judge": {}, "test": {"told": told, "blind": blind}}


def run(root: Path, edits: dict, *extra: str):
    np.savez(root / "edits.npz", **edits)
    return CliRunner().invoke(app, [
        "score", "--edits", str(root / "edits.npz"), "--split", "test",
        "--protocol", str(root / "eval" / "protocol_test_told.npz"),
        "--embeddings", str(root / "data" / "embeddings"),
        "--judge", str(root / "no-judge.pt"),  # not there: fitted on the judge split
        "--params", str(root / "params.yaml"),
        "--metrics", str(root / "metrics" / "transfer.json"), *extra,
    ])


def json_of(result) -> dict:
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def scored(workspace):
    """One run each way (the scoring is the slow part): the true counterfactual in told
    mode without trajectories, a blind editor that gave up (with its flat trajectory)."""
    root, cf, sources = workspace
    np.savez(root / "blind.npz", edited=sources, noop=sources,
             trajectories=np.stack([sources, sources]))
    extra = ("--blind-edits", str(root / "blind.npz"))
    as_json = run(root, {"edited": cf, "noop": sources}, *extra, "--json")
    as_text = run(root, {"edited": cf, "noop": sources}, *extra)
    return as_json, as_text


def test_the_true_counterfactual_passes_with_json(scored) -> None:
    result, _ = scored
    assert result.exit_code == 0, result.output
    block = json_of(result)
    assert block["gate"] == {"passed": True, "failed": []}
    assert block["told"]["edits"]["counterfactual_relative_error"] < 1e-4
    assert "oracle" in block["told"]
    assert block["headline"]["told"]["counterfactual_relative_error"] < 1e-4
    # the per-mode comparisons are this run's paired differences: edits minus the oracle
    assert set(block["told"]["comparisons"]) == {"edits_minus_oracle"}


def test_blind_edits_are_scored_beside_told_ones_and_not_gated(scored) -> None:
    block = json_of(scored[0])
    assert block["blind"]["edits"]["counterfactual_relative_error"] == pytest.approx(1.0)
    assert block["headline"]["blind"]["counterfactual_relative_error"] == pytest.approx(1.0)
    assert block["told"]["edits"]["counterfactual_relative_error"] < 1e-4


def test_json_has_the_workspace_rows_from_the_metrics_file(scored, workspace) -> None:
    root = workspace[0]
    pipeline = json.loads((root / "metrics" / "transfer.json").read_text())["test"]
    rows = json_of(scored[0])["workspace"]
    assert rows["metrics_file"] == str(root / "metrics" / "transfer.json")
    assert rows["note"] is None
    assert {mode: {k: r["editor"] for k, r in rows[mode].items()} for mode in ("told", "blind")} \
        == {"told": {"fclf": "fclf", "best_baseline": "code_line", "oracle": "oracle"},
            "blind": {"fclf": "fclf", "best_baseline": "mean_direction", "oracle": "oracle"}}
    assert rows["told"]["best_baseline"]["chosen_by"].startswith("lowest")
    for mode in ("told", "blind"):
        for row in rows[mode].values():
            b = pipeline[mode][row["editor"]]
            assert row["role"] == b["role"]
            for key in ("counterfactual_relative_error", "preservation_linear",
                        "identity_top1_target", "off_manifold", "mean_step", "collapsed",
                        "realistic"):
                assert row[key] == b[key], (mode, row["editor"], key)
            assert row["noop_movement_ratio"] == b["noop"]["movement_ratio"]
            assert row["pareto_area_linear"] == (b["curve"] or {}).get("pareto_area_linear")
    fclf = rows["told"]["fclf"]  # 4 significant digits
    assert (fclf["flip_success_linear"], fclf["overshoot_rate"]) == (1.0, 0.008383)
    assert rows["told"]["best_baseline"]["mean_step"] == 0.02193
    assert rows["blind"]["fclf"]["pareto_area_linear"] is None


def test_without_trajectories_step_and_pareto_area_are_null_not_zero(scored) -> None:
    block = json_of(scored[0])
    edits = block["told"]["edits"]
    assert edits["mean_step"] is None and edits["std_step"] is None
    assert edits["curve"] == {"pareto_area_linear": None, "pareto_area_mlp": None,
                              "at_oracle_movement": None, "at_fclf_movement": None}
    assert block["headline"]["told"]["mean_step"] is None
    assert block["headline"]["told"]["pareto_area_linear"] is None
    # the blind editor gave its (flat) trajectory: a step computed as 0 is reported as 0
    assert block["blind"]["edits"]["mean_step"] == 0.0
    assert block["told"]["oracle"]["mean_step"] > 0  # the oracle has trajectories


def _floats(data):
    if isinstance(data, dict):
        for value in data.values():
            yield from _floats(value)
    elif isinstance(data, list):
        for value in data:
            yield from _floats(value)
    elif isinstance(data, float):
        yield data


def test_json_floats_have_at_most_4_significant_digits(scored) -> None:
    block = json_of(scored[0])
    floats = list(_floats(block))
    assert len(floats) > 100
    assert all(value == float(f"{value:.4g}") for value in floats)
    assert isinstance(block["told"]["num_samples"], int)
    assert block["told"]["edits"]["realistic"] is True


def test_rounded_walks_the_structure() -> None:
    from fclf.cli.score_command import rounded

    data = {"a": 0.9999999999999997, "b": [np.float32(0.123456), 3, True, None, "x"],
            "c": (np.int64(7), np.bool_(False), float("nan")), "d": np.array([1.23456e-7])}
    assert rounded(data) == {"a": 1.0, "b": [0.1235, 3, True, None, "x"],
                             "c": [7, False, None], "d": [1.235e-07]}
    assert type(rounded(np.int64(7))) is int and type(rounded(True)) is bool


def test_text_output_starts_with_the_headline_and_a_legend(scored, workspace) -> None:
    result = scored[1]
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("headline: counterfactual relative error 0.000 told, 1.000 blind")
    assert lines[1].startswith("legend: ")  # one line: the table's header comes next
    header = lines[2].split()
    assert header == ["editor", "cf", "err", "blind", "flip", "keep", "id@1", "offman", "over",
                      "no-op", "step", "pareto", "verdict"]
    for abbreviation in ("cf err", "blind", "flip", "keep", "id@1", "offman", "over", "no-op",
                         "step", "pareto", "n/a"):
        assert f"{abbreviation} " in lines[1] or f"{abbreviation}:" in lines[1], abbreviation
    yours = lines[3].split()
    assert yours[0] == "yours" and yours[1:3] == ["0.000", "1.000"]
    assert yours[-3:] == ["n/a", "n/a", "ok"]  # no trajectories: step, pareto n/a, not 0
    assert lines[4].startswith("oracle (this run)")
    assert lines[5] == (f"from {workspace[0] / 'metrics' / 'transfer.json'} "
                        "(the pipeline's run, same split):")
    width = lines[2].index("cf err")
    rows = {line[:width].strip(): line[width:].split() for line in lines[6:9]}
    assert list(rows) == ["fclf", "best baseline: code_line", "oracle"]
    # cf err, blind, flip, keep, id@1, offman, over, no-op, step, pareto, verdict
    assert rows["fclf"] == ["0.417", "0.451", "1.000", "0.970", "0.600", "1.040", "0.008",
                            "0.000", "0.021", "0.880", "ok"]
    assert rows["best baseline: code_line"][:2] == ["0.590", "0.606"]
    assert rows["oracle"][:2] == ["0.000", "0.000"]
    assert lines[9].startswith("check ")
    assert lines[-1] == "score: gate passed"


def test_a_missing_metrics_file_is_one_line_and_no_comparison_rows(workspace) -> None:
    from fclf.cli.score_command import _workspace_metrics

    root, _, _ = workspace
    assert _workspace_metrics(root / "none.json", "test", 5)[0] is None
    note = _workspace_metrics(root / "none.json", "test", 5)[1]
    assert "none.json not found" in note and "\n" not in note
    (root / "bad.json").write_text("{not json")
    assert "not a readable metrics file" in _workspace_metrics(root / "bad.json", "test", 5)[1]
    (root / "val.json").write_text(json.dumps({"val": {"told": {}}}))
    assert "no 'test' results" in _workspace_metrics(root / "val.json", "test", 5)[1]
    (root / "other.json").write_text(json.dumps(workspace_metrics(7)))
    assert "scored 7 rows" in _workspace_metrics(root / "other.json", "test", 5)[1]
    assert _workspace_metrics(root / "other.json", "test", 7) == (
        workspace_metrics(7)["test"], None)


def test_edits_without_a_noop_fail_the_gate(workspace) -> None:
    root, cf, _ = workspace
    result = run(root, {"edited": cf})
    assert result.exit_code == 1
    assert "edits.noop.movement_ratio" in result.output


def test_not_editing_fails_the_gate_with_exit_code_1(workspace) -> None:
    """...and without the metrics file the comparison rows are left out, said in one line."""
    root, _, sources = workspace
    result = run(root, {"edited": sources, "noop": sources}, "--metrics", str(root / "no.json"))
    assert result.exit_code == 1
    assert "edits.flip_success_linear" in result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("headline: counterfactual relative error 1.000 told (")
    notes = [line for line in lines if "no.json" in line]
    assert len(notes) == 1 and "not found" in notes[0]
    assert not any(line.startswith("from ") or "best baseline" in line for line in lines)


BAD_EDITS = {  # name: (make the arrays from (cf, sources), words the error must have)
    "wrong dimension": (lambda cf, s: {"edited": cf[:, :-1], "noop": s}, "'edited' has shape"),
    "wrong row count": (lambda cf, s: {"edited": cf[:5], "noop": s}, "'edited' has shape"),
    "no edited": (lambda cf, s: {"edits": cf, "noop": s}, "no 'edited' array"),
    "NaN": (lambda cf, s: {"edited": np.where(np.arange(len(cf))[:, None] == 3, np.nan, cf),
                           "noop": s}, "'edited' has non-finite values"),
    "infinite noop": (lambda cf, s: {"edited": cf, "noop": s * np.inf}, "'noop' has non-finite"),
    "noop shape": (lambda cf, s: {"edited": cf, "noop": s[:3]}, "'noop' has shape"),
    "strings": (lambda cf, s: {"edited": cf.astype(str), "noop": s}, "'edited' holds"),
    "trajectory shape": (lambda cf, s: {"edited": cf, "noop": s, "trajectories": cf[None]},
                         "'trajectories' has shape"),
    "trajectory end": (lambda cf, s: {"edited": cf, "noop": s, "trajectories": np.stack([s, s])},
                       "trajectories[-1] differs"),
}


@pytest.mark.parametrize("case", list(BAD_EDITS))
def test_bad_edits_are_one_line_naming_the_file_and_exit_code_2(workspace, case) -> None:
    root, cf, sources = workspace
    make, words = BAD_EDITS[case]
    result = run(root, make(cf, sources))
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "edits.npz" in result.stderr and words in result.stderr, result.stderr
    assert isinstance(result.exception, SystemExit)


def test_bad_blind_edits_and_a_bad_split_are_exit_code_2(workspace) -> None:
    root, cf, sources = workspace
    np.savez(root / "bad_blind.npz", edited=cf[:, :3])
    result = run(root, {"edited": cf, "noop": sources}, "--blind-edits",
                 str(root / "bad_blind.npz"))
    assert result.exit_code == 2 and "bad_blind.npz" in result.stderr
    result = run(root, {"edited": cf, "noop": sources}, "--split", "train")
    assert result.exit_code == 2 and "--split must be val or test" in result.stderr


def test_help_states_the_exit_codes() -> None:
    result = CliRunner().invoke(app, ["score", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Exit codes: 0 the gate passed, 1 the gate failed, 2 bad input" in text
    assert "--metrics" in text


def test_the_readme_snippet_runs_and_its_edits_are_scored(workspace, tmp_path) -> None:
    """The README's `fclf score` recipe, as written, in a workspace (its stand-in editor)."""
    import re
    import shutil
    import subprocess
    import sys

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("### Score your own editor: `fclf score`"):]
    code = re.search(r"python - <<'PY'\n(.*?)\nPY\n", section, re.S).group(1)
    root, _, _ = workspace
    for name in ("data", "eval"):
        shutil.copytree(root / name, tmp_path / name)
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)
    edits = np.load(tmp_path / "my_edits.npz")
    assert edits["edited"].dtype == np.float32
    assert np.allclose(edits["noop"], workspace[2], atol=1e-5)  # asked for nothing: no move
    result = run(root, dict(edits), "--json")
    assert result.exit_code in (0, 1), result.output  # scored: not bad input
    headline = json_of(result)["headline"]["told"]
    assert 0 < headline["counterfactual_relative_error"] < 1  # moved towards the truth
    assert headline["noop_movement_ratio"] < 1e-4


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
