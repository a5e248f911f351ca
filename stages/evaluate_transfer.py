"""DVC stage `evaluate-transfer`: score edits of val and test, told and blind, on a yardstick
that cannot be fooled.

FCLF (every training seed), its tuned peers, the supervised reference and (synthetic
data) the oracle, i.e. each face's exact counterfactual, are scored by the judge and
typicality Gaussian of models/judge.pt (fitted on the judge split only). Every row asks
for one change (`eval.transfer_mode`); in told mode editors are given the source's
labels, in blind mode they read the source themselves. Val is what selection uses
(`best_baseline` is picked there); test is what the README and the gate report.
Writes metrics/transfer.json (every float rounded to 6 significant digits, so a re-run
on another CPU does not dirty git with last-bit drift), its summary
metrics/headline.json (the stage's DVC metric: fclf.evaluate.headline), trade-off
curves (metrics/curves_<split>.csv), the protocol files `fclf score` reads
(eval/protocol_<split>_<mode>.npz) and the test edits the plot stage draws
(eval/edits.npz). Prints a loud warning on collapse.
"""

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
from fclf.evaluate.configured import protocol_settings, selection_rule
from fclf.evaluate.editors import FlowEditor
from fclf.evaluate.headline import headline, round_floats
from fclf.evaluate.peers.store import load_peers
from fclf.evaluate.protocol import Entry, evaluate_transfer
from fclf.evaluate.report import curves_csv, summary_lines
from fclf.evaluate.request import MODES
from fclf.evaluate.yardstick_io import load_yardstick
from fclf.model.model_io import edit_function, load_model, reader_function, recorded_flow
from layout import (
    EDITS_PATH,
    HEADLINE_METRICS,
    JUDGE_PATH,
    MODEL_PATH,
    PEERS_PATH,
    TRANSFER_METRICS,
    TRUTH_PATH,
    curves_path,
    protocol_path,
    replicate_path,
    split_path,
)

app = typer.Typer(add_completion=False, help=__doc__)
EVALUATED = ("val", "test")


def warn_collapse(metrics: dict) -> None:
    for split in EVALUATED:
        for mode in MODES:
            for method, block in metrics[split][mode].items():
                if isinstance(block, dict) and block.get("collapsed"):
                    reasons = "; ".join(block["collapse_reasons"])
                    bar = "!" * 78
                    print(f"\n{bar}\n!! MODE COLLAPSE ({split}, {mode}): {method}: {reasons}\n"
                          f"{bar}\n", file=sys.stderr)


def flow_editor(path: Path, device) -> tuple[FlowEditor, dict]:
    """FCLF's editor from a model file, integrating the horizon it was trained with."""
    field, model_config, record = load_model(path)
    horizon = recorded_flow(record)

    def make_edit(num_steps: int):
        return edit_function(field, model_config, num_steps, horizon.step_size, device,
                             integrator=horizon.integrator)

    return FlowEditor(make_edit, reader_function(field, device), horizon.num_steps), record


@app.command(help=__doc__)
@exit_on_user_error
def main(params: Path = typer.Option(Path("params.yaml"), help="validated params file")) -> None:
    config = load_config(params)
    names = config.data.attributes
    train = read_split(split_path("train"), names)
    evaluated = {s: read_split(split_path(s), names) for s in EVALUATED}
    truths = {}
    if TRUTH_PATH.exists():
        truth = read_truth(TRUTH_PATH, names)
        for s, split in evaluated.items():
            truth.check_split(s, split, split_path(s))
            truths[s] = (lambda name: lambda rows, targets: truth.counterfactual(
                name, rows, targets))(s)
    device = resolve_device(config.train.device, "train.device")
    main_editor, record = flow_editor(MODEL_PATH, device)
    seeds = [config.train.seed + r for r in range(config.train.replicates)]
    replicas = {s: flow_editor(replicate_path(s), device)[0] for s in seeds[1:]}
    peers, reference, peer_report = load_peers(PEERS_PATH, train)

    def entries(split: str) -> list[Entry]:
        roster = [Entry.both("fclf", "fclf", main_editor, meta={"seed": seeds[0]})]
        roster += [Entry.both(name, "peer", peer) for name, peer in peers.items()]
        if reference is not None:
            roster.append(Entry.both("reference", "reference", reference))
        roster += [Entry.both(f"fclf_seed{s}", "replicate", editor, full=False,
                              meta={"seed": s}) for s, editor in replicas.items()]
        return roster

    settings = protocol_settings(config, recorded_flow(record))  # the horizon it trained on
    result = evaluate_transfer(entries, train, load_yardstick(JUDGE_PATH, names), evaluated,
                               truths=truths, settings=settings, rule=selection_rule(config))
    chosen = {name: report["chosen"] for name, report in peer_report.get("peers", {}).items()}
    metrics = round_floats({"peers": chosen, **result.metrics})
    write_json(TRANSFER_METRICS, metrics)
    write_json(HEADLINE_METRICS, headline(metrics))
    for s, split_result in result.splits.items():
        write_text(curves_path(s), curves_csv(split_result.curves))
        for mode, arrays in split_result.protocol.items():
            with atomic_path(protocol_path(s, mode)) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
    with atomic_path(EDITS_PATH) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **result.splits["test"].artifacts)
    for line in summary_lines(result.metrics["test"]):
        print(line)
    print(f"wrote {TRANSFER_METRICS}, {HEADLINE_METRICS}, {curves_path('test')}, "
          f"{protocol_path('test')}, {EDITS_PATH}")
    warn_collapse(result.metrics)


if __name__ == "__main__":
    app()
