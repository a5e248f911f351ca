"""DVC stage `evaluate-transfer`: score edits of val and test on a yardstick that cannot be fooled.

FCLF, two straight-line baselines and (synthetic data) the oracle, i.e. each
face's exact counterfactual, are scored by a judge fitted on the judge split
only. Val is what sweeps select on; test is what the README and the gate report.
Writes metrics/transfer.json (every float rounded to 6 significant digits, so a
re-run on another CPU does not dirty git with last-bit drift), its ~ten-key
summary metrics/headline.json (the stage's DVC metric: fclf.evaluate.headline),
trade-off curves (metrics/curves_<split>.csv),
the protocol files `fclf score` reads (eval/protocol_<split>.npz) and the test
edits the plot stage draws (eval/edits.npz). Prints a loud warning on collapse.
"""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import typer

from fclf.atomic import atomic_path, write_json, write_text
from fclf.config import load_config
from fclf.data.embeddings_io import read_split
from fclf.data.truth import read_truth
from fclf.devices import resolve_device
from fclf.errors import exit_on_user_error
from fclf.evaluate.headline import headline, round_floats
from fclf.evaluate.protocol import ProtocolSettings, evaluate_transfer
from fclf.evaluate.report import curves_csv, summary_lines
from fclf.model.model_io import edit_function, load_model, recorded_flow
from layout import (
    EDITS_PATH,
    HEADLINE_METRICS,
    JUDGE_SPLIT,
    MODEL_PATH,
    TRANSFER_METRICS,
    TRUTH_PATH,
    curves_path,
    protocol_path,
    split_path,
)

app = typer.Typer(add_completion=False, help=__doc__)
EVALUATED = ("val", "test")


def warn_collapse(metrics: dict) -> None:
    for split in EVALUATED:
        for method, block in metrics[split].items():
            if isinstance(block, dict) and block.get("collapsed"):
                reasons = "; ".join(block["collapse_reasons"])
                bar = "!" * 78
                print(f"\n{bar}\n!! MODE COLLAPSE ({split}): {method}: {reasons}\n{bar}\n",
                      file=sys.stderr)


@app.command(help=__doc__)
@exit_on_user_error
def main(params: Path = typer.Option(Path("params.yaml"), help="validated params file")) -> None:
    config = load_config(params)
    names = config.data.attributes
    train = read_split(split_path("train"), names)
    judge_split = read_split(split_path(JUDGE_SPLIT), names)
    evaluated = {s: read_split(split_path(s), names) for s in EVALUATED}
    truths = {}
    if TRUTH_PATH.exists():
        truth = read_truth(TRUTH_PATH, names)
        for s, split in evaluated.items():
            truth.check_split(s, split, split_path(s))
            truths[s] = (lambda name: lambda rows, targets: truth.counterfactual(
                name, rows, targets))(s)
    field, model_config, record = load_model(MODEL_PATH)
    horizon = recorded_flow(record)  # what training optimised (= params `flow`, a train dep)
    device = resolve_device(config.train.device, "train.device")

    def make_edit(num_steps: int):
        return edit_function(field, model_config, num_steps, horizon.step_size, device,
                             integrator=horizon.integrator)

    settings = ProtocolSettings(**dataclasses.asdict(config.eval), num_steps=horizon.num_steps,
                                step_size=horizon.step_size)
    result = evaluate_transfer(make_edit, train, judge_split, evaluated, truths=truths,
                               settings=settings)
    metrics = round_floats(result.metrics)
    write_json(TRANSFER_METRICS, metrics)
    write_json(HEADLINE_METRICS, headline(metrics))
    for s, split_result in result.splits.items():
        write_text(curves_path(s), curves_csv(split_result.curves))
        with atomic_path(protocol_path(s)) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **split_result.protocol)
    with atomic_path(EDITS_PATH) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **result.splits["test"].artifacts)
    for line in summary_lines(result.metrics["test"]):
        print(line)
    print(f"wrote {TRANSFER_METRICS}, {HEADLINE_METRICS}, {curves_path('test')}, "
          f"{protocol_path('test')}, {EDITS_PATH}")
    warn_collapse(result.metrics)


if __name__ == "__main__":
    app()
