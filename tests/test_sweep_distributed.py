"""A sweep spread over two worker clones, shared through a bare git remote and a local-folder
DVC remote, with one worker killed mid-shard and restarted; a third clone reports.

This is the issue's "done when" run as written: tiny data, 1 epoch, a 2 x 2 grid.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_pipeline_dvc import TINY_PARAMS, Pipeline, make_pipeline_repo, pipeline_env

from fclf.sweep.spec import load_sweep, shard

BIN = Path(sys.executable).parent
FCLF = str(BIN / "fclf")
SWEEP_YAML = """\
name: tiny
params:
  loss.lambda_identity: [0.1, 1]
  train.flip_prob: [0.25, 0.5]
select:
  metric: counterfactual_relative_error
"""
WORKER_TIMEOUT_S = 900

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path("/proc").is_dir(),
                                                   reason="kills by /proc cwd (Linux)")]


def make_shared_project(tmp: Path) -> tuple[Pipeline, Path, Path]:
    """The seed repository, pushed to a bare git remote, with a DVC remote folder."""
    seed = make_pipeline_repo(tmp / "seed", {**TINY_PARAMS, "train.epochs": 1,
                                             "eval.bootstrap_resamples": 20})
    store = tmp / "dvc-store"
    store.mkdir()
    seed.dvc("remote", "add", "-d", "store", str(store))
    (seed.root / "sweeps").mkdir()
    (seed.root / "sweeps" / "tiny.yaml").write_text(SWEEP_YAML)
    seed.commit("sweep and DVC remote")
    remote = tmp / "remote.git"
    seed.run("git", "init", "-q", "--bare", str(remote))
    seed.git("push", "-q", str(remote), "HEAD:refs/heads/main")
    return seed, remote, store


def clone(remote: Path, path: Path, env: dict[str, str]) -> Pipeline:
    subprocess.run(["git", "clone", "-q", "-b", "main", str(remote), str(path)], env=env,
                   check=True, capture_output=True)
    worker = Pipeline(path, env)
    worker.git("config", "user.name", "fclf tests")
    worker.git("config", "user.email", "tests@fclf.invalid")
    return worker


def start_worker(worker: Pipeline, shard_spec: str, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [FCLF, "sweep", "work", "sweeps/tiny.yaml", "--shard", shard_spec, "--jobs", "1",
             "--push", "origin", "--poll", "1"],
            cwd=worker.root, env=worker.env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)


def remote_experiments(remote: Path) -> dict[str, str]:
    """name -> commit of every experiment ref on the bare remote."""
    out = subprocess.run(["git", "ls-remote", str(remote), "refs/exps/*"], check=True,
                         capture_output=True, text=True).stdout
    refs = (line.split("\t") for line in out.splitlines() if line.strip())
    return {ref.rsplit("/", 1)[-1]: sha for sha, ref in refs}


def local_experiments(clone: Pipeline) -> dict[str, str]:
    """name -> commit of the experiments in a clone."""
    out = clone.git("for-each-ref", "--format=%(objectname) %(refname)", "refs/exps/")
    refs = (line.split(" ", 1) for line in out.splitlines() if line.strip())
    return {ref.rsplit("/", 1)[-1]: sha for sha, ref in refs if "/exps/celery/" not in ref}


def running_stage(folder: Path) -> bool:
    """A pipeline stage is running in one of DVC's temporary workspaces under `folder`."""
    for proc in Path("/proc").iterdir():
        try:
            cwd = os.readlink(proc / "cwd")
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(str(folder / ".dvc" / "tmp" / "exps")) and "stages/train.py" in cmdline:
            return True
    return False


def kill_everything_in(folder: Path) -> int:
    """SIGKILL every process whose working directory is in `folder` (the worker, DVC's
    queue workers and the stage they run): what a pre-empted cluster node looks like."""
    killed = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if cwd == str(folder) or cwd.startswith(str(folder) + os.sep):
            try:
                os.kill(int(proc.name), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def test_two_sharded_workers_a_kill_and_a_report(tmp_path: Path) -> None:
    seed, remote, store = make_shared_project(tmp_path)
    env = pipeline_env(tmp_path)
    sweep = load_sweep(seed.root / "sweeps" / "tiny.yaml", seed.root / "params.yaml")
    grid = [p.name for p in sweep.points()]
    first = [p.name for p in shard(sweep.points(), 1, 2)]
    assert len(grid) == 4 and len(first) == 2

    one, two = clone(remote, tmp_path / "worker1", env), clone(remote, tmp_path / "worker2", env)
    log1, log2 = tmp_path / "worker1.log", tmp_path / "worker2.log"
    worker1 = start_worker(one, "1/2", log1)
    worker2 = start_worker(two, "2/2", log2)
    try:
        # Kill worker 1 once its first experiment is done and its second one is training.
        wait_for(lambda: (first[0] in local_experiments(one) and running_stage(one.root))
                 or worker1.poll() is not None, WORKER_TIMEOUT_S, f"{first[1]} to train")
        assert worker1.poll() is None, log1.read_text()
        finished_before = local_experiments(one)[first[0]]
        assert first[1] not in local_experiments(one)
        assert kill_everything_in(one.root) >= 1
        worker1.wait(timeout=30)
        assert worker1.returncode == -signal.SIGKILL
        skipped = 1 if first[0] in remote_experiments(remote) else 0  # its push may have begun

        restarted = subprocess.run(
            [FCLF, "sweep", "work", "sweeps/tiny.yaml", "--shard", "1/2", "--jobs", "1",
             "--push", "origin", "--poll", "1"],
            cwd=one.root, env=env, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        assert (f"2 grid points: {skipped} already done, {2 - skipped} pushed to origin, "
                "0 failed") in restarted.stdout, restarted.stdout
        assert f"queued 1/1 {first[1]}" in restarted.stderr  # only the killed run runs again
        assert worker2.wait(timeout=WORKER_TIMEOUT_S) == 0, log2.read_text()
    finally:
        for process in (worker1, worker2):
            if process.poll() is None:
                process.kill()
        kill_everything_in(tmp_path)

    on_remote = remote_experiments(remote)
    assert sorted(on_remote) == sorted(grid)
    assert on_remote[first[0]] == finished_before  # pushed as it was, not run again
    assert "2 grid points: 0 already done, 2 pushed to origin, 0 failed" in log2.read_text()
    assert any(store.rglob("*")), "the DVC remote holds no outputs"

    # A re-run of a finished shard changes nothing.
    again = two.run(FCLF, "sweep", "work", "sweeps/tiny.yaml", "--shard", "2/2", "--push",
                    "origin")
    assert "2 grid points: 2 already done, 0 pushed" in again.stdout
    assert remote_experiments(remote) == on_remote

    reporter = clone(remote, tmp_path / "reporter", env)
    reporter.run(FCLF, "sweep", "report", "sweeps/tiny.yaml")
    out = reporter.root / "sweeps" / "tiny"
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert sorted(row["name"] for row in rows) == sorted(grid)  # each grid point exactly once
    for row in rows:
        assert row["status"] == "ok", row
        assert row["collapsed"] in ("true", "false"), row
        assert 0.0 <= float(row["test_flip_success_linear"]) <= 1.0
        assert float(row["val_counterfactual_relative_error"]) >= 0.0
    assert [int(row["rank"]) for row in rows] == [1, 2, 3, 4]
    markdown = (out / "leaderboard.md").read_text()
    assert all(markdown.count(f"| {name} |") == 1 for name in grid), markdown
    assert (out / "pareto.png").stat().st_size > 0
    assert len(list(csv.DictReader((out / "pareto.csv").open()))) == 4
    # The outputs came along: the reporter can apply the best experiment's model.
    reporter.dvc("exp", "apply", rows[0]["name"])
    assert (reporter.root / "models" / "fclf.pt").stat().st_size > 0
