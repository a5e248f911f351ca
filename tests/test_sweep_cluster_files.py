"""The shipped cluster job files (sweeps/cluster/): the worker script's settings and shard
arithmetic, the Kubernetes Job's structure and schema, and the docs' Sweeps page pointing to them.

The Slurm array job itself runs for real in test_sweep_slurm.py (the `cluster` tier); the
Kubernetes Job is checked here only: it was never run on a Kubernetes cluster.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "sweeps" / "cluster"
WORKER = CLUSTER / "fclf-sweep-worker.sh"
MANIFEST = CLUSTER / "k8s-job.yaml"
SETTINGS = ("FCLF_REPO", "FCLF_COMMIT", "FCLF_SWEEP")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def job() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def container(manifest: dict) -> dict:
    (only,) = manifest["spec"]["template"]["spec"]["containers"]
    return only


def plain_env(manifest: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(manifest)["env"] if "value" in e}


def run_worker(env: dict[str, str], tmp_path: Path, args: list[str] | None = None
               ) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(args or ["bash", str(WORKER)], env={**base, **env}, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("missing", SETTINGS)
def test_the_worker_names_a_missing_setting(tmp_path: Path, missing: str) -> None:
    env = {name: "x" for name in SETTINGS if name != missing} | {"FCLF_SHARD": "1/2"}
    done = run_worker(env, tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == f"fclf-sweep-worker: set {missing} (see the top of this script)"


def test_the_worker_needs_a_shard_outside_slurm_and_kubernetes(tmp_path: Path) -> None:
    done = run_worker({name: "x" for name in SETTINGS}, tmp_path)
    assert done.returncode == 2 and "set FCLF_SHARD=I/N" in done.stderr
    done = run_worker({name: "x" for name in SETTINGS} | {"JOB_COMPLETION_INDEX": "0"},
                      tmp_path)
    assert done.returncode == 2 and "set FCLF_SHARDS to the Job's completions" in done.stderr


@pytest.mark.parametrize("scheduler, expected", [
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "16", "SLURM_ARRAY_JOB_ID": "77"},
     "shard 3/16"),
    ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "2", "FCLF_SHARDS": "16"},
     "shard 5/16"),  # re-running some shards alone: N comes from FCLF_SHARDS
    ({"JOB_COMPLETION_INDEX": "0", "FCLF_SHARDS": "16"}, "shard 1/16"),
    ({"JOB_COMPLETION_INDEX": "15", "FCLF_SHARDS": "16"}, "shard 16/16"),
    ({"FCLF_SHARD": "2/3", "SLURM_ARRAY_TASK_ID": "9"}, "shard 2/3"),
])
def test_the_worker_maps_array_task_or_pod_index_to_its_shard(tmp_path: Path, scheduler,
                                                              expected: str) -> None:
    """Up to the clone: the repository does not exist, so it stops there, having said which
    shard it works and where its clone goes."""
    env = {"FCLF_REPO": str(tmp_path / "no-such-repo.git"), "FCLF_COMMIT": "0123abc",
           "FCLF_SWEEP": "sweeps/identity.yaml", "FCLF_WORKDIR": str(tmp_path)} | scheduler
    done = run_worker(env, tmp_path)
    assert done.returncode != 0
    first = done.stdout.splitlines()[0]
    assert first.startswith(f"fclf-sweep-worker: {expected} of sweeps/identity.yaml at "
                            "0123abc on "), first
    index, count = expected.split()[1].split("/")
    assert f"/fclf-identity-{scheduler.get('SLURM_ARRAY_JOB_ID', '0')}-shard{index}of{count}," \
        in first
    assert "does not exist" in done.stderr or "not a git repository" in done.stderr


def test_the_kubernetes_job_runs_the_worker_script_as_an_indexed_job() -> None:
    manifest = job()
    spec, pod = manifest["spec"], manifest["spec"]["template"]["spec"]
    worker = container(manifest)
    env = plain_env(manifest)
    assert (manifest["apiVersion"], manifest["kind"]) == ("batch/v1", "Job")
    assert spec["completionMode"] == "Indexed"  # JOB_COMPLETION_INDEX picks the shard
    assert spec["completions"] == spec["parallelism"] == int(env["FCLF_SHARDS"])
    assert pod["restartPolicy"] == "Never" and spec["backoffLimitPerIndex"] >= 1
    assert set(SETTINGS) <= set(env)
    assert (REPO / env["FCLF_SWEEP"]).is_file()  # the example names a shipped sweep file
    # The command runs the shipped script from the ConfigMap the header tells how to make.
    mounts = {m["name"]: m["mountPath"] for m in worker["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    (script_volume,) = [name for name, v in volumes.items() if "configMap" in v]
    assert worker["command"] == ["bash", f"{mounts[script_volume]}/{WORKER.name}"]
    configmap = volumes[script_volume]["configMap"]["name"]
    assert (f"kubectl create configmap {configmap} --from-file=sweeps/cluster/{WORKER.name}"
            in MANIFEST.read_text())
    assert env["FCLF_WORKDIR"] in mounts.values()  # the clones go to the scratch volume


def test_the_sweeps_page_points_to_the_shipped_files_instead_of_inlining_them() -> None:
    section = (REPO / "docs" / "sweeps.md").read_text()
    for path in (WORKER, MANIFEST):
        assert str(path.relative_to(REPO)) in section
    assert not re.search(r"^\s*(#SBATCH|kind: Job)", section, re.MULTILINE)  # not inlined
    assert re.search(r"not (been )?run on a (real )?Kubernetes cluster", section)


@pytest.mark.cluster
def test_the_kubernetes_job_passes_the_schema_and_a_broken_one_does_not() -> None:
    validator = pytest.importorskip(
        "kubernetes_validate", reason="the schema check needs the cluster extra "
        "(pip install -e '.[cluster]'; `make test-cluster` installs it)")
    version = validator.latest_version()
    manifest = job()
    validator.validate(manifest, version, strict=True)  # raises when invalid
    broken = copy.deepcopy(manifest)
    broken["spec"]["completionMod"] = broken["spec"].pop("completionMode")  # a typo
    with pytest.raises(validator.ValidationError):
        validator.validate(broken, version, strict=True)
    wrong_type = copy.deepcopy(manifest)
    wrong_type["spec"]["completions"] = "sixteen"
    with pytest.raises(validator.ValidationError):
        validator.validate(wrong_type, version, strict=True)
    print(f"k8s-job.yaml: valid Kubernetes {version} batch/v1 Job (kubernetes-validate "
          "--strict); a typo and a wrong type are rejected")
