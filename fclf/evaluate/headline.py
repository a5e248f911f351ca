"""The headline of an evaluation, and the rounding that keeps metric files stable.

`metrics/transfer.json` holds thousands of numbers; `dvc metrics show / diff` and
`dvc exp show` read `metrics/headline.json` instead: the numbers the design tracks
across commits and experiments. `round_floats` rounds every float of the full
metrics, so a re-run on another CPU (last-bit float drift) leaves the committed files
unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

HEADLINE_DECIMALS = 4
METRICS_SIGNIFICANT_DIGITS = 6
METHOD = "fclf"

# headline key -> dotted key of the fclf block
_TOLD_TEST = {
    "counterfactual_relative_error": "counterfactual_relative_error",
    "flip_success_linear": "flip_success_linear",
    "preservation_linear": "preservation_linear",
    "success_linear": "success_linear",
    "identity_top1_target": "identity_top1_target",
    "noop_movement_ratio": "noop.movement_ratio",
    "off_manifold": "off_manifold",
    "overshoot_rate": "overshoot_rate",
    "collapsed": "collapsed",
    "realistic": "realistic",
    "mean_step": "mean_step",
}
_BLIND_TEST = {
    "counterfactual_relative_error": "counterfactual_relative_error",
    "flip_success_linear": "flip_success_linear",
    "preservation_linear": "preservation_linear",
    "noop_movement_ratio": "noop.movement_ratio",
}
_TOLD_VAL = {
    "counterfactual_relative_error": "counterfactual_relative_error",
    "flip_success_linear": "flip_success_linear",
    "preservation_linear": "preservation_linear",
    "success_linear": "success_linear",
    "identity_top1_target": "identity_top1_target",
    "pareto_area_linear": "curve.pareto_area_linear",
    "collapsed": "collapsed",
    "realistic": "realistic",
}


def _get(block: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        block = block.get(key) if isinstance(block, dict) else None
    return block


def headline(transfer_metrics: dict) -> dict:
    """The numbers that say how a run went, from a `metrics/transfer.json` dict.

    Returns `{"test": {"told": {...}, "blind": {...}}, "val": {"told": {...}}}` (so
    `dvc exp show` columns read `test.told.counterfactual_relative_error`, ...):

    - FCLF's block (the main training seed): the keys of `_TOLD_TEST`, `_BLIND_TEST`,
      `_TOLD_VAL` (`counterfactual_relative_error` is null on real data: no truth);
    - test, told, context: `best_baseline_counterfactual_relative_error` and
      `best_baseline_success_linear` (the peer the selection rule picked on val),
      `reference_counterfactual_relative_error` (the supervised reference; null without
      the truth), `seed_min_counterfactual_relative_error` / `seed_max_...` (the spread
      over FCLF's training seeds) and `beats_best_baseline_every_seed` (true only when
      every seed's paired 95 % interval excludes 0 in FCLF's favour; null when it
      cannot be said).

    Every float is rounded to 4 decimals (`HEADLINE_DECIMALS`); flags stay bools;
    a key missing from the metrics is null.
    """
    out: dict[str, dict[str, Any]] = {"test": {}, "val": {}}
    for split, mode, keys in (("test", "told", _TOLD_TEST), ("test", "blind", _BLIND_TEST),
                              ("val", "told", _TOLD_VAL)):
        block = _get(transfer_metrics, f"{split}.{mode}") or {}
        fclf = block.get(METHOD) or {}
        out[split][mode] = {name: _value(_get(fclf, key)) for name, key in keys.items()}
    told = _get(transfer_metrics, "test.told") or {}
    best = told.get(told.get("best_baseline") or "", {})
    row = out["test"]["told"]
    row["best_baseline_counterfactual_relative_error"] = _value(
        _get(best, "counterfactual_relative_error"))
    row["best_baseline_success_linear"] = _value(_get(best, "success_linear"))
    row["reference_counterfactual_relative_error"] = _value(
        _get(told.get("reference") or {}, "counterfactual_relative_error"))
    spread = _get(told, "seeds.counterfactual_relative_error_spread") or [None, None]
    row["seed_min_counterfactual_relative_error"] = _value(spread[0])
    row["seed_max_counterfactual_relative_error"] = _value(spread[1])
    verdict = _get(told, "seeds.verdict")
    row["beats_best_baseline_every_seed"] = None if verdict is None else verdict == "win"
    return out


def _value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    if _is_number(value):
        value = float(value)
        return round(value, HEADLINE_DECIMALS) if math.isfinite(value) else None
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))


def round_floats(data: Any, significant: int = METRICS_SIGNIFICANT_DIGITS) -> Any:
    """`data` with every float rounded to `significant` significant digits (default 6).

    Recurses into dicts, lists and tuples (tuples come back as lists, as JSON writes
    them); ints, bools, None, strings and non-finite floats are returned unchanged.
    Six significant digits (the precision of the curve CSVs) rather than six decimals,
    so small quantities such as step lengths keep their precision too.
    """
    if isinstance(data, dict):
        return {key: round_floats(value, significant) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [round_floats(value, significant) for value in data]
    if isinstance(data, (float, np.floating)) and math.isfinite(data):
        return float(f"{float(data):.{significant}g}")
    return data
