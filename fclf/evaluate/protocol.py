"""The attribute-transfer evaluation: FCLF against two linear baselines.

Protocol (see `evaluate_transfer`): pick the evaluated points (optionally a
seeded subsample), flip 1 (single) or 2-3 (multi) attributes per point, run
every method from the same sources toward the same targets, and score the
final points with probes frozen on real train embeddings. The baselines'
strength is calibrated on the val split so that they move points as far as
FCLF does there. Nothing here reads files or params: callers pass arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from fclf.data.embeddings_io import EmbeddingSplit
from fclf.evaluate.baselines import (
    DirectionWalk,
    calibrate_strength,
    conditional_directions,
    mean_directions,
    walk_movement,
)
from fclf.evaluate.metrics import (
    collapse_verdict,
    combination_labels,
    distinct_fraction,
    effective_rank,
    identity_cosine,
    identity_top1,
    kmeans_purity,
    movement,
    nearest_neighbours,
    nearest_other,
    silhouettes,
    step_lengths,
    step_statistics,
    transfer_scores,
)
from fclf.evaluate.probes import AttributeProbes
from fclf.evaluate.targets import sample_targets, subsample_indices

EditFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(z (N, d) float32 unit sources, targets (N, k) int8 0/1) -> (num_steps+1, N, d) float32,
with trajectories[0] == z."""

METHODS = ("fclf", "baseline_mean_direction", "baseline_conditional_direction")


@dataclass
class EvaluationResult:
    metrics: dict  # JSON-ready: plain floats, bools, strings, lists, dicts, None
    artifacts: dict[str, np.ndarray] = field(repr=False)  # for plots; see evaluate_transfer
    probes: AttributeProbes = field(repr=False)


def run_edit(edit: EditFn, z: np.ndarray, targets: np.ndarray, num_steps: int) -> np.ndarray:
    """Call an edit function and check its contract; returns float32 trajectories."""
    traj = np.asarray(edit(z, targets), dtype=np.float32)
    expected = (num_steps + 1, *z.shape)
    if traj.shape != expected:
        raise ValueError(f"edit function returned shape {traj.shape}, expected {expected}")
    first, source = torch.from_numpy(traj[0]), torch.as_tensor(np.asarray(z, np.float32))
    if not (torch.equal(first, source) or float((first - source).abs().max()) <= 1e-5):
        raise ValueError("edit function's trajectories[0] must equal the sources z")
    if not np.isfinite(traj[-1]).all():
        raise ValueError("edit function returned non-finite points")
    return traj


@dataclass
class _Context:
    """What every method is scored against (computed once)."""

    names: tuple[str, ...]
    probes: AttributeProbes
    center: np.ndarray
    sources: np.ndarray
    index: np.ndarray  # rows of the evaluated split
    targets: np.ndarray
    flipped: np.ndarray
    before: np.ndarray
    gallery: np.ndarray
    identities: np.ndarray | None  # of the gallery; None when unknown
    real_rank: float
    target_codes: np.ndarray
    source_codes: np.ndarray
    seed: int
    thresholds: dict
    block_size: int
    top1_unedited: float | None = None


def _score(
    ctx: _Context, edited: np.ndarray, steps: np.ndarray
) -> tuple[dict, dict[str, np.ndarray]]:
    """One method's metric block from its final points and (T, N) step lengths,
    plus its per-point arrays for the artifacts."""
    after = ctx.probes.predict(edited)
    block = transfer_scores(ctx.before, after, ctx.targets, ctx.flipped, ctx.names)
    block["identity_cosine"] = identity_cosine(ctx.sources, edited, ctx.center)
    exclude = ctx.index if ctx.identities is not None else None
    nearest, nearest_ex = nearest_neighbours(edited, ctx.gallery, exclude, ctx.block_size)
    if ctx.identities is not None:
        block["identity_top1"] = identity_top1(
            nearest_ex, ctx.identities[ctx.index], ctx.identities
        )
        block["identity_top1_unedited"] = ctx.top1_unedited
    block["distinct_fraction"] = distinct_fraction(nearest)
    block["rank_ratio"] = effective_rank(edited) / ctx.real_rank if ctx.real_rank else 0.0
    block["movement"] = movement(ctx.sources, edited)
    block["mean_step"], block["std_step"] = step_statistics(steps)
    by_target, by_original = silhouettes(
        edited, [ctx.target_codes, ctx.source_codes], ctx.block_size
    )
    block["silhouette_by_target"] = by_target
    block["silhouette_by_original"] = by_original
    block["purity_by_target"] = kmeans_purity(edited, ctx.target_codes, ctx.seed)
    collapsed, reasons = collapse_verdict(
        block["distinct_fraction"], block["rank_ratio"], by_target, **ctx.thresholds
    )
    block["collapsed"] = collapsed
    block["collapse_reasons"] = reasons
    return block, {"edited": edited, "probe_after": after, "nearest_real": nearest}


def evaluate_transfer(
    fclf_edit: EditFn,
    train: EmbeddingSplit,
    val: EmbeddingSplit,
    evaluated: EmbeddingSplit,
    *,
    num_samples: int | None = None,
    transfer_mode: str = "single",
    num_steps: int = 10,
    step_size: float = 0.1,
    seed: int = 0,
    probe_c: float = 1.0,
    collapse_min_distinct: float = 0.5,
    collapse_min_rank_ratio: float = 0.25,
    collapse_max_silhouette: float = 0.9,
    block_size: int = 2048,
) -> EvaluationResult:
    """Evaluate `fclf_edit` and the two baselines on `evaluated` (usually the test split).

    Keyword names match `EvalConfig` fields (minus `split`). `step_size` is
    only recorded: the edit function already integrates with it. Probes are
    fitted here, once, on `train`; baselines are calibrated on `val`.

    Artifacts: source_indices (rows of `evaluated`), source_embeddings,
    source_attributes, source_identities, targets, flipped, probe_before,
    fclf_trajectories (num_steps+1, N, d), attribute_names, and per method m in
    METHODS: edited_<m> (N, d), probe_after_<m> (N, k) and nearest_real_<m>
    (N,) (rows of `evaluated`).
    """
    names = tuple(train.attribute_names)
    for split in (val, evaluated):
        if tuple(split.attribute_names) != names:
            raise ValueError("train, val and evaluated splits must share attribute names")
    probes = AttributeProbes.from_split(train, c=probe_c)

    index = subsample_indices(len(evaluated), num_samples, seed)
    sources = np.ascontiguousarray(evaluated.embeddings[index], np.float32)
    source_attrs = evaluated.attributes[index].astype(np.int8)
    targets = sample_targets(source_attrs, transfer_mode, seed)

    calibration, walks = _calibrated_baselines(
        fclf_edit, train, val, probes, num_samples, transfer_mode, num_steps, seed
    )

    has_ids = evaluated.has_identities
    ctx = _Context(
        names=names,
        probes=probes,
        center=train.embeddings.astype(np.float64).mean(axis=0),
        sources=sources,
        index=index,
        targets=targets,
        flipped=targets != source_attrs,
        before=probes.predict(sources),
        gallery=evaluated.embeddings,
        identities=evaluated.identities if has_ids else None,
        real_rank=effective_rank(sources),
        target_codes=combination_labels(targets),
        source_codes=combination_labels(source_attrs),
        seed=seed,
        thresholds={
            "min_distinct": collapse_min_distinct,
            "min_rank_ratio": collapse_min_rank_ratio,
            "max_silhouette": collapse_max_silhouette,
        },
        block_size=block_size,
    )
    if has_ids:
        if len(index) == len(evaluated):  # sources are the whole gallery: symmetric, half cost
            own_ex = nearest_other(evaluated.embeddings, block_size)
        else:
            _, own_ex = nearest_neighbours(sources, evaluated.embeddings, index, block_size)
        ctx.top1_unedited = identity_top1(own_ex, evaluated.identities[index], evaluated.identities)

    artifacts: dict[str, np.ndarray] = {
        "source_indices": index,
        "source_embeddings": sources,
        "source_attributes": source_attrs,
        "source_identities": evaluated.identities[index],
        "targets": targets,
        "flipped": ctx.flipped,
        "probe_before": ctx.before,
        "attribute_names": np.array(names, dtype=str),
    }
    blocks = {}
    for method in METHODS:
        if method == "fclf":
            traj = run_edit(fclf_edit, sources, targets, num_steps)
            artifacts["fclf_trajectories"] = traj
            edited, steps = traj[-1], step_lengths(traj)
        else:  # same walk as calling the baseline, without materialising its frames
            edited, steps = walks[method].end_and_steps(sources, targets)
        blocks[method], arrays = _score(ctx, edited, steps)
        for key, value in arrays.items():
            artifacts[f"{key}_{method}"] = value

    noop_end = run_edit(fclf_edit, sources, source_attrs, num_steps)[-1]
    metrics = {
        "num_samples": len(index),
        "transfer_mode": transfer_mode,
        "noop_cosine": identity_cosine(sources, noop_end, np.zeros(sources.shape[1])),
        "noop_movement": movement(sources, noop_end),
        "probe_accuracy": {
            name: float((ctx.before[:, j] == source_attrs[:, j]).mean())
            for j, name in enumerate(names)
        },
        "calibration": calibration,
        "settings": {
            "num_samples": num_samples,
            "transfer_mode": transfer_mode,
            "num_steps": num_steps,
            "step_size": step_size,
            "seed": seed,
            "probe_c": probe_c,
            "collapse_min_distinct": collapse_min_distinct,
            "collapse_min_rank_ratio": collapse_min_rank_ratio,
            "collapse_max_silhouette": collapse_max_silhouette,
        },
        **blocks,
    }
    return EvaluationResult(metrics=metrics, artifacts=artifacts, probes=probes)


def _calibrated_baselines(
    fclf_edit: EditFn,
    train: EmbeddingSplit,
    val: EmbeddingSplit,
    probes: AttributeProbes,
    num_samples: int | None,
    transfer_mode: str,
    num_steps: int,
    seed: int,
) -> tuple[dict, dict[str, DirectionWalk]]:
    """Both baselines, with strengths matching FCLF's mean movement on val."""
    index = subsample_indices(len(val), num_samples, seed)
    z = np.ascontiguousarray(val.embeddings[index], np.float32)
    targets = sample_targets(val.attributes[index], transfer_mode, seed)
    goal = movement(z, run_edit(fclf_edit, z, targets, num_steps)[-1])
    walks = {
        "baseline_mean_direction": DirectionWalk(
            mean_directions(train.embeddings, train.attributes), probes.predict, 0.0, num_steps
        ),
        "baseline_conditional_direction": DirectionWalk(
            conditional_directions(probes.weights), probes.predict, 0.0, num_steps
        ),
    }
    report: dict = {"split": "val", "num_samples": len(index), "target_movement": goal}
    for method, walk in walks.items():
        found = calibrate_strength(walk_movement(walk, z, targets), goal)
        walk.strength = found.strength
        report[method] = {
            "strength": found.strength,
            "movement": found.movement,
            "reached": found.reached,
        }
    return report, walks
