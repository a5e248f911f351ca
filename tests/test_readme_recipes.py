"""README recipes run as written: blocks marked `<!-- runnable: NAME -->` are executed,
line by line, in a scratch copy of the pipeline.

The collapsed-vs-fixed recipe runs on the default params (CPU): on tiny params
(a few dozen people, 2 epochs) the original's settings do not have time to
collapse, and the recipe's claim is about the default data. About 2 minutes."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from test_pipeline_dvc import make_pipeline_repo

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"<!-- runnable: ([\w-]+) -->\n```bash\n(.*?)```", re.S)


def runnable_blocks(text: str) -> dict[str, list[str]]:
    """{name: [commands]}: continuation lines joined, comments dropped."""
    blocks = {}
    for name, body in BLOCK.findall(text):
        body = body.replace("\\\n", " ")
        commands = []
        for line in body.splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
        blocks[name] = commands
    return blocks


def test_the_marker_finds_the_readme_recipes() -> None:
    blocks = runnable_blocks(README.read_text())
    assert "collapsed-vs-fixed" in blocks
    assert blocks["collapsed-vs-fixed"][0].startswith("dvc exp run -n collapsed")


def test_collapsed_vs_fixed_gives_one_collapsed_and_one_healthy_experiment(tmp_path) -> None:
    # one training seed per experiment: the recipe is about collapse, not seed spread
    pipeline = make_pipeline_repo(tmp_path / "repo", {"embed.device": "cpu",
                                                       "train.device": "cpu",
                                                       "train.replicates": 1})
    outputs = {}
    for command in runnable_blocks(README.read_text())["collapsed-vs-fixed"]:
        args = shlex.split(command)
        if args[1:3] == ["plots", "diff"]:  # dvc or fclf: keep rendered pages out of the repo
            args += ["-o", str(tmp_path / "plots")]
        done = pipeline.dvc(*args[1:]) if args[0] == "dvc" else pipeline.run(*args)
        outputs[command] = done.stdout
    table = json.loads(pipeline.dvc("exp", "show", "--json").stdout)
    runs = {rev["name"]: rev for row in table for exp in row.get("experiments") or []
            for rev in exp["revs"]}
    collapsed = {}
    for name in ("collapsed", "fixed"):  # each experiment's commit holds its metrics
        transfer = json.loads(pipeline.git("show", f"{runs[name]['rev']}:metrics/transfer.json"))
        collapsed[name] = transfer["test"]["told"]["fclf"]["collapsed"]
    assert collapsed == {"collapsed": True, "fixed": False}, collapsed
    diff = next(out for cmd, out in outputs.items() if cmd.startswith("dvc metrics diff"))
    assert "test.told.collapsed" in diff  # the headline metrics DVC declares
