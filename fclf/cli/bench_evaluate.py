"""`fclf bench evaluate`: time the full transfer evaluation on a 20k-point split.

Data: the default contextual synthetic world (`generate_world`) with 2,000
train / 250 val / 2,000 test / 500 judge identities at ~10 images each (about
20k / 2.5k / 20k / 5k points), dim 512, the five default attributes, and its
exact counterfactuals (so the oracle row and ground-truth metrics are timed).

FCLF stand-in (no trained model needed): a sphere walk toward the target
attribute combination along the train mean directions of ALL attributes
(+direction where the target is 1, -direction where it is 0), strength
STAND_IN_STRENGTH. It is deliberately different from both baselines, so the
strength calibration has real work to do. Setup (data, stand-in) is not timed;
each timed run is a whole `evaluate_transfer` call with the default protocol
settings on val and test: judge fitting (linear + MLP), baseline probes and
calibration, oracle + three methods, curves, bootstrap, collapse measures and
the no-op checks.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
import torch

from fclf.attributes import DEFAULT_ATTRIBUTES
from fclf.config import SyntheticConfig
from fclf.data.synthetic import generate_world
from fclf.evaluate.baselines import mean_directions, sphere_walk
from fclf.evaluate.methods import EditFn
from fclf.evaluate.protocol import ProtocolSettings, evaluate_transfer

STAND_IN_STRENGTH = 0.2
NUM_STEPS = 10
IDENTITIES = {"train": 2000, "val": 250, "test": 2000, "judge": 500}


def stand_in_edit(directions: np.ndarray, strength: float, num_steps: int) -> EditFn:
    """A cheap EditFn: walk toward every target attribute value along fixed directions."""
    dirs = np.asarray(directions, np.float64)

    def edit(z: np.ndarray, targets: np.ndarray) -> np.ndarray:
        signs = np.where(np.asarray(targets) == 1, 1.0, -1.0)
        direction = torch.as_tensor(signs @ dirs, dtype=torch.float32)
        return sphere_walk(z, direction, strength * num_steps / NUM_STEPS, num_steps)

    return edit


def bench_evaluate(
    repeats: int = 3,
    dim: int = 512,
    seed: int = 0,
    threads: int | None = None,
    identities: dict[str, int] | None = None,
) -> dict:
    """Median wall-clock seconds of `evaluate_transfer` over `repeats` runs, and the sizes.

    threads: torch intra-op threads for the timed runs (None: torch's default,
    one per core). On a host shared with other jobs, 1 thread can be faster.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    defaults = SyntheticConfig()
    splits, truth = generate_world(
        DEFAULT_ATTRIBUTES, identities or IDENTITIES, dim=dim, seed=seed,
        attribute_context=defaults.attribute_context, identity_groups=defaults.identity_groups,
        look_alike_cosine=defaults.look_alike_cosine, nuisance_rank=defaults.nuisance_rank,
        identity_rank=defaults.identity_rank,
    )
    train = splits["train"]
    directions = mean_directions(train.embeddings, train.attributes)

    def make_edit(num_steps: int) -> EditFn:
        return stand_in_edit(directions, STAND_IN_STRENGTH, num_steps)

    truths = {s: (lambda name: lambda rows, t: truth.counterfactual(name, rows, t))(s)
              for s in ("val", "test")}
    settings = ProtocolSettings(num_steps=NUM_STEPS, seed=seed)
    times, cpu = [], []
    load = os.getloadavg()[0]
    result = None
    for _ in range(max(1, repeats)):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = evaluate_transfer(make_edit, train, splits["judge"],
                                   {"val": splits["val"], "test": splits["test"]},
                                   truths=truths, settings=settings)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    metrics = result.metrics
    return {
        "seconds": statistics.median(times),
        "runs": [round(t, 3) for t in times],
        "cpu_seconds": statistics.median(cpu),  # all threads; compare with seconds on busy hosts
        "load_average_1min_before": load,  # > number of cores: other work shared the CPUs
        **{f"{name}_points": len(split) for name, split in splits.items()},
        "dim": dim,
        "threads": torch.get_num_threads(),
        "stand_in": f"mean-direction walk over all attributes, strength {STAND_IN_STRENGTH}",
        "fclf_flip_success_linear": metrics["test"]["fclf"]["flip_success_linear"],
        "calibrated_strengths": {
            m: metrics["calibration"][m]["strength"]
            for m in ("baseline_mean_direction", "baseline_conditional_direction")
        },
    }
