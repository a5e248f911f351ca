"""`fclf bench evaluate`: time the whole transfer evaluation on a 20k-point test split.

Data: the default contextual synthetic world (`generate_world`) with 2,000
train / 250 val / 2,000 test / 500 judge identities at ~10 images each (about
20k / 2.5k / 20k / 5k points), dim 512, the five default attributes, and its
exact counterfactuals (so the oracle row and ground-truth metrics are timed).

Editors (built before the clock starts, as the pipeline's stages would: the
yardstick by fit-judge, the peers and reference by train-baselines, FCLF by
train):

- FCLF stand-in (no trained model needed): a flow that walks the mean-direction
  displacement of the requested change in num_steps steps, reading sources with
  the plain probe; two more "seeds" of it (light blocks, as the pipeline's
  replicates);
- the five peers at fixed settings (no tuning: `train-baselines` does that)
  and the supervised reference.

Each timed run is a whole `evaluate_transfer` call with the default protocol
settings on val and test, told and blind: every editor's edits and no-op,
judge readings, realism, ground truth, identity among the target people,
collapse measures, curves and the 1,000-resample bootstrap with paired
comparisons. Setup times are reported beside it.
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
from fclf.evaluate.editors import FlowEditor, exp_map
from fclf.evaluate.peers.analogy import KnnAnalogy
from fclf.evaluate.peers.base import TrainData
from fclf.evaluate.peers.conditional_flow import ConditionalFlow
from fclf.evaluate.peers.lines import CodeLine, ConditionalDirection, MeanDirection
from fclf.evaluate.peers.reference import Reference
from fclf.evaluate.protocol import Entry, ProtocolSettings, Yardstick, evaluate_transfer

STAND_IN_STRENGTH = 0.8
NUM_STEPS = 10
IDENTITIES = {"train": 2000, "val": 250, "test": 2000, "judge": 500}


def stand_in(data: TrainData, strength: float, num_steps: int = NUM_STEPS) -> FlowEditor:
    """A cheap flow: walk the requested change's mean-direction displacement in steps."""
    def make(steps: int):
        def edit(z, targets, sources):
            # like FCLF's flow: rows asked for nothing are copied, not integrated
            frames = np.repeat(np.asarray(z, np.float32)[None], steps + 1, axis=0)
            moving = np.flatnonzero((np.asarray(targets) != sources).any(1))
            d = (np.asarray(targets, np.float64)[moving] - sources[moving]) @ data.mean_differences
            for t in range(1, steps + 1):
                frames[t, moving] = exp_map(frames[0, moving], d, strength * t / num_steps)
            return frames
        return edit

    return FlowEditor(make, data.reader.predict, num_steps)


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
    settings = ProtocolSettings(num_steps=NUM_STEPS, seed=seed)
    setup = {}
    start = time.perf_counter()
    yardstick = Yardstick.fit(splits["judge"], train, settings)
    setup["yardstick_fit_seconds"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    data = TrainData.of(train)
    peers = {"mean_direction": MeanDirection(data, 0.75),
             "conditional_direction": ConditionalDirection(data, c=0.001),
             "code_line": CodeLine(data, 20.0), "knn_analogy": KnnAnalogy(data, 200),
             "conditional_flow": ConditionalFlow(data, alpha=1.0, seed=seed).fit()}
    reference = Reference(data, seed=seed).fit(
        lambda rows, t: truth.counterfactual("train", rows, t))
    setup["peers_fit_seconds"] = round(time.perf_counter() - start, 2)

    def entries(split: str) -> list[Entry]:
        return [Entry.both("fclf", "fclf", stand_in(data, STAND_IN_STRENGTH), meta={"seed": 0}),
                *(Entry.both(name, "peer", peer) for name, peer in peers.items()),
                Entry.both("reference", "reference", reference),
                *(Entry.both(f"fclf_seed{s}", "replicate",
                             stand_in(data, STAND_IN_STRENGTH * (1 + 0.02 * s)), full=False,
                             meta={"seed": s}) for s in (1, 2))]

    truths = {s: (lambda name: lambda rows, t: truth.counterfactual(name, rows, t))(s)
              for s in ("val", "test")}
    times, cpu = [], []
    load = os.getloadavg()[0]
    result = None
    for _ in range(max(1, repeats)):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = evaluate_transfer(entries, train, yardstick,
                                   {"val": splits["val"], "test": splits["test"]},
                                   truths=truths, settings=settings)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    told = result.metrics["test"]["told"]
    return {
        "seconds": statistics.median(times),
        "runs": [round(t, 3) for t in times],
        "cpu_seconds": statistics.median(cpu),  # all threads; compare with seconds on busy hosts
        "load_average_1min_before": load,  # > number of cores: other work shared the CPUs
        **{f"{name}_points": len(split) for name, split in splits.items()},
        "dim": dim,
        "threads": torch.get_num_threads(),
        "editors": [n for n, b in told.items() if isinstance(b, dict) and "role" in b],
        "modes": ["told", "blind"],
        **setup,
        "stand_in": f"mean-direction flow of the requested change, strength {STAND_IN_STRENGTH}",
        "fclf_counterfactual_relative_error": told["fclf"]["counterfactual_relative_error"],
        "best_baseline": told["best_baseline"],
    }
