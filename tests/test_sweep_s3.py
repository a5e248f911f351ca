"""An s3:// DVC remote, for real, against a local S3-compatible server (moto's): a worker
pushes to it, a fresh clone's report pulls from it; a bad bucket, a bad endpoint and missing
credentials are each refused in one line before anything is queued.

Part of the `cluster` tier (`make test-cluster`): it needs the `cluster` extra (dvc-s3,
moto[server]).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from s3_server import free_port, s3_bucket
from sweep_project import FCLF, clone, leaderboard, make_shared_project, remote_experiments
from test_pipeline_dvc import Pipeline, pipeline_env

pytestmark = pytest.mark.cluster

BUCKET = "fclf-store"
ONE_POINT = "name: one\nparams:\n  loss.lambda_identity: [0.1]\n"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with s3_bucket(tmp_path_factory.mktemp("s3"), BUCKET) as server:
        yield server


@pytest.fixture(scope="module")
def shared(tmp_path_factory, s3) -> tuple[Path, dict[str, str]]:
    """A project whose default DVC remote is s3://fclf-store/dvc on the local server, pushed
    to a bare git remote; returns (bare remote, the workers' environment)."""
    tmp = tmp_path_factory.mktemp("s3-project")
    _, remote = make_shared_project(tmp, {"one.yaml": ONE_POINT}, f"s3://{BUCKET}/dvc",
                                    {"endpointurl": s3.endpoint})
    return remote, {**pipeline_env(tmp), **s3.env()}


def nothing_queued(worker: Pipeline) -> None:
    assert "No experiment tasks in the queue" in worker.dvc("queue", "status").stdout
    assert worker.git("for-each-ref", "refs/exps/") == ""


@pytest.mark.parametrize("case, message", [
    ("bad bucket", "error: DVC remote 'store' (s3://no-such-bucket/dvc) is unreachable: "
                   "bucket 'no-such-bucket' does not exist"),
    ("bad endpoint", "is unreachable: Could not connect to the endpoint URL"),
    ("no credentials", "error: DVC remote 'store' (s3://fclf-store/dvc) is unreachable: no "
                       "credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
], ids=["bad-bucket", "bad-endpoint", "no-credentials"])
def test_a_bad_s3_remote_is_refused_before_anything_is_queued(shared, tmp_path, case: str,
                                                             message: str) -> None:
    remote, env = shared
    worker = clone(remote, tmp_path / "worker", env)
    if case == "bad bucket":
        worker.dvc("remote", "modify", "--local", "store", "url", "s3://no-such-bucket/dvc")
    elif case == "bad endpoint":  # nothing listens there
        worker.dvc("remote", "modify", "--local", "store", "endpointurl",
                   f"http://127.0.0.1:{free_port()}")
    else:
        worker.env = {k: v for k, v in env.items() if not k.startswith("AWS_ACCESS_KEY_ID")
                      and not k.startswith("AWS_SECRET_ACCESS_KEY")}
    for command in (["work", "sweeps/one.yaml", "--push", "origin"],
                    ["report", "sweeps/one.yaml"]):  # the report pulls outputs from it
        done = worker.run(FCLF, "sweep", *command, check=False)
        assert done.returncode == 2, done.stdout + done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], done.stderr
        print(f"{case}, sweep {command[0]}: {lines[0]}")  # readable in the log (-rP)
    nothing_queued(worker)
    assert worker.git("status", "--porcelain") == ""


def test_push_to_s3_then_a_fresh_clone_reports_and_applies_from_it(shared, s3,
                                                                   tmp_path) -> None:
    remote, env = shared
    worker = clone(remote, tmp_path / "worker", env)
    done = worker.run(FCLF, "sweep", "work", "sweeps/one.yaml", "--push", "origin", "--poll",
                      "1")
    assert "1 grid points: 0 already done, 1 pushed to origin, 0 failed" in done.stdout, (
        done.stdout + done.stderr)
    assert list(remote_experiments(remote)) == ["one-li0.1"]
    stored = s3.objects(BUCKET)
    assert stored and all(key.startswith("dvc/") for key in stored), stored

    reporter = clone(remote, tmp_path / "reporter", env)
    report = reporter.run(FCLF, "sweep", "report", "sweeps/one.yaml")
    assert "pulled 1 experiments" in report.stderr, report.stderr
    rows = leaderboard(reporter.root / "sweeps" / "one")
    assert list(rows) == ["one-li0.1"] and rows["one-li0.1"]["status"] == "ok"
    assert float(rows["one-li0.1"]["val_counterfactual_relative_error"]) >= 0.0
    # The model came from the S3 remote, not from the worker: the reporter never ran it.
    reporter.dvc("exp", "apply", "one-li0.1")
    assert (reporter.root / "models" / "fclf.pt").stat().st_size > 0
