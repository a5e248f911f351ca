"""The runs of a DVC project, read from `dvc exp show --json`: the workspace, its baseline
commit(s) and their experiments, each with its headline (metrics/headline.json, see
fclf.evaluate.headline) or the reason it has none. Read by `fclf compare` and the sweep report.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fclf.errors import FclfError
from fclf.sweep.dvc_locate import dvc_executable, find_dvc_root

HEADLINE_PATH = "metrics/headline.json"


@dataclass
class Run:
    """One row of the table: a run's name and its headline (None: no readable headline)."""

    name: str
    headline: dict | None
    problem: str = ""


def exp_show_json(cwd: Path | None = None, what: str = "fclf compare") -> list[dict]:
    """Run `dvc exp show --json` (no analytics) and parse its output."""
    cwd = Path.cwd() if cwd is None else cwd
    if find_dvc_root(cwd.resolve()) is None:
        raise FclfError(f"{cwd}: not inside a DVC repository (no .dvc/ folder here or above); "
                        f"run `{what}` in the project")
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
