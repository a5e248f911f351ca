"""One method's metric block on one split, plus the per-point values its intervals need.

What the attribute scores compare (for each judge kind, linear and mlp):

- `flip_success_<kind>`: over the (point, attribute) pairs the target changes,
  the fraction where the judge's reading of the *edit* equals the target;
- `preservation_<kind>`: over the other pairs, the fraction where the judge's
  reading of the edit equals its reading of the *source* (not the label: a
  judge error on the source is not the edit's fault).

- `success_<kind>`: the share of rows where the judge reads every requested
  attribute as the target and every other one as on the source (the
  truth-free selection score, `fclf.evaluate.selection`).

Ground truth (synthetic only, else None): `counterfactual_cosine` (centred
cosine of edit and exact counterfactual), `counterfactual_error` (mean
distance), `counterfactual_relative_error` (sum |edit - cf| / sum |cf - source|:
0 exact, 1 as wrong as not editing), `displacement_cosine` (cosine of the
edit's move and the true move; 0 for a no-op).

Realism (truth-free, `fclf.evaluate.metrics.realism`): `off_manifold`,
`overshoot_rate`, `reach`, and the verdict `realistic` with its reasons.

Identity: `identity_top1_target` retrieves the source person among images of
the split's people that carry the *target* attributes (synthetic: their exact
counterfactuals; real data: their real photos with those attributes, scoring
only rows whose person has one), so not editing does not pay;
`identity_top1_source` (the old `identity_top1`, a diagnostic) retrieves among
the real, unedited split, which rewards standing still.

Per-point values come back as (numerator, denominator) pairs so that a
bootstrap over identities can recompute every headline number as a ratio of sums.
"""

from __future__ import annotations

import numpy as np
import torch

from fclf.evaluate.context import SplitContext
from fclf.evaluate.metrics import (
    centred_cosines,
    collapse_verdict,
    combination_labels,
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
from fclf.evaluate.metrics.realism import overshoot_per_point

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
        success = (hit | ~flipped).all(1) & (kept | flipped).all(1)
        per_point[f"success_{kind}"] = (success.astype(np.float64), np.ones(len(success)))
        block[f"success_{kind}"] = float(success.mean()) if len(success) else None
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
    """identity_top1_source (the nearest other real, unedited image shows the same person),
    identity_cosine, distinct_fraction, on `rows` of the sources (all when None); plus the
    nearest real row of each scored edit. Per-point pairs cover all N points (0/0 outside
    `rows`)."""
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
        block["identity_top1_source"] = identity_top1(nearest_ex, ids[own], ids)
        per_point["identity_top1_source"] = (same, scored)
    else:
        block["identity_top1_source"] = None
    block["identity_top1_source_unedited"] = ctx.top1_unedited
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


def realism_scores(ctx: SplitContext, edited: np.ndarray) -> tuple[dict, PerPoint]:
    """off_manifold, overshoot_rate and reach (see `fclf.evaluate.metrics.realism`), and
    the verdict: `realistic` unless either exceeds `ctx.realism_limits`."""
    energy_edit, energy_source = ctx.typicality.energy(edited), ctx.source_energy
    logits = ctx.judge.linear.logits(edited)
    reach = ctx.attribute_range.percentile(logits, ctx.targets, ctx.flipped)
    over, scored, reach_sum = overshoot_per_point(reach, ctx.flipped, ctx.overshoot_quantile)
    per_point: PerPoint = {
        "off_manifold": (energy_edit, energy_source),
        "overshoot_rate": (over, scored),
        "reach": (reach_sum, scored),
    }
    block = {key: (float(num.sum() / den.sum()) if den.sum() > 0 else None)
             for key, (num, den) in per_point.items()}
    reasons = []
    for key, limit in (("off_manifold", ctx.realism_limits.get("max_off_manifold")),
                       ("overshoot_rate", ctx.realism_limits.get("max_overshoot_rate"))):
        value = block[key]
        if limit is not None and value is not None and not value <= limit:
            reasons.append(f"{key} {value:.3f} > {limit:g}")
    block["realistic"] = not reasons
    block["realism_reasons"] = reasons
    return block, per_point


def _nearest_rows(queries: np.ndarray, gallery: torch.Tensor, exclude: np.ndarray | None,
                  block: int = 1024) -> np.ndarray:
    """Index of each query's most similar gallery row (gallery rows are unit vectors, so the
    largest dot product is the largest cosine); `exclude[i]` is never query i's answer."""
    q = torch.as_tensor(np.ascontiguousarray(queries, np.float32))
    out = np.empty(len(q), np.int64)
    for start in range(0, len(q), block):
        sims = q[start : start + block] @ gallery.T
        if exclude is not None:
            own = torch.as_tensor(exclude[start : start + block])
            sims[torch.arange(len(own)), own] = -torch.inf
        out[start : start + block] = sims.argmax(dim=1).numpy()
    return out


def target_identity_scores(
    ctx: SplitContext, edits: dict[str, np.ndarray]
) -> dict[str, tuple[dict, PerPoint]]:
    """identity_top1_target of several editors' edits at once (see the module doc).

    One pass over the target codes of the neighbour rows: each code's gallery (the
    people of the split carrying those attributes) is built once per split and searched
    by the edits of every editor at once.
    """
    names = list(edits)
    if not names:
        return {}
    if ctx.gallery_identities is None:
        return {name: ({"identity_top1_target": None, "identity_scored_fraction": 0.0}, {})
                for name in names}
    n, rows, ids = len(ctx.index), ctx.collapse_rows, ctx.gallery_identities
    hits = {name: np.zeros(n) for name in names}
    scored_all = np.zeros(n)
    codes = combination_labels(ctx.targets[rows])
    for code in np.unique(codes):
        picked = rows[codes == code]
        gallery, gallery_rows = ctx.target_gallery(ctx.targets[picked[0]])
        person = ids[ctx.index[picked]]
        if ctx.truth is not None:  # every row is in the gallery: never answer with its own
            exclude, scored = ctx.index[picked], np.ones(len(picked), bool)
        else:  # real photos with the target code: the source's own photo is never among them
            exclude, scored = None, np.isin(person, ids[gallery_rows])
        if len(gallery) < 2 or not scored.any():
            continue
        queries = np.concatenate([edits[name][picked] for name in names])
        found = _nearest_rows(queries, torch.as_tensor(gallery),
                              None if exclude is None else np.tile(exclude, len(names)))
        same = (ids[gallery_rows[found]] == np.tile(person, len(names))).reshape(len(names), -1)
        for i, name in enumerate(names):
            hits[name][picked] = same[i] & scored
        scored_all[picked] = scored
    total = scored_all.sum()
    return {name: ({"identity_top1_target": float(hits[name].sum() / total) if total else None,
                    "identity_scored_fraction": float(total / len(rows))},
                   {"identity_top1_target": (hits[name], scored_all)}) for name in names}


def score_method(
    ctx: SplitContext, edited: np.ndarray, steps: np.ndarray | None, full: bool = True
) -> tuple[dict, PerPoint, dict[str, np.ndarray]]:
    """(metric block, per-point pairs for the bootstrap, per-point arrays for plots).

    Every block has the attribute, ground-truth, realism and movement scores; `full`
    adds the neighbour-based ones (source-gallery identity, collapse measures and
    verdict), which cost most. `identity_top1_target` is added by the caller
    (`target_identity_scores` scores every editor's edits in one pass).
    """
    edited = np.ascontiguousarray(edited, np.float32)
    block, per_point = attribute_scores(ctx, edited)
    truth, truth_points = truth_scores(ctx, edited)
    realism, realism_points = realism_scores(ctx, edited)
    block.update(truth)
    block.update(realism)
    per_point.update(truth_points)
    per_point.update(realism_points)
    moved = _norms(edited - ctx.sources)
    per_point["movement"] = (moved, np.ones(len(moved)))
    block["movement"] = movement(ctx.sources, edited)
    block["mean_step"], block["std_step"] = (step_statistics(steps) if steps is not None
                                             else (None, None))
    arrays = {"edited": edited, "judge_after": ctx.judge.read(edited)["linear"]}
    if not full:
        block["collapsed"] = None
        return block, per_point, arrays
    ident, ident_points, nearest = identity_scores(ctx, edited, ctx.collapse_rows)
    block.update(ident)
    per_point.update(ident_points)
    block.update(collapse_scores(ctx, edited, block["distinct_fraction"]))
    nearest_all = np.full(len(edited), -1, np.int64)  # -1: not among the neighbour rows
    nearest_all[ctx.collapse_rows] = nearest
    arrays["nearest_real"] = nearest_all
    return block, per_point, arrays


def noop_scores(ctx: SplitContext, noop_end: np.ndarray, edit_movement: float) -> dict:
    """The editor's answer to the no-op request (change nothing) should leave points alone."""
    moved = movement(ctx.sources, noop_end)
    return {
        "cosine": float(centred_cosines(ctx.sources, noop_end, ctx.center).mean()),
        "movement": moved,
        "movement_ratio": moved / edit_movement if edit_movement > 0 else None,
    }
