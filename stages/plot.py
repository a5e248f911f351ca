"""DVC stage `plot`: figures of the evaluation and the CSV data `dvc plots` compares.

Reads metrics/transfer.json, eval/edits.npz and the train stage's dvclive logs;
writes plots/*.png (PCA of real and edited points, trajectories, transfer bars,
training curves) and plots/data/*.csv. Every subsample is seeded by plot.seed.
"""

import sys
from pathlib import Path

import typer

from fclf.config import load_config
from fclf.errors import DataError, exit_on_user_error
from fclf.plotting.banner import CollapseSummary
from fclf.plotting.bars import figure_transfer_bars
from fclf.plotting.combos import CategoryColours, combo_names, flip_names
from fclf.plotting.curves import figure_training_curves
from fclf.plotting.inputs import load_edits, load_metrics, method_blocks, read_training_curves
from fclf.plotting.pca import fit_plane
from fclf.plotting.plot_data import diversity_table, pca_table, transfer_table, write_csv
from fclf.plotting.sampling import POINTS_STREAM, TRAJECTORIES_STREAM, sample_rows
from fclf.plotting.scatter import figure_pca_edited, figure_pca_real
from fclf.plotting.style import save_png
from fclf.plotting.trajectories import figure_trajectories
from layout import EDITS_PATH, PLOT_DATA_DIR, PLOTS_DIR, TRAIN_LIVE_DIR, TRANSFER_METRICS

TRAIN_CURVES_DIR = TRAIN_LIVE_DIR / "plots" / "metrics"  # where dvclive puts its TSVs

app = typer.Typer(add_completion=False, help=__doc__)


@app.command(help=__doc__)
@exit_on_user_error
def main(params: Path = typer.Option(Path("params.yaml"), help="validated params file")) -> None:
    pc = load_config(params).plot
    metrics = load_metrics(TRANSFER_METRICS)
    blocks = method_blocks(metrics, str(TRANSFER_METRICS))
    edits = load_edits(EDITS_PATH)
    names = edits.names
    for method, block in blocks.items():
        if set(block["flip_success_per_attribute"]) != set(names):
            raise DataError(
                f"{TRANSFER_METRICS} ({method}) and {EDITS_PATH} name different attributes; "
                "rerun the evaluate-transfer stage"
            )
    n = edits.size
    fclf = CollapseSummary.from_block("fclf", blocks["fclf"], edits.nearest_real_fclf)

    plane = fit_plane(edits.sources)
    axis_labels = plane.axis_labels()
    rows = sample_rows(n, pc.num_points, pc.seed, POINTS_STREAM)
    xy_real = plane.project(edits.sources[rows])
    xy_edited = plane.project(edits.edited_fclf[rows])
    real_labels = combo_names(edits.source_attributes[rows], names)
    target_labels = combo_names(edits.targets[rows], names)
    colours = CategoryColours.top(list(combo_names(edits.source_attributes, names)))

    figures = {
        "pca_real.png": lambda: figure_pca_real(xy_real, real_labels, colours, axis_labels, n),
        "pca_edited.png": lambda: figure_pca_edited(
            xy_real, real_labels, xy_edited, target_labels, colours, axis_labels, fclf
        ),
        "trajectories.png": lambda: _trajectories(edits, plane, xy_real, pc, fclf, axis_labels),
        "transfer_bars.png": lambda: figure_transfer_bars(blocks, names, fclf),
        "training_curves.png": lambda: _curves(),
    }
    for name, build in figures.items():
        save_png(build(), PLOTS_DIR / name, pc.dpi)

    write_csv(transfer_table(blocks, names), PLOT_DATA_DIR / "transfer_per_attribute.csv")
    write_csv(diversity_table(blocks), PLOT_DATA_DIR / "diversity.csv")
    write_csv(pca_table(xy_edited, target_labels, "fclf"), PLOT_DATA_DIR / "pca_edited.csv")

    print(f"plot: wrote {len(figures)} figures to {PLOTS_DIR}/ and 3 tables to {PLOT_DATA_DIR}/")
    if fclf.collapsed:
        print(f"plot: {fclf.headline()} ({'; '.join(fclf.reasons)})", file=sys.stderr)


def _trajectories(edits, plane, xy_background, pc, fclf, axis_labels):
    rows = sample_rows(edits.size, pc.num_trajectories, pc.seed, TRAJECTORIES_STREAM)
    paths = plane.project(edits.trajectories[:, rows])
    flips = flip_names(edits.source_attributes[rows], edits.targets[rows], edits.names)
    return figure_trajectories(xy_background, paths, flips, axis_labels, fclf, edits.size)


def _curves():
    curves, notes = read_training_curves(TRAIN_CURVES_DIR)
    for note in notes:
        print(f"plot: training curves: {note}", file=sys.stderr)
    return figure_training_curves(curves, notes)


if __name__ == "__main__":
    app()
