"""The README's tour, run as written: blocks marked `<!-- runnable: NAME -->` (found in
README.md or any docs page, tests/doc_blocks.py) are executed, command by command, in one
scratch copy of the pipeline, in the order of TOUR.

The collapsed-vs-fixed recipe runs on the default params (CPU): on tiny params (a few
dozen people, 2 epochs) the original's settings do not have time to collapse, and the
recipe's claim is about the default data. Then one face is edited and a stand-in editor
is scored in the workspace the recipe left. About 7 minutes on 2 cores."""

from __future__ import annotations

import json
import shlex
import subprocess

import pytest
from doc_blocks import commands, runnable
from test_pipeline_dvc import SUBPROCESS_TIMEOUT, make_pipeline_repo

pytestmark = pytest.mark.slow

TOUR = ("collapsed-vs-fixed", "edit-one-face", "score-your-editor")  # in this order


def run_recipe(pipeline, name: str, plots_dir) -> dict[str, subprocess.CompletedProcess]:
    """{command line: its result}; `fclf score` may exit 1 (the gate), nothing else may fail."""
    results = {}
    for command in commands(runnable()[name].body):
        args = shlex.split(command.line)
        if args[1:3] == ["plots", "diff"]:  # dvc or fclf: keep rendered pages out of the repo
            args += ["-o", str(plots_dir)]
        done = subprocess.run(args, cwd=pipeline.root, env=pipeline.env, input=command.stdin,
                              capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
        allowed = (0, 1) if args[:2] == ["fclf", "score"] else (0,)
        assert done.returncode in allowed, (
            f"{command.line} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
        results[command.line] = done
    return results


def test_the_readme_tour_runs_as_written(tmp_path) -> None:
    # one training seed per experiment: the recipe is about collapse, not seed spread
    pipeline = make_pipeline_repo(tmp_path / "repo", {"embed.device": "cpu",
                                                       "train.device": "cpu",
                                                       "train.replicates": 1})
    outputs = run_recipe(pipeline, "collapsed-vs-fixed", tmp_path / "plots")
    table = json.loads(pipeline.dvc("exp", "show", "--json").stdout)
    runs = {rev["name"]: rev for row in table for exp in row.get("experiments") or []
            for rev in exp["revs"]}
    collapsed = {}
    for name in ("collapsed", "fixed"):  # each experiment's commit holds its metrics
        transfer = json.loads(pipeline.git("show", f"{runs[name]['rev']}:metrics/transfer.json"))
        collapsed[name] = transfer["test"]["told"]["fclf"]["collapsed"]
    assert collapsed == {"collapsed": True, "fixed": False}, collapsed
    diff = next(out.stdout for cmd, out in outputs.items()
                if cmd.startswith("dvc metrics diff"))
    assert "test.told.collapsed" in diff  # the headline metrics DVC declares

    # the workspace now holds the fixed run: edit one face with its model
    (edit,) = run_recipe(pipeline, "edit-one-face", tmp_path / "plots").values()
    assert "target: Smiling 0->1" in edit.stdout, edit.stdout
    assert (pipeline.root / "transfer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # and score the README's stand-in editor on the same workspace
    score = run_recipe(pipeline, "score-your-editor", tmp_path / "plots")
    assert (pipeline.root / "my_edits.npz").is_file()
    printed = next(out.stdout for cmd, out in score.items() if cmd.startswith("fclf score"))
    assert "counterfactual" in printed.lower(), printed
