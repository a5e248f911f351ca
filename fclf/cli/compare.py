"""`fclf compare`: the headline of the workspace, its baseline commit and each experiment.

Reads `dvc exp show --json` (metrics/headline.json of every row, see
fclf.sweep.experiments) and prints one line per run, at most 100 columns wide.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fclf.sweep.experiments import Run, collect_runs, exp_show_json

WIDTH = 100
NAME_WIDTH = 28
NUMBER_WIDTH = 8
# (header, split, headline key)
COLUMNS = (
    ("flip", "test", "flip_success_linear"),
    ("keep", "test", "preservation_linear"),
    ("cf error", "test", "counterfactual_relative_error"),
    ("id@1", "test", "identity_top1"),
    ("no-op", "test", "noop_movement_ratio"),
    ("val score", "val", "counterfactual_relative_error"),
)


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    return f"{value:.3f}"


def _flag(headline: dict) -> str:
    test = (headline.get("test") or {}).get("collapsed")
    val = (headline.get("val") or {}).get("collapsed")
    if test:
        return "COLLAPSED"
    if val:
        return "COLLAPSED(val)"
    if test is None and val is None:
        return "-"
    return "no"


def _fit(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width - 1] + "~"


def format_table(runs: Sequence[Run]) -> str:
    """One line per run: name, test flip/keep/cf error/id@1/no-op ratio, the val selection
    score (val cf error) and the collapse flag; every line at most 100 characters."""
    header = [f"{'experiment':<{NAME_WIDTH}}",
              *(f"{title:>{NUMBER_WIDTH}}" for title, _, _ in COLUMNS), "collapsed"]
    lines = [" ".join(header)]
    for run in runs:
        cells = [f"{_fit(run.name, NAME_WIDTH):<{NAME_WIDTH}}"]
        if run.headline is None:
            cells += [f"{'-':>{NUMBER_WIDTH}}"] * len(COLUMNS)
            cells.append(_fit(run.problem or "no headline", WIDTH - 1 - len(" ".join(cells))))
        else:
            cells += [f"{_number((run.headline.get(split) or {}).get(key)):>{NUMBER_WIDTH}}"
                      for _, split, key in COLUMNS]
            cells.append(_flag(run.headline))
        lines.append(" ".join(cells).rstrip())
    lines.append("flip/keep: linear judge on test; cf error: counterfactual relative error "
                 "(test);")
    lines.append("id@1: identity top-1; no-op: movement ratio; val score: val cf error "
                 "(lower is better)")
    return "\n".join(lines)


def compare(names: Sequence[str] = (), payload: list[dict] | None = None,
            cwd: Path | None = None) -> str:
    """The table for `fclf compare`; `payload` (an `exp show --json` result) skips dvc."""
    if payload is None:
        payload = exp_show_json(cwd)
    return format_table(collect_runs(payload, names))
