"""The attribute-transfer protocol: FCLF, two straight-line baselines and the oracle.

Who sees what (the yardstick must not be gameable):

- the *judge* (balanced linear + small MLP) is fitted on the judge split only;
  no method, baseline or calibration sees it;
- the *baselines* read sources and build directions from their own probes and
  class means fitted on train, and their strength is calibrated on val to move
  points as far as FCLF does there;
- the *oracle* is the synthetic world's exact counterfactual (absent on real data).

Each evaluated split (val: what sweeps select on; test: what is reported) gets,
per method: judge scores, identity, ground-truth distances, movement, collapse
measures and verdict, the no-op check, trade-off curves with their summaries,
and 95 % bootstrap intervals over the split's identities (paired, so
differences between methods get intervals too). Nothing here reads files.
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
from fclf.evaluate.context import SplitContext, seeded_rows
from fclf.evaluate.judge import Judge
from fclf.evaluate.methods import (
    EditFn,
    FixedEdits,
    FlowMethod,
    OracleMethod,
    WalkMethod,
    curve_fractions,
    noop_points,
    run_edit,
)
from fclf.evaluate.metrics import (
    cluster_bootstrap,
    identity_top1,
    movement,
    nearest_neighbours,
    nearest_other,
    percentile_interval,
)
from fclf.evaluate.probes import AttributeProbes
from fclf.evaluate.scoring import noop_scores, score_method
from fclf.evaluate.targets import sample_targets, subsample_indices
from fclf.evaluate.tradeoff import curve_rows, reference_movements, summarise

METHODS = ("oracle", "fclf", "baseline_mean_direction", "baseline_conditional_direction")
BASELINES = ("baseline_mean_direction", "baseline_conditional_direction")
INTERVAL_METRICS = (
    "flip_success_linear", "preservation_linear", "flip_success_mlp", "preservation_mlp",
    "identity_top1", "identity_cosine", "counterfactual_cosine",
    "counterfactual_relative_error", "displacement_cosine", "movement",
)
Truth = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (split rows, targets) -> (N, d)
_COLLAPSE_STREAM, _CURVE_STREAM = 3, 4


@dataclass(frozen=True)
class ProtocolSettings:
    """Keyword names match `EvalConfig` fields; defaults equal the params schema's."""

    num_samples: int | None = None
    transfer_mode: str = "single"
    num_steps: int = 10
    step_size: float = 0.1
    seed: int = 0
    probe_c: float = 1.0
    judge_c: float = 0.01
    collapse_min_distinct: float = 0.5
    collapse_min_neighbourhood: float = 0.2
    collapse_min_coverage: float = 0.2
    collapse_min_density: float = 0.2
    collapse_max_density: float = 2.0
    collapse_max_silhouette: float = 0.9
    neighbourhood_k: int = 10
    coverage_k: int = 5
    collapse_samples: int | None = 2500
    curve_samples: int | None = 300
    bootstrap_resamples: int = 1000
    block_size: int = 2048

    @property
    def thresholds(self) -> dict:
        return {
            "min_distinct": self.collapse_min_distinct,
            "min_neighbourhood": self.collapse_min_neighbourhood,
            "min_coverage": self.collapse_min_coverage,
            "min_density": self.collapse_min_density,
            "max_density": self.collapse_max_density,
            "max_silhouette": self.collapse_max_silhouette,
        }


@dataclass
class SplitResult:
    metrics: dict
    curves: list[dict]
    artifacts: dict[str, np.ndarray] = field(repr=False)
    protocol: dict[str, np.ndarray] = field(repr=False)


@dataclass
class EvaluationResult:
    metrics: dict  # JSON-ready: {"judge": ..., "calibration": ..., "val": ..., "test": ...}
    splits: dict[str, SplitResult] = field(repr=False)


def protocol_arrays(
    split: str, index: np.ndarray, source_attributes: np.ndarray, targets: np.ndarray, names
) -> dict:
    """What `fclf score` needs to put another editor on the same yardstick."""
    return {
        "split": np.array(split),
        "source_rows": np.asarray(index, np.int64),
        "source_attributes": np.asarray(source_attributes, np.int8),
        "targets": np.asarray(targets, np.int8),
        "attribute_names": np.array(names, dtype=str),
    }


def fit_judge(judge_split: EmbeddingSplit, settings: ProtocolSettings) -> Judge:
    """The judge, fitted on the judge split only (deterministic in the seed).

    Fitted on one torch thread: its small MLP's steps are too short for two
    threads to pay off, and on a shared CPU they spin-wait for each other
    (measured: 1-2 s on one thread, up to a minute on two under load).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return Judge.fit(judge_split.embeddings, judge_split.attributes,
                         tuple(judge_split.attribute_names), seed=settings.seed,
                         c=settings.judge_c)
    finally:
        torch.set_num_threads(threads)


def build_context(
    split_name: str, split: EmbeddingSplit, judge: Judge, center: np.ndarray,
    index: np.ndarray, targets: np.ndarray, truth: Truth | None, settings: ProtocolSettings,
) -> SplitContext:
    sources = np.ascontiguousarray(split.embeddings[index], np.float32)
    n = len(index)
    ctx = SplitContext(
        split=split_name, names=tuple(split.attribute_names), judge=judge, center=center,
        index=index, sources=sources, source_attributes=split.attributes[index].astype(np.int8),
        targets=np.asarray(targets, np.int8), gallery=split.embeddings,
        gallery_attributes=split.attributes,
        gallery_identities=split.identities if split.has_identities else None,
        counterfactuals=None if truth is None else np.asarray(truth(index, targets), np.float32),
        collapse_rows=seeded_rows(n, settings.collapse_samples, settings.seed, _COLLAPSE_STREAM),
        curve_rows=seeded_rows(n, settings.curve_samples, settings.seed, _CURVE_STREAM),
        thresholds=settings.thresholds, neighbourhood_k=settings.neighbourhood_k,
        coverage_k=settings.coverage_k, seed=settings.seed, block_size=settings.block_size,
    )
    ctx.before = judge.read(sources)
    if ctx.gallery_identities is not None:
        if n == len(split):  # sources are the whole gallery: symmetric, half the cost
            own_ex = nearest_other(split.embeddings, settings.block_size)
        else:
            _, own_ex = nearest_neighbours(sources, split.embeddings, index, settings.block_size)
        ctx.top1_unedited = identity_top1(own_ex, split.identities[index], split.identities)
    return ctx


def intervals(
    ctx: SplitContext, per_point: dict[str, dict], resamples: int, seed: int
) -> tuple[dict, dict]:
    """95 % intervals per method and for FCLF minus each other method (paired resamples)."""
    columns, nums, dens = [], [], []
    for method, pairs in per_point.items():
        for metric in INTERVAL_METRICS:
            if metric in pairs:
                columns.append((method, metric))
                nums.append(pairs[metric][0])
                dens.append(pairs[metric][1])
    if not columns:
        return {}, {}
    num = np.stack(nums, axis=1).astype(np.float64)
    den = np.stack(dens, axis=1).astype(np.float64)
    samples = cluster_bootstrap(num, den, ctx.clusters, resamples, seed)
    low, high = percentile_interval(samples)
    per_method: dict = {m: {} for m in per_point}
    position = {col: i for i, col in enumerate(columns)}
    for (method, metric), lo, hi in zip(columns, low, high, strict=True):
        per_method[method][metric] = [float(lo), float(hi)]
    point = num.sum(0) / np.where(den.sum(0) > 0, den.sum(0), np.nan)
    comparisons: dict = {}
    for other in per_point:
        if other == "fclf" or "fclf" not in per_point:
            continue
        block = {}
        for metric in INTERVAL_METRICS:
            a, b = position.get(("fclf", metric)), position.get((other, metric))
            if a is None or b is None:
                continue
            diff = samples[:, a] - samples[:, b]
            lo, hi = percentile_interval(diff[:, None])
            block[metric] = {"difference": float(point[a] - point[b]),
                             "low": float(lo[0]), "high": float(hi[0])}
        comparisons[f"fclf_minus_{other}"] = block
    return per_method, comparisons


def evaluate_split(
    ctx: SplitContext, methods: dict, settings: ProtocolSettings
) -> SplitResult:
    """Score every method on one split's context."""
    fractions = curve_fractions(settings.num_steps)
    blocks, per_point, curves = {}, {}, []
    artifacts: dict[str, np.ndarray] = {}
    for name, method in methods.items():
        edited, steps = method.end(ctx.sources, ctx.targets)
        block, pairs, arrays = score_method(ctx, edited, steps)
        noop_end = noop_points(method, ctx.sources, ctx.source_attributes)
        block["noop"] = (noop_scores(ctx, noop_end, block["movement"])
                         if noop_end is not None else None)
        rows = ctx.curve_rows
        frames = method.frames(ctx.sources[rows], ctx.targets[rows], fractions, rows=rows)
        method_curve = curve_rows(ctx, name, fractions, frames)
        curves.extend(method_curve)
        blocks[name], per_point[name] = block, pairs
        for key, value in arrays.items():
            artifacts[f"{key}_{name}"] = value
    references = reference_movements(curves)
    for name in blocks:
        blocks[name]["curve"] = summarise([r for r in curves if r["method"] == name], references)
    per_method, comparisons = intervals(ctx, per_point, settings.bootstrap_resamples,
                                        settings.seed)
    for name, block in blocks.items():
        block["intervals"] = per_method.get(name, {})
    metrics = {"num_samples": len(ctx.index), "transfer_mode": settings.transfer_mode,
               "identity_top1_unedited": ctx.top1_unedited, **blocks,
               "comparisons": comparisons}
    artifacts.update({
        "source_indices": ctx.index, "source_embeddings": ctx.sources,
        "source_attributes": ctx.source_attributes, "targets": ctx.targets,
        "flipped": ctx.flipped, "judge_before": ctx.before["linear"],
        "attribute_names": np.array(ctx.names, dtype=str),
        "source_identities": ctx.clusters,
    })
    protocol = protocol_arrays(ctx.split, ctx.index, ctx.source_attributes, ctx.targets,
                              ctx.names)
    return SplitResult(metrics, curves, artifacts, protocol)


def calibrated_baselines(
    make_fclf_edit: Callable[[int], EditFn], train: EmbeddingSplit, val: EmbeddingSplit,
    settings: ProtocolSettings,
) -> tuple[dict, dict[str, DirectionWalk]]:
    """Both baselines from their own train probes, strengths matching FCLF's movement on val."""
    own = AttributeProbes.from_split(train, c=settings.probe_c)
    index = subsample_indices(len(val), settings.num_samples, settings.seed)
    z = np.ascontiguousarray(val.embeddings[index], np.float32)
    targets = sample_targets(val.attributes[index], settings.transfer_mode, settings.seed)
    fclf_end = run_edit(make_fclf_edit(settings.num_steps), z, targets, settings.num_steps)[-1]
    goal = movement(z, fclf_end)
    steps = settings.num_steps
    walks = {
        "baseline_mean_direction": DirectionWalk(
            mean_directions(train.embeddings, train.attributes), own.predict, 0.0, steps),
        "baseline_conditional_direction": DirectionWalk(
            conditional_directions(own.weights), own.predict, 0.0, steps),
    }
    report: dict = {"split": "val", "num_samples": len(index), "target_movement": goal}
    for method, walk in walks.items():
        found = calibrate_strength(walk_movement(walk, z, targets), goal)
        walk.strength = found.strength
        report[method] = {"strength": found.strength, "movement": found.movement,
                          "reached": found.reached}
    return report, walks


def evaluate_transfer(
    make_fclf_edit: Callable[[int], EditFn],
    train: EmbeddingSplit,
    judge_split: EmbeddingSplit,
    evaluated: dict[str, EmbeddingSplit],
    *,
    truths: dict[str, Truth] | None = None,
    settings: ProtocolSettings | None = None,
) -> EvaluationResult:
    """Evaluate FCLF (`make_fclf_edit(n)` integrates n steps), both baselines and, where
    `truths` has the split, the oracle, on every split of `evaluated` (must include val,
    which also calibrates the baselines)."""
    settings = settings or ProtocolSettings()
    names = tuple(train.attribute_names)
    for split in (judge_split, *evaluated.values()):
        if tuple(split.attribute_names) != names:
            raise ValueError("every split must share the train split's attribute names")
    judge = fit_judge(judge_split, settings)
    center = train.embeddings.astype(np.float64).mean(axis=0)
    calibration, walks = calibrated_baselines(make_fclf_edit, train, evaluated["val"], settings)
    truths = truths or {}
    results = {}
    for split_name, split in evaluated.items():
        index = subsample_indices(len(split), settings.num_samples, settings.seed)
        targets = sample_targets(split.attributes[index], settings.transfer_mode, settings.seed)
        truth = truths.get(split_name)
        ctx = build_context(split_name, split, judge, center, index, targets, truth, settings)
        methods: dict = {}
        if truth is not None:
            methods["oracle"] = OracleMethod(truth, index, settings.num_steps)
        methods["fclf"] = FlowMethod(make_fclf_edit, settings.num_steps)
        for name in BASELINES:
            methods[name] = WalkMethod(walks[name])
        results[split_name] = evaluate_split(ctx, methods, settings)
    report_split = evaluated.get("test", next(iter(evaluated.values())))
    metrics = {
        "judge": {"fitted_on": "judge split", "rows": len(judge_split),
                  "scored_on": "test" if "test" in evaluated else next(iter(evaluated)),
                  **judge.report(report_split.embeddings, report_split.attributes)},
        "calibration": calibration,
        **{name: result.metrics for name, result in results.items()},
    }
    return EvaluationResult(metrics, results)


def read_edits_file(arrays: dict[str, np.ndarray], protocol: dict[str, np.ndarray],
                    dim: int, source: str) -> FixedEdits:
    """Check an `fclf score` edits file against its protocol; ValueError says what is wrong."""
    n = len(protocol["source_rows"])
    if "edited" not in arrays:
        raise ValueError(f"{source}: no 'edited' array (expected (N, d) = ({n}, {dim}) float32)")
    edited = np.asarray(arrays["edited"], np.float32)
    if edited.shape != (n, dim):
        raise ValueError(f"{source}: 'edited' has shape {edited.shape}, expected ({n}, {dim}) "
                         "in the protocol's order")
    if not np.isfinite(edited).all():
        raise ValueError(f"{source}: 'edited' has non-finite values")
    traj = arrays.get("trajectories")
    if traj is not None:
        traj = np.asarray(traj, np.float32)
        if traj.ndim != 3 or traj.shape[1:] != (n, dim) or len(traj) < 2:
            raise ValueError(f"{source}: 'trajectories' has shape {traj.shape}, expected "
                             f"(T+1, {n}, {dim}) with T >= 1")
        if not np.allclose(traj[-1], edited, atol=1e-5):
            raise ValueError(f"{source}: trajectories[-1] differs from 'edited'")
    noop = arrays.get("noop")
    if noop is not None:
        noop = np.asarray(noop, np.float32)
        if noop.shape != (n, dim):
            raise ValueError(f"{source}: 'noop' has shape {noop.shape}, expected ({n}, {dim})")
    return FixedEdits(edited, traj, noop)


def score_edits(
    edits: FixedEdits, train: EmbeddingSplit, judge_split: EmbeddingSplit,
    split_name: str, split: EmbeddingSplit, protocol: dict[str, np.ndarray],
    truth: Truth | None, settings: ProtocolSettings | None = None, judge: Judge | None = None,
) -> SplitResult:
    """Score edits made elsewhere (method name "edits") on exactly the evaluate stage's
    protocol: same judge, sources, targets and measures, with the oracle beside them."""
    settings = settings or ProtocolSettings()
    names = tuple(train.attribute_names)
    if tuple(str(n) for n in protocol["attribute_names"]) != names:
        raise ValueError("the protocol's attributes differ from the data's")
    judge = judge or fit_judge(judge_split, settings)
    center = train.embeddings.astype(np.float64).mean(axis=0)
    index = np.asarray(protocol["source_rows"], np.int64)
    ctx = build_context(split_name, split, judge, center, index, protocol["targets"], truth,
                        settings)
    methods: dict = {}
    if truth is not None:
        methods["oracle"] = OracleMethod(truth, index, settings.num_steps)
    methods["edits"] = edits
    return evaluate_split(ctx, methods, settings)
