"""The leaderboard of a sweep: every grid point once, ranked on val, collapse flagged.

Pure functions: runs (from `dvc exp show`, read by fclf.cli.compare) in, rows and text out;
the caller writes the files. Ranking reads the val block of each headline only: test
numbers are reported next to it and drawn, never used to order runs or to pick the front,
so the reported test numbers stay an honest estimate of the chosen run.

Every number is the headline's told-mode block (`metrics/headline.json`: val.told and
test.told; the blind counterfactual error is reported beside them).

Order of the ranks, with the default `select: {metric: rule}`: the runs with a headline in
the order `fclf.evaluate.selection.rank` gives their val.told blocks (eligible runs first: not
collapsed, realistic, flip/keep at the gate's thresholds; then the lowest counterfactual
error, ties within 0.01 to the larger Pareto area) -- the same function that picks the
peers' settings and the best baseline. With a named metric instead:
1. runs with a headline that did not collapse on val, by the val selection metric;
2. runs that collapsed on val (however good their metric: a collapsed editor that sends
   every face to one point can score well on some metrics), by the same metric;
3. runs with a headline but no finite val selection metric, in grid order.
Then, either way: grid points without a run ("missing"), whose run failed ("failed", with
the failure record its worker shared: fclf.sweep.failures) or without a readable headline,
in grid order.

A collapse seen on test only is shown (`COLLAPSED(test)`) but does not move the run:
that would be choosing on test.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from fclf.evaluate.selection import SelectionRule, rank
from fclf.sweep.failures import Failure
from fclf.sweep.spec import GridPoint, Selection, Sweep, name_text, yaml_value

OK = "ok"
MISSING = "missing"
FAILED = "failed"
NO_METRICS = "no metrics"
SELECTION_SPLIT = "val"  # never test, whatever a Selection says (spec.py refuses it too)
MODE = "told"  # the mode the rule, the gate and the README's headline use
BLIND = "blind"
FRONT_X = "flip_success_linear"  # the val front: flip success against preservation
FRONT_Y = "preservation_linear"
# (markdown header, split, mode, headline key) of the reported numbers
NUMBER_COLUMNS = (
    ("val cf error", "val", MODE, "counterfactual_relative_error"),
    ("val flip", "val", MODE, "flip_success_linear"),
    ("val keep", "val", MODE, "preservation_linear"),
    ("test cf error", "test", MODE, "counterfactual_relative_error"),
    ("test blind cf error", "test", BLIND, "counterfactual_relative_error"),
    ("test flip", "test", MODE, "flip_success_linear"),
    ("test keep", "test", MODE, "preservation_linear"),
    ("test id@1 (target)", "test", MODE, "identity_top1_target"),
    ("test no-op", "test", MODE, "noop_movement_ratio"),
)
CSV_NUMBERS = tuple((split, mode, key) for _, split, mode, key in NUMBER_COLUMNS) + (
    ("val", MODE, "success_linear"),
    ("val", MODE, "pareto_area_linear"),
    ("test", MODE, "success_linear"),
)


def csv_name(split: str, mode: str, key: str) -> str:
    return f"{split}_{key}" if mode == MODE else f"{split}_{mode}_{key}"


class Run(Protocol):
    """A run as `dvc exp show` gives it: its name and headline (None: no readable headline,
    `problem` says why)."""

    name: str
    headline: dict | None
    problem: str


@dataclass
class Entry:
    """One grid point and what became of it.

    status: "ok" (a headline), "missing" (no experiment of that name and no failure record:
    not run yet, or its worker died), "failed" (no result, and a worker recorded the
    failure: `failure` says where, when and why) or "no metrics" (the experiment exists but
    has no readable headline; `problem` says why). `collapsed` is derived from the headline:
    True if val or test says so, None with no headline (or when neither split says).
    """

    point: GridPoint
    headline: dict | None
    status: str
    problem: str = ""
    rank: int = 0
    on_front: bool = False
    failure: Failure | None = None
    held_back: tuple[str, ...] = ()  # why the selection rule ranks it after eligible runs

    @property
    def collapsed(self) -> bool | None:
        return _collapsed(self.headline)

    @property
    def name(self) -> str:
        return self.point.name

    def collapsed_on(self, split: str) -> bool:
        return block_of(self.headline, split).get("collapsed") is True

    def value(self, split: str, key: str, mode: str = MODE) -> float | None:
        """The headline number split.mode.key, or None when absent, not a number or not
        finite."""
        return _finite(block_of(self.headline, split, mode).get(key))


def block_of(headline: dict | None, split: str, mode: str = MODE) -> dict:
    """The split.mode block of a headline, nested (headline[split][mode], as in
    metrics/headline.json) or flat ("split.mode.key", as `dvc exp show` gives it through
    fclf.cli.compare); {} where absent."""
    headline = headline or {}
    nested = headline.get(split)
    if isinstance(nested, dict):
        block = nested.get(mode)
        return block if isinstance(block, dict) else {}
    prefix = f"{split}.{mode}."
    return {key[len(prefix):]: value for key, value in headline.items()
            if key.startswith(prefix)}


def _collapsed(headline: dict | None) -> bool | None:
    if headline is None:
        return None
    flags = [block_of(headline, split).get("collapsed") for split in ("val", "test")]
    if any(flag is True for flag in flags):
        return True
    return None if all(flag is None for flag in flags) else False


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def entries_for(points: Sequence[GridPoint], runs: Sequence[Run],
                failures: Mapping[str, Failure] | None = None) -> list[Entry]:
    """One entry per grid point, in the points' order, matched to runs (and failure records)
    by experiment name.

    Runs that are not grid points (the workspace, other experiments) are ignored; of two
    runs with the same name, one with a headline wins. A headline always beats a failure
    record (the point was run again and succeeded); a record beats a run without one.
    """
    failures = failures or {}
    by_name: dict[str, Run] = {}
    for run in runs:
        known = by_name.get(run.name)
        if known is None or (known.headline is None and run.headline is not None):
            by_name[run.name] = run
    entries: list[Entry] = []
    seen: set[str] = set()
    for point in points:
        if point.name in seen:
            continue
        seen.add(point.name)
        run = by_name.get(point.name)
        failure = failures.get(point.name)
        if failure is not None and (run is None or run.headline is None):
            entries.append(Entry(point, None, FAILED, failure.summary, failure=failure))
        elif run is None:
            entries.append(Entry(point, None, MISSING))
        elif run.headline is None:
            entries.append(Entry(point, None, NO_METRICS, run.problem or "no headline"))
        else:
            entries.append(Entry(point, run.headline, OK))
    return entries


def pareto_front(pairs: Sequence[tuple[float, float]]) -> list[bool]:
    """For each (a, b), both maximised: True iff no other pair is >= in both coordinates
    and > in one (so exact duplicates are on the front together)."""
    if not pairs:
        return []
    points = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
    a, b = points[:, 0], points[:, 1]
    at_least = (a[None, :] >= a[:, None]) & (b[None, :] >= b[:, None])  # [i, j]: j >= i
    better = (a[None, :] > a[:, None]) | (b[None, :] > b[:, None])
    dominated = (at_least & better).any(axis=1)
    return [not d for d in dominated]


def rank_entries(entries: Sequence[Entry], selection: Selection,
                 rule: SelectionRule | None = None) -> list[Entry]:
    """Copies of `entries` in rank order with `rank` (1..n) and `on_front` set.

    Reads val numbers only. `rule` (default: SelectionRule()'s thresholds; pass the one from
    the project's gate) applies when `selection` is the rule. The front is the Pareto front
    of (val flip success, val preservation) among runs with a headline that did not
    collapse; it does not need the selection metric (val cf error is null on real data, flip
    and preservation are not).
    """
    ordered = (_rule_order(entries, rule or SelectionRule()) if selection.is_rule
               else _metric_order(entries, selection))
    ranked = [replace(entry, rank=position, on_front=False)
              for position, entry in enumerate(ordered, start=1)]
    candidates = [entry for entry in ranked if _front_pair(entry) is not None]
    flags = pareto_front([_front_pair(entry) for entry in candidates])
    for entry, on_front in zip(candidates, flags, strict=True):
        entry.on_front = on_front
    return ranked


def _rule_order(entries: Sequence[Entry], rule: SelectionRule) -> list[Entry]:
    """Runs with a headline in `selection.rank`'s order of their val.told blocks, then the
    others in grid order."""
    ok = {entry.name: entry for entry in entries if entry.status == OK}
    blocks = {name: _rule_block(entry) for name, entry in ok.items()}
    ordered = [replace(ok[r.name], held_back=r.reasons) for r in rank(blocks, rule)]
    return ordered + sorted((e for e in entries if e.status != OK), key=lambda e: e.point.index)


def _rule_block(entry: Entry) -> dict:
    """The val.told headline block as the rule reads it (the headline flattens the curve's
    Pareto area to `pareto_area_linear`)."""
    block = dict(block_of(entry.headline, SELECTION_SPLIT))
    block["curve"] = {"pareto_area_linear": block.get("pareto_area_linear")}
    return block


def _metric_order(entries: Sequence[Entry], selection: Selection) -> list[Entry]:
    sign = 1.0 if selection.order == "min" else -1.0

    def key(entry: Entry) -> tuple:
        index = entry.point.index
        if entry.status != OK:
            return (4, 0.0, index)
        metric = entry.value(SELECTION_SPLIT, selection.metric)
        if metric is None:
            return (3, 0.0, index)
        return (2 if entry.collapsed_on(SELECTION_SPLIT) else 1, sign * metric, index)

    return sorted(entries, key=key)


def _front_pair(entry: Entry) -> tuple[float, float] | None:
    if entry.status != OK or entry.collapsed_on(SELECTION_SPLIT):
        return None
    flip, keep = entry.value("val", FRONT_X), entry.value("val", FRONT_Y)
    return None if flip is None or keep is None else (flip, keep)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _collapse_cell(entry: Entry) -> str:
    if entry.collapsed is True and not entry.collapsed_on(SELECTION_SPLIT):
        return "COLLAPSED(test)"
    return {True: "COLLAPSED", False: "no", None: "-"}[entry.collapsed]


def _status_cell(entry: Entry) -> str:
    if entry.status == FAILED:
        return entry.problem  # "failed on <host>: <last line>"
    if entry.status == OK and entry.held_back:
        return "not eligible: " + "; ".join(entry.held_back)
    return f"{NO_METRICS}: {entry.problem}" if entry.status == NO_METRICS else entry.status


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def summary_line(ranked: Sequence[Entry], sweep: Sweep) -> str:
    """'N grid points: X with results, Y collapsed, Z missing[, F failed][, W without
    metrics].'"""
    ok = [e for e in ranked if e.status == OK]
    collapsed = sum(e.collapsed is True for e in ok)
    missing = sum(e.status == MISSING for e in ranked)
    failed = sum(e.status == FAILED for e in ranked)
    broken = sum(e.status == NO_METRICS for e in ranked)
    sample = (f" (a seeded sample of the {sweep.grid_size}-point grid)"
              if len(ranked) < sweep.grid_size else "")
    text = (f"{len(ranked)} grid points{sample}: {len(ok)} with results, {collapsed} collapsed, "
            f"{missing} missing" + (f", {failed} failed" if failed else ""))
    return text + (f", {broken} without readable metrics." if broken else ".")


def selection_line(selection: Selection) -> str:
    if selection.is_rule:
        how = ("Ranked by the selection rule (fclf.evaluate.selection) on val, told mode: "
               "eligible runs first (not collapsed, realistic, flip/keep at the gate), then "
               "the lowest counterfactual error (success_linear without the truth), ties "
               "within 0.01 to the larger Pareto area")
    else:
        better = "lower" if selection.order == "min" else "higher"
        how = f"Ranked on val {selection.metric} ({better} is better)"
    return (f"{how}; test columns are "
            "reported, never used to choose; front = on the val flip/preservation Pareto "
            "front among runs that did not collapse on val; COLLAPSED(test): collapsed on "
            "test only (shown, not used to rank).")


def leaderboard_markdown(ranked: Sequence[Entry], sweep: Sweep) -> str:
    """The leaderboard as Markdown: heading, summary, how it is ranked, one row per point."""
    keys = list(sweep.params)
    metric = sweep.selection.metric
    own = [] if sweep.selection.is_rule or metric == "counterfactual_relative_error" \
        else [f"val {metric}"]
    header = ["rank", "experiment", *keys, *own,
              *(title for title, *_ in NUMBER_COLUMNS), "collapsed", "front", "status"]
    lines = [f"# Sweep {sweep.name}", "", summary_line(ranked, sweep), "",
             selection_line(sweep.selection), "",
             "| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    for entry in ranked:
        params = dict(entry.point.overrides)
        cells = [str(entry.rank), entry.name,
                 *(name_text(params[k]) if k in params else "-" for k in keys),
                 *(_number(entry.value(SELECTION_SPLIT, metric)) for _ in own),
                 *(_number(entry.value(split, k, mode)) for _, split, mode, k in NUMBER_COLUMNS),
                 _collapse_cell(entry), "yes" if entry.on_front else "", _status_cell(entry)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines + failure_section(ranked)) + "\n"


def failure_section(ranked: Sequence[Entry]) -> list[str]:
    """Markdown lines: each failed point's record (host, time, shard, exit status) and the
    last lines of its log; nothing when no point failed."""
    failed = [entry for entry in ranked if entry.failure is not None]
    if not failed:
        return []
    lines = ["", "## Failed runs", "",
             "Recorded by the worker that ran each one (`fclf sweep work` runs them again)."]
    for entry in failed:
        lines += ["", f"**{entry.name}** failed {entry.failure.details()}; its log ends:", "",
                  "````", *entry.failure.log_tail, "````"]
    return lines


def csv_columns(sweep: Sweep) -> list[str]:
    return ["rank", "name", "status", "problem", *sweep.params,
            *(csv_name(*number) for number in CSV_NUMBERS), "collapsed", "on_val_front",
            "not_eligible"]


def _csv_number(value: float | None) -> str:
    return "" if value is None else repr(value)


def _csv_bool(value: bool | None) -> str:
    return "" if value is None else str(value).lower()


def leaderboard_csv(ranked: Sequence[Entry], sweep: Sweep) -> str:
    """The leaderboard as CSV: full-precision numbers, empty cells for missing values."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=csv_columns(sweep), lineterminator="\n")
    writer.writeheader()
    for entry in ranked:
        params = dict(entry.point.overrides)
        row = {"rank": entry.rank, "name": entry.name, "status": entry.status,
               "problem": entry.problem,
               **{k: yaml_value(params[k]) if k in params else "" for k in sweep.params},
               **{csv_name(split, mode, key): _csv_number(entry.value(split, key, mode))
                  for split, mode, key in CSV_NUMBERS},
               "collapsed": _csv_bool(entry.collapsed),
               "on_val_front": _csv_bool(entry.on_front),
               "not_eligible": "; ".join(entry.held_back)}
        writer.writerow(row)
    return buffer.getvalue()


PARETO_COLUMNS = ("name", "preservation_linear", "flip_success_linear", "val_preservation_linear",
                  "val_flip_success_linear", "collapsed", "on_val_front", "group")


def pareto_rows(ranked: Sequence[Entry]) -> list[dict]:
    """DVC plot data: one row per run with a headline and both test flip success and
    preservation, the val pair beside them, and its group ('COLLAPSED', 'val front' or
    'other') for the colour. The front was chosen on val; the test numbers are drawn."""
    rows = []
    for entry in ranked:
        flip, keep = entry.value("test", FRONT_X), entry.value("test", FRONT_Y)
        if entry.status != OK or flip is None or keep is None:
            continue
        collapsed = entry.collapsed is True
        group = "COLLAPSED" if collapsed else "val front" if entry.on_front else "other"
        rows.append({"name": entry.name, "preservation_linear": keep,
                     "flip_success_linear": flip,
                     "val_preservation_linear": entry.value("val", FRONT_Y),
                     "val_flip_success_linear": entry.value("val", FRONT_X),
                     "collapsed": collapsed, "on_val_front": entry.on_front, "group": group})
    return rows


def pareto_csv(rows: Sequence[dict]) -> str:
    """`pareto_rows` as CSV (DVC plot data); the header is there even with no rows."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=PARETO_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
