"""Scratch projects for sweep tests: the pipeline (tiny params) with a sweep file, pushed to a
bare git remote, with a DVC remote; worker clones; what the remote and a clone hold; and the
process helpers that find (and kill) what runs in a clone. Shared by test_sweep_*.py.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from test_pipeline_dvc import TINY_PARAMS, Pipeline, make_pipeline_repo

BIN = Path(sys.executable).parent
FCLF = str(BIN / "fclf")
SWEEP_PARAMS = {**TINY_PARAMS, "train.epochs": 1, "eval.bootstrap_resamples": 20}
TINY_SWEEP = """\
name: tiny
params:
  loss.lambda_identity: [0.1, 1]
  train.flip_prob: [0.25, 0.5]
select:
  metric: counterfactual_relative_error
"""


def make_shared_project(tmp: Path, sweeps: dict[str, str], dvc_remote: str | None = None,
                        remote_options: dict[str, str] | None = None
                        ) -> tuple[Pipeline, Path]:
    """The seed repository with `sweeps` ({file name: text} under sweeps/) and a default DVC
    remote `store` (`dvc_remote`, default: a new folder tmp/dvc-store; `remote_options` are
    `dvc remote modify` settings), committed and pushed to the bare git remote tmp/remote.git
    as `main`. Returns (seed, bare remote)."""
    seed = make_pipeline_repo(tmp / "seed", SWEEP_PARAMS)
    if dvc_remote is None:
        (tmp / "dvc-store").mkdir()
        dvc_remote = str(tmp / "dvc-store")
    seed.dvc("remote", "add", "-d", "store", dvc_remote)
    for key, value in (remote_options or {}).items():
        seed.dvc("remote", "modify", "store", key, value)
    (seed.root / "sweeps").mkdir()
    for name, text in sweeps.items():
        (seed.root / "sweeps" / name).write_text(text)
    seed.commit("sweeps and DVC remote")
    remote = tmp / "remote.git"
    seed.run("git", "init", "-q", "--bare", "--initial-branch=main", str(remote))
    seed.git("remote", "add", "origin", str(remote))
    seed.git("push", "-q", "origin", "HEAD:refs/heads/main")
    return seed, remote


def clone(remote: Path, path: Path, env: dict[str, str]) -> Pipeline:
    subprocess.run(["git", "clone", "-q", "-b", "main", str(remote), str(path)], env=env,
                   check=True, capture_output=True)
    worker = Pipeline(path, env)
    worker.git("config", "user.name", "fclf tests")
    worker.git("config", "user.email", "tests@fclf.invalid")
    return worker


def remote_experiments(remote: Path) -> dict[str, str]:
    """name -> commit of every experiment ref on the bare remote."""
    return _names(subprocess.run(["git", "ls-remote", str(remote), "refs/exps/*"], check=True,
                                 capture_output=True, text=True).stdout, "\t")


def local_experiments(clone: Pipeline | Path) -> dict[str, str]:
    """name -> commit of the experiments in a clone (none while it is not a clone yet)."""
    folder = clone.root if isinstance(clone, Pipeline) else clone
    if not folder.is_dir():
        return {}
    done = subprocess.run(["git", "for-each-ref", "--format=%(objectname) %(refname)",
                           "refs/exps/"], cwd=folder, capture_output=True, text=True)
    return _names(done.stdout, " ") if done.returncode == 0 else {}


def _names(listing: str, separator: str) -> dict[str, str]:
    refs = (line.split(separator, 1) for line in listing.splitlines() if line.strip())
    return {ref.rsplit("/", 1)[-1]: sha for sha, ref in refs if "/exps/celery/" not in ref}


def remote_refs(remote: Path, pattern: str) -> list[str]:
    out = subprocess.run(["git", "ls-remote", str(remote), pattern], check=True,
                         capture_output=True, text=True).stdout
    return [line.split("\t", 1)[1] for line in out.splitlines() if line.strip()]


def leaderboard(folder: Path) -> dict[str, dict[str, str]]:
    """leaderboard.csv of a report folder as {experiment: row}."""
    rows = list(csv.DictReader((folder / "leaderboard.csv").open()))
    by_name = {row["name"]: row for row in rows}
    assert len(by_name) == len(rows), "a grid point is listed twice"
    return by_name


def _processes():
    """(pid, cwd, command line) of every process we may look at."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        yield int(proc.name), cwd, cmdline


def running_stage(folder: Path, stage: str = "stages/train.py") -> bool:
    """A pipeline stage is running in one of DVC's temporary workspaces under `folder`."""
    workspaces = str(folder / ".dvc" / "tmp" / "exps")
    return any(cwd.startswith(workspaces) and stage in cmdline
               for _, cwd, cmdline in _processes())


def processes_in(folder: Path) -> list[int]:
    """PIDs of the processes whose working directory is in `folder`."""
    return [pid for pid, cwd, _ in _processes()
            if cwd == str(folder) or cwd.startswith(str(folder) + os.sep)]


def kill_everything_in(folder: Path) -> int:
    """SIGKILL every process whose working directory is in `folder` (the worker, DVC's
    queue workers and the stage they run): what a pre-empted cluster node looks like."""
    killed = 0
    for pid in processes_in(folder):
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            pass
    return killed


def wait_for(predicate, timeout: float, what: str, every: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)
