"""The release gate: every check fails on its own, passes when fine; `fclf gate` exit codes."""

from __future__ import annotations

import copy
import json

import pytest
from typer.testing import CliRunner

from fclf.cli.main import app
from fclf.config import GateConfig
from fclf.evaluate.gate import format_table, reproduction_checks, run_gate, threshold_checks

GATE = GateConfig(min_flip_success=0.6, min_preservation=0.85, min_identity_top1=0.3,
                  max_counterfactual_relative_error=0.9, min_noop_cosine=0.8,
                  max_noop_movement_ratio=0.5, reproduce_tolerance=0.02)
GOOD = {
    "test": {"told": {
        "fclf": {
            "collapsed": False,
            "collapse_reasons": [],
            "realistic": True,
            "flip_success_linear": 0.8,
            "preservation_linear": 0.9,
            "identity_top1_target": 0.5,
            "counterfactual_relative_error": 0.6,
            "movement": 0.12,
            "noop": {"cosine": 0.99, "movement": 0.01, "movement_ratio": 0.1},
        },
        "baselines": {"linear": {"flip_success_linear": 0.7, "collapsed": False}},
        "num_samples": 500,
    }},
}
F = "test.told.fclf"
CHECKS = [f"{F}.collapsed", f"{F}.realistic", f"{F}.flip_success_linear",
          f"{F}.preservation_linear", f"{F}.identity_top1_target",
          f"{F}.counterfactual_relative_error", f"{F}.noop.cosine", f"{F}.noop.movement_ratio"]


def with_value(metrics: dict, dotted: str, value) -> dict:
    out = copy.deepcopy(metrics)
    *parents, leaf = dotted.split(".")
    node = out
    for key in parents:
        node = node[key]
    node[leaf] = value
    return out


def failed(checks) -> list[str]:
    return [c.name for c in checks if not c.passed]


def test_good_metrics_pass_every_check():
    checks = run_gate(GOOD, GATE, reference=GOOD)
    assert failed(checks) == []
    assert [c.name for c in checks][: len(CHECKS)] == CHECKS
    assert checks[-1].name == "reproduce (all metrics)"
    assert checks[-1].value == "14/14 match"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("collapsed", True),
        ("realistic", False),
        ("flip_success_linear", 0.59),
        ("preservation_linear", 0.5),
        ("identity_top1_target", 0.29),
        ("counterfactual_relative_error", 0.91),
        ("noop.cosine", 0.79),
        ("noop.movement_ratio", 0.51),
        ("flip_success_linear", float("nan")),
        ("preservation_linear", "0.9"),  # not a number
    ],
)
def test_each_threshold_check_fails_on_its_own(key, value):
    metrics = with_value(GOOD, f"{F}.{key}", value)
    assert failed(threshold_checks(metrics, GATE)) == [f"{F}.{key}"]


def test_thresholds_are_inclusive_and_missing_values_fail():
    edge = with_value(with_value(GOOD, f"{F}.flip_success_linear", 0.6),
                      f"{F}.preservation_linear", 0.85)
    assert failed(threshold_checks(edge, GATE)) == []
    assert failed(threshold_checks({}, GATE)) == [
        f"{F}.collapsed", f"{F}.realistic", f"{F}.flip_success_linear",
        f"{F}.preservation_linear", f"{F}.noop.cosine", f"{F}.noop.movement_ratio"]
    missing_collapsed = copy.deepcopy(GOOD)
    del missing_collapsed["test"]["told"]["fclf"]["collapsed"]
    assert failed(threshold_checks(missing_collapsed, GATE)) == [f"{F}.collapsed"]


def test_unknown_identities_and_truth_do_not_fail_their_checks():
    """Real CelebA: no counterfactual; identities may be unknown. Absent is not failing."""
    metrics = copy.deepcopy(GOOD)
    metrics["test"]["told"]["fclf"]["identity_top1_target"] = None
    metrics["test"]["told"]["fclf"]["counterfactual_relative_error"] = None
    checks = threshold_checks(metrics, GATE)
    assert failed(checks) == []
    for name in (f"{F}.identity_top1_target", f"{F}.counterfactual_relative_error"):
        assert "absent" in next(c for c in checks if c.name == name).requirement


def test_edits_without_a_noop_cannot_pass():
    block = copy.deepcopy(GOOD["test"]["told"]["fclf"])
    block["noop"] = None
    checks = threshold_checks(block, GATE, "")
    assert failed(checks) == ["noop.cosine", "noop.movement_ratio"]
    assert "a no-op is required" in checks[-1].requirement
    del block["noop"]
    assert failed(threshold_checks(block, GATE, "")) == ["noop.cosine", "noop.movement_ratio"]


def test_an_unrealistic_block_says_why():
    block = copy.deepcopy(GOOD["test"]["told"]["fclf"])
    block.update(realistic=False, realism_reasons=["off_manifold 21.000 > 1.5"])
    (check,) = [c for c in threshold_checks(block, GATE, "") if not c.passed]
    assert check.name == "realistic" and "off_manifold 21.000" in check.value


@pytest.mark.parametrize(
    ("key", "value", "check"),
    [
        (f"{F}.movement", 0.12 + 0.03, f"reproduce {F}.movement"),
        ("test.told.num_samples", 499, "reproduce test.told.num_samples"),
        ("test.told.baselines.linear.flip_success_linear", 0.7 - 0.021,
         "reproduce test.told.baselines.linear.flip_success_linear"),
        (f"{F}.collapse_reasons", ["rank"], f"reproduce {F}.collapse_reasons"),
        ("test.told.baselines.linear.collapsed", True,
         "reproduce test.told.baselines.linear.collapsed"),
        (f"{F}.movement", True, f"reproduce {F}.movement"),  # a flag is not a number
    ],
)
def test_each_reproduction_mismatch_fails(key, value, check):
    checks = reproduction_checks(with_value(GOOD, key, value), GOOD, GATE.reproduce_tolerance)
    assert failed(checks) == [check, "reproduce (all metrics)"]
    assert checks[-1].value == "13/14 match"


def test_reproduction_within_tolerance_passes_and_missing_keys_fail():
    close = with_value(GOOD, f"{F}.movement", 0.12 + 0.019)
    assert failed(reproduction_checks(close, GOOD, 0.02)) == []
    missing = copy.deepcopy(GOOD)
    del missing["test"]["told"]["fclf"]["movement"]
    checks = reproduction_checks(missing, GOOD, 0.02)
    assert failed(checks) == [f"reproduce {F}.movement", "reproduce (all metrics)"]
    assert checks[0].value == "<missing>"


def test_extra_metrics_not_in_the_reference_are_ignored():
    extra = with_value(GOOD, f"{F}.new_metric", 1.0)
    assert failed(reproduction_checks(extra, GOOD, 0.02)) == []


def test_format_table_lists_every_check():
    checks = run_gate(with_value(GOOD, f"{F}.flip_success_linear", 0.1), GATE)
    table = format_table(checks).splitlines()
    assert table[0].split() == ["check", "value", "required", "result"]
    assert len(table) == 1 + len(checks)
    row = next(line for line in table if line.startswith(f"{F}.flip_success_linear"))
    assert "0.1000" in row and ">= 0.6" in row and row.rstrip().endswith("FAIL")
    preservation = next(line for line in table if line.startswith(f"{F}.preservation"))
    assert preservation.rstrip().endswith("ok")


# --- the CLI -------------------------------------------------------------------------------

PARAMS = """\
gate:
  min_flip_success: 0.6
  min_preservation: 0.85
  min_identity_top1: 0.3
  max_counterfactual_relative_error: 0.9
  min_noop_cosine: 0.8
  max_noop_movement_ratio: 0.5
  reproduce_tolerance: 0.02
"""


def run_cli(tmp_path, metrics: dict, reference: dict | None = None):
    (tmp_path / "params.yaml").write_text(PARAMS)
    (tmp_path / "transfer.json").write_text(json.dumps(metrics))
    args = ["gate", "--metrics", str(tmp_path / "transfer.json"),
            "--params", str(tmp_path / "params.yaml")]
    if reference is not None:
        (tmp_path / "reference.json").write_text(json.dumps(reference))
        args += ["--reference", str(tmp_path / "reference.json")]
    return CliRunner().invoke(app, args)


def test_cli_passes_with_a_table(tmp_path):
    result = run_cli(tmp_path, GOOD, reference=GOOD)
    assert result.exit_code == 0, result.output
    assert "check" in result.stdout and f"{F}.flip_success_linear" in result.stdout
    assert "reproduce (all metrics)" in result.stdout
    assert "gate: passed" in result.stdout
    assert "FAIL" not in result.output


def test_cli_fails_naming_the_failed_check(tmp_path):
    result = run_cli(tmp_path, with_value(GOOD, f"{F}.preservation_linear", 0.2))
    assert result.exit_code == 1
    assert f"{F}.preservation_linear" in result.stdout and "FAIL" in result.stdout
    assert f"gate: FAILED: {F}.preservation_linear" in result.stderr
    assert "flip_success" not in result.stderr


def test_cli_fails_when_the_reference_is_not_reproduced(tmp_path):
    result = run_cli(tmp_path, with_value(GOOD, f"{F}.movement", 0.5), reference=GOOD)
    assert result.exit_code == 1
    assert f"FAILED: reproduce {F}.movement, reproduce (all metrics)" in result.stderr


def test_cli_reports_a_missing_metrics_file(tmp_path):
    (tmp_path / "params.yaml").write_text(PARAMS)
    result = CliRunner().invoke(app, ["gate", "--metrics", str(tmp_path / "nope.json"),
                                      "--params", str(tmp_path / "params.yaml")])
    assert result.exit_code == 2
    assert "metrics file not found" in result.stderr


# --- the workspace: metrics and model must be the ones dvc.lock records --------------------


def fake_workspace(tmp_path, metrics: dict, *, model: bytes | None = b"weights",
                   lock_model: bytes = b"weights", lock_metrics: str | None = None):
    """params.yaml, metrics/transfer.json, models/fclf.pt and a dvc.lock recording them in
    DVC's format (schema 2.0; a file out's md5 is the file's plain md5)."""
    import hashlib

    import yaml

    (tmp_path / "params.yaml").write_text(PARAMS)
    (tmp_path / "metrics").mkdir()
    text = json.dumps(metrics)
    (tmp_path / "metrics" / "transfer.json").write_text(text)
    if model is not None:
        (tmp_path / "models").mkdir()
        (tmp_path / "models" / "fclf.pt").write_bytes(model)

    def out(path: str, data: bytes) -> dict:
        return {"path": path, "hash": "md5", "md5": hashlib.md5(data).hexdigest(),
                "size": len(data)}

    lock = {"schema": "2.0", "stages": {
        "train": {"cmd": "python stages/train.py", "outs": [
            out("metrics/train.json", b"{}"), out("models/fclf.pt", lock_model)]},
        "evaluate-transfer": {"cmd": "python stages/evaluate_transfer.py", "outs": [
            out("eval/edits.npz", b""),
            out("metrics/transfer.json", (lock_metrics or text).encode())]},
    }}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    return ["gate", "--metrics", str(tmp_path / "metrics" / "transfer.json"),
            "--params", str(tmp_path / "params.yaml")]


def test_cli_passes_when_metrics_and_model_match_dvc_lock(tmp_path):
    result = CliRunner().invoke(app, fake_workspace(tmp_path, GOOD))
    assert result.exit_code == 0, result.output
    assert "workspace metrics/transfer.json" in result.stdout
    assert "workspace models/fclf.pt" in result.stdout
    assert "gate: passed" in result.stdout and "FAIL" not in result.output


@pytest.mark.parametrize(
    ("kwargs", "check", "words"),
    [
        ({"lock_metrics": "{}"}, "workspace metrics/transfer.json",
         "metrics/transfer.json does not match dvc.lock: run `dvc repro`"),
        ({"model": None}, "workspace models/fclf.pt",
         "no model in the workspace: run `dvc repro`"),
        ({"model": b"other weights"}, "workspace models/fclf.pt",
         "models/fclf.pt does not match dvc.lock: run `dvc repro`"),
    ],
)
def test_cli_refuses_metrics_that_do_not_belong_to_the_workspace(tmp_path, kwargs, check,
                                                                 words):
    args = fake_workspace(tmp_path, GOOD, **kwargs)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    row = next(line for line in result.stdout.splitlines() if line.startswith(check))
    assert words in row and row.rstrip().endswith("FAIL")
    assert f"gate: {words}" in result.stderr
    assert f"gate: FAILED: {check}" in result.stderr
    # scoring the metrics file on its own skips the workspace
    result = CliRunner().invoke(app, [*args, "--no-workspace-check"])
    assert result.exit_code == 0, result.output
    assert "workspace" not in result.stdout


def test_a_malformed_dvc_lock_is_a_user_error(tmp_path):
    args = fake_workspace(tmp_path, GOOD)
    (tmp_path / "dvc.lock").write_text("stages: [unclosed\n")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "not a readable dvc.lock" in result.stderr
