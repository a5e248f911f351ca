"""Trade-off curves: metrics as functions of edit strength (the Latent Transformer protocol).

One point per relative strength s (0..2; 1 = the method's operating point) on
the context's curve subsample (told mode): judge flip success / preservation,
movement, the share of requested attributes pushed past nearly every real face
(`overshoot_rate`) and, with ground truth, the centred counterfactual cosine
and displacement cosine. Past s = 1 an editor overshoots, which the
counterfactual cosine and the overshoot rate show and the judge does not.

Summaries: the area under the flip-vs-preservation Pareto envelope per judge
kind, and every curve read at common movements, i.e. the comparison "at equal
movement": the oracle's (how far the truth moves; synthetic data) and FCLF's
operating point. A curve that never reaches a movement reads None there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from fclf.evaluate.context import SplitContext
from fclf.evaluate.metrics import pareto_area, value_at
from fclf.evaluate.scoring import attribute_scores, realism_scores, truth_scores

CURVE_METRICS = ("movement", "flip_success_linear", "preservation_linear", "flip_success_mlp",
                 "preservation_mlp", "overshoot_rate", "counterfactual_cosine",
                 "displacement_cosine")


def _subcontext(ctx: SplitContext) -> SplitContext:
    """The context restricted to the curve rows (same judge, gallery and thresholds)."""
    rows = ctx.curve_rows
    return dataclasses.replace(
        ctx, index=ctx.index[rows], sources=ctx.sources[rows],
        source_attributes=ctx.source_attributes[rows], request=ctx.request[rows],
        counterfactuals=None if ctx.counterfactuals is None else ctx.counterfactuals[rows],
        collapse_rows=np.arange(len(rows)), curve_rows=np.arange(len(rows)),
        before={kind: reading[rows] for kind, reading in ctx.before.items()},
    )


def curve_rows(
    ctx: SplitContext, method: str, fractions: Sequence[float], frames: Sequence[np.ndarray]
) -> list[dict]:
    """One row per frame: what `dvc plots` draws and what the summaries read."""
    sub = _subcontext(ctx)
    rows = []
    for fraction, points in zip(fractions, frames, strict=False):
        points = np.ascontiguousarray(points, np.float32)
        attrs, _ = attribute_scores(sub, points)
        truth, _ = truth_scores(sub, points)
        realism, _ = realism_scores(sub, points)
        moved = np.linalg.norm(points.astype(np.float64) - sub.sources, axis=1).mean()
        row = {"split": ctx.split, "method": method, "strength": round(float(fraction), 4),
               "movement": float(moved)}
        for key in CURVE_METRICS[1:]:
            row[key] = attrs.get(key, truth.get(key, realism.get(key)))
        rows.append(row)
    return rows


def summarise(rows: list[dict], references: dict[str, float | None]) -> dict:
    """Pareto areas per judge kind and the curve read at each reference movement."""
    out: dict = {}
    for kind in ("linear", "mlp"):
        flip = np.array([r[f"flip_success_{kind}"] for r in rows], np.float64)
        keep = np.array([r[f"preservation_{kind}"] for r in rows], np.float64)
        out[f"pareto_area_{kind}"] = pareto_area(np.nan_to_num(flip), np.nan_to_num(keep))
    moved = np.array([r["movement"] for r in rows])
    for name, reference in references.items():
        at: dict = {"movement": reference}
        for key in CURVE_METRICS[1:]:
            values = [r[key] for r in rows]
            if reference is None or any(v is None for v in values):
                at[key] = None
                continue
            at[key] = value_at(moved, np.array(values, np.float64), reference)
        out[f"at_{name}_movement"] = at
    return out


def reference_movements(curves: list[dict]) -> dict[str, float | None]:
    """Movement at s = 1 of the oracle and of FCLF (None when that method is absent)."""
    out: dict[str, float | None] = {}
    for method in ("oracle", "fclf"):
        rows = [r for r in curves if r["method"] == method and r["strength"] == 1.0]
        out[method] = rows[0]["movement"] if rows else None
    return out
