"""DVC stage `evaluate-transfer`: score attribute edits with frozen probes.

Flows each evaluated point toward flipped target attributes, reads the result
with logistic probes trained on real train embeddings, and compares FCLF with
two linear baselines moved equally far. Writes metrics/transfer.json and the
edits the plot stage draws (eval/edits.npz). Prints a loud warning on collapse.
"""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import typer

from fclf.atomic import atomic_path, write_json
from fclf.config import load_config
from fclf.data.embeddings_io import read_split
from fclf.devices import resolve_device
from fclf.errors import exit_on_user_error
from fclf.evaluate.protocol import METHODS, evaluate_transfer
from fclf.model.model_io import edit_function, load_model
from layout import EDITS_PATH, MODEL_PATH, TRANSFER_METRICS, split_path

app = typer.Typer(add_completion=False, help=__doc__)


def warn_collapse(metrics: dict) -> None:
    for method in METHODS:
        block = metrics[method]
        if block["collapsed"]:
            reasons = "; ".join(block["collapse_reasons"])
            bar = "!" * 78
            print(f"\n{bar}\n!! MODE COLLAPSE: {method}: {reasons}\n{bar}\n", file=sys.stderr)


@app.command(help=__doc__)
@exit_on_user_error
def main(params: Path = typer.Option(Path("params.yaml"), help="validated params file")) -> None:
    config = load_config(params)
    names = config.data.attributes
    train, val = (read_split(split_path(s), names) for s in ("train", "val"))
    evaluated = read_split(split_path(config.eval.split), names)
    field, model_config, _ = load_model(MODEL_PATH)
    ev = config.eval
    device = resolve_device(config.train.device, "train.device")
    edit = edit_function(field, model_config, ev.num_steps, ev.step_size, device)
    settings = {k: v for k, v in dataclasses.asdict(ev).items() if k != "split"}
    result = evaluate_transfer(edit, train, val, evaluated, **settings)
    metrics = {"split": ev.split, **result.metrics}
    write_json(TRANSFER_METRICS, metrics)
    with atomic_path(EDITS_PATH) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **result.artifacts)
    for method in METHODS:
        b = metrics[method]
        print(
            f"{method:32s} flip_success {b['flip_success']:.3f}  preservation "
            f"{b['preservation']:.3f}  distinct {b['distinct_fraction']:.3f}  "
            f"rank_ratio {b['rank_ratio']:.3f}  collapsed {b['collapsed']}"
        )
    print(f"noop_cosine {metrics['noop_cosine']:.4f}; wrote {TRANSFER_METRICS}, {EDITS_PATH}")
    warn_collapse(metrics)


if __name__ == "__main__":
    app()
