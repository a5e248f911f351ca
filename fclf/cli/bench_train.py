"""`fclf bench train`: samples/s of one full training step (all loss terms, backward, Adam)."""

from __future__ import annotations

import statistics
import time

import torch

from fclf.devices import resolve_device
from fclf.model.field import VectorField
from fclf.train.losses import ObjectiveWeights, fclf_objective


def bench_train(
    steps: int = 20, warmup: int = 3, batch_size: int = 512, dim: int = 512,
    num_attributes: int = 5, probes: int = 1, device: str = "auto", seed: int = 0,
    div_estimator: str = "corrected",
) -> dict:
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(seed)
    field = VectorField(dim, num_attributes).to(dev)
    optimizer = torch.optim.Adam(field.parameters(), lr=1e-4)
    z = torch.nn.functional.normalize(torch.randn(batch_size, dim, generator=gen), dim=-1).to(dev)
    y = torch.randint(0, 2, (batch_size, num_attributes), generator=gen).to(dev)
    weights = ObjectiveWeights(probes=probes, div_estimator=div_estimator)

    def step() -> None:
        parts = fclf_objective(field, z, y, weights, alpha=0.1, generator=gen)
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
        "steps": steps,
        "batch_size": batch_size,
        "dim": dim,
        "probes": probes,
        "div_estimator": div_estimator,
        "device": str(dev),
        "threads": torch.get_num_threads(),
    }
