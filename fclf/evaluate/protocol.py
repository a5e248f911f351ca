"""The attribute-transfer protocol: FCLF, its peers, the supervised reference and the oracle.

Who sees what (the yardstick must not be gameable):

- the *judge* (balanced linear + small MLP) and the *typicality* Gaussian
  (`off_manifold`) are fitted on the judge split only; no editor, peer or
  selection sees it;
- the *peers* (`fclf.evaluate.peers`) are trained on train, their
  hyper-parameters chosen on val by the selection rule
  (`fclf.evaluate.selection`), like FCLF's; `best_baseline` is the peer that
  rule picks on val, reported on test;
- the *reference* learned from exact counterfactual pairs (synthetic data
  only): reported, never a baseline, never in the gate;
- the *oracle* is the synthetic world's exact counterfactual (absent on real data).

Each evaluated split (val: what selection uses; test: what is reported) has
one request per row (`fclf.evaluate.request`) and is scored in both modes:
`told` (every editor is given the source's labels: the headline and the gate)
and `blind` (every editor reads the source itself). Per editor and mode: judge
scores, realism, ground-truth distances, identity, movement and the no-op; in
told mode also the neighbour-based collapse measures, identity against the
target gallery and trade-off curves (blind blocks and replicates are light);
95 % bootstrap intervals over the split's identities, paired so that
differences between editors get intervals too. FCLF's extra training seeds
(`replicates`) get light blocks and their own paired comparison with the best
baseline, so a win that another seed reverses is not called a win. Nothing
here reads files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fclf.data.embeddings_io import EmbeddingSplit
from fclf.evaluate.context import SplitContext, Truth, seeded_rows
from fclf.evaluate.editors import EditBatch, FixedEdits, OracleEditor, curve_fractions
from fclf.evaluate.judge import Judge
from fclf.evaluate.metrics import (
    cluster_bootstrap,
    identity_top1,
    nearest_neighbours,
    nearest_other,
    percentile_interval,
)
from fclf.evaluate.metrics.realism import AttributeRange, Typicality
from fclf.evaluate.request import MODES, apply_request, sample_requests, subsample_indices
from fclf.evaluate.scoring import noop_scores, score_method, target_identity_scores
from fclf.evaluate.selection import SelectionRule, select
from fclf.evaluate.tradeoff import curve_rows, reference_movements, summarise

INTERVAL_METRICS = (
    "flip_success_linear", "preservation_linear", "flip_success_mlp", "preservation_mlp",
    "success_linear", "identity_top1_target", "identity_top1_source", "identity_cosine",
    "counterfactual_cosine", "counterfactual_relative_error", "displacement_cosine",
    "movement", "off_manifold", "overshoot_rate",
)
ROLES = ("oracle", "fclf", "peer", "reference", "replicate", "edits")
_COLLAPSE_STREAM, _CURVE_STREAM = 3, 4


@dataclass(frozen=True)
class ProtocolSettings:
    """Keyword names match `EvalConfig` fields; defaults equal the params schema's."""

    num_samples: int | None = None
    transfer_mode: str = "single"
    num_steps: int = 10
    step_size: float = 0.1
    seed: int = 0
    judge_c: float = 0.01
    collapse_min_distinct: float = 0.5
    collapse_min_neighbourhood: float = 0.2
    collapse_min_coverage: float = 0.2
    collapse_min_density: float = 0.2
    collapse_max_density: float = 2.0
    collapse_max_silhouette: float = 0.9
    max_off_manifold: float = 1.25
    max_overshoot_rate: float = 0.05
    overshoot_quantile: float = 0.99
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

    @property
    def realism_limits(self) -> dict:
        return {"max_off_manifold": self.max_off_manifold,
                "max_overshoot_rate": self.max_overshoot_rate}


@dataclass(frozen=True)
class Yardstick:
    """What scores edits and was fitted on nothing any editor sees: the judge and the
    typicality Gaussian (judge split), and the train mean that centres cosines."""

    judge: Judge
    typicality: Typicality
    center: np.ndarray

    @classmethod
    def fit(cls, judge_split: EmbeddingSplit, train: EmbeddingSplit,
            settings: ProtocolSettings, judge: Judge | None = None) -> Yardstick:
        return cls(judge or fit_judge(judge_split, settings),
                   Typicality.fit(judge_split.embeddings),
                   train.embeddings.astype(np.float64).mean(axis=0))


@dataclass
class Entry:
    """One row of the table: an editor per mode (None: not scored in that mode)."""

    name: str
    role: str
    editors: dict[str, Any]
    full: bool = True  # told mode: neighbour-based measures and curves too
    meta: dict = field(default_factory=dict)  # copied into its blocks (e.g. the seed)

    @classmethod
    def both(cls, name: str, role: str, editor: Any, full: bool = True,
             meta: dict | None = None) -> Entry:
        return cls(name, role, dict.fromkeys(MODES, editor), full, dict(meta or {}))


@dataclass
class SplitResult:
    metrics: dict  # {"told": {...}, "blind": {...}}
    curves: list[dict]
    artifacts: dict[str, np.ndarray] = field(repr=False)
    protocol: dict[str, dict[str, np.ndarray]] = field(repr=False)  # mode -> arrays


@dataclass
class EvaluationResult:
    metrics: dict  # JSON-ready: {"judge": ..., "val": {told, blind}, "test": {told, blind}}
    splits: dict[str, SplitResult] = field(repr=False)


def protocol_arrays(split: str, mode: str, index: np.ndarray, request: np.ndarray,
                    source_attributes: np.ndarray, names) -> dict:
    """What `fclf score` gives another editor in `mode`: the rows and the requested change;
    in told mode also the source labels (blind editors must read the source themselves)."""
    arrays = {
        "split": np.array(split),
        "mode": np.array(mode),
        "source_rows": np.asarray(index, np.int64),
        "request": np.asarray(request, np.int8),
        "attribute_names": np.array(names, dtype=str),
    }
    if mode == "told":
        arrays["source_attributes"] = np.asarray(source_attributes, np.int8)
    return arrays


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
    split_name: str, split: EmbeddingSplit, yardstick: Yardstick, index: np.ndarray,
    request: np.ndarray, truth: Truth | None, settings: ProtocolSettings,
) -> SplitContext:
    sources = np.ascontiguousarray(split.embeddings[index], np.float32)
    n = len(index)
    ctx = SplitContext(
        split=split_name, names=tuple(split.attribute_names), judge=yardstick.judge,
        typicality=yardstick.typicality, center=yardstick.center, index=index,
        sources=sources, source_attributes=split.attributes[index].astype(np.int8),
        request=np.asarray(request, np.int8), gallery=split.embeddings,
        gallery_attributes=split.attributes,
        gallery_identities=split.identities if split.has_identities else None,
        truth=truth,
        collapse_rows=seeded_rows(n, settings.collapse_samples, settings.seed, _COLLAPSE_STREAM),
        curve_rows=seeded_rows(n, settings.curve_samples, settings.seed, _CURVE_STREAM),
        thresholds=settings.thresholds, realism_limits=settings.realism_limits,
        overshoot_quantile=settings.overshoot_quantile,
        neighbourhood_k=settings.neighbourhood_k, coverage_k=settings.coverage_k,
        seed=settings.seed, block_size=settings.block_size,
    )
    ctx.before = yardstick.judge.read(sources)
    ctx.attribute_range = AttributeRange.of(yardstick.judge.linear.logits(split.embeddings),
                                            split.attributes)
    if truth is not None:
        ctx.counterfactuals = np.asarray(truth(index, ctx.targets), np.float32)
    if ctx.gallery_identities is not None:
        if n == len(split):  # sources are the whole gallery: symmetric, half the cost
            own_ex = nearest_other(split.embeddings, settings.block_size)
        else:
            _, own_ex = nearest_neighbours(sources, split.embeddings, index, settings.block_size)
        ctx.top1_unedited = identity_top1(own_ex, split.identities[index], split.identities)
    return ctx


def intervals(
    ctx: SplitContext, per_point: dict[str, dict], resamples: int, seed: int,
    pairs: list[tuple[str, str]],
) -> tuple[dict, dict]:
    """95 % intervals per editor, and paired ones for each (a, b) in `pairs` (a minus b)."""
    columns, nums, dens = [], [], []
    for method, values in per_point.items():
        for metric in INTERVAL_METRICS:
            if metric in values:
                columns.append((method, metric))
                nums.append(values[metric][0])
                dens.append(values[metric][1])
    if not columns:
        return {}, {}
    num = np.stack(nums, axis=1).astype(np.float64)
    den = np.stack(dens, axis=1).astype(np.float64)
    samples = cluster_bootstrap(num, den, ctx.clusters, resamples, seed)
    low, high = percentile_interval(samples)
    per_method: dict = {m: {} for m in per_point}
    position = {col: i for i, col in enumerate(columns)}
    for (method, metric), lo, hi in zip(columns, low, high, strict=True):
        if np.isfinite(lo) and np.isfinite(hi):
            per_method[method][metric] = [float(lo), float(hi)]
    with np.errstate(divide="ignore", invalid="ignore"):
        point = num.sum(0) / np.where(den.sum(0) > 0, den.sum(0), np.nan)
    comparisons: dict = {}
    for a_name, b_name in pairs:
        block = {}
        for metric in INTERVAL_METRICS:
            a, b = position.get((a_name, metric)), position.get((b_name, metric))
            if a is None or b is None or not np.isfinite(point[a] - point[b]):
                continue
            lo, hi = percentile_interval((samples[:, a] - samples[:, b])[:, None])
            block[metric] = {"difference": float(point[a] - point[b]),
                             "low": float(lo[0]), "high": float(hi[0])}
        comparisons[f"{a_name}_minus_{b_name}"] = block
    return per_method, comparisons


def _noop(editor: Any, batch: EditBatch) -> np.ndarray | None:
    if isinstance(editor, FixedEdits):
        return editor.noop
    return editor.end(batch.noop())[0]


def _score_mode(ctx: SplitContext, entries: list[Entry], mode: str, fractions: list[float],
                curves: list[dict], artifacts: dict) -> tuple[dict, dict]:
    blocks, per_point, edits = {}, {}, {}
    for entry in entries:
        editor = entry.editors.get(mode)
        if editor is None or (entry.role == "oracle" and mode != "told"):
            continue  # the oracle knows the labels: its told block stands for both modes
        # blind: the editor's own reading (edits made elsewhere keep theirs to themselves)
        reads = mode != "told" and not isinstance(editor, FixedEdits)
        source = editor.read(ctx.sources) if reads else ctx.source_attributes
        batch = EditBatch(ctx.sources, ctx.index, np.asarray(source, np.int8),
                          apply_request(ctx.request, source))
        edited, steps = editor.end(batch)
        full = entry.full and mode == "told"
        block, points, arrays = score_method(ctx, edited, steps, full)
        noop_end = _noop(editor, batch)
        block["noop"] = (noop_scores(ctx, noop_end, block["movement"])
                         if noop_end is not None else None)
        block = {"role": entry.role, **entry.meta, **block}
        if full:
            rows = ctx.curve_rows
            frames = editor.frames(batch.subset(rows), fractions)
            curves.extend(curve_rows(ctx, entry.name, fractions, frames))
            for key, value in arrays.items():
                artifacts[f"{key}_{entry.name}"] = value
        blocks[entry.name], per_point[entry.name] = block, points
        if full:  # light blocks (blind mode, replicate seeds) skip the gallery search
            edits[entry.name] = edited
    for name, (block, points) in target_identity_scores(ctx, edits).items():
        blocks[name].update(block)
        per_point[name].update(points)
    return blocks, per_point


def _pairs(blocks: Mapping[str, dict], best_baseline: str | None) -> list[tuple[str, str]]:
    """fclf minus every other editor; every extra seed minus the best baseline."""
    pairs = [("fclf", other) for other in blocks if other != "fclf" and "fclf" in blocks]
    if best_baseline in blocks:
        pairs += [(name, best_baseline) for name, b in blocks.items()
                  if b["role"] == "replicate"]
    if "edits" in blocks:
        pairs += [("edits", other) for other in blocks if other != "edits"]
    return pairs


def seed_summary(blocks: Mapping[str, dict], comparisons: Mapping[str, dict],
                 best_baseline: str | None) -> dict | None:
    """FCLF's training seeds side by side: the headline numbers per seed, their spread, and
    each seed's paired difference with the best baseline; `verdict` is "win" only when
    every seed's interval of the counterfactual error (with the truth; else success)
    lies on FCLF's side of 0, "loss" when every one lies on the other side."""
    names = ["fclf", *(n for n, b in blocks.items() if b["role"] == "replicate")]
    if "fclf" not in blocks:
        return None
    out: dict = {"editors": names, "seeds": [blocks[n].get("seed") for n in names]}
    for key in ("counterfactual_relative_error", "flip_success_linear", "preservation_linear",
                "success_linear", "off_manifold"):
        values = [blocks[n].get(key) for n in names]
        out[key] = values
        finite = [v for v in values if v is not None]
        out[f"{key}_spread"] = [min(finite), max(finite)] if finite else None
    if best_baseline is None or best_baseline not in blocks:
        out["verdict"] = None
        return out
    truth = blocks["fclf"].get("counterfactual_relative_error") is not None
    metric, better = (("counterfactual_relative_error", -1) if truth
                      else ("success_linear", 1))
    diffs = [comparisons.get(f"{n}_minus_{best_baseline}", {}).get(metric) for n in names]
    out["versus_best_baseline"] = {"baseline": best_baseline, "metric": metric,
                                   "differences": diffs}
    if any(d is None for d in diffs):
        out["verdict"] = None
    elif all((d["high"] < 0) if better < 0 else (d["low"] > 0) for d in diffs):
        out["verdict"] = "win"
    elif all((d["low"] > 0) if better < 0 else (d["high"] < 0) for d in diffs):
        out["verdict"] = "loss"
    else:
        out["verdict"] = "undecided"
    return out


def score_split(
    ctx: SplitContext, entries: list[Entry], settings: ProtocolSettings,
    best_baseline: str | Callable[[dict], str | None] | None = None,
) -> SplitResult:
    """Score every entry on one split's context, in both modes. `best_baseline` names the
    peer the comparisons and seed verdicts are made against, or picks it from the told
    blocks (with their curve summaries) once they are scored."""
    fractions = curve_fractions(settings.num_steps)
    curves: list[dict] = []
    artifacts: dict[str, np.ndarray] = {}
    metrics: dict = {}
    per_point_by_mode: dict = {}
    for mode in MODES:
        blocks, per_point = _score_mode(ctx, entries, mode, fractions, curves, artifacts)
        for entry in entries:  # the oracle's told block stands for both modes
            if entry.role == "oracle" and mode != "told" and entry.name in metrics["told"]:
                blocks = {entry.name: metrics["told"][entry.name], **blocks}
                per_point = {entry.name: per_point_by_mode["told"][entry.name], **per_point}
        if mode == "told":
            references = reference_movements(curves)
            for name, block in blocks.items():
                rows = [r for r in curves if r["method"] == name]
                block["curve"] = summarise(rows, references) if rows else None
        metrics[mode] = blocks
        per_point_by_mode[mode] = per_point
    if callable(best_baseline):
        best_baseline = best_baseline(metrics["told"])
    for mode in MODES:
        blocks = metrics[mode]
        per_method, comparisons = intervals(ctx, per_point_by_mode[mode],
                                            settings.bootstrap_resamples, settings.seed,
                                            _pairs(blocks, best_baseline))
        for name, block in blocks.items():
            block["intervals"] = per_method.get(name, {})
        metrics[mode] = {
            "num_samples": len(ctx.index), "transfer_mode": settings.transfer_mode,
            "identity_top1_source_unedited": ctx.top1_unedited,
            "best_baseline": best_baseline, **blocks, "comparisons": comparisons,
            "seeds": seed_summary(blocks, comparisons, best_baseline),
        }
    artifacts.update({
        "source_indices": ctx.index, "source_embeddings": ctx.sources,
        "source_attributes": ctx.source_attributes, "targets": ctx.targets,
        "request": ctx.request, "flipped": ctx.flipped, "judge_before": ctx.before["linear"],
        "attribute_names": np.array(ctx.names, dtype=str), "source_identities": ctx.clusters,
    })
    protocol = {mode: protocol_arrays(ctx.split, mode, ctx.index, ctx.request,
                                      ctx.source_attributes, ctx.names) for mode in MODES}
    return SplitResult(metrics, curves, artifacts, protocol)


def split_request(split: EmbeddingSplit, settings: ProtocolSettings) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """(rows, requests) of an evaluated split: the protocol's seeded draw."""
    index = subsample_indices(len(split), settings.num_samples, settings.seed)
    return index, sample_requests(split.attributes[index], settings.transfer_mode, settings.seed)


def best_peer(told_blocks: Mapping[str, dict], rule: SelectionRule) -> str | None:
    """The peer the selection rule picks among the given val told-mode blocks."""
    peers = {n: b for n, b in told_blocks.items() if isinstance(b, dict)
             and b.get("role") == "peer"}
    return select(peers, rule).name if peers else None


def evaluate_transfer(
    entries: Callable[[str], list[Entry]],
    train: EmbeddingSplit,
    yardstick: Yardstick,
    evaluated: dict[str, EmbeddingSplit],
    *,
    truths: dict[str, Truth] | None = None,
    settings: ProtocolSettings | None = None,
    rule: SelectionRule | None = None,
) -> EvaluationResult:
    """Score `entries(split)` (the editors; the oracle is added where `truths` has the split)
    on every split of `evaluated` (val first: it picks `best_baseline`, which test reports)."""
    settings = settings or ProtocolSettings()
    rule = rule or SelectionRule()
    names = tuple(train.attribute_names)
    for split in evaluated.values():
        if tuple(split.attribute_names) != names:
            raise ValueError("every split must share the train split's attribute names")
    truths = truths or {}
    order = sorted(evaluated, key=lambda s: s != "val")
    results: dict[str, SplitResult] = {}
    best: str | None = None
    for split_name in order:
        split = evaluated[split_name]
        index, request = split_request(split, settings)
        truth = truths.get(split_name)
        ctx = build_context(split_name, split, yardstick, index, request, truth, settings)
        roster = list(entries(split_name))
        if truth is not None:
            roster.insert(0, Entry.both("oracle", "oracle",
                                        OracleEditor(truth, settings.num_steps)))
        if split_name == "val":
            results[split_name] = score_split(ctx, roster, settings,
                                              lambda told: best_peer(told, rule))
            best = results[split_name].metrics["told"]["best_baseline"]
        else:
            results[split_name] = score_split(ctx, roster, settings, best)
    report_split = evaluated.get("test", next(iter(evaluated.values())))
    metrics = {
        "judge": {"fitted_on": "judge split",
                  "scored_on": "test" if "test" in evaluated else next(iter(evaluated)),
                  **yardstick.judge.report(report_split.embeddings, report_split.attributes)},
        **{name: results[name].metrics for name in evaluated},
    }
    return EvaluationResult(metrics, results)


def score_external(
    editors: dict[str, FixedEdits], train: EmbeddingSplit, yardstick: Yardstick,
    split_name: str, split: EmbeddingSplit, index: np.ndarray, request: np.ndarray,
    truth: Truth | None, settings: ProtocolSettings | None = None,
) -> SplitResult:
    """Score edits made elsewhere (editor name "edits"; `editors` maps a mode to its
    edits) on exactly the evaluate stage's rows and requests: same judge, truth and
    measures, with the oracle beside them."""
    settings = settings or ProtocolSettings()
    ctx = build_context(split_name, split, yardstick, np.asarray(index, np.int64), request,
                        truth, settings)
    roster = [Entry("edits", "edits", dict(editors))]
    if truth is not None:
        roster.insert(0, Entry.both("oracle", "oracle", OracleEditor(truth, settings.num_steps)))
    return score_split(ctx, roster, settings)


def read_edits_file(arrays: dict[str, np.ndarray], rows: np.ndarray, dim: int,
                    source: str) -> FixedEdits:
    """Check an `fclf score` edits file against its protocol's rows; ValueError says what is
    wrong."""
    n = len(rows)
    if "edited" not in arrays:
        raise ValueError(f"{source}: no 'edited' array (expected (N, d) = ({n}, {dim}) float32)")
    edited = _float_array(arrays, "edited", source)
    if edited.shape != (n, dim):
        raise ValueError(f"{source}: 'edited' has shape {edited.shape}, expected ({n}, {dim}) "
                         "in the protocol's order")
    if not np.isfinite(edited).all():
        raise ValueError(f"{source}: 'edited' has non-finite values")
    traj = arrays.get("trajectories")
    if traj is not None:
        traj = _float_array(arrays, "trajectories", source)
        if traj.ndim != 3 or traj.shape[1:] != (n, dim) or len(traj) < 2:
            raise ValueError(f"{source}: 'trajectories' has shape {traj.shape}, expected "
                             f"(T+1, {n}, {dim}) with T >= 1")
        if not np.isfinite(traj).all():
            raise ValueError(f"{source}: 'trajectories' has non-finite values")
        if not np.allclose(traj[-1], edited, atol=1e-5):
            raise ValueError(f"{source}: trajectories[-1] differs from 'edited'")
    noop = arrays.get("noop")
    if noop is not None:
        noop = _float_array(arrays, "noop", source)
        if noop.shape != (n, dim):
            raise ValueError(f"{source}: 'noop' has shape {noop.shape}, expected ({n}, {dim})")
        if not np.isfinite(noop).all():
            raise ValueError(f"{source}: 'noop' has non-finite values")
    return FixedEdits(np.asarray(rows, np.int64), edited, traj, noop)


def _float_array(arrays: dict[str, np.ndarray], key: str, source: str) -> np.ndarray:
    value = np.asarray(arrays[key])
    if value.dtype.kind not in "fiu":
        raise ValueError(f"{source}: '{key}' holds {value.dtype} values, expected float32 numbers")
    return value.astype(np.float32)
