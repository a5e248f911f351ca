"""DVC stage `plot`: figures of the evaluation (test split) and the CSV data `dvc plots` compares.

Reads the test split (told mode) of metrics/transfer.json, eval/edits.npz (the test edits
of every method), metrics/curves_test.csv and the train stage's dvclive logs;
writes plots/*.png (PCA of real points and of each method's edits, source ->
edit segments, transfer bars, trade-off curves, training curves) and
plots/data/*.csv. Every subsample is seeded by plot.seed. A method the
evaluation flagged as collapsed gets a red banner on its own panels only.
"""

import sys
from pathlib import Path

import typer

from fclf.config import load_config
from fclf.errors import exit_on_user_error
from fclf.plotting.banner import CollapseSummary
from fclf.plotting.bars import figure_transfer_bars
from fclf.plotting.combos import CategoryColours, combo_names, flip_names
from fclf.plotting.curves import figure_training_curves
from fclf.plotting.inputs import (
    check_same_run,
    load_curves,
    load_edits,
    load_metrics,
    read_training_curves,
)
from fclf.plotting.pca import fit_plane
from fclf.plotting.plot_data import diversity_table, pca_table, transfer_table, write_csv
from fclf.plotting.sampling import POINTS_STREAM, TRAJECTORIES_STREAM, sample_rows
from fclf.plotting.scatter import figure_pca_edited, figure_pca_real
from fclf.plotting.style import save_png
from fclf.plotting.tradeoff import figure_tradeoff_curves
from fclf.plotting.trajectories import figure_trajectories
from layout import (
    EDITS_PATH,
    PLOT_DATA_DIR,
    PLOTS_DIR,
    TRAIN_LIVE_DIR,
    TRANSFER_METRICS,
    curves_path,
)

SPLIT = "test"  # what the README and the gate report; eval/edits.npz holds its edits
TRAIN_CURVES_DIR = TRAIN_LIVE_DIR / "plots" / "metrics"  # where dvclive puts its TSVs

app = typer.Typer(add_completion=False, help=__doc__)


@app.command(help=__doc__)
@exit_on_user_error
def main(params: Path = typer.Option(Path("params.yaml"), help="validated params file")) -> None:
    pc = load_config(params).plot
    split_block, blocks = load_metrics(TRANSFER_METRICS, SPLIT)
    edits = load_edits(EDITS_PATH)
    check_same_run(split_block, blocks, edits, str(TRANSFER_METRICS), str(EDITS_PATH))
    curves = load_curves(curves_path(SPLIT), SPLIT)
    names, n = edits.names, edits.size
    summaries = {m: CollapseSummary.from_block(m, b, edits.nearest_real[m])
                 for m, b in blocks.items()}

    plane = fit_plane(edits.sources)
    axis_labels = plane.axis_labels()
    rows = sample_rows(n, pc.num_points, pc.seed, POINTS_STREAM)
    xy_real = plane.project(edits.sources[rows])
    xy_edited = {m: plane.project(edits.edited[m][rows]) for m in blocks}
    real_labels = combo_names(edits.source_attributes[rows], names)
    target_labels = combo_names(edits.targets[rows], names)
    colours = CategoryColours.top(list(combo_names(edits.source_attributes, names)))

    figures = {
        "pca_real.png": lambda: figure_pca_real(xy_real, real_labels, colours, axis_labels, n),
        "pca_edited.png": lambda: figure_pca_edited(
            xy_real, real_labels, xy_edited, target_labels, colours, axis_labels, summaries
        ),
        "trajectories.png": lambda: _segments(edits, plane, xy_real, pc, summaries, blocks),
        "transfer_bars.png": lambda: figure_transfer_bars(blocks, names, summaries),
        "tradeoff_curves.png": lambda: figure_tradeoff_curves(curves, summaries, SPLIT),
        "training_curves.png": lambda: _training_curves(),
    }
    for name, build in figures.items():
        save_png(build(), PLOTS_DIR / name, pc.dpi)

    write_csv(transfer_table(blocks, names), PLOT_DATA_DIR / "transfer_per_attribute.csv")
    write_csv(diversity_table(blocks), PLOT_DATA_DIR / "diversity.csv")
    write_csv(pca_table(xy_edited, target_labels), PLOT_DATA_DIR / "pca_edited.csv")

    print(f"plot: wrote {len(figures)} figures to {PLOTS_DIR}/ and 3 tables to {PLOT_DATA_DIR}/")
    for summary in summaries.values():
        if summary.collapsed:
            print(f"plot: {summary.headline()}", file=sys.stderr)


def _segments(edits, plane, xy_background, pc, summaries, blocks):
    rows = sample_rows(edits.size, pc.num_trajectories, pc.seed, TRAJECTORIES_STREAM)
    starts = plane.project(edits.sources[rows])
    ends = {m: plane.project(edits.edited[m][rows]) for m in blocks}
    flips = flip_names(edits.source_attributes[rows], edits.targets[rows], edits.names)
    return figure_trajectories(xy_background, starts, ends, flips, plane.axis_labels(),
                               summaries, edits.size)


def _training_curves():
    curves, notes = read_training_curves(TRAIN_CURVES_DIR)
    for note in notes:
        print(f"plot: training curves: {note}", file=sys.stderr)
    return figure_training_curves(curves, notes)


if __name__ == "__main__":
    app()
