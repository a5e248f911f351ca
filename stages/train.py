"""DVC stage `train`: fit the vector field; write models/fclf.pt and metrics/train.json.

`loss.objective` picks the family (contrastive | flow_matching); the `flow`
horizon is trained and recorded in the model file. Resumes from
checkpoints/latest.pt when it belongs to the same run, i.e. after an
interruption (checkpoints of other params, another train.epochs included, are
removed first), logs per-epoch losses with dvclive.

`train.replicates` > 1 also trains the same run with seeds train.seed + 1, ...
(models/replicates/fclf_seed<s>.pt, each resumable from its own checkpoint): the
evaluation reports FCLF's spread over training seeds, and a comparison that
another seed reverses is not called a win. models/fclf.pt, dvclive and
metrics/train.json are the main seed's.
"""

import dataclasses
import sys
from pathlib import Path

import torch
import typer

from dvclive import Live
from fclf.atomic import write_json
from fclf.config import load_config
from fclf.data.embeddings_io import read_split
from fclf.devices import resolve_device
from fclf.errors import FclfError, exit_on_user_error
from fclf.model.field import build_field
from fclf.model.frozen_directions import fit_frozen_directions
from fclf.model.model_io import save_model
from fclf.train.checkpoint import LATEST, clean_stale
from fclf.train.loop import train
from fclf.train.run_definition import compute_fingerprint, objective_weights, train_settings
from layout import (
    CHECKPOINT_DIR,
    MODEL_PATH,
    REPLICATES_DIR,
    TRAIN_LIVE_DIR,
    TRAIN_METRICS,
    TRAIN_TIMING,
    replicate_checkpoint,
    replicate_path,
    split_path,
)

app = typer.Typer(add_completion=False, help=__doc__)


def six_digits(value: float) -> float:
    """Curves are committed to git: 6 significant digits keep last-bit float drift of
    another CPU from showing as a change."""
    return float(f"{value:.6g}")


class LiveLogger:
    """Logs each epoch's row once (rows restored from a checkpoint included), rounded."""

    def __init__(self, live: Live):
        self.live = live
        self.logged = 0

    def __call__(self, history: list[dict]) -> None:
        for row in history[self.logged :]:
            self.live.step = row["epoch"]
            for key, value in row.items():
                if key.startswith(("train_", "val_")):
                    split, name = key.split("_", 1)
                    self.live.log_metric(f"{split}/{name}", six_digits(value))
            self.live.log_metric("lr", six_digits(row["lr"]))
            self.live.make_summary()
        self.logged = len(history)


@app.command(help=__doc__)
@exit_on_user_error
def main(params: Path = typer.Option(Path("params.yaml"), help="validated params file")) -> None:
    config = load_config(params)
    names = config.data.attributes
    train_split = read_split(split_path("train"), names)
    val_split = read_split(split_path("val"), names)
    fp, definition = compute_fingerprint(config, train_split.embeddings, train_split.attributes)
    if clean_stale(CHECKPOINT_DIR, fp) == "removed":
        print(f"train: removed stale checkpoints from {CHECKPOINT_DIR}/")
    device = resolve_device(config.train.device, "train.device")
    torch.manual_seed(config.train.seed)
    frozen = frozen_directions(config, train_split)
    field = build_field(train_split.dim, len(names), config.model).to(device)
    field.set_frozen_directions(frozen)

    def tensors(split):
        return (torch.as_tensor(split.embeddings, device=device),
                torch.as_tensor(split.attributes, device=device))

    logger = LiveLogger(Live(dir=str(TRAIN_LIVE_DIR), dvcyaml=False, save_dvc_exp=False))
    try:
        result = train(
            field, *tensors(train_split), *tensors(val_split),
            train_settings(config), objective_weights(config),
            run_fingerprint=fp, run_definition=definition,
            checkpoint_path=CHECKPOINT_DIR / LATEST,
            on_history=logger,
        )
    except KeyboardInterrupt:
        print(f"\ntrain: interrupted; {CHECKPOINT_DIR / LATEST} keeps the last finished epoch. "
              "Run `dvc repro` again to resume (the result equals an uninterrupted run).",
              file=sys.stderr)
        raise SystemExit(130) from None
    logger(result.history)
    logger.live.end()
    save_model(MODEL_PATH, field, config.model, names, {"fingerprint": fp}, flow=config.flow)
    REPLICATES_DIR.mkdir(parents=True, exist_ok=True)
    seconds, samples = result.wall_seconds, result.samples_per_s
    for seed in range(config.train.seed + 1, config.train.seed + config.train.replicates):
        print(f"train: replicate with train.seed = {seed}")
        replica = _train_replicate(config, seed, train_split, val_split, tensors, device,
                                   frozen)
        seconds += replica.wall_seconds
    last = result.history[-1]
    # Metrics hold what the run learned, rounded to 6 decimals (no last-bit drift across
    # CPUs); how long it took goes to a run log that no metrics diff reads.
    write_json(TRAIN_METRICS, {
        "epochs": last["epoch"],
        "train": {k[6:]: round(last[k], 6) for k in last if k.startswith("train_")},
        "val": {k[4:]: round(last[k], 6) for k in last if k.startswith("val_")},
        "device": str(device),
    })
    write_json(TRAIN_TIMING, {
        "wall_seconds": round(seconds, 2),
        "samples_per_s": round(samples, 1),
        "replicates": config.train.replicates,
        "device": str(device),
    })
    print(f"train: wrote {MODEL_PATH}, {config.train.replicates - 1} replicate(s) in "
          f"{REPLICATES_DIR}/, {TRAIN_METRICS} and {TRAIN_TIMING} ({samples:.0f} samples/s)")


def frozen_directions(config, train_split) -> torch.Tensor:
    """The directions the field is kept orthogonal to (none when both ranks are 0)."""
    ranks = config.model.frozen_identity_rank, config.model.frozen_nuisance_rank
    if not any(ranks):
        return torch.zeros(train_split.dim, 0)
    if (train_split.identities < 0).all():
        raise FclfError("model.frozen_identity_rank / model.frozen_nuisance_rank need identity "
                        "ids, and the train split has none: set both to 0")
    try:
        basis = fit_frozen_directions(train_split.embeddings, train_split.attributes,
                                      train_split.identities, *ranks)
    except ValueError as exc:
        raise FclfError(f"model.frozen_*_rank: {exc}") from None
    print(f"train: the field is kept orthogonal to {basis.shape[1]} directions fitted on train "
          f"({ranks[0]} between people, {ranks[1]} between photos of one person)")
    return torch.from_numpy(basis)


def _train_replicate(config, seed: int, train_split, val_split, tensors, device, frozen):
    """The same run with another seed, resumable from its own checkpoint."""
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, seed=seed))
    fp, definition = compute_fingerprint(config, train_split.embeddings, train_split.attributes)
    torch.manual_seed(seed)
    field = build_field(train_split.dim, len(config.data.attributes), config.model).to(device)
    field.set_frozen_directions(frozen)
    try:
        result = train(
            field, *tensors(train_split), *tensors(val_split), train_settings(config),
            objective_weights(config), run_fingerprint=fp, run_definition=definition,
            checkpoint_path=replicate_checkpoint(seed),
        )
    except KeyboardInterrupt:
        print(f"\ntrain: interrupted; {replicate_checkpoint(seed)} keeps the last finished "
              "epoch. Run `dvc repro` again to resume.", file=sys.stderr)
        raise SystemExit(130) from None
    save_model(replicate_path(seed), field, config.model, config.data.attributes,
               {"fingerprint": fp}, flow=config.flow)
    return result


if __name__ == "__main__":
    app()
