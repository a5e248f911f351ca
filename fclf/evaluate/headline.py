"""The headline of an evaluation, and the rounding that keeps metric files stable.

`metrics/transfer.json` holds ~800 numbers; `dvc metrics show / diff` and `dvc exp show`
read `metrics/headline.json` instead: the handful of numbers the design tracks across
commits and experiments. `round_floats` rounds every float of the full metrics, so a
re-run on another CPU (last-bit float drift) leaves the committed files unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

HEADLINE_DECIMALS = 4
METRICS_SIGNIFICANT_DIGITS = 6

# headline key -> (method block key, sub key or None) of the fclf block of the test split.
_TEST_KEYS = {
    "flip_success_linear": ("flip_success_linear", None),
    "preservation_linear": ("preservation_linear", None),
    "identity_top1": ("identity_top1", None),
    "counterfactual_relative_error": ("counterfactual_relative_error", None),
    "noop_movement_ratio": ("noop", "movement_ratio"),
    "collapsed": ("collapsed", None),
    "silhouette_by_target": ("silhouette_by_target", None),
    "mean_step": ("mean_step", None),
}
_VAL_KEYS = {
    "flip_success_linear": ("flip_success_linear", None),
    "preservation_linear": ("preservation_linear", None),
    "counterfactual_relative_error": ("counterfactual_relative_error", None),
    "collapsed": ("collapsed", None),
}
BEST_BASELINE_KEY = "best_baseline_counterfactual_relative_error"
METHOD = "fclf"
BASELINE_PREFIX = "baseline_"


def headline(transfer_metrics: dict) -> dict:
    """The ~ten numbers that say how a run went, from a `metrics/transfer.json` dict.

    Returns `{"test": {...}, "val": {...}}` (one level of nesting, so `dvc exp show`
    columns read `test.flip_success_linear`, ...):

    - test, FCLF: `flip_success_linear`, `preservation_linear`, `identity_top1`,
      `counterfactual_relative_error` (null on real data: no ground truth),
      `noop_movement_ratio` (= `noop.movement_ratio`), `collapsed` (bool),
      `silhouette_by_target`, `mean_step`;
    - test, context: `best_baseline_counterfactual_relative_error`, the lowest
      `counterfactual_relative_error` among the `baseline_*` methods (null on real data);
    - val, FCLF: `counterfactual_relative_error` (the selection score), `collapsed`, and
      `flip_success_linear` / `preservation_linear` (the front `fclf sweep report` selects on).

    Every float is rounded to 4 decimals (`HEADLINE_DECIMALS`); null stays null,
    `collapsed` is a bool. A key missing from the metrics is null.
    """
    out: dict[str, dict[str, Any]] = {}
    for split, keys in (("test", _TEST_KEYS), ("val", _VAL_KEYS)):
        block = (transfer_metrics.get(split) or {}).get(METHOD) or {}
        out[split] = {name: _pick(block, key, sub) for name, (key, sub) in keys.items()}
    test = transfer_metrics.get("test") or {}
    errors = [block.get("counterfactual_relative_error") for method, block in test.items()
              if method.startswith(BASELINE_PREFIX) and isinstance(block, dict)]
    errors = [e for e in errors if _is_number(e)]
    out["test"][BEST_BASELINE_KEY] = _headline_value(min(errors)) if errors else None
    return out


def _pick(block: dict, key: str, sub: str | None) -> Any:
    value = block.get(key)
    if sub is not None:
        value = value.get(sub) if isinstance(value, dict) else None
    return _headline_value(value)


def _headline_value(value: Any) -> Any:
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
