"""One method's metric block on one split, plus the per-point values its intervals need.

What the attribute scores compare (for each judge kind, linear and mlp):

- `flip_success_<kind>`: over the (point, attribute) pairs the target changes,
  the fraction where the judge's reading of the *edit* equals the target;
- `preservation_<kind>`: over the other pairs, the fraction where the judge's
  reading of the edit equals its reading of the *source* (not the label: a
  judge error on the source is not the edit's fault).

Ground truth (synthetic only, else None): `counterfactual_cosine` (centred
cosine of edit and exact counterfactual), `counterfactual_error` (mean
distance), `counterfactual_relative_error` (sum |edit - cf| / sum |cf - source|:
0 exact, 1 as wrong as not editing), `displacement_cosine` (cosine of the
edit's move and the true move; 0 for a no-op).

Per-point values come back as (numerator, denominator) pairs so that a
bootstrap over identities can recompute every headline number as a ratio of sums.
"""

from __future__ import annotations

import numpy as np

from fclf.evaluate.context import SplitContext
from fclf.evaluate.metrics import (
    centred_cosines,
    collapse_verdict,
    counterfactual_cosine_per_point,
    counterfactual_relative_error_per_point,
    density_coverage,
    displacement_cosine_per_point,
    distinct_fraction,
    effective_rank,
    identity_top1,
    movement,
    nearest_neighbours,
    neighbourhood_preservation,
    silhouettes,
    step_statistics,
    transfer_scores,
)

PerPoint = dict[str, tuple[np.ndarray, np.ndarray]]


def _norms(x: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.asarray(x, np.float64), axis=1)


def attribute_scores(ctx: SplitContext, edited: np.ndarray) -> tuple[dict, PerPoint]:
    """flip_success / preservation per judge kind, overall and per attribute."""
    block: dict = {}
    per_point: PerPoint = {}
    flipped = ctx.flipped
    for kind, after in ctx.judge.read(edited).items():
        before = ctx.before[kind]
        scores = transfer_scores(before, after, ctx.targets, flipped, ctx.names)
        block[f"flip_success_{kind}"] = scores["flip_success"]
        block[f"preservation_{kind}"] = scores["preservation"]
        block[f"flip_success_{kind}_per_attribute"] = scores["flip_success_per_attribute"]
        block[f"preservation_{kind}_per_attribute"] = scores["preservation_per_attribute"]
        hit = (after == ctx.targets) & flipped
        kept = (after == before) & ~flipped
        per_point[f"flip_success_{kind}"] = (hit.sum(1), flipped.sum(1))
        per_point[f"preservation_{kind}"] = (kept.sum(1), (~flipped).sum(1))
    return block, per_point


def truth_scores(ctx: SplitContext, edited: np.ndarray) -> tuple[dict, PerPoint]:
    """Distances to the exact counterfactual (all None on real data)."""
    keys = ("counterfactual_cosine", "counterfactual_error", "counterfactual_relative_error",
            "displacement_cosine")
    if ctx.counterfactuals is None:
        return dict.fromkeys(keys), {}
    cf, src = ctx.counterfactuals, ctx.sources
    ones = np.ones(len(src))
    error, true_move = counterfactual_relative_error_per_point(src, edited, cf)
    per_point = {
        "counterfactual_cosine": (counterfactual_cosine_per_point(edited, cf, ctx.center), ones),
        "counterfactual_error": (error, ones),
        "counterfactual_relative_error": (error, true_move),
        "displacement_cosine": (displacement_cosine_per_point(src, edited, cf), ones),
    }
    block = {key: float(num.sum() / den.sum()) for key, (num, den) in per_point.items()}
    return block, per_point


def identity_scores(
    ctx: SplitContext, edited: np.ndarray, rows: np.ndarray | None = None
) -> tuple[dict, PerPoint, np.ndarray]:
    """identity_top1 (nearest other real image shows the same person), identity_cosine,
    distinct_fraction, on `rows` of the sources (all when None); plus the nearest real
    row of each scored edit. Per-point pairs cover all N points (0/0 outside `rows`)."""
    n = len(edited)
    rows = np.arange(n) if rows is None else rows
    own = ctx.index[rows]
    exclude = own if ctx.gallery_identities is not None else None
    nearest, nearest_ex = nearest_neighbours(edited[rows], ctx.gallery, exclude, ctx.block_size)
    cos = centred_cosines(ctx.sources, edited, ctx.center)
    block = {"identity_cosine": float(cos.mean()), "distinct_fraction": distinct_fraction(nearest)}
    per_point: PerPoint = {"identity_cosine": (cos, np.ones(n))}
    if ctx.gallery_identities is not None:
        ids = ctx.gallery_identities
        same, scored = np.zeros(n), np.zeros(n)
        same[rows] = ids[nearest_ex] == ids[own]
        scored[rows] = 1.0
        block["identity_top1"] = identity_top1(nearest_ex, ids[own], ids)
        per_point["identity_top1"] = (same, scored)
    else:
        block["identity_top1"] = None
    block["identity_top1_unedited"] = ctx.top1_unedited
    return block, per_point, nearest


def collapse_scores(ctx: SplitContext, edited: np.ndarray, distinct: float) -> dict:
    """Measures that collapse (few places) and noise (no structure) cannot both pass."""
    rows = ctx.collapse_rows
    sub, src = edited[rows], ctx.sources[rows]
    codes = ctx.target_codes[rows]
    fidelity = density_coverage(
        ctx.gallery, ctx.gallery_codes, sub, codes, k=ctx.coverage_k, block_size=ctx.block_size
    )
    source_codes = ctx.gallery_codes[ctx.index[rows]]
    by_target, by_source = silhouettes(sub, [codes, source_codes], ctx.block_size)
    real_rank = effective_rank(src)
    block = {
        "neighbourhood_preservation": neighbourhood_preservation(
            src, sub, k=ctx.neighbourhood_k, block_size=ctx.block_size
        ),
        "coverage": fidelity["coverage"],
        "density": fidelity["density"],
        "silhouette_by_target": by_target,
        "silhouette_by_source": by_source,
        "rank_ratio": effective_rank(sub) / real_rank if real_rank else 0.0,
    }
    measures = {**block, "distinct_fraction": distinct}
    collapsed, reasons = collapse_verdict(measures, **ctx.thresholds)
    block["collapsed"] = collapsed
    block["collapse_reasons"] = reasons
    return block


def score_method(
    ctx: SplitContext, edited: np.ndarray, steps: np.ndarray
) -> tuple[dict, PerPoint, dict[str, np.ndarray]]:
    """(metric block, per-point pairs for the bootstrap, per-point arrays for plots)."""
    edited = np.ascontiguousarray(edited, np.float32)
    block, per_point = attribute_scores(ctx, edited)
    truth, truth_points = truth_scores(ctx, edited)
    ident, ident_points, nearest = identity_scores(ctx, edited, ctx.collapse_rows)
    block.update(truth)
    block.update(ident)
    per_point.update(truth_points)
    per_point.update(ident_points)
    moved = _norms(edited - ctx.sources)
    per_point["movement"] = (moved, np.ones(len(moved)))
    block["movement"] = movement(ctx.sources, edited)
    block["mean_step"], block["std_step"] = step_statistics(steps)
    block.update(collapse_scores(ctx, edited, block["distinct_fraction"]))
    nearest_all = np.full(len(edited), -1, np.int64)  # -1: not among the neighbour rows
    nearest_all[ctx.collapse_rows] = nearest
    arrays = {"edited": edited, "judge_after": ctx.judge.read(edited)["linear"],
              "nearest_real": nearest_all}
    return block, per_point, arrays


def noop_scores(ctx: SplitContext, noop_end: np.ndarray, edit_movement: float) -> dict:
    """An edit asked for the attributes a point already has should leave it alone."""
    moved = movement(ctx.sources, noop_end)
    return {
        "cosine": float(centred_cosines(ctx.sources, noop_end, ctx.center).mean()),
        "movement": moved,
        "movement_ratio": moved / edit_movement if edit_movement > 0 else None,
    }
