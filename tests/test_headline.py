"""metrics/headline.json, the rounding of metrics/transfer.json, and `fclf compare`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fclf.cli.compare import collect_runs, compare, format_table
from fclf.cli.main import app
from fclf.errors import FclfError
from fclf.evaluate.headline import headline, round_floats

REPO = Path(__file__).resolve().parents[1]


def method_block(cf: float | None, collapsed: bool = False, role: str = "peer") -> dict:
    return {
        "role": role,
        "flip_success_linear": 0.712345678,
        "preservation_linear": 0.94691234,
        "success_linear": 0.6612345,
        "identity_top1_target": 0.63812,
        "counterfactual_relative_error": cf,
        "noop": {"cosine": 1.0, "movement": 0.0, "movement_ratio": 0.0},
        "off_manifold": 1.0523456,
        "overshoot_rate": 0.0091234,
        "collapsed": collapsed,
        "realistic": True,
        "collapse_reasons": ["x"] if collapsed else [],
        "mean_step": 0.0230690119852,
        "curve": {"pareto_area_linear": 0.80712},
        "intervals": {"flip_success_linear": [0.7, 0.72]},
    }


def transfer_metrics(synthetic: bool = True, collapsed_val: bool = False,
                     verdict: str | None = "win") -> dict:
    def cf(value: float) -> float | None:
        return value if synthetic else None

    def mode(collapsed: bool) -> dict:
        return {
            "num_samples": 100,
            "best_baseline": "code_line",
            "fclf": method_block(cf(0.49798765), collapsed, "fclf"),
            "code_line": method_block(cf(0.58912345)),
            "mean_direction": method_block(cf(0.7961)),
            **({"oracle": method_block(0.0, role="oracle"),
                "reference": method_block(0.158, role="reference")} if synthetic else {}),
            "seeds": {"counterfactual_relative_error_spread": [cf(0.4891), cf(0.49798765)],
                      "verdict": verdict},
        }

    return {"judge": {}, "peers": {},
            "val": {"told": mode(collapsed_val), "blind": mode(collapsed_val)},
            "test": {"told": mode(False), "blind": mode(False)}}


def test_headline_keys_and_rounding() -> None:
    shown = headline(transfer_metrics())
    assert set(shown) == {"test", "val"} and set(shown["test"]) == {"told", "blind"}
    told = shown["test"]["told"]
    assert set(told) == {
        "counterfactual_relative_error", "flip_success_linear", "preservation_linear",
        "success_linear", "identity_top1_target", "noop_movement_ratio", "off_manifold",
        "overshoot_rate", "collapsed", "realistic", "mean_step",
        "best_baseline_counterfactual_relative_error", "best_baseline_success_linear",
        "reference_counterfactual_relative_error", "seed_min_counterfactual_relative_error",
        "seed_max_counterfactual_relative_error", "beats_best_baseline_every_seed"}
    assert set(shown["test"]["blind"]) == {"counterfactual_relative_error",
                                           "flip_success_linear", "preservation_linear",
                                           "noop_movement_ratio"}
    assert set(shown["val"]["told"]) == {
        "counterfactual_relative_error", "flip_success_linear", "preservation_linear",
        "success_linear", "identity_top1_target", "pareto_area_linear", "collapsed",
        "realistic"}
    assert shown["val"]["told"]["pareto_area_linear"] == 0.8071
    assert told["flip_success_linear"] == 0.7123
    assert told["off_manifold"] == 1.0523 and told["mean_step"] == 0.0231
    assert told["counterfactual_relative_error"] == 0.498
    assert told["best_baseline_counterfactual_relative_error"] == 0.5891  # val's pick, not min
    assert told["reference_counterfactual_relative_error"] == 0.158
    assert (told["seed_min_counterfactual_relative_error"],
            told["seed_max_counterfactual_relative_error"]) == (0.4891, 0.498)
    assert told["beats_best_baseline_every_seed"] is True
    assert told["collapsed"] is False and told["realistic"] is True
    json.dumps(shown)  # plain JSON


def test_a_verdict_the_seeds_do_not_all_support_is_not_a_win() -> None:
    for verdict, shown in (("undecided", False), ("loss", False), (None, None)):
        told = headline(transfer_metrics(verdict=verdict))["test"]["told"]
        assert told["beats_best_baseline_every_seed"] is shown


def test_headline_on_real_data_keeps_nulls() -> None:
    shown = headline(transfer_metrics(synthetic=False, collapsed_val=True))
    told = shown["test"]["told"]
    for key in ("counterfactual_relative_error", "best_baseline_counterfactual_relative_error",
                "reference_counterfactual_relative_error",
                "seed_min_counterfactual_relative_error"):
        assert told[key] is None, key
    assert told["best_baseline_success_linear"] == 0.6612
    assert shown["val"]["told"]["collapsed"] is True


def test_headline_of_committed_metrics() -> None:
    committed = json.loads((REPO / "metrics" / "transfer.json").read_text())
    shown = headline(committed)
    values = [v for modes in shown.values() for block in modes.values() for v in block.values()]
    assert all(v is None or isinstance(v, bool) or round(v, 4) == v for v in values)
    assert shown["test"]["told"]["flip_success_linear"] == round(
        committed["test"]["told"]["fclf"]["flip_success_linear"], 4)


def test_round_floats_rounds_floats_only() -> None:
    data = {
        "a": 0.123456789,
        "b": [1.0000001234, None, True, False, 3, "text", {"c": -12345.6789}],
        "d": {"e": (0.000123456789, np.float32(0.1)), "f": None, "g": True, "h": 7},
        "i": float("nan"),
        "j": 123456789.0,
    }
    out = round_floats(data)
    assert out["a"] == 0.123457
    assert out["b"] == [1.0, None, True, False, 3, "text", {"c": -12345.7}]
    assert out["b"][2] is True and out["b"][4] == 3 and isinstance(out["b"][4], int)
    assert out["d"]["e"] == [0.000123457, 0.1]
    assert out["d"]["f"] is None and out["d"]["g"] is True and out["d"]["h"] == 7
    assert np.isnan(out["i"])
    assert out["j"] == 123457000.0
    assert data["a"] == 0.123456789  # the input is not modified
    # Last-bit drift disappears.
    assert round_floats(0.7264887063655031) == round_floats(0.7264887063655033)
    json.dumps(out)


def row(rev: str, name: str | None, data: dict | None, experiments=None, error=None) -> dict:
    metrics = {"metrics/train.json": {"data": {"epochs": 5}}}
    if data is not None:
        metrics["metrics/headline.json"] = {"data": data}
    else:
        metrics["metrics/headline.json"] = {
            "error": {"type": "FileNotFoundError", "msg": "no such file"}}
    return {"rev": rev, "name": name, "data": {"rev": rev, "metrics": metrics},
            "error": error, "experiments": experiments}


def fake_exp_show() -> list[dict]:
    fixed = headline(transfer_metrics())
    collapsed = headline(transfer_metrics())
    collapsed["test"]["told"]["collapsed"] = True
    val_only = headline(transfer_metrics(collapsed_val=True))
    flat = {f"{split}.{mode}.{key}": value for split, modes in fixed.items()
            for mode, block in modes.items() for key, value in block.items()}
    experiments = [
        {"revs": [row("a" * 40, "collapsed-contrastive-lambda-0-with-a-long-name", collapsed)],
         "name": "collapsed", "executor": None},
        {"revs": [row("b" * 40, "fixed", fixed)], "name": "fixed", "executor": None},
        {"revs": [row("c" * 40, "val-only", val_only)], "name": "val-only", "executor": None},
        {"revs": [row("d" * 40, "flat", flat)], "name": "flat", "executor": None},
        {"revs": [row("e" * 40, "failed", None,
                      error={"type": "ReproductionError", "msg": "failed"})],
         "name": "failed", "executor": None},
    ]
    return [row("workspace", None, None),
            row("1302a71e67a0ea78167de6357fda6e5003152a1c", "main", fixed, experiments)]


def test_compare_table_fits_100_columns_and_flags_collapse() -> None:
    table = compare(payload=fake_exp_show())
    lines = table.splitlines()
    assert all(len(line) <= 100 for line in lines), max(lines, key=len)
    by_name = {line.split()[0]: line for line in lines[1:]}
    assert set(by_name) >= {"workspace", "main", "fixed", "val-only", "flat", "failed"}
    assert any(name.startswith("collapsed-contrastive") for name in by_name)
    collapsed = next(v for k, v in by_name.items() if k.startswith("collapsed"))
    assert collapsed.rstrip().endswith("COLLAPSED")
    assert by_name["val-only"].rstrip().endswith("COLLAPSED(val)")
    assert by_name["fixed"].split()[1:] == ["0.712", "0.947", "0.498", "0.498", "0.638",
                                            "0.498", "no"]
    assert by_name["flat"].split()[1:] == by_name["fixed"].split()[1:]  # dotted keys read too
    assert "no headline.json" in by_name["workspace"]
    assert "ReproductionError" in by_name["failed"]
    assert "COLLAPSED" not in by_name["fixed"] + by_name["main"]
    header = lines[0].split()
    assert header[:2] == ["experiment", "flip"] and "collapsed" in header


def test_compare_selects_named_experiments() -> None:
    runs = collect_runs(fake_exp_show(), ["fixed", "workspace", "1302a71"])
    assert [run.name for run in runs] == ["fixed", "workspace", "main"]
    with pytest.raises(FclfError, match="no experiment named 'nope'"):
        collect_runs(fake_exp_show(), ["nope"])
    table = format_table(runs)
    assert len(table.splitlines()) == 1 + 3 + 3  # header, runs, legend


def test_compare_outside_a_dvc_repository(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FclfError, match="not inside a DVC repository"):
        compare()
    done = CliRunner().invoke(app, ["compare"])
    assert done.exit_code != 0
    assert "not inside a DVC repository" in done.output
