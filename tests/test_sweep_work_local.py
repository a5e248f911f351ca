"""`fclf sweep` in one clone: bad input is refused before anything changes, and a failing
grid point is listed with its log while the others still run (the local `--shard 1/1` case).
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sweep_project import FCLF, leaderboard, local_experiments, make_shared_project, running_stage
from test_pipeline_dvc import Pipeline

pytestmark = pytest.mark.slow

GOOD = """\
name: g
params:
  loss.lambda_identity: [0.1, 1]
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Pipeline:
    """A committed pipeline with a sweep file, a bare git remote and a DVC remote folder."""
    return make_shared_project(tmp_path_factory.mktemp("sweep-local"), {"good.yaml": GOOD})[0]


def unchanged(repo: Pipeline) -> None:
    """Nothing queued, no experiment, no file changed."""
    assert "No experiment tasks in the queue" in repo.dvc("queue", "status").stdout
    assert repo.git("for-each-ref", "refs/exps/") == ""
    assert repo.git("status", "--porcelain", "--untracked-files=all") == ""


@pytest.mark.parametrize("sweep_text, message", [
    ("params:\n  loss.lambda_identty: [1, 2]\n",
     "bad.yaml:2: unknown param 'loss.lambda_identty' (did you mean 'loss.lambda_identity'?)"),
    ("params:\n  loss.lambda_identity: []\n", "bad.yaml:2: loss.lambda_identity has no values: "
     "the grid is empty"),
    ("params: {}\n", "bad.yaml:1: the grid is empty"),
    ("params:\n  train.flip_prob: [0.5, 2.0]\n", "bad.yaml:2: train.flip_prob = 2.0 is not valid"),
    ("params:\n  data.synthetic.rates: [{Bald: 0.1}]\n", "mapping values cannot be swept"),
])
def test_bad_sweep_file_changes_nothing(project: Pipeline, sweep_text: str,
                                        message: str) -> None:
    bad = project.root.parent / "bad.yaml"  # outside the repository: git status stays clean
    bad.write_text(sweep_text)
    for command in (["plan", str(bad), "--queue"], ["work", str(bad), "--push", "origin"]):
        done = project.run(FCLF, "sweep", *command, check=False)
        assert done.returncode == 2, done.stdout + done.stderr
        assert message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    unchanged(project)


@pytest.mark.parametrize("shard_spec", ["3/2", "0/2", "1/0", "two/3"])
def test_bad_shard_changes_nothing(project: Pipeline, shard_spec: str) -> None:
    for command in ("plan", "work"):
        done = project.run(FCLF, "sweep", command, "sweeps/good.yaml", "--shard", shard_spec,
                           check=False)
        assert done.returncode == 2 and f"--shard {shard_spec}" in done.stderr, done.stderr
    unchanged(project)


def test_unreachable_remotes_change_nothing(project: Pipeline) -> None:
    missing = project.root.parent / "no-such-remote.git"
    done = project.run(FCLF, "sweep", "work", "sweeps/good.yaml", "--push", str(missing),
                       check=False)
    assert done.returncode == 2 and "is unreachable" in done.stderr, done.stderr
    unchanged(project)

    store = project.root.parent / "dvc-store"
    store.rename(store.with_name("store-unmounted"))
    try:
        done = project.run(FCLF, "sweep", "work", "sweeps/good.yaml", "--push", "origin",
                           check=False)
    finally:
        store.with_name("store-unmounted").rename(store)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "DVC remote 'store' is unreachable" in done.stderr
    unchanged(project)

    done = project.run(FCLF, "sweep", "report", "sweeps/good.yaml", "--remote", str(missing),
                       check=False)
    assert done.returncode == 2 and "is unreachable" in done.stderr, done.stderr
    unchanged(project)


def test_plan_prints_every_point_of_the_shard_once(project: Pipeline) -> None:
    lines = [project.run(FCLF, "sweep", "plan", "sweeps/good.yaml", "--shard", f"{i}/2")
             .stdout.splitlines() for i in (1, 2)]
    assert lines == [["dvc exp run --queue -n g-li0.1 -S loss.lambda_identity=0.1"],
                     ["dvc exp run --queue -n g-li1 -S loss.lambda_identity=1"]]
    unchanged(project)


def test_a_failing_run_is_listed_with_its_log_and_the_others_finish(project: Pipeline) -> None:
    # attribute_context > 0 needs more dimensions than the tiny world has: the embed stage
    # fails at run time (the params themselves are valid).
    sweep = project.root / "sweeps" / "fails.yaml"
    sweep.write_text("name: f\nparams:\n  data.synthetic.attribute_context: [0.0, 0.75]\n")
    project.commit("a sweep with a failing point")
    done = project.run(FCLF, "sweep", "work", "sweeps/fails.yaml", "--shard", "1/1",
                       "--jobs", "2", "--poll", "1", check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert ("2 grid points: 0 already done, 1 finished (kept in this clone: no --push), "
            "1 failed") in done.stdout
    log = project.root / "logs" / "sweeps" / "f" / "f-ac0.75.log"
    assert f"failed: f-ac0.75: {Path('logs/sweeps/f/f-ac0.75.log')}" in done.stdout
    assert "too small" in log.read_text()

    assert f"on {socket.gethostname()} at " in done.stdout and "exit status 2" in done.stdout

    again = project.run(FCLF, "sweep", "work", "sweeps/fails.yaml", "--poll", "1", check=False)
    assert "2 grid points, 1 already done, 1 failed before (running them again)" in again.stderr
    assert "queued 1/1 f-ac0.75" in again.stderr  # the failed one is retried, not the other

    project.run(FCLF, "sweep", "report", "sweeps/fails.yaml", "--local")
    rows = leaderboard(project.root / "sweeps" / "f")
    assert rows["f-ac0"]["status"] == "ok" and rows["f-ac0"]["rank"] == "1"
    # The worker's failure record (here, no remote) names the host and the cause.
    assert rows["f-ac0.75"]["status"] == "failed"
    assert rows["f-ac0.75"]["problem"].startswith(f"failed on {socket.gethostname()}: ")
    assert "too small" in rows["f-ac0.75"]["problem"]
    assert rows["f-ac0.75"]["rank"] == "2"


def test_sigterm_stops_the_queue_and_a_restart_finishes_the_shard(project: Pipeline) -> None:
    """A scheduler pre-empts with SIGTERM: the worker stops DVC's queue workers and exits
    130; the restarted worker runs only what did not finish. (The stop leaves a shutdown
    message in DVC's queue; a restart that did not clear it would lose its new worker.)"""
    import signal
    import subprocess
    import time

    worker = subprocess.Popen([FCLF, "sweep", "work", "sweeps/good.yaml", "--poll", "1"],
                              cwd=project.root, env=project.env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 600
    while not ("g-li0.1" in local_experiments(project) and running_stage(project.root)):
        assert worker.poll() is None and time.monotonic() < deadline, worker.stdout.read()
        time.sleep(1)
    worker.send_signal(signal.SIGTERM)
    output = worker.communicate(timeout=120)[0]
    assert worker.returncode == 130, output
    assert "interrupted; the queue workers were stopped" in output

    done = project.run(FCLF, "sweep", "work", "sweeps/good.yaml", "--poll", "1")
    assert "2 grid points: 1 already done, 1 finished" in done.stdout, done.stdout + done.stderr
    assert "queued 1/1 g-li1" in done.stderr
    assert set(local_experiments(project)) >= {"g-li0.1", "g-li1"}
