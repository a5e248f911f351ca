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
                  reproduce_tolerance=0.02)
GOOD = {
    "fclf": {
        "collapsed": False,
        "collapse_reasons": [],
        "flip_success": 0.8,
        "preservation": 0.9,
        "identity_top1": 0.5,
        "identity_top1_unedited": 0.7,
        "movement": 0.12,
    },
    "baselines": {"linear": {"flip_success": 0.7, "collapsed": False}},
    "num_samples": 500,
}


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
    names = [c.name for c in checks]
    assert names[:4] == ["fclf.collapsed", "fclf.flip_success", "fclf.preservation",
                         "fclf.identity_top1"]
    assert checks[-1].name == "reproduce (all metrics)"
    assert checks[-1].value == "10/10 match"


@pytest.mark.parametrize(
    ("key", "value", "check"),
    [
        ("fclf.collapsed", True, "fclf.collapsed"),
        ("fclf.flip_success", 0.59, "fclf.flip_success"),
        ("fclf.preservation", 0.5, "fclf.preservation"),
        ("fclf.identity_top1", 0.29, "fclf.identity_top1"),
        ("fclf.flip_success", float("nan"), "fclf.flip_success"),
        ("fclf.preservation", "0.9", "fclf.preservation"),  # not a number
    ],
)
def test_each_threshold_check_fails_on_its_own(key, value, check):
    assert failed(threshold_checks(with_value(GOOD, key, value), GATE)) == [check]


def test_thresholds_are_inclusive_and_missing_values_fail():
    edge = with_value(with_value(GOOD, "fclf.flip_success", 0.6), "fclf.preservation", 0.85)
    assert failed(threshold_checks(edge, GATE)) == []
    assert failed(threshold_checks({}, GATE)) == ["fclf.collapsed", "fclf.flip_success",
                                                  "fclf.preservation"]
    missing_collapsed = copy.deepcopy(GOOD)
    del missing_collapsed["fclf"]["collapsed"]
    assert failed(threshold_checks(missing_collapsed, GATE)) == ["fclf.collapsed"]


def test_unknown_identities_do_not_fail_the_identity_check():
    metrics = copy.deepcopy(GOOD)
    del metrics["fclf"]["identity_top1"]
    checks = threshold_checks(metrics, GATE)
    assert failed(checks) == []
    assert "absent" in next(c for c in checks if c.name == "fclf.identity_top1").requirement


@pytest.mark.parametrize(
    ("key", "value", "check"),
    [
        ("fclf.movement", 0.12 + 0.03, "reproduce fclf.movement"),
        ("num_samples", 499, "reproduce num_samples"),
        ("baselines.linear.flip_success", 0.7 - 0.021, "reproduce baselines.linear.flip_success"),
        ("fclf.collapse_reasons", ["rank"], "reproduce fclf.collapse_reasons"),
        ("baselines.linear.collapsed", True, "reproduce baselines.linear.collapsed"),
        ("fclf.movement", True, "reproduce fclf.movement"),  # a flag is not a number
    ],
)
def test_each_reproduction_mismatch_fails(key, value, check):
    checks = reproduction_checks(with_value(GOOD, key, value), GOOD, GATE.reproduce_tolerance)
    assert failed(checks) == [check, "reproduce (all metrics)"]
    assert checks[-1].value == "9/10 match"


def test_reproduction_within_tolerance_passes_and_missing_keys_fail():
    close = with_value(GOOD, "fclf.movement", 0.12 + 0.019)
    assert failed(reproduction_checks(close, GOOD, 0.02)) == []
    missing = copy.deepcopy(GOOD)
    del missing["fclf"]["movement"]
    checks = reproduction_checks(missing, GOOD, 0.02)
    assert failed(checks) == ["reproduce fclf.movement", "reproduce (all metrics)"]
    assert checks[0].value == "<missing>"


def test_extra_metrics_not_in_the_reference_are_ignored():
    extra = with_value(GOOD, "fclf.new_metric", 1.0)
    assert failed(reproduction_checks(extra, GOOD, 0.02)) == []


def test_format_table_lists_every_check():
    checks = run_gate(with_value(GOOD, "fclf.flip_success", 0.1), GATE)
    table = format_table(checks).splitlines()
    assert table[0].split() == ["check", "value", "required", "result"]
    assert len(table) == 1 + len(checks)
    row = next(line for line in table if line.startswith("fclf.flip_success"))
    assert "0.1000" in row and ">= 0.6" in row and row.rstrip().endswith("FAIL")
    preservation = next(line for line in table if line.startswith("fclf.preservation"))
    assert preservation.rstrip().endswith("ok")


# --- the CLI -------------------------------------------------------------------------------

PARAMS = """\
gate:
  min_flip_success: 0.6
  min_preservation: 0.85
  min_identity_top1: 0.3
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
    assert "check" in result.stdout and "fclf.flip_success" in result.stdout
    assert "reproduce (all metrics)" in result.stdout
    assert "gate: passed" in result.stdout
    assert "FAIL" not in result.output


def test_cli_fails_naming_the_failed_check(tmp_path):
    result = run_cli(tmp_path, with_value(GOOD, "fclf.preservation", 0.2))
    assert result.exit_code == 1
    assert "fclf.preservation" in result.stdout and "FAIL" in result.stdout  # the table
    assert "gate: FAILED: fclf.preservation" in result.stderr
    assert "fclf.flip_success" not in result.stderr


def test_cli_fails_when_the_reference_is_not_reproduced(tmp_path):
    result = run_cli(tmp_path, with_value(GOOD, "fclf.movement", 0.5), reference=GOOD)
    assert result.exit_code == 1
    assert "FAILED: reproduce fclf.movement, reproduce (all metrics)" in result.stderr


def test_cli_reports_a_missing_metrics_file(tmp_path):
    (tmp_path / "params.yaml").write_text(PARAMS)
    result = CliRunner().invoke(app, ["gate", "--metrics", str(tmp_path / "nope.json"),
                                      "--params", str(tmp_path / "params.yaml")])
    assert result.exit_code == 2
    assert "metrics file not found" in result.stderr
