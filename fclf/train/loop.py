"""The training loop: Adam, cosine schedule, clipping, per-epoch validation and checkpoints.

Before the first epoch the field's own source reader is fitted on the train
embeddings (`fclf.train.reader_fit`); its readings s give every sample's
change delta = y - s, at training exactly as at evaluation. The real train
embeddings form the bank (`fclf.train.bank`) the objectives draw targets from.

Every epoch draws its batch order, flips, bank draws and probes from a
generator seeded by (seed, epoch), so a run resumed from the checkpoint of
epoch e continues exactly as an uninterrupted run would (the reader is part
of the field's state, hence of the checkpoint). Resuming only survives an
interruption: the cosine schedule spans `epochs`, so a checkpoint trained for
another epoch count belongs to another run and is refused.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fclf.errors import FclfError
from fclf.model.field import VectorField
from fclf.progress import progress as progress_bar
from fclf.train import checkpoint
from fclf.train.bank import CodeBank
from fclf.train.flips import sample_targets
from fclf.train.objectives import Batch, FlowSettings, ObjectiveWeights, components, fclf_objective
from fclf.train.reader_fit import fit_source_reader

VAL_SEED_OFFSET = 7919


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings; defaults equal the params schema's (a test keeps them in sync)."""

    learning_rate: float = 2e-3
    batch_size: int = 512
    epochs: int = 5
    seed: int = 0
    flip_prob: float = 0.5
    max_flips: int = 2
    grad_clip: float = 1.0
    weight_decay: float = 0.0
    checkpoint_gradients: bool = False
    sphere: bool = True
    num_steps: int = 10
    step_size: float = 0.1
    integrator: str = "euler"

    @property
    def flow(self) -> FlowSettings:
        return FlowSettings(self.num_steps, self.step_size, self.integrator, self.sphere,
                            self.checkpoint_gradients)


@dataclass
class TrainResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    wall_seconds: float = 0.0
    samples_per_s: float = 0.0
    resumed_from_epoch: int = 0


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def cosine_factor(total_steps: int) -> Callable[[int], float]:
    return lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=generator)
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < 2:  # a 1-sample batch has no contrastive pair
        batches.pop()
    return batches


def _steps_per_epoch(n: int, batch_size: int) -> int:
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= 2 or full == 0 else 0)


@torch.no_grad()
def validation_losses(
    model: VectorField, z: torch.Tensor, attrs: torch.Tensor, settings: TrainSettings,
    weights: ObjectiveWeights, bank: CodeBank,
) -> dict[str, float]:
    """Same objective on the val split with fixed flips, draws and probes: comparable across
    epochs. Targets come from the (train) bank, sources are read by the model's reader."""
    gen = epoch_generator(settings.seed + VAL_SEED_OFFSET, 0)
    targets = sample_targets(attrs.cpu(), settings.flip_prob, settings.max_flips, gen).to(z.device)
    sources = model.reader.read(z)
    names = components(weights.objective)
    totals = dict.fromkeys(names, 0.0)
    count = 0
    for idx in torch.arange(len(z)).split(settings.batch_size):
        if len(idx) < 2:
            continue
        idx = idx.to(z.device)
        parts = fclf_objective(model, Batch(z[idx], targets[idx], sources[idx]), bank, weights,
                               settings.flow, gen)
        for key in names:
            totals[key] += float(parts[key]) * len(idx)
        count += len(idx)
    return {k: v / max(count, 1) for k, v in totals.items()}


def train(
    model: VectorField,
    z_train: torch.Tensor,
    y_train: torch.Tensor,
    z_val: torch.Tensor,
    y_val: torch.Tensor,
    settings: TrainSettings,
    weights: ObjectiveWeights,
    *,
    run_fingerprint: str,
    run_definition: dict[str, Any],
    checkpoint_path: Path | None = None,
    on_history: Callable[[list[dict[str, Any]]], None] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train in place; resume from `checkpoint_path` when it holds this run's state."""
    device = z_train.device
    names = components(weights.objective)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    steps = _steps_per_epoch(len(z_train), settings.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, cosine_factor(steps * settings.epochs)
    )
    result = TrainResult()
    start_epoch = 0
    if checkpoint_path is not None and checkpoint_path.exists():
        state = checkpoint.load(checkpoint_path)
        if state.get("fingerprint") != run_fingerprint:
            diffs = checkpoint.describe_difference(state.get("run_definition", {}), run_definition)
            raise FclfError(
                f"{checkpoint_path}: checkpoint belongs to another run; differences: "
                + ("; ".join(diffs) or "unknown (older format)")
                + ". Run the clean-checkpoints stage or delete the folder."
            )
        if state.get("epochs") != settings.epochs:
            # The cosine schedule spans all epochs, so the epoch count defines the run; a
            # caller's fingerprint must cover it (run_definition's does).
            raise FclfError(
                f"{checkpoint_path}: checkpoint was trained for {state.get('epochs')} epochs, "
                f"now {settings.epochs}; the run fingerprint must include the epoch count. "
                "Run the clean-checkpoints stage or delete the folder."
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch = state["epoch"]
        result.history = list(state["history"])
        result.wall_seconds = float(state["wall_seconds"])
        result.resumed_from_epoch = start_epoch
        print(f"train: resumed from {checkpoint_path} at epoch {start_epoch} of {settings.epochs}")

    if start_epoch == 0:
        model.reader.set(*fit_source_reader(z_train, y_train))
    with torch.no_grad():
        sources_all = model.reader.read(z_train)
    bank = CodeBank(z_train, y_train)

    trained_samples = 0
    train_seconds = 0.0
    for epoch in range(start_epoch, settings.epochs):
        gen = epoch_generator(settings.seed, epoch)
        targets_all = sample_targets(
            y_train.cpu(), settings.flip_prob, settings.max_flips, gen
        ).to(device)
        batches = _batches(len(z_train), settings.batch_size, gen)
        sums = dict.fromkeys(names, 0.0)
        seen = 0
        model.train()
        t0 = time.perf_counter()
        bar = progress_bar(
            batches, desc=f"epoch {epoch + 1}/{settings.epochs}", disable=not progress,
            leave=False, unit="batch",
        )
        for step, idx in enumerate(bar):
            idx = idx.to(device)
            parts = fclf_objective(
                model, Batch(z_train[idx], targets_all[idx], sources_all[idx]), bank, weights,
                settings.flow, gen,
            )
            loss = parts["loss"]
            if not torch.isfinite(loss):
                raise FclfError(
                    f"non-finite loss ({loss.item()}) at epoch {epoch + 1}, step {step + 1}; "
                    "the last good checkpoint is kept. Lower train.learning_rate or raise "
                    "loss.temperature."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            scheduler.step()
            for key in names:
                sums[key] += float(parts[key].detach()) * len(idx)
            seen += len(idx)
            if step % 5 == 0 or step == len(batches) - 1:
                bar.set_postfix_str(
                    "  ".join(f"{k}: {sums[k] / seen:.3f}" for k in names)
                )
        epoch_seconds = time.perf_counter() - t0
        bar.close()
        train_seconds += epoch_seconds
        trained_samples += seen
        model.eval()
        val = validation_losses(model, z_val, y_val, settings, weights, bank)
        row = {"epoch": epoch + 1, "lr": scheduler.get_last_lr()[0]}
        row.update({f"train_{k}": sums[k] / seen for k in names})
        row.update({f"val_{k}": val[k] for k in names})
        row["samples_per_s"] = seen / epoch_seconds
        result.history.append(row)
        result.wall_seconds += epoch_seconds
        print(
            f"epoch {epoch + 1}/{settings.epochs}  "
            + "  ".join(f"{k}: {row[f'train_{k}']:.4f}" for k in names)
            + f"  | val loss: {val['loss']:.4f}  ({row['samples_per_s']:.0f} samples/s)"
        )
        if checkpoint_path is not None:
            checkpoint.save(checkpoint_path, {
                "fingerprint": run_fingerprint,
                "run_definition": run_definition,
                "epoch": epoch + 1,
                "epochs": settings.epochs,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "history": result.history,
                "wall_seconds": result.wall_seconds,
            })
        if on_history is not None:
            on_history(result.history)
    if trained_samples:
        result.samples_per_s = trained_samples / train_seconds
    elif result.history:
        result.samples_per_s = float(result.history[-1]["samples_per_s"])
    return result
