"""The shipped Slurm array job (sweeps/cluster/fclf-sweep-worker.sh) run for real on a
single-node Slurm this test starts (tests/local_slurm.py), with a bare git remote and an
s3:// DVC remote on a local S3 server: 2 shards of a 2 x 2 grid, one array task requeued
(`scontrol requeue`) while its second experiment runs; then a fresh clone's `fclf sweep
report` must list every grid point exactly once with metrics.

The `cluster` tier (`make test-cluster`, run by .ci/run). It installs Debian's Slurm and
munge packages when they are missing and skips, saying why, only when it cannot (not root,
no apt, apt failed). The report it checks is printed (`-rP` shows it).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from local_slurm import LocalSlurm, SlurmUnavailable, ensure_installed
from s3_server import S3Server, s3_bucket
from sweep_project import (
    FCLF,
    TINY_SWEEP,
    clone,
    leaderboard,
    local_experiments,
    make_shared_project,
    processes_in,
    remote_experiments,
    remote_refs,
    running_stage,
    wait_for,
)
from test_pipeline_dvc import REPO, pipeline_env

from fclf.sweep.spec import load_sweep, shard

WORKER = REPO / "sweeps" / "cluster" / "fclf-sweep-worker.sh"
BUCKET = "fclf-sweeps"
JOB_TIMEOUT_S = 480

pytestmark = [pytest.mark.cluster,
              pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux /proc")]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    started = time.monotonic()
    try:
        installed = ensure_installed()
    except SlurmUnavailable as exc:
        pytest.skip(f"cannot install Slurm here: {exc}")
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    cluster.start()  # installed but not starting is a failure, not a skip
    print(f"slurm: {installed}; munged, slurmctld and slurmd up "
          f"{time.monotonic() - started:.1f} s after the test began")
    yield cluster
    for line in cluster.stop():
        print(f"slurm: {line}")


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with s3_bucket(tmp_path_factory.mktemp("s3"), BUCKET) as server:
        yield server


def test_the_shipped_array_job_survives_a_requeue_and_the_report_is_complete(
        slurm: LocalSlurm, s3: S3Server, tmp_path: Path) -> None:
    began = time.monotonic()
    seed, remote = make_shared_project(tmp_path, {"tiny.yaml": TINY_SWEEP},
                                       f"s3://{BUCKET}/dvc", {"endpointurl": s3.endpoint})
    sweep = load_sweep(seed.root / "sweeps" / "tiny.yaml", seed.root / "params.yaml")
    grid = [p.name for p in sweep.points()]
    first = [p.name for p in shard(sweep.points(), 1, 2)]
    env = {**pipeline_env(tmp_path), **s3.env(),
           "FCLF_REPO": str(remote), "FCLF_COMMIT": seed.git("rev-parse", "HEAD").strip(),
           "FCLF_SWEEP": "sweeps/tiny.yaml", "FCLF_VENV": sys.prefix,
           "FCLF_WORKDIR": str(tmp_path / "scratch"), "FCLF_POLL": "1"}
    outputs = tmp_path / "slurm-out"
    outputs.mkdir()
    job = slurm.sbatch("--array=1-2", "--cpus-per-task=1", "--export=ALL",
                       f"--output={outputs}/fclf-sweep-%A_%a.out", str(WORKER), env=env)
    clone1 = tmp_path / "scratch" / f"fclf-tiny-{job}-shard1of2"
    out1 = outputs / f"fclf-sweep-{job}_1.out"
    print(f"submitted array job {job} ({len(grid)} grid points, 2 shards)")

    def task_states() -> dict[str, str]:
        return {task: fields["JobState"] for task, fields in slurm.tasks(job).items()}

    # Requeue task 1 once its first experiment is done and its second one is running.
    wait_for(lambda: (first[0] in local_experiments(clone1) and running_stage(clone1, "stages/"))
             or task_states().get(f"{job}_1") not in ("RUNNING", "PENDING", None),
             JOB_TIMEOUT_S, f"{first[1]} to run in task 1", every=0.5)
    assert task_states().get(f"{job}_1") == "RUNNING", (task_states(), read(out1))
    finished_before = local_experiments(clone1)[first[0]]
    requeued_at = time.monotonic()
    slurm.scontrol("requeue", f"{job}_1")
    print(f"requeued {job}_1 {requeued_at - began:.0f} s in, while {first[1]} was running")

    wait_for(lambda: set(task_states().values()) <= {"COMPLETED", "FAILED", "CANCELLED"}
             and len(task_states()) == 2, JOB_TIMEOUT_S, "both array tasks to end", every=2)
    tasks = slurm.tasks(job)
    ran_for = time.monotonic() - began
    for task, fields in sorted(tasks.items()):
        print(f"{task}: {fields['JobState']} exit {fields['ExitCode']} "
              f"restarts {fields.get('Restarts')}")
    assert {t: f["JobState"] for t, f in tasks.items()} == {
        f"{job}_1": "COMPLETED", f"{job}_2": "COMPLETED"}, read(out1)
    assert tasks[f"{job}_1"]["Restarts"] == "1"
    log1 = read(out1)
    print(f"--- {out1.name} (both runs: --open-mode=append) ---\n{log1}")
    assert "restart 0" in log1 and "restart 1" in log1
    assert "interrupted; the queue workers were stopped" in log1  # SIGTERM, then exit 130
    restarted = log1.split("restart 1", 1)[1]
    assert f"queued 1/1 {first[1]}" in restarted  # only the interrupted run ran again
    assert "2 grid points:" in restarted and "0 failed, 0 not pushed" in restarted
    assert not processes_in(tmp_path / "scratch"), "a DVC worker outlived its array task"

    # Every grid point on the remotes exactly once; the finished run was not run again.
    refs = remote_refs(remote, "refs/exps/*")
    assert sorted(ref.rsplit("/", 1)[-1] for ref in refs) == sorted(grid), refs  # once each
    assert remote_experiments(remote)[first[0]] == finished_before
    assert remote_refs(remote, "refs/fclf-sweeps/*") == []  # no failure records
    assert any(key.startswith("dvc/") for key in s3.objects(BUCKET))

    reporter = clone(remote, tmp_path / "reporter", env)
    report = reporter.run(FCLF, "sweep", "report", "sweeps/tiny.yaml")
    print(f"--- fclf sweep report sweeps/tiny.yaml (fresh clone; {ran_for:.0f} s from "
          f"submission to both tasks done) ---\n{report.stdout}")
    rows = leaderboard(reporter.root / "sweeps" / "tiny")
    assert sorted(rows) == sorted(grid)
    for row in rows.values():
        assert row["status"] == "ok", row
        assert float(row["val_counterfactual_relative_error"]) >= 0.0
        assert 0.0 <= float(row["test_flip_success_linear"]) <= 1.0
        assert row["collapsed"] in ("true", "false")
    assert "4 grid points: 4 with results" in report.stdout
    best = min(rows.values(), key=lambda row: int(row["rank"]))["name"]
    reporter.dvc("exp", "apply", best)  # its outputs come from the s3:// remote
    assert (reporter.root / "models" / "fclf.pt").stat().st_size > 0


def read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else f"({path} not written)"
