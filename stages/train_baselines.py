"""DVC stage `train-baselines`: fit FCLF's peers on train and choose their settings on val.

Every peer (`fclf.evaluate.peers`: mean direction, InterFaceGAN's conditional
direction, a line per attribute-code pair, a k-NN analogy, a StyleFlow-like
conditional normalising flow) is fitted on the train split only and has its
hyper-parameters (the `peers` params grids, walk length included) chosen on
val, told mode, by the selection rule FCLF's settings are chosen by
(`fclf.evaluate.selection`). With the synthetic truth, the supervised
reference is fitted on exact counterfactual pairs of train rows (a headroom
marker, never a baseline). FCLF is not involved, so its experiments reuse this
stage from DVC's cache. Writes models/peers.pt and metrics/peers.json (every
candidate's val score and the choice).
"""

import time
from pathlib import Path

import typer

from fclf.atomic import write_json
from fclf.config import load_config
from fclf.data.embeddings_io import read_split
from fclf.data.truth import read_truth
from fclf.errors import exit_on_user_error
from fclf.evaluate.configured import peer_grids, protocol_settings, selection_rule
from fclf.evaluate.headline import round_floats
from fclf.evaluate.peers.base import TrainData
from fclf.evaluate.peers.store import save_peers
from fclf.evaluate.protocol import build_context, split_request
from fclf.evaluate.tuning import fit_reference, tune_peers
from fclf.evaluate.yardstick_io import load_yardstick
from layout import JUDGE_PATH, PEERS_METRICS, PEERS_PATH, PEERS_TIMING, TRUTH_PATH, split_path

app = typer.Typer(add_completion=False, help=__doc__)


@app.command(help=__doc__)
@exit_on_user_error
def main(params: Path = typer.Option(Path("params.yaml"), help="validated params file")) -> None:
    config = load_config(params)
    names = config.data.attributes
    train = read_split(split_path("train"), names)
    val = read_split(split_path("val"), names)
    truth = read_truth(TRUTH_PATH, names) if TRUTH_PATH.exists() else None
    if truth is not None:
        truth.check_split("val", val, split_path("val"))
        truth.check_split("train", train, split_path("train"))
    settings = protocol_settings(config)
    index, request = split_request(val, settings)
    ctx = build_context("val", val, load_yardstick(JUDGE_PATH, names), index, request,
                        None if truth is None else lambda r, t: truth.counterfactual("val", r, t),
                        settings)
    data = TrainData.of(train)
    grids = peer_grids(config)
    start = time.perf_counter()
    peers, reports = tune_peers(data, ctx, grids, selection_rule(config),
                                log=lambda line: print(f"train-baselines: {line}"))
    reference = None
    if truth is not None:
        began = time.perf_counter()
        reference = fit_reference(data, lambda r, t: truth.counterfactual("train", r, t), grids)
        print(f"train-baselines: reference fitted on exact counterfactual pairs "
              f"({time.perf_counter() - began:.1f} s)")
    seconds = round(time.perf_counter() - start, 2)
    # Timings are a run log (logs/), not part of the peers file or a metric: they would change
    # both files' hashes, and dvc.lock, on every run.
    timing = {"seconds": seconds,
              "peers": {name: report.pop("seconds") for name, report in reports.items()}}
    report = {"selected_on": "val (told mode)", "peers": reports,
              "reference": None if reference is None else reference.hyper()}
    save_peers(PEERS_PATH, peers, reference, data, report)
    write_json(PEERS_METRICS, round_floats(report))
    write_json(PEERS_TIMING, timing)
    print(f"train-baselines: wrote {PEERS_PATH} and {PEERS_METRICS} ({seconds:.1f} s; "
          f"timings in {PEERS_TIMING})")


if __name__ == "__main__":
    app()
