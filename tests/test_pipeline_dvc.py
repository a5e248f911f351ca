"""The whole DVC pipeline in a scratch git repository: repro, a no-op repro, an experiment.

The pipeline's files (dvc.yaml, params.yaml, stages/, the fclf/ sources dvc.yaml lists
as dependencies, .dvc/config, .dvcignore, .gitignore) are copied into a fresh git
repository with tiny sizes written into its params.yaml, and `dvc` runs there as a user
runs it: `python` in dvc.yaml is this interpreter (its bin folder leads PATH), the
fclf package is imported from this checkout.

The helpers here (`make_pipeline_repo`, `Pipeline`, `TINY_PARAMS`) are shared with
test_pipeline_celeba.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from fclf.cli.compare import compare
from fclf.config import LossConfig, load_config
from fclf.evaluate.headline import headline as make_headline
from fclf.evaluate.peers.store import PEERS
from fclf.evaluate.request import MODES
from fclf.train.objectives import get_objective

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STAGES = ("check-params", "embed", "fit-judge", "train-baselines", "clean-checkpoints", "train",
          "evaluate-transfer", "plot")
# (stage, a stage it needs): the order `dvc repro` must respect
NEEDS = (("embed", "check-params"), ("fit-judge", "embed"), ("train-baselines", "fit-judge"),
         ("train", "clean-checkpoints"), ("clean-checkpoints", "embed"),
         ("evaluate-transfer", "train"), ("evaluate-transfer", "train-baselines"),
         ("plot", "evaluate-transfer"))
FCLF_STAGES = ("clean-checkpoints", "train", "evaluate-transfer", "plot")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command"),
]

# Small enough that the five stages take seconds on a busy 2-core machine.
TINY_PARAMS: dict[str, Any] = {
    "data.synthetic.dim": 32,
    "data.synthetic.train_identities": 60,
    "data.synthetic.val_identities": 15,
    "data.synthetic.test_identities": 15,
    "data.synthetic.judge_identities": 30,
    "data.synthetic.images_per_identity": 4,
    "data.synthetic.attribute_context": 0.0,  # the contextual world needs >= 143 dims
    "data.synthetic.identity_groups": 4,
    "data.synthetic.nuisance_rank": 4,
    "data.synthetic.identity_rank": 16,
    "embed.device": "cpu",
    "model.hidden_dim": 32,
    "model.attribute_embed_dim": 8,
    "model.frozen_identity_rank": 4,  # the default 32 does not fit 32 dims
    "train.learning_rate": 0.001,
    "train.batch_size": 64,
    "train.epochs": 2,
    "train.replicates": 2,
    "train.device": "cpu",
    "loss.lambda_identity": 0.1,  # the experiment below changes it
    "eval.num_samples": None,
    "eval.bootstrap_resamples": 50,
    "eval.curve_samples": 30,
    "peers.alphas": [0.75, 1.0],
    "peers.probe_c": [0.01],
    "peers.code_line_shrinkage": [20.0],
    "peers.knn_k": [10],
    "peers.flow_rank": 8,
    "peers.flow_transforms": 1,
    "peers.flow_hidden": 16,
    "peers.flow_epochs": 1,
    "peers.reference_hidden": 16,
    "peers.reference_epochs": 1,
    "plot.num_points": 200,
    "plot.num_trajectories": 10,
    "plot.dpi": 40,
}

# What metrics/transfer.json promises its readers (the plot stage, `fclf gate`, README).
TRANSFER_KEYS = {"judge", "peers", "val", "test"}
EDITORS = ("oracle", "fclf", *PEERS, "reference")  # full blocks; fclf_seed<s> are light
MODE_KEYS = {"num_samples", "transfer_mode", "identity_top1_source_unedited", "best_baseline",
             "comparisons", "seeds", "fclf_seed1", *EDITORS}
LIGHT_KEYS = {
    "role", "flip_success_linear", "flip_success_linear_per_attribute", "preservation_linear",
    "preservation_linear_per_attribute", "flip_success_mlp", "preservation_mlp",
    "success_linear", "counterfactual_cosine", "counterfactual_relative_error",
    "displacement_cosine", "off_manifold", "overshoot_rate", "reach", "realistic",
    "realism_reasons", "movement", "mean_step", "std_step", "collapsed", "noop", "intervals",
}
METHOD_KEYS = LIGHT_KEYS | {
    "identity_cosine", "identity_top1_source", "identity_top1_source_unedited",
    "identity_top1_target", "identity_scored_fraction",  # the target gallery: full blocks
    "distinct_fraction", "neighbourhood_preservation", "coverage", "density", "rank_ratio",
    "silhouette_by_target", "collapse_reasons", "curve",
}
HEADLINE_KEYS = {split: {mode: set(block) for mode, block in modes.items()}
                 for split, modes in make_headline({}).items()}
TRAIN_COMPONENTS = set(get_objective(LossConfig().objective).COMPONENTS)  # the default family
FIGURES = ("pca_real", "pca_edited", "trajectories", "transfer_bars", "training_curves",
           "tradeoff_curves")
TABLES = ("transfer_per_attribute", "diversity", "pca_edited")
SUBPROCESS_TIMEOUT = 600


@dataclass
class Pipeline:
    """A scratch git + DVC repository holding a copy of the pipeline."""

    root: Path
    env: dict[str, str]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            args, cwd=self.root, env=self.env, capture_output=True, text=True,
            timeout=SUBPROCESS_TIMEOUT,
        )
        if check:
            assert done.returncode == 0, (
                f"{' '.join(args)} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(sys.executable, "-m", "dvc", *args, check=check)

    def git(self, *args: str) -> str:
        return self.run("git", *args).stdout

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "--no-verify", "-m", message)

    def json(self, relative: str) -> Any:
        return json.loads((self.root / relative).read_text())

    def set_params(self, values: dict[str, Any]) -> None:
        """Set dotted keys in params.yaml; each must already be there (no silent additions)."""
        path = self.root / "params.yaml"
        params = yaml.safe_load(path.read_text())
        for dotted, value in values.items():
            *parents, leaf = dotted.split(".")
            section = params
            for key in parents:
                section = section[key]
            assert leaf in section, f"params.yaml has no key {dotted!r}"
            section[leaf] = value
        path.write_text(yaml.safe_dump(params, sort_keys=False))
        load_config(path)  # a bad value fails here, before any stage runs


def pipeline_env(scratch: Path) -> dict[str, str]:
    """The environment of every git/dvc call: hermetic git, no telemetry, one thread."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "DVC_"))}
    env.update({
        "PATH": os.pathsep.join([str(BIN), env.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "DVC_NO_ANALYTICS": "1",
        "DVC_STUDIO_OFFLINE": "1",
        "DVC_SITE_CACHE_DIR": str(scratch / "dvc-site-cache"),  # not /var/tmp/dvc
        "DVCLIVE_OPEN": "false",
        "DO_NOT_TRACK": "1",
        "OMP_NUM_THREADS": "1",  # tiny models: more threads only add contention
        "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
    })
    return env


def make_pipeline_repo(root: Path, params: dict[str, Any]) -> Pipeline:
    """Copy the pipeline into a new git repository under `root`, set `params`, commit."""
    root.mkdir(parents=True)
    for name in ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore"):
        shutil.copy2(REPO / name, root / name)
    (root / ".dvc").mkdir()
    for name in ("config", ".gitignore"):
        if (REPO / ".dvc" / name).exists():
            shutil.copy2(REPO / ".dvc" / name, root / ".dvc" / name)
    (root / "stages").mkdir()
    for script in (REPO / "stages").glob("*.py"):
        shutil.copy2(script, root / "stages" / script.name)
    # dvc.yaml names fclf/*.py as dependencies; the stages import fclf from this checkout.
    shutil.copytree(REPO / "fclf", root / "fclf",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    pipeline = Pipeline(root, pipeline_env(root.parent))
    pipeline.set_params(params)
    pipeline.git("init", "-q")
    for key, value in [("user.name", "fclf tests"), ("user.email", "tests@fclf.invalid"),
                       ("commit.gpgsign", "false")]:
        pipeline.git("config", key, value)
    pipeline.commit("pipeline")
    return pipeline


def declared_paths() -> tuple[list[str], list[str]]:
    """(every out/metric/plot path of the stages, every file the top-level plots read)."""
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())
    outs = []
    for stage in spec["stages"].values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                outs.extend([entry] if isinstance(entry, str) else list(entry))
    plot_files = []
    for entry in spec.get("plots", []):
        if isinstance(entry, str):
            plot_files.append(entry)
            continue
        (definition,) = entry.values()
        y = definition.get("y", {})
        plot_files.extend(y if isinstance(y, dict) else [])
    return outs, plot_files


def plot_ids() -> set[str]:
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())
    return {e if isinstance(e, str) else next(iter(e)) for e in spec.get("plots", [])}


def check_transfer_metrics(
    metrics: dict, attributes: list[str], lists: bool = True, synthetic: bool = True
) -> None:
    """`lists=False` for metrics read back through DVC, which leaves list values out;
    `synthetic=False` for real data: no oracle, ground-truth metrics null."""
    assert set(metrics) >= TRANSFER_KEYS, sorted(TRANSFER_KEYS - set(metrics))
    assert set(metrics["judge"]["linear"]["attributes"]) == set(attributes)
    assert set(metrics["peers"]) == set(PEERS)
    editors = [e for e in EDITORS if synthetic or e not in ("oracle", "reference")]
    for split in ("val", "test"):
        for mode in MODES:
            block = metrics[split][mode]
            wanted = MODE_KEYS if synthetic else MODE_KEYS - {"oracle", "reference"}
            assert set(block) >= wanted, (split, mode, sorted(wanted - set(block)))
            assert synthetic or not {"oracle", "reference"} & set(block)
            assert block["best_baseline"] in PEERS
            if not lists:  # DVC flattens nested dicts and drops lists
                continue
            for method in [*editors, "fclf_seed1"]:
                full = mode == "told" and method != "fclf_seed1"
                expected = METHOD_KEYS if full or method == "oracle" else LIGHT_KEYS
                got = block[method]
                assert expected <= set(got), (split, mode, method, sorted(expected - set(got)))
                assert set(got["flip_success_linear_per_attribute"]) == set(attributes)
                for key in ("flip_success_linear", "preservation_linear"):
                    assert 0.0 <= got[key] <= 1.0, (method, key, got[key])
                assert isinstance(got["realistic"], bool)
                assert isinstance(got["collapsed"], bool) == (full or method == "oracle")
                if not synthetic:  # never faked on real data
                    assert got["counterfactual_relative_error"] is None


def check_headline(headline: dict, synthetic: bool = True) -> None:
    """metrics/headline.json: the stage's DVC metric, numbers at 4 decimals."""
    assert {split: {mode: set(block) for mode, block in modes.items()}
            for split, modes in headline.items()} == HEADLINE_KEYS
    for modes in headline.values():
        for block in modes.values():
            for value in block.values():
                assert value is None or isinstance(value, bool) or round(value, 4) == value
    assert isinstance(headline["test"]["told"]["collapsed"], bool)
    errors = (headline["test"]["told"]["counterfactual_relative_error"],
              headline["test"]["blind"]["counterfactual_relative_error"],
              headline["val"]["told"]["counterfactual_relative_error"])
    assert all((e is not None) == synthetic for e in errors), errors


def check_outputs(root: Path, attributes: list[str], epochs: int, synthetic: bool = True) -> None:
    """Every file the pipeline promises, with the structure its readers rely on."""
    outs, plot_files = declared_paths()
    missing = [p for p in [*outs, *plot_files] if not (root / p).exists()]
    assert not missing, f"declared in dvc.yaml but not written: {missing}"

    for split in ("train", "val", "test", "judge"):
        assert (root / "data" / "embeddings" / f"{split}.parquet").stat().st_size > 0
    assert (root / "data" / "embeddings" / "truth.npz").exists() == synthetic
    assert (root / "models" / "fclf.pt").stat().st_size > 0
    assert (root / "models" / "replicates" / "fclf_seed1.pt").stat().st_size > 0
    assert (root / "models" / "judge.pt").stat().st_size > 0
    assert (root / "models" / "peers.pt").stat().st_size > 0
    assert "fingerprint" in json.loads((root / "checkpoints" / "run.json").read_text())

    train = json.loads((root / "metrics" / "train.json").read_text())
    assert train["epochs"] == epochs and train["device"] == "cpu"
    assert set(train["train"]) == set(train["val"]) == TRAIN_COMPONENTS
    assert all(np.isfinite(v) for v in train["train"].values())
    assert all(round(v, 6) == v for v in train["train"].values())
    # Timings are a run log, not a metric: they would make every metrics diff noisy.
    assert not {"wall_seconds", "samples_per_s"} & set(train)
    timing = json.loads((root / "logs" / "train_timing.json").read_text())
    assert timing["wall_seconds"] > 0 and timing["samples_per_s"] > 0

    transfer = json.loads((root / "metrics" / "transfer.json").read_text())
    check_transfer_metrics(transfer, attributes, synthetic=synthetic)
    headline = json.loads((root / "metrics" / "headline.json").read_text())
    check_headline(headline, synthetic=synthetic)

    peers = json.loads((root / "metrics" / "peers.json").read_text())
    assert set(peers["peers"]) == set(PEERS)
    # the peers' timings are a run log too (they changed models/peers.pt's hash every run)
    assert "seconds" not in peers and not any("seconds" in p for p in peers["peers"].values())
    peer_timing = json.loads((root / "logs" / "peers_timing.json").read_text())
    assert set(peer_timing["peers"]) == set(PEERS) and peer_timing["seconds"] > 0
    assert (peers["reference"] is not None) == synthetic
    with np.load(root / "eval" / "edits.npz") as edits:
        n = transfer["test"]["told"]["num_samples"]
        assert list(edits["attribute_names"]) == attributes
        for method in EDITORS if synthetic else EDITORS[1:-1]:
            assert edits[f"edited_{method}"].shape[0] == n
    for split in ("val", "test"):
        for mode in MODES:
            with np.load(root / "eval" / f"protocol_{split}_{mode}.npz") as protocol:
                assert (str(protocol["split"]), str(protocol["mode"])) == (split, mode)
                assert len(protocol["source_rows"]) == transfer[split][mode]["num_samples"]
                assert ("source_attributes" in protocol) == (mode == "told")
        header = (root / "metrics" / f"curves_{split}.csv").read_text().splitlines()[0]
        assert header.startswith("split,method,strength,movement")

    for figure in FIGURES:
        assert (root / "plots" / f"{figure}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for table in TABLES:
        lines = (root / "plots" / "data" / f"{table}.csv").read_text().splitlines()
        assert len(lines) >= 2, f"{table}.csv has no rows"

    curves = root / "dvclive" / "train" / "plots" / "metrics"
    for split in ("train", "val"):
        rows = (curves / split / "loss.tsv").read_text().splitlines()
        assert rows[0].split("\t") == ["step", "loss"] and len(rows) == 1 + epochs


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pipeline, str]:
    """A scratch repository after one `dvc repro`, and what that repro printed."""
    pipeline = make_pipeline_repo(tmp_path_factory.mktemp("dvc") / "repo", TINY_PARAMS)
    done = pipeline.dvc("repro")
    return pipeline, done.stdout + done.stderr


def test_repro_runs_every_stage_and_writes_every_output(reproduced) -> None:
    pipeline, output = reproduced
    position = {stage: output.find(f"Running stage '{stage}'") for stage in STAGES}
    assert all(p >= 0 for p in position.values()), output
    assert all(position[later] > position[first] for later, first in NEEDS), position
    attributes = load_config(pipeline.root / "params.yaml").data.attributes
    check_outputs(pipeline.root, attributes, epochs=TINY_PARAMS["train.epochs"])

    # The pipeline writes nowhere but its declared, git-ignored or committed places.
    untracked = pipeline.git("status", "--porcelain", "--untracked-files=all").splitlines()
    stray = [line for line in untracked
             if not line[3:].startswith(("metrics/", "plots/", "dvclive/", "dvc.lock", "checks/",
                                         "logs/"))]
    assert not stray, stray


def test_second_repro_runs_nothing(reproduced) -> None:
    pipeline, _ = reproduced
    done = pipeline.dvc("repro")
    output = done.stdout + done.stderr
    assert "Running stage" not in output, output
    assert "Data and pipelines are up to date" in output, output
    assert json.loads(pipeline.dvc("status", "--json").stdout) == {}


def test_params_typo_stops_before_any_output_is_deleted(reproduced) -> None:
    """A typo in data.* (an embed param) used to make DVC delete the embeddings before the
    embed stage refused the params; the check-params stage refuses it first."""
    pipeline, _ = reproduced
    params = pipeline.root / "params.yaml"
    good = params.read_text()
    kept = [pipeline.root / "data" / "embeddings" / "train.parquet",
            pipeline.root / "models" / "fclf.pt", pipeline.root / "metrics" / "headline.json"]
    stamps = [path.stat().st_mtime_ns for path in kept]
    attributes = load_config(params).data.attributes
    params.write_text(good.replace(attributes[-1], attributes[-1][:-1], 1))  # data.attributes
    assert params.read_text() != good
    try:
        done = pipeline.dvc("repro", check=False)
        output = done.stdout + done.stderr
        assert done.returncode != 0, output
        assert f"unknown name '{attributes[-1][:-1]}'" in output, output
        assert "params.yaml:" in output, output
        for stage in STAGES[1:]:
            assert f"Running stage '{stage}'" not in output, output
        assert [path.stat().st_mtime_ns for path in kept] == stamps
    finally:
        params.write_text(good)
    # With the typo fixed, only the check itself runs again; nothing downstream.
    done = pipeline.dvc("repro")
    output = done.stdout + done.stderr
    assert "Running stage 'check-params'" in output, output
    for stage in STAGES[1:]:
        assert f"Running stage '{stage}'" not in output, output
    assert json.loads(pipeline.dvc("status", "--json").stdout) == {}


@pytest.mark.xfail(
    "__pycache__" not in (REPO / ".dvcignore").read_text(),
    reason="the wings of fclf/ are directory deps: without __pycache__/ in "
    ".dvcignore, bytecode Python writes there changes their hashes and reruns stages",
    strict=True,
)
def test_bytecode_in_directory_deps_does_not_rerun_stages(reproduced) -> None:
    pipeline, _ = reproduced
    made = []
    try:
        for package in ("data", "model", "train", "evaluate", "plotting"):
            cache = pipeline.root / "fclf" / package / "__pycache__"
            cache.mkdir()
            made.append(cache)
            (cache / "__init__.cpython-311.pyc").write_bytes(b"\x00" * 16)
        assert json.loads(pipeline.dvc("status", "--json").stdout) == {}
    finally:
        for cache in made:
            shutil.rmtree(cache)


def test_experiment_with_another_lambda_identity(reproduced, tmp_path: Path) -> None:
    pipeline, _ = reproduced
    pipeline.commit("tiny run")
    done = pipeline.dvc("exp", "run", "-n", "lambda-id", "-S", "loss.lambda_identity=0.5")
    output = done.stdout + done.stderr
    # loss.* is not an embed param; it is part of the run definition, so old checkpoints go.
    # The judge and the peers do not depend on FCLF: the experiment reuses them.
    for stage in ("embed", "fit-judge", "train-baselines"):
        assert f"Stage '{stage}' didn't change, skipping" in output, output
    for stage in FCLF_STAGES:
        assert f"Running stage '{stage}'" in output, output
    assert "clean-checkpoints: checkpoints/ removed" in output, output

    table = json.loads(pipeline.dvc("exp", "show", "--json").stdout)
    (baseline,) = [row for row in table if row["rev"] != "workspace"]
    runs = [rev for exp in baseline.get("experiments") or [] for rev in exp["revs"]]
    (run,) = [rev for rev in runs if rev["name"] == "lambda-id"]
    assert run.get("error") is None

    def lambda_identity(row: dict) -> float:
        return row["data"]["params"]["params.yaml"]["data"]["loss"]["lambda_identity"]

    assert (lambda_identity(baseline), lambda_identity(run)) == (0.1, 0.5)
    attributes = load_config(pipeline.root / "params.yaml").data.attributes
    # The metrics are the headline (and train.json); the full transfer.json is a plain out.
    assert set(run["data"]["metrics"]) == {"metrics/train.json", "metrics/headline.json",
                                           "metrics/peers.json"}
    metrics = {path: shown["data"] for path, shown in run["data"]["metrics"].items()}
    check_headline(metrics["metrics/headline.json"])
    assert metrics["metrics/train.json"]["epochs"] == TINY_PARAMS["train.epochs"]
    check_transfer_metrics(pipeline.json("metrics/transfer.json"), attributes)
    table = compare(payload=table)  # `fclf compare` on this very payload
    assert "lambda-id" in table and all(len(line) <= 100 for line in table.splitlines())

    shown = json.loads(pipeline.dvc("metrics", "show", "--json").stdout)[""]["data"]
    assert set(shown) == {"metrics/train.json", "metrics/headline.json", "metrics/peers.json"}
    assert "error" not in shown["metrics/headline.json"]
    diff = json.loads(pipeline.dvc("metrics", "diff", "HEAD", "lambda-id", "--json").stdout)
    assert set(diff) <= {"metrics/train.json", "metrics/headline.json"}  # peers: unchanged

    # -o keeps the rendered images out of the repository (dvc_plots/ is not git-ignored).
    shown = json.loads(
        pipeline.dvc("plots", "show", "--json", "-o", str(tmp_path / "show")).stdout
    )
    assert not shown.get("errors"), shown.get("errors")
    assert plot_ids() <= set(shown["data"])
    diff = json.loads(pipeline.dvc(
        "plots", "diff", "HEAD", "lambda-id", "--json", "-o", str(tmp_path / "diff")
    ).stdout)
    assert not diff.get("errors"), diff.get("errors")
    assert plot_ids() <= set(diff["data"])
    for plot_id in plot_ids():
        revisions = {r for rendered in diff["data"][plot_id] for r in rendered["revisions"]}
        assert revisions == {"HEAD", "lambda-id"}, (plot_id, revisions)


def test_misspelled_param_key_is_named(tmp_path: Path) -> None:
    pipeline = make_pipeline_repo(tmp_path / "repo", TINY_PARAMS)
    before = (pipeline.root / "params.yaml").read_text()

    # DVC itself refuses to override a key params.yaml does not have.
    done = pipeline.dvc("exp", "run", "-S", "loss.lamda_identity=0.3", check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "lamda_identity" in output, output
    assert "Running stage" not in output, output
    assert (pipeline.root / "params.yaml").read_text() == before

    # Forced in with +key, the first stage's params validation names the key and its line.
    done = pipeline.dvc("exp", "run", "-S", "+loss.lamda_identity=0.3", check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "unknown key 'loss.lamda_identity'" in output, output
    assert "did you mean 'lambda_identity'?" in output, output
    assert "params.yaml:" in output, output
    assert "Running stage 'check-params'" in output, output
    for stage in STAGES[1:]:
        assert f"Running stage '{stage}'" not in output, output
    assert not (pipeline.root / "models" / "fclf.pt").exists()
