"""The plot stage and its figures, on small fake evaluation artifacts in the evaluation's format.

Fakes: metrics/transfer.json ({"judge", "peers", "val", "test"}, a told and a blind
block per split, one block per editor in each), eval/edits.npz
(edited_/judge_after_/nearest_real_<method>) and metrics/curves_<split>.csv;
synthetic-looking (with the oracle and ground truth) or real-looking (neither),
healthy or with chosen methods collapsed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from matplotlib.text import Text

from fclf.errors import DataError
from fclf.plotting.banner import MODE_COLLAPSE, CollapseSummary, banners_in
from fclf.plotting.bars import figure_transfer_bars
from fclf.plotting.combos import CategoryColours, combo_names, flip_names
from fclf.plotting.curves import figure_training_curves
from fclf.plotting.inputs import (
    CURVE_COLUMNS,
    check_same_run,
    edits_from_arrays,
    load_curves,
    method_blocks,
    read_training_curves,
    split_metrics,
)
from fclf.plotting.pca import fit_plane
from fclf.plotting.plot_data import (
    DIVERSITY_COLUMNS,
    PCA_COLUMNS,
    TRANSFER_COLUMNS,
    diversity_table,
    pca_table,
    transfer_table,
)
from fclf.plotting.sampling import sample_rows
from fclf.plotting.scatter import figure_pca_edited, find_piles
from fclf.plotting.style import method_label, save_png
from fclf.plotting.tradeoff import NO_TRUTH, figure_tradeoff_curves
from fclf.plotting.trajectories import figure_trajectories
from fclf.plotting.view import robust_limits

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "stages" / "plot.py"
NAMES = ("Smiling", "Young", "Male", "Eyeglasses", "Mustache")
BASELINES = ("mean_direction", "conditional_direction")
SYNTHETIC = ("oracle", "fclf", *BASELINES)
REAL = ("fclf", *BASELINES)
PNGS = ("pca_real.png", "pca_edited.png", "trajectories.png", "transfer_bars.png",
        "tradeoff_curves.png", "training_curves.png")
NUM_POINTS, NUM_TRAJ, N = 120, 8, 200
PARAMS = (f"plot:\n  num_points: {NUM_POINTS}\n  num_trajectories: {NUM_TRAJ}\n"
          "  dpi: 40\n  seed: 3\n")
STRENGTHS = np.round(np.linspace(0, 2, 11), 4)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _methods(real: bool) -> tuple[str, ...]:
    return REAL if real else SYNTHETIC


def fake_edits(n=N, d=16, collapsed=(), real=False, far=False, seed=0):
    """Healthy methods move each source a little; a collapsed one sends every edit to one of
    4 prototypes (`far`: 30x outside the unit sphere, as an unnormalised flow would)."""
    rng = np.random.default_rng(seed)
    k = len(NAMES)
    attrs = (rng.random((n, k)) < 0.4).astype(np.int8)
    sources = _unit(rng.normal(size=(n, d)) + 4 * np.eye(d)[0] + attrs @ rng.normal(size=(k, d)))
    targets = attrs.copy()
    targets[np.arange(n), rng.integers(0, k, n)] ^= 1
    arrays = {
        "source_indices": np.arange(n), "source_embeddings": sources,
        "source_attributes": attrs, "source_identities": np.arange(n) // 3,
        "targets": targets, "flipped": targets != attrs, "judge_before": attrs,
        "attribute_names": np.array(NAMES, dtype=str),
    }
    for m in _methods(real):
        if m in collapsed:
            prototypes = _unit(rng.normal(size=(4, d))) * (30.0 if far else 1.0)
            edited, nearest = prototypes[np.arange(n) % 4], np.arange(n) % 4
        else:
            edited, nearest = _unit(sources + 0.3 * rng.normal(size=(n, d))), np.arange(n)
        arrays[f"edited_{m}"] = edited.astype(np.float32)
        arrays[f"judge_after_{m}"] = targets
        arrays[f"nearest_real_{m}"] = nearest
    return arrays


def _block(i: int, collapsed: bool, real: bool) -> dict:
    per = {name: round(0.5 + 0.08 * j - 0.1 * i, 3) for j, name in enumerate(NAMES)}
    per["Mustache"] = None  # never flipped: undefined
    keep = dict.fromkeys(NAMES, 0.9)
    truth = dict.fromkeys(("counterfactual_cosine", "counterfactual_error",
                           "counterfactual_relative_error", "displacement_cosine"))
    if not real:
        truth = {"counterfactual_cosine": 0.9, "counterfactual_error": 0.2,
                 "counterfactual_relative_error": 0.5, "displacement_cosine": 0.6}
    return {
        "flip_success_linear": 0.7 - 0.1 * i, "preservation_linear": 0.9,
        "flip_success_linear_per_attribute": per, "preservation_linear_per_attribute": keep,
        "flip_success_mlp": 0.75 - 0.1 * i, "preservation_mlp": 0.88,
        "flip_success_mlp_per_attribute": per, "preservation_mlp_per_attribute": keep,
        **truth,
        "identity_cosine": 0.8, "identity_top1_target": 0.6, "identity_top1_source": 0.65,
        "identity_top1_source_unedited": 0.7, "off_manifold": 1.05, "overshoot_rate": 0.01,
        "realistic": True, "realism_reasons": [],
        "distinct_fraction": 0.02 if collapsed else 0.9, "neighbourhood_preservation": 0.7,
        "coverage": 0.1 if collapsed else 0.8, "density": 0.7, "silhouette_by_target": 0.0,
        "rank_ratio": 0.05 if collapsed else 0.8, "movement": 0.3, "mean_step": 0.03,
        "std_step": 0.01, "collapsed": collapsed,
        "collapse_reasons": ["distinct_fraction 0.020 < 0.5", "rank_ratio 0.050 < 0.25"]
        if collapsed else [],
        "noop": {"cosine": 1.0, "movement": 0.0, "movement_ratio": 0.0},
        "curve": {"pareto_area_linear": 0.5, "pareto_area_mlp": 0.5},
        "intervals": {"flip_success_linear": [0.6 - 0.1 * i, 0.8 - 0.1 * i],
                      "preservation_linear": [0.88, 0.92]},
    }


def fake_metrics(collapsed=(), real=False, n=N) -> dict:
    def mode() -> dict:
        methods = {m: _block(i, m in collapsed, real) for i, m in enumerate(_methods(real))}
        return {"num_samples": n, "transfer_mode": "single",
                "identity_top1_source_unedited": 0.7, "best_baseline": BASELINES[0],
                **methods,
                "fclf_seed1": {**_block(0, False, real), "collapsed": None},  # a light block
                "comparisons": {f"fclf_minus_{m}": {"flip_success_linear": {
                    "difference": 0.1, "low": 0.0, "high": 0.2}} for m in methods if m != "fclf"}}

    return {"judge": {"fitted_on": "judge split", "rows": 100},
            "peers": {m: {"alpha": 1.0} for m in BASELINES},
            "val": {"told": mode(), "blind": mode()}, "test": {"told": mode(), "blind": mode()}}


def fake_curves(real=False, collapsed=()) -> pd.DataFrame:
    rows = []
    for split in ("val", "test"):
        for i, m in enumerate(_methods(real)):
            for s in STRENGTHS:
                truth = np.nan if real else (1 - 0.1 * i) * (1 - 0.05 * (s - 1) ** 2)
                rows.append({
                    "split": split, "method": m, "strength": s, "movement": 0.1 * s * (1 + i),
                    "flip_success_linear": 0.1 + 0.3 * s / (1 + i),
                    "preservation_linear": 1 - 0.03 * s, "flip_success_mlp": 0.1 + 0.3 * s,
                    "preservation_mlp": 1 - 0.04 * s,
                    "overshoot_rate": np.nan if m in collapsed else 0.01 * s * s,
                    "counterfactual_cosine": truth,
                    "displacement_cosine": np.nan if real else (0.0 if s == 0 else 0.9 - 0.2 * i),
                })
    return pd.DataFrame(rows, columns=list(CURVE_COLUMNS))


def write_inputs(root: Path, collapsed=(), real=False, with_logs=True, seed=0):
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(PARAMS)
    (root / "metrics").mkdir()
    metrics = fake_metrics(collapsed, real)
    (root / "metrics" / "transfer.json").write_text(json.dumps(metrics))
    curves = fake_curves(real, collapsed)
    for split in ("val", "test"):
        curves[curves.split == split].to_csv(root / "metrics" / f"curves_{split}.csv",
                                             index=False, float_format="%.6g")
    (root / "eval").mkdir()
    np.savez_compressed(root / "eval" / "edits.npz",
                        **fake_edits(collapsed=collapsed, real=real, seed=seed))
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
                          env=env, capture_output=True, text=True, timeout=180)


def check_outputs(root: Path, methods: tuple[str, ...], n=N) -> dict[str, bytes]:
    for name in PNGS:
        png = root / "plots" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    data = root / "plots" / "data"
    transfer = pd.read_csv(data / "transfer_per_attribute.csv")
    assert tuple(transfer.columns) == TRANSFER_COLUMNS
    assert len(transfer) == (len(NAMES) + 1) * len(methods)
    assert set(transfer.attribute) == {"overall", *NAMES}
    assert set(transfer.method) == set(methods)
    assert transfer.flip_success_linear.isna().sum() == len(methods)  # Mustache: undefined
    diversity = pd.read_csv(data / "diversity.csv")
    assert tuple(diversity.columns) == DIVERSITY_COLUMNS
    assert list(diversity.method) == list(methods)
    pca = pd.read_csv(data / "pca_edited.csv")
    assert tuple(pca.columns) == PCA_COLUMNS
    assert len(pca) == min(NUM_POINTS, n) * len(methods) and set(pca.method) == set(methods)
    assert np.isfinite(pca[["pc1", "pc2"]].to_numpy()).all()
    assert not list(root.rglob("*.tmp")), "no temp files left behind"
    return {p.name: p.read_bytes() for p in sorted(data.glob("*.csv"))}


# ---------------------------------------------------------------- the stage, end to end


def test_stage_writes_every_figure_and_table_deterministically(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for root, logs in ((first, True), (second, False)):
        write_inputs(root, collapsed=("fclf",), with_logs=logs)
        done = run_stage(root)
        assert done.returncode == 0, done.stderr
        assert f"FCLF: {MODE_COLLAPSE}" in done.stderr
        assert "baseline" not in done.stderr  # only the collapsed method is named
    assert "no training logs" in done.stderr  # the second run: skipped, with a note
    # byte-identical tables from the same inputs and plot.seed
    assert check_outputs(first, SYNTHETIC) == check_outputs(second, SYNTHETIC)


def test_stage_on_real_data_layout(tmp_path):
    """No oracle, no ground truth (empty curve cells, null metrics): every figure still."""
    write_inputs(tmp_path, real=True)
    done = run_stage(tmp_path)
    assert done.returncode == 0, done.stderr
    assert MODE_COLLAPSE not in done.stderr
    check_outputs(tmp_path, REAL)


@pytest.mark.parametrize("case", ["no metrics", "old metrics", "no curves", "stale edits"])
def test_missing_or_stale_inputs_fail_readably(tmp_path, case):
    write_inputs(tmp_path)
    metrics = tmp_path / "metrics" / "transfer.json"
    expected = ["metrics/transfer.json", "evaluate-transfer"]
    if case == "no metrics":
        metrics.unlink()
    elif case == "old metrics":  # the format before told/blind: editor blocks under "test"
        metrics.write_text(json.dumps({"test": fake_metrics()["test"]["told"]}))
        expected.append("no 'test.told' block")
    elif case == "no curves":
        (tmp_path / "metrics" / "curves_test.csv").unlink()
        expected = ["metrics/curves_test.csv", "evaluate-transfer"]
    else:
        np.savez(tmp_path / "eval" / "edits.npz", **fake_edits(n=N + 5))
        expected += ["eval/edits.npz", "different evaluations"]
    done = run_stage(tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    for text in expected:
        assert text in done.stderr, (text, done.stderr)
    assert not (tmp_path / "plots").exists()


# ---------------------------------------------------------------- collapse banners


def _figures(collapsed=(), far=False, real=False) -> dict[str, Figure]:
    """Every per-method and shared figure the stage draws, built from fakes."""
    edits = edits_from_arrays(fake_edits(collapsed=collapsed, far=far, real=real))
    blocks = method_blocks(fake_metrics(collapsed, real)["test"]["told"])
    summaries = {m: CollapseSummary.from_block(m, b, edits.nearest_real[m])
                 for m, b in blocks.items()}
    plane = fit_plane(edits.sources)
    xy = plane.project(edits.sources)
    labels = combo_names(edits.targets, NAMES)
    rows = np.arange(6)
    curves = fake_curves(real, collapsed)
    return {
        "pca_edited": figure_pca_edited(
            xy, combo_names(edits.source_attributes, NAMES),
            {m: plane.project(edits.edited[m]) for m in blocks}, labels,
            CategoryColours.top(list(labels)), plane.axis_labels(), summaries),
        "trajectories": figure_trajectories(
            xy, xy[rows], {m: plane.project(edits.edited[m][rows]) for m in blocks},
            flip_names(edits.source_attributes[rows], edits.targets[rows], NAMES),
            plane.axis_labels(), summaries, edits.size),
        "transfer_bars": figure_transfer_bars(blocks, NAMES, summaries),
        "tradeoff_curves": figure_tradeoff_curves(curves[curves.split == "test"], summaries),
    }


def _axes_of(fig: Figure, method: str):
    (ax,) = [a for a in fig.axes if a.get_title().startswith(method_label(method) + ":")]
    return ax


def _texts(artist) -> list[str]:
    return [t.get_text() for t in artist.findobj(Text)]


@pytest.mark.parametrize("collapsed", [("mean_direction",), ("fclf",)])
def test_banners_only_on_the_panels_of_collapsed_methods(collapsed, tmp_path):
    (culprit,) = collapsed
    figures = _figures(collapsed)
    for name in ("pca_edited", "trajectories"):
        fig = figures[name]
        banners = banners_in(fig)
        assert set(banners) == {culprit}, name
        assert banners[culprit] == [_axes_of(fig, culprit)], name  # on its own panel only
        for method in SYNTHETIC:
            on_panel = " ".join(_texts(_axes_of(fig, method)))
            assert (MODE_COLLAPSE in on_panel) == (method == culprit), (name, method)
    for name, fig in figures.items():
        title = fig.get_suptitle()
        assert f"{MODE_COLLAPSE} flagged for: {method_label(culprit)}" in title, name
        others = [m for m in SYNTHETIC if m != culprit]
        assert not any(method_label(m) in title for m in others), name
    for name in ("transfer_bars", "tradeoff_curves"):  # shared panels: legend, no banner
        fig = figures[name]
        assert banners_in(fig) == {}, name
        (legend,) = fig.legends
        red = [t.get_text() for t in legend.get_texts() if MODE_COLLAPSE in t.get_text()]
        assert len(red) == 1 and red[0].startswith(method_label(culprit)), (name, red)
    save_png(figures["pca_edited"], tmp_path / "fig.png", dpi=30)  # save_png once, alone
    assert (tmp_path / "fig.png").stat().st_size > 0


def test_healthy_figures_carry_no_banner_and_claim_no_health():
    for name, fig in _figures().items():
        assert banners_in(fig) == {}, name
        assert MODE_COLLAPSE not in " ".join(_texts(fig)), name
        title = fig.get_suptitle()
        assert "no method flagged" in title and "healthy" not in title.lower(), name
        if name in ("pca_edited", "trajectories"):
            titles = " ".join(ax.get_title() for ax in fig.axes).lower()
            assert "healthy" not in titles and "not collapsed" not in titles


def test_far_away_collapsed_edits_do_not_shrink_the_real_cloud():
    edits = edits_from_arrays(fake_edits(collapsed=("fclf",), far=True))
    plane = fit_plane(edits.sources)
    real = plane.project(edits.sources)
    far = plane.project(edits.edited["fclf"])
    assert np.ptp(far, axis=0).max() > 10 * np.ptp(real, axis=0).max()
    limits = robust_limits(real, [far, plane.project(edits.edited["oracle"])])
    view = (limits[:, 1] - limits[:, 0]).max()
    assert view < 1.6 * np.ptp(real, axis=0).max()
    fig = _figures(collapsed=("fclf",), far=True)["pca_edited"]
    ax = _axes_of(fig, "fclf")
    assert np.diff(ax.get_xlim())[0] < 1.6 * np.ptp(real[:, 0])
    assert any("outside the view" in t for t in _texts(ax))
    assert len(find_piles(far, view)) == 4


# ---------------------------------------------------------------- trade-off curves


def test_tradeoff_curves_say_when_there_is_no_ground_truth():
    real = _figures(real=True)["tradeoff_curves"]
    panels = {ax.get_title().split(":")[0].split(" vs")[0]: ax for ax in real.axes}
    for truth in ("Displacement cosine", "Counterfactual cosine"):
        assert NO_TRUTH in _texts(panels[truth]) and not panels[truth].lines, truth
    for drawn in ("Flip success", "Overshoot rate"):
        assert NO_TRUTH not in _texts(panels[drawn])
        assert len(panels[drawn].lines) >= len(REAL), drawn

    synthetic = _figures()["tradeoff_curves"]
    for ax in synthetic.axes:
        assert NO_TRUTH not in _texts(ax)
        dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
        assert len(dashed) == 1 and dashed[0].get_color() == "black"  # the oracle
        stars = [c for c in ax.collections if len(c.get_offsets()) == 1]
        assert len(stars) == len(SYNTHETIC)  # s = 1 marked once per method


def test_curves_file_is_checked(tmp_path):
    path = tmp_path / "curves_test.csv"
    fake_curves(real=True).to_csv(path, index=False)
    table = load_curves(path, "test")
    assert set(table.split) == {"test"} and table.displacement_cosine.isna().all()
    assert table.strength.dtype == np.float64
    with pytest.raises(DataError, match="no rows of the 'judge' split"):
        load_curves(path, "judge")
    fake_curves().drop(columns="movement").to_csv(path, index=False)
    with pytest.raises(DataError, match="curves_test.csv: missing column.*movement"):
        load_curves(path)
    with pytest.raises(DataError, match="absent.csv: not found"):
        load_curves(tmp_path / "absent.csv")


# ---------------------------------------------------------------- small pieces


def test_names_tables_and_sampling():
    attrs = np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 0]])
    assert list(combo_names(attrs, NAMES)) == ["Smiling+Male", "none"]
    assert list(flip_names(attrs, np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0]]), NAMES)) == [
        "+Young, \u2212Male", "no flip"]
    colours = CategoryColours.top(["a", "b", "b", "c"], max_categories=2)
    assert colours.categories == ("b", "a") and colours.colour_of("c") == colours.other
    blocks = method_blocks(fake_metrics()["test"]["told"])
    assert list(blocks) == list(SYNTHETIC)  # 'comparisons', scalars, light blocks are left out
    assert list(transfer_table(blocks, NAMES).series[:2]) == ["overall | oracle", "overall | fclf"]
    assert diversity_table(blocks).shape == (len(SYNTHETIC), len(DIVERSITY_COLUMNS))
    pca = pca_table({"fclf": np.zeros((3, 2)), "oracle": np.ones((3, 2))}, ["a", "b", "c"])
    assert list(pca.method) == ["fclf"] * 3 + ["oracle"] * 3 and list(pca.target[:3]) == [
        "a", "b", "c"]
    assert np.array_equal(sample_rows(50, 10, 1, 1), sample_rows(50, 10, 1, 1))
    assert not np.array_equal(sample_rows(50, 10, 1, 1), sample_rows(50, 10, 2, 1))
    assert len(sample_rows(5, 10, 1, 1)) == 5


def test_pca_plane_is_sign_stable():
    x = np.random.default_rng(0).normal(size=(50, 6)) * np.arange(1, 7)
    a, b = fit_plane(x), fit_plane(-x)
    assert np.allclose(a.components, b.components)
    assert a.explained[0] >= a.explained[1] > 0


def test_bad_artifacts_metrics_and_logs(tmp_path):
    arrays = fake_edits()
    del arrays["nearest_real_fclf"]
    with pytest.raises(DataError, match="nearest_real_fclf"):
        edits_from_arrays(arrays, "edits.npz")
    arrays = fake_edits()
    del arrays["edited_fclf"], arrays["nearest_real_fclf"]
    with pytest.raises(DataError, match="edited_fclf"):
        edits_from_arrays(arrays)
    arrays = fake_edits()
    arrays["targets"] = arrays["targets"][:-1]
    with pytest.raises(DataError, match="targets has shape"):
        edits_from_arrays(arrays)
    metrics = fake_metrics()
    with pytest.raises(DataError, match="m.json: no 'test.told' block"):
        split_metrics({"judge": {}}, "test", "m.json")
    with pytest.raises(DataError, match="older evaluation"):
        split_metrics({"test": metrics["test"]["told"]}, "test", "m.json")  # no modes
    with pytest.raises(DataError, match="no 'fclf'"):
        method_blocks({"num_samples": 3})
    told = metrics["test"]["told"]
    broken = json.loads(json.dumps(told))
    del broken["mean_direction"]["flip_success_mlp"]
    with pytest.raises(DataError, match="mean_direction block lacks flip_success_mlp"):
        method_blocks(broken)
    edits = edits_from_arrays(fake_edits(real=True))
    with pytest.raises(DataError, match="no edits of oracle"):
        check_same_run(told, method_blocks(told), edits, "m", "e")
    curves, notes = read_training_curves(tmp_path / "absent")
    assert curves == {} and notes
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "loss.tsv").write_text("")
    (tmp_path / "lr.tsv").write_text("step\tlr\n1\t0.1\n")
    curves, notes = read_training_curves(tmp_path)
    assert list(curves) == ["lr"] and "loss.tsv" in notes[0]
    fig = figure_training_curves({}, ["no training logs at x"])
    assert "skipped" in fig.get_suptitle()


def test_the_divergence_panel_says_a_negative_estimate_is_expected():
    from fclf.plotting.inputs import Curve

    steps = np.arange(1, 4)
    curves = {"div": {"train": Curve(steps, np.array([0.3, -0.02, 0.1]))},
              "loss": {"train": Curve(steps, np.array([2.0, 1.5, 1.2]))}}
    fig = figure_training_curves(curves)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("can dip below 0" in t and "it does here" in t for t in texts)
    positive = figure_training_curves({"div": {"train": Curve(steps, np.array([0.3, 0.2, 0.1]))}})
    texts = [t.get_text() for ax in positive.axes for t in ax.texts]
    assert any("can dip below 0" in t and "it does here" not in t for t in texts)
