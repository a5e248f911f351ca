"""`fclf compare`: the headline of the workspace, its baseline commit and each experiment.

Reads `dvc exp show --json` (metrics/headline.json of every row, see
fclf.evaluate.headline) and prints one line per run, at most 100 columns wide.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fclf.cli.dvc_locate import dvc_executable, find_dvc_root
from fclf.errors import FclfError

HEADLINE_PATH = "metrics/headline.json"
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


@dataclass
class Run:
    """One row of the table: a run's name and its headline (None: no readable headline)."""

    name: str
    headline: dict | None
    problem: str = ""


def exp_show_json(cwd: Path | None = None) -> list[dict]:
    """Run `dvc exp show --json` (no analytics) and parse its output."""
    cwd = Path.cwd() if cwd is None else cwd
    if find_dvc_root(cwd.resolve()) is None:
        raise FclfError(f"{cwd}: not inside a DVC repository (no .dvc/ folder here or above); "
                        "run `fclf compare` in the project")
    dvc = dvc_executable()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run([dvc, "exp", "show", "--json"], cwd=cwd, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
        raise FclfError(f"dvc exp show --json failed: {message}")
    try:
        payload = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise FclfError(f"dvc exp show --json printed no JSON ({exc.msg})") from None
    if not isinstance(payload, list):
        raise FclfError("dvc exp show --json: expected a list of rows")
    return payload


def collect_runs(payload: list[dict], names: Sequence[str] = ()) -> list[Run]:
    """Workspace, baseline commit(s) and experiments of an `exp show --json` payload;
    with `names`, only the runs so named (experiment name, `workspace`, branch or rev
    prefix), in the order given. Raises FclfError naming any that is not there."""
    runs: list[tuple[set[str], Run]] = []
    for row in payload:
        runs.append(_run(row, baseline=True))
        for group in row.get("experiments") or []:
            for rev in group.get("revs") or []:
                runs.append(_run(rev, baseline=False))
    if not names:
        return [run for _, run in runs]
    chosen = []
    for name in names:
        matches = [run for aliases, run in runs
                   if name in aliases or any(a.startswith(name) for a in aliases if len(a) == 40)]
        if not matches:
            known = ", ".join(run.name for _, run in runs)
            raise FclfError(f"no experiment named {name!r} (known: {known})")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def _run(row: dict, baseline: bool) -> tuple[set[str], Run]:
    rev = str(row.get("rev") or "")
    name = row.get("name") or (rev if rev == "workspace" else rev[:7])
    aliases = {a for a in (rev, row.get("name")) if a}
    if row.get("error"):
        return aliases, Run(name, None, _message(row["error"]))
    metrics = ((row.get("data") or {}).get("metrics") or {}).get(HEADLINE_PATH)
    if not metrics:
        return aliases, Run(name, None, "no headline")
    if "data" not in metrics:
        return aliases, Run(name, None, _message(metrics.get("error")) or "no headline")
    return aliases, Run(name, _nest(metrics["data"]))


def _message(error: Any) -> str:
    if isinstance(error, dict):
        if error.get("type") == "FileNotFoundError":
            return "no headline.json"
        return str(error.get("type") or error.get("msg") or "error")
    return str(error or "")


def _nest(data: dict) -> dict:
    """Headline as {split: {key: value}}, also from dotted keys ("test.flip_...")."""
    out: dict[str, dict] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.setdefault(key, {}).update(value)
        elif "." in key:
            split, leaf = key.split(".", 1)
            out.setdefault(split, {})[leaf] = value
    return out


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
