"""`fclf bench train`: samples/s of one full training step per objective family.

A step is everything training does per batch: the objective (for contrastive:
the whole horizon unrolled, bank draws, SupCon, identity; for flow matching:
the C2OT coupling, one field evaluation), the curl/div penalties, backward,
clipping and Adam. The data are random unit vectors with random labels; the
sources are the labels and half of the rows flip 1..2 attributes, as in
training (`train.flip_prob` 0.5, `train.max_flips` 2).
"""

from __future__ import annotations

import statistics
import time

import torch

from fclf.devices import resolve_device
from fclf.model.field import VectorField
from fclf.train.bank import CodeBank
from fclf.train.flips import sample_targets
from fclf.train.objectives import OBJECTIVES, Batch, FlowSettings, ObjectiveWeights, fclf_objective

BANK_SIZE = 20_000  # about the default synthetic train split


def bench_objective(
    objective: str, steps: int = 20, warmup: int = 3, batch_size: int = 512, dim: int = 512,
    num_attributes: int = 5, probes: int = 1, device: str = "auto", seed: int = 0,
    div_estimator: str = "corrected", flow: FlowSettings | None = None,
    frozen_rank: int = 32,
) -> dict:
    dev = resolve_device(device)
    flow = flow or FlowSettings()
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    field = VectorField(dim, num_attributes, frozen_rank=frozen_rank).to(dev)
    # the default model.frozen_identity_rank: a random orthonormal basis costs the same
    field.set_frozen_directions(torch.linalg.qr(torch.randn(dim, frozen_rank, generator=gen))[0])
    optimizer = torch.optim.Adam(field.parameters(), lr=1e-4)
    bank_z = torch.nn.functional.normalize(torch.randn(BANK_SIZE, dim, generator=gen), dim=-1)
    bank_y = torch.randint(0, 2, (BANK_SIZE, num_attributes), generator=gen)
    bank = CodeBank(bank_z.to(dev), bank_y.to(dev))
    source = bank_y[:batch_size]
    target = sample_targets(source, 0.5, min(2, num_attributes), gen)
    batch = Batch(bank_z[:batch_size].to(dev), target.to(dev), source.to(dev))
    weights = ObjectiveWeights(objective=objective, probes=probes, div_estimator=div_estimator)

    def step() -> None:
        parts = fclf_objective(field, batch, bank, weights, flow, gen)
        optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        torch.nn.utils.clip_grad_norm_(field.parameters(), 1.0)
        optimizer.step()

    times = []
    for i in range(warmup + steps):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {
        "samples_per_s": round(batch_size / median, 1),
        "step_ms_median": round(median * 1000, 2),
        "step_ms_min": round(min(times) * 1000, 2),
        "num_steps": flow.num_steps,
        "integrator": flow.integrator,
    }


def bench_train(
    steps: int = 20, warmup: int = 3, batch_size: int = 512, dim: int = 512,
    num_attributes: int = 5, probes: int = 1, device: str = "auto", seed: int = 0,
    div_estimator: str = "corrected", objectives: tuple[str, ...] = tuple(OBJECTIVES),
    num_steps: int = 10, step_size: float = 0.1, integrator: str = "euler",
    checkpoint_gradients: bool = False,
) -> dict:
    """{objective: {samples_per_s, ...}} plus the shared settings."""
    flow = FlowSettings(num_steps, step_size, integrator, True, checkpoint_gradients)
    result: dict = {
        name: bench_objective(name, steps, warmup, batch_size, dim, num_attributes, probes,
                              device, seed, div_estimator, flow)
        for name in objectives
    }
    result.update({
        "steps": steps,
        "batch_size": batch_size,
        "dim": dim,
        "probes": probes,
        "div_estimator": div_estimator,
        "checkpoint_gradients": checkpoint_gradients,
        "device": str(resolve_device(device)),
        "threads": torch.get_num_threads(),
    })
    return result
