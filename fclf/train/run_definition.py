"""What defines a training run (for its fingerprint), and how configs map to settings."""

from __future__ import annotations

from typing import Any

from fclf.config import Config, to_dict
from fclf.train.loop import TrainSettings
from fclf.train.objectives import ObjectiveWeights

# Keys that may change without invalidating a checkpoint: neither the device nor
# gradient checkpointing changes the math, and the number of replicate seeds does
# not change any one seed's run. `train.epochs` does define the run (the
# cosine schedule's horizon depends on it), so another epoch count starts fresh.
NON_DEFINING_TRAIN_KEYS = ("device", "checkpoint_gradients", "replicates")


def run_definition(config: Config, data_digest: str) -> dict[str, Any]:
    train = {k: v for k, v in to_dict(config.train).items() if k not in NON_DEFINING_TRAIN_KEYS}
    return {
        "model": to_dict(config.model),
        "flow": to_dict(config.flow),
        "loss": to_dict(config.loss),
        "train": train,
        "attributes": list(config.data.attributes),
        "data": data_digest,
    }


def train_settings(config: Config) -> TrainSettings:
    t, f = config.train, config.flow
    return TrainSettings(
        learning_rate=t.learning_rate, batch_size=t.batch_size, epochs=t.epochs, seed=t.seed,
        flip_prob=t.flip_prob, max_flips=t.max_flips, grad_clip=t.grad_clip,
        weight_decay=t.weight_decay, checkpoint_gradients=t.checkpoint_gradients,
        sphere=config.model.sphere, num_steps=f.num_steps, step_size=f.step_size,
        integrator=f.integrator,
    )


def objective_weights(config: Config) -> ObjectiveWeights:
    return ObjectiveWeights(**to_dict(config.loss))


def compute_fingerprint(config: Config, train_embeddings: Any, train_attributes: Any) -> tuple[
    str, dict[str, Any]
]:
    """(fingerprint, run definition) of a training run on the given training data.

    The clean-checkpoints stage and the train stage both call this, so they
    can never disagree about whether a checkpoint is stale.
    """
    from fclf.train.checkpoint import array_digest, fingerprint

    definition = run_definition(config, array_digest(train_embeddings, train_attributes))
    return fingerprint(definition), definition
