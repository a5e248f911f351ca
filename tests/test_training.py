"""The training loop: determinism, exact resume, learning, failure modes."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import pytest
import torch

from fclf.data.synthetic import generate
from fclf.errors import FclfError
from fclf.model.field import VectorField
from fclf.train import checkpoint
from fclf.train import loop as training
from fclf.train.loop import TrainSettings, train
from fclf.train.objectives import ObjectiveWeights


def contrastive_weights(**weights) -> ObjectiveWeights:
    """Weights of the contrastive family (the default family is flow_matching)."""
    return ObjectiveWeights(objective="contrastive", **weights)

NAMES = ["Smiling", "Young", "Male", "Eyeglasses", "Mustache"]
DIM = 32
SETTINGS = TrainSettings(learning_rate=3e-3, batch_size=64, epochs=4, seed=0, num_steps=5,
                         step_size=0.2)
# Fixed weights (not the defaults): a small model that visibly learns in 4 epochs.
WEIGHTS = contrastive_weights(lambda_curl=0.01, lambda_div=0.01, lambda_identity=0.1)
DEFINITION = {"model": {"hidden_dim": 64}, "loss": dataclasses.asdict(WEIGHTS), "data": "d"}
FP = checkpoint.fingerprint(DEFINITION)



@functools.cache
def data() -> tuple[torch.Tensor, ...]:
    splits = generate(NAMES, {"train": 100, "val": 10, "test": 1}, images_per_identity=5,
                      dim=DIM, seed=0)
    out = []
    for name in ("train", "val"):
        out += [torch.as_tensor(splits[name].embeddings), torch.as_tensor(splits[name].attributes)]
    return tuple(out)


def new_model(seed: int = 0, init_scale: float = 0.01) -> VectorField:
    torch.manual_seed(seed)
    return VectorField(DIM, len(NAMES), hidden_dim=64, attribute_embed_dim=8,
                       init_scale=init_scale)


def run(model, settings=SETTINGS, weights=WEIGHTS, **kwargs):
    kwargs.setdefault("run_fingerprint", FP)
    kwargs.setdefault("run_definition", DEFINITION)
    return train(model, *data(), settings, weights, progress=False, **kwargs)


def same_weights(a: VectorField, b: VectorField) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def without_timing(history):
    return [{k: v for k, v in row.items() if k != "samples_per_s"} for row in history]


class Interrupted(Exception):
    pass


def interrupt_after(epoch: int):
    def on_history(history):
        if len(history) == epoch:
            raise Interrupted

    return on_history


def test_same_seed_gives_identical_weights_and_history():
    settings = dataclasses.replace(SETTINGS, epochs=2)
    a, b = new_model(), new_model()
    ra, rb = run(a, settings), run(b, settings)
    assert same_weights(a, b)
    assert without_timing(ra.history) == without_timing(rb.history)
    assert not same_weights(a, new_model()), "training changed the weights"
    c = new_model()
    run(c, dataclasses.replace(settings, seed=1))
    assert not same_weights(a, c), "the seed drives batches, flips and probes"


@pytest.mark.parametrize("objective", ["contrastive", "flow_matching"])
def test_interrupted_run_resumes_to_identical_weights(tmp_path, objective):
    weights = dataclasses.replace(WEIGHTS, objective=objective)
    full = new_model()
    full_result = run(full, weights=weights, checkpoint_path=tmp_path / "full" / "latest.pt")

    path = tmp_path / "interrupted" / "latest.pt"
    with pytest.raises(Interrupted):
        run(new_model(), weights=weights, checkpoint_path=path, on_history=interrupt_after(2))
    assert checkpoint.load(path)["epoch"] == 2

    resumed = new_model(seed=123)  # a fresh object; its own init must not matter
    result = run(resumed, weights=weights, checkpoint_path=path)
    assert result.resumed_from_epoch == 2
    assert same_weights(resumed, full)
    assert without_timing(result.history) == without_timing(full_result.history)
    assert checkpoint.load(path)["epoch"] == 4


def test_checkpoint_of_another_epoch_count_is_refused(tmp_path):
    """The cosine spans all epochs, so 2 -> 4 epochs is another run: never resumed, even
    when a caller's fingerprint (here one without the epoch count) fails to tell."""
    path = tmp_path / "latest.pt"
    run(new_model(), dataclasses.replace(SETTINGS, epochs=2), checkpoint_path=path)
    before = path.read_bytes()
    for epochs in (1, 4):
        with pytest.raises(FclfError, match=f"trained for 2 epochs, now {epochs}"):
            run(new_model(), dataclasses.replace(SETTINGS, epochs=epochs), checkpoint_path=path)
    assert path.read_bytes() == before


def test_finished_run_rerun_keeps_its_weights(tmp_path, capsys):
    path = tmp_path / "latest.pt"
    first = new_model()
    result = run(first, dataclasses.replace(SETTINGS, epochs=2), checkpoint_path=path)
    capsys.readouterr()
    again = new_model(seed=123)
    rerun = run(again, dataclasses.replace(SETTINGS, epochs=2), checkpoint_path=path)
    assert "resumed" in capsys.readouterr().out and rerun.resumed_from_epoch == 2
    assert same_weights(again, first) and rerun.history == result.history


def test_losses_fall_over_a_few_epochs():
    result = run(new_model())
    first, last = result.history[0], result.history[-1]
    for key in ("val_loss", "val_contr", "train_loss", "train_contr"):
        assert last[key] < first[key], key
    assert last["val_loss"] < first["val_loss"] - 0.1
    # With flips and probes fixed, the validation loss falls every epoch.
    val = [row["val_loss"] for row in result.history]
    assert all(b < a for a, b in itertools.pairwise(val))
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    assert all(math.isfinite(v) for row in result.history for v in row.values())


def test_regularisers_fall_when_they_are_the_objective():
    """From a strongly non-identity field, curl, div and identity terms each decrease."""
    weights = contrastive_weights(lambda_contrastive=0.0, lambda_curl=1.0, lambda_div=1.0,
                               lambda_identity=1.0, probes=4)
    result = run(new_model(init_scale=0.3), weights=weights)
    first, last = result.history[0], result.history[-1]
    for key in ("val_curl", "val_div", "val_ident", "val_loss"):
        assert last[key] < 0.8 * first[key], key


def test_non_finite_loss_names_epoch_and_step_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "latest.pt"
    real = training.fclf_objective
    calls = {"train_steps": 0}
    saved: dict[str, bytes] = {}

    def objective(field, *args, **kwargs):
        parts = real(field, *args, **kwargs)
        if field.training:  # validation runs in eval mode
            calls["train_steps"] += 1
            if calls["train_steps"] == 8 + 3:  # 8 steps per epoch: epoch 2, step 3
                parts["loss"] = parts["loss"] * float("nan")
        return parts

    def remember(history):
        saved[str(len(history))] = path.read_bytes()

    monkeypatch.setattr(training, "fclf_objective", objective)
    assert training._steps_per_epoch(len(data()[0]), SETTINGS.batch_size) == 8
    with pytest.raises(FclfError, match=r"non-finite loss \(nan\) at epoch 2, step 3"):
        run(new_model(), checkpoint_path=path, on_history=remember)
    assert list(saved) == ["1"]
    assert path.read_bytes() == saved["1"], "the last good checkpoint is untouched"
    assert checkpoint.load(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"], "no temp files left"


def test_checkpoint_of_another_run_is_refused_with_the_differences(tmp_path):
    path = tmp_path / "latest.pt"
    run(new_model(), dataclasses.replace(SETTINGS, epochs=1), checkpoint_path=path)
    before = path.read_bytes()
    other = {**DEFINITION, "loss": {**DEFINITION["loss"], "lambda_curl": 0.5}}
    with pytest.raises(FclfError) as info:
        run(new_model(), checkpoint_path=path, run_fingerprint=checkpoint.fingerprint(other),
            run_definition=other)
    message = str(info.value)
    assert "another run" in message
    assert "loss.lambda_curl: checkpoint has 0.01, now 0.5" in message
    assert "lambda_identity" not in message
    assert path.read_bytes() == before


def test_on_history_sees_every_epoch_and_timing_is_reported():
    seen = []
    result = run(new_model(), dataclasses.replace(SETTINGS, epochs=2),
                 on_history=lambda h: seen.append(len(h)))
    assert seen == [1, 2]
    assert result.samples_per_s > 0 and result.wall_seconds > 0
    row = result.history[0]
    assert set(row) >= {"epoch", "lr", "train_loss", "val_loss", "train_curl", "val_div",
                        "samples_per_s"}


def test_batches_drop_a_trailing_single_sample():
    gen = torch.Generator().manual_seed(0)
    batches = training._batches(129, 64, gen)
    assert [len(b) for b in batches] == [64, 64]
    assert training._steps_per_epoch(129, 64) == 2
    assert training._steps_per_epoch(130, 64) == 3
    assert training._steps_per_epoch(1, 64) == 1
    assert sorted(torch.cat(training._batches(130, 64, gen)).tolist()) == list(range(130))


def test_the_source_reader_is_fitted_before_training_and_reads_the_train_labels():
    model = new_model()
    assert not model.reader.fitted
    run(model, dataclasses.replace(SETTINGS, epochs=1))
    assert model.reader.fitted
    z, y = data()[:2]
    agreement = (model.reader.read(z) == y.float()).float().mean(0)
    assert (agreement > 0.8).all(), agreement  # a linear reader of linear attributes
    state = model.state_dict()
    assert {"reader.weight", "reader.bias", "reader.fitted"} <= set(state)


def test_flow_matching_learns_and_is_deterministic():
    weights = dataclasses.replace(WEIGHTS, objective="flow_matching")
    settings = dataclasses.replace(SETTINGS, epochs=3)
    a, b = new_model(), new_model()
    ra, rb = run(a, settings, weights), run(b, settings, weights)
    assert same_weights(a, b)
    assert without_timing(ra.history) == without_timing(rb.history)
    first, last = ra.history[0], ra.history[-1]
    assert set(first) >= {"train_fm", "val_fm", "train_pair", "val_curl"}
    assert last["val_fm"] < first["val_fm"]
