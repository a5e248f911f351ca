"""The plot stage and its figures, on small fake evaluation artifacts (healthy and collapsed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fclf.errors import DataError
from fclf.plotting.banner import CollapseSummary
from fclf.plotting.bars import figure_transfer_bars
from fclf.plotting.combos import CategoryColours, combo_names, flip_names
from fclf.plotting.curves import figure_training_curves
from fclf.plotting.inputs import edits_from_arrays, method_blocks, read_training_curves
from fclf.plotting.pca import fit_plane
from fclf.plotting.plot_data import (
    DIVERSITY_COLUMNS,
    PCA_COLUMNS,
    TRANSFER_COLUMNS,
    diversity_table,
    transfer_table,
)
from fclf.plotting.sampling import sample_rows
from fclf.plotting.scatter import figure_pca_edited, find_piles
from fclf.plotting.style import save_png
from fclf.plotting.trajectories import figure_trajectories

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "stages" / "plot.py"
NAMES = ("Smiling", "Young", "Male", "Eyeglasses", "Mustache")
METHODS = ("fclf", "baseline_mean_direction", "baseline_conditional_direction")
PNGS = ("pca_real.png", "pca_edited.png", "trajectories.png", "transfer_bars.png",
        "training_curves.png")
NUM_POINTS, NUM_TRAJ = 120, 8
PARAMS = (f"plot:\n  num_points: {NUM_POINTS}\n  num_trajectories: {NUM_TRAJ}\n"
          "  dpi: 40\n  seed: 3\n")


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def fake_edits(n=200, d=16, steps=4, collapsed=False, seed=0):
    rng = np.random.default_rng(seed)
    k = len(NAMES)
    attrs = (rng.random((n, k)) < 0.4).astype(np.int8)
    sources = _unit(rng.normal(size=(n, d)) + 4 * np.eye(d)[0] + attrs @ rng.normal(size=(k, d)))
    targets = attrs.copy()
    flip = rng.integers(0, k, n)
    targets[np.arange(n), flip] ^= 1
    if collapsed:  # every edit lands on one of a few prototypes
        prototypes = _unit(rng.normal(size=(4, d)))
        end = prototypes[np.arange(n) % 4]
        nearest = np.arange(n) % 4
    else:
        end = _unit(sources + 0.3 * rng.normal(size=(n, d)))
        nearest = np.arange(n)
    t = np.linspace(0, 1, steps + 1)[:, None, None]
    traj = _unit(((1 - t) * sources + t * end).reshape(-1, d)).reshape(steps + 1, n, d)
    traj[0] = sources
    arrays = {
        "source_indices": np.arange(n), "source_embeddings": sources,
        "source_attributes": attrs, "source_identities": np.arange(n) // 3,
        "targets": targets, "flipped": targets != attrs, "probe_before": attrs,
        "fclf_trajectories": traj.astype(np.float32),
        "attribute_names": np.array(NAMES, dtype=str),
    }
    for m in METHODS:
        arrays[f"edited_{m}"] = traj[-1] if m == "fclf" else sources
        arrays[f"probe_after_{m}"] = targets
        arrays[f"nearest_real_{m}"] = nearest if m == "fclf" else np.arange(n)
    return arrays


def fake_metrics(collapsed=False):
    def block(i, collapse):
        per = {name: round(0.5 + 0.08 * j - 0.1 * i, 3) for j, name in enumerate(NAMES)}
        per["Mustache"] = None  # never flipped: undefined
        return {
            "flip_success": 0.7 - 0.1 * i, "flip_success_per_attribute": per,
            "preservation": 0.9, "preservation_per_attribute": dict.fromkeys(NAMES, 0.9),
            "identity_cosine": 0.8, "distinct_fraction": 0.02 if collapse else 0.9,
            "rank_ratio": 0.05 if collapse else 0.8, "movement": 0.3, "collapsed": collapse,
            "collapse_reasons": ["distinct_fraction 0.020 < 0.5", "rank_ratio 0.050 < 0.25"]
            if collapse else [],
        }

    return {"split": "test", "num_samples": 200, "noop_cosine": 0.99,
            **{m: block(i, collapsed and m == "fclf") for i, m in enumerate(METHODS)}}


def write_inputs(root: Path, collapsed=False, with_logs=True, seed=0):
    (root / "params.yaml").write_text(PARAMS)
    (root / "metrics").mkdir()
    (root / "metrics" / "transfer.json").write_text(json.dumps(fake_metrics(collapsed)))
    (root / "eval").mkdir()
    np.savez_compressed(root / "eval" / "edits.npz", **fake_edits(collapsed=collapsed, seed=seed))
    if with_logs:
        logs = root / "dvclive" / "train" / "plots" / "metrics"
        for split in ("train", "val"):
            (logs / split).mkdir(parents=True)
            for name in ("loss", "contr", "curl", "div", "ident"):
                rows = "".join(f"{e}\t{1.0 / e + (split == 'val') * 0.1}\n" for e in range(1, 6))
                (logs / split / f"{name}.tsv").write_text(f"step\t{name}\n{rows}")
        (logs / "lr.tsv").write_text("step\tlr\n1\t1e-4\n2\t5e-5\n")


def run_stage(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, str(SCRIPT), "--params", "params.yaml"], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


def check_outputs(root: Path, n=200) -> dict[str, bytes]:
    for name in PNGS:
        png = root / "plots" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    data = root / "plots" / "data"
    transfer = pd.read_csv(data / "transfer_per_attribute.csv")
    assert tuple(transfer.columns) == TRANSFER_COLUMNS
    assert len(transfer) == (len(NAMES) + 1) * len(METHODS)
    assert set(transfer.attribute) == {"overall", *NAMES}
    assert set(transfer.method) == set(METHODS)
    assert transfer.flip_success.isna().sum() == len(METHODS)  # Mustache: undefined
    diversity = pd.read_csv(data / "diversity.csv")
    assert tuple(diversity.columns) == DIVERSITY_COLUMNS
    assert list(diversity.method) == list(METHODS)
    pca = pd.read_csv(data / "pca_edited.csv")
    assert tuple(pca.columns) == PCA_COLUMNS
    assert len(pca) == min(NUM_POINTS, n) and set(pca.method) == {"fclf"}
    assert np.isfinite(pca[["pc1", "pc2"]].to_numpy()).all()
    assert not list(root.rglob("*.tmp")), "no temp files left behind"
    return {p.name: p.read_bytes() for p in sorted(data.glob("*.csv"))}


def test_stage_writes_every_figure_and_table_deterministically(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for root, logs in ((first, True), (second, False)):
        root.mkdir()
        write_inputs(root, collapsed=True, with_logs=logs)
        done = run_stage(root)
        assert done.returncode == 0, done.stderr
        assert "COLLAPSED" in done.stderr
    assert "no training logs" in done.stderr  # the second run: skipped, with a note
    # byte-identical tables from the same inputs and plot.seed
    assert check_outputs(first) == check_outputs(second)


def test_missing_inputs_fail_readably(tmp_path):
    (tmp_path / "params.yaml").write_text(PARAMS)
    done = run_stage(tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "metrics/transfer.json" in done.stderr and "evaluate-transfer" in done.stderr
    assert not (tmp_path / "plots").exists()


def test_collapsed_figures_carry_the_banner(tmp_path):
    arrays = fake_edits(collapsed=True)
    edits = edits_from_arrays(arrays)
    blocks = method_blocks(fake_metrics(collapsed=True))
    summary = CollapseSummary.from_block("fclf", blocks["fclf"], edits.nearest_real_fclf)
    assert summary.collapsed and summary.num_distinct == 4 and summary.top10_share == 1.0
    plane = fit_plane(edits.sources)
    labels = combo_names(edits.targets, NAMES)
    colours = CategoryColours.top(list(labels))
    xy = plane.project(edits.sources)
    figs = [
        figure_pca_edited(xy, combo_names(edits.source_attributes, NAMES),
                          plane.project(edits.edited_fclf), labels, colours,
                          plane.axis_labels(), summary),
        figure_trajectories(xy, plane.project(edits.trajectories[:, :5]),
                            flip_names(edits.source_attributes[:5], edits.targets[:5], NAMES),
                            plane.axis_labels(), summary, edits.size),
        figure_transfer_bars(blocks, NAMES, summary),
    ]
    for i, fig in enumerate(figs):
        assert any(t.get_text() == "COLLAPSED" for t in fig.texts)
        assert "COLLAPSED" in fig.get_suptitle()
        if i == 0:  # the stage test saves every kind; here once, to check save_png alone
            save_png(fig, tmp_path / "fig.png", dpi=30)
            assert (tmp_path / "fig.png").stat().st_size > 0
        else:
            fig.clf()
    assert len(find_piles(plane.project(edits.edited_fclf), 2.0)) == 4


def test_healthy_figures_say_not_collapsed(tmp_path):
    edits = edits_from_arrays(fake_edits())
    blocks = method_blocks(fake_metrics())
    summary = CollapseSummary.from_block("fclf", blocks["fclf"], edits.nearest_real_fclf)
    plane = fit_plane(edits.sources)
    xy, xy_edited = plane.project(edits.sources), plane.project(edits.edited_fclf)
    assert find_piles(xy_edited, 2.0) == []
    labels = combo_names(edits.targets, NAMES)
    for fig in (
        figure_pca_edited(xy, combo_names(edits.source_attributes, NAMES), xy_edited, labels,
                          CategoryColours.top(list(labels)), plane.axis_labels(), summary),
        figure_transfer_bars(blocks, NAMES, summary),
    ):
        assert not any(t.get_text() == "COLLAPSED" for t in fig.texts)
        assert "not collapsed" in fig.get_suptitle()
        fig.clf()


def test_names_tables_and_sampling():
    attrs = np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 0]])
    assert list(combo_names(attrs, NAMES)) == ["Smiling+Male", "none"]
    assert list(flip_names(attrs, np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0]]), NAMES)) == [
        "+Young, \u2212Male", "no flip"]
    colours = CategoryColours.top(["a", "b", "b", "c"], max_categories=2)
    assert colours.categories == ("b", "a") and colours.colour_of("c") == colours.other
    blocks = method_blocks(fake_metrics())
    assert list(transfer_table(blocks, NAMES).series[:2]) == [
        "overall | fclf", "overall | baseline_mean_direction"]
    assert diversity_table(blocks).shape == (3, 5)
    assert np.array_equal(sample_rows(50, 10, 1, 1), sample_rows(50, 10, 1, 1))
    assert not np.array_equal(sample_rows(50, 10, 1, 1), sample_rows(50, 10, 2, 1))
    assert len(sample_rows(5, 10, 1, 1)) == 5


def test_pca_plane_is_sign_stable():
    x = np.random.default_rng(0).normal(size=(50, 6)) * np.arange(1, 7)
    a, b = fit_plane(x), fit_plane(-x)
    assert np.allclose(a.components, b.components)
    assert a.explained[0] >= a.explained[1] > 0


def test_bad_artifacts_and_logs(tmp_path):
    arrays = fake_edits()
    del arrays["fclf_trajectories"]
    with pytest.raises(DataError, match="fclf_trajectories"):
        edits_from_arrays(arrays, "edits.npz")
    arrays = fake_edits()
    arrays["targets"] = arrays["targets"][:-1]
    with pytest.raises(DataError, match="targets has shape"):
        edits_from_arrays(arrays)
    with pytest.raises(DataError, match="no 'fclf'"):
        method_blocks({"split": "test"})
    curves, notes = read_training_curves(tmp_path / "absent")
    assert curves == {} and notes
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "loss.tsv").write_text("")
    (tmp_path / "lr.tsv").write_text("step\tlr\n1\t0.1\n")
    curves, notes = read_training_curves(tmp_path)
    assert list(curves) == ["lr"] and "loss.tsv" in notes[0]
    fig = figure_training_curves({}, ["no training logs at x"])
    assert "skipped" in fig.get_suptitle()
