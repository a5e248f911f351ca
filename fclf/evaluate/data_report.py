"""Describe an embeddings data set: attribute rates, dependencies, cone geometry, probe accuracy.

Used to check the synthetic generator against CelebA's statistics and to see
what real CLIP embeddings look like; `fclf data-report` prints it. Two gaps say
how hard the world is for straight lines:

- judge gap: mean balanced accuracy on test of a small MLP judge minus a
  balanced linear one (both fitted on train here): > 0 means attributes are
  not linearly readable everywhere;
- line gap (synthetic truth only): each straight-line baseline walked as far as
  the exact counterfactual moves, scored against it (relative error 0 = the
  oracle; 1 = as wrong as not editing).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fclf.data.embeddings_io import EmbeddingSplit
from fclf.evaluate.editors import EditBatch, exp_map
from fclf.evaluate.judge import Judge
from fclf.evaluate.metrics import (
    counterfactual_relative_error,
    displacement_cosine,
    identity_top1,
    movement,
    nearest_other,
)
from fclf.evaluate.peers.base import TrainData
from fclf.evaluate.peers.lines import ConditionalDirection, MeanDirection
from fclf.evaluate.probes import AttributeProbes
from fclf.evaluate.request import sample_targets

Truth = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (test rows, targets) -> (N, d)


def _cosines(split: EmbeddingSplit, rng: np.random.Generator, pairs: int = 20000) -> dict:
    e, ids = split.embeddings, split.identities
    i, k = rng.integers(0, len(e), (2, pairs))
    different = (ids[i] != ids[k]) | (ids[i] < 0)
    out = {"cosine_different_people": float((e[i[different]] * e[k[different]]).sum(1).mean())}
    order = np.argsort(ids, kind="stable")
    same = (ids[order][1:] == ids[order][:-1]) & (ids[order][1:] >= 0)
    if same.any():
        a, b = e[order[:-1][same]], e[order[1:][same]]
        out["cosine_same_person"] = float((a * b).sum(1).mean())
    return out


def judge_gap(train: EmbeddingSplit, test: EmbeddingSplit, probe_c: float, seed: int = 0) -> dict:
    """Balanced accuracy on test of the linear and MLP judges (fitted on train)."""
    judge = Judge.fit(train.embeddings, train.attributes, train.attribute_names, seed=seed,
                      c=probe_c)
    report = judge.report(test.embeddings, test.attributes)
    linear, mlp = (report[kind]["mean_balanced_accuracy"] for kind in ("linear", "mlp"))
    gap = None if linear is None or mlp is None else mlp - linear
    return {"balanced_accuracy_linear": linear, "balanced_accuracy_mlp": mlp,
            "mlp_minus_linear": gap}


def line_gap(train: EmbeddingSplit, test: EmbeddingSplit, truth: Truth, probe_c: float,
             seed: int = 0) -> dict:
    """How close each straight line gets to the exact counterfactual when every edit walks
    exactly as far as its own counterfactual (the lines' direction alone is scored)."""
    data = TrainData.of(train)
    index = np.arange(len(test))
    z = np.ascontiguousarray(test.embeddings, np.float32)
    targets = sample_targets(test.attributes, "single", seed)
    cf = np.asarray(truth(index, targets), np.float32)
    angle = np.arccos(np.clip((z.astype(np.float64) * cf).sum(1), -1.0, 1.0))
    batch = EditBatch(z, index, test.attributes.astype(np.int8), targets)
    out: dict = {"oracle_movement": movement(z, cf)}
    for peer in (MeanDirection(data), ConditionalDirection(data, c=probe_c)):
        d = peer.displacement(batch)
        tangent = d - (d * z).sum(1, keepdims=True) * z
        edited = exp_map(z, tangent / np.linalg.norm(tangent, axis=1, keepdims=True)
                         * angle[:, None])
        out[peer.name] = {
            "counterfactual_relative_error": counterfactual_relative_error(z, edited, cf),
            "displacement_cosine": displacement_cosine(z, edited, cf),
        }
    return out


def data_report(
    splits: dict[str, EmbeddingSplit], probe_c: float = 1.0, truth: Truth | None = None,
    judge_c: float = 0.01,
) -> dict:
    """Rates (all splits), P(attr | Male/Female) when Male is an attribute, cosines and
    test accuracy of the evaluation's frozen probes (trained on train)."""
    names = list(splits["train"].attribute_names)
    attrs = np.concatenate([s.attributes for s in splits.values()])
    report: dict = {"rows": {k: len(s) for k, s in splits.items()}, "attributes": {}}
    male = attrs[:, names.index("Male")] == 1 if "Male" in names else None
    probes = AttributeProbes.from_split(splits["train"], c=probe_c)
    test = splits.get("test", splits["train"])
    predicted = probes.predict(test.embeddings)
    for j, name in enumerate(names):
        row = {"rate": float(attrs[:, j].mean())}
        if male is not None and name != "Male":
            row["rate_given_male"] = float(attrs[male, j].mean())
            row["rate_given_female"] = float(attrs[~male, j].mean())
        labels = test.attributes[:, j]
        row["probe_accuracy_test"] = float((predicted[:, j] == labels).mean())
        row["majority_class_test"] = float(max(labels.mean(), 1 - labels.mean()))
        report["attributes"][name] = row
    report.update(_cosines(test, np.random.default_rng(0)))
    if test.has_identities:
        nearest = nearest_other(test.embeddings)
        report["identity_top1_unedited"] = identity_top1(nearest, test.identities, test.identities)
    report["judge_gap"] = judge_gap(splits["train"], test, judge_c)
    if truth is not None:
        report["line_gap"] = line_gap(splits["train"], test, truth, probe_c)
    return report


def format_report(report: dict) -> str:
    lines = [
        "| attribute | rate | P(.given Male) | P(.given Female) | probe acc (test) | majority |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in report["attributes"].items():
        cond = [f"{r[k]:.1%}" if k in r else "-" for k in ("rate_given_male", "rate_given_female")]
        lines.append(
            f"| {name} | {r['rate']:.1%} | {cond[0]} | {cond[1]} | "
            f"{r['probe_accuracy_test']:.3f} | {r['majority_class_test']:.3f} |"
        )
    rows = ", ".join(f"{k} {v}" for k, v in report["rows"].items())
    lines.append("")
    lines.append(f"rows: {rows}")
    cos = f"cosine between different people {report['cosine_different_people']:.3f}"
    if "cosine_same_person" in report:
        cos += f", same person {report['cosine_same_person']:.3f}"
    if report.get("identity_top1_unedited") is not None:
        cos += f"; unedited identity top-1 {report['identity_top1_unedited']:.3f}"
    lines.append(cos)
    gap = report["judge_gap"]
    if gap["mlp_minus_linear"] is not None:
        linear, mlp = gap["balanced_accuracy_linear"], gap["balanced_accuracy_mlp"]
        lines.append(f"judge balanced accuracy (test): linear {linear:.3f}, MLP {mlp:.3f}"
                     f" (gap {gap['mlp_minus_linear']:+.3f})")
    if "line_gap" in report:
        lines.append(f"straight lines at the oracle's movement "
                     f"({report['line_gap']['oracle_movement']:.3f}):")
        for name, row in report["line_gap"].items():
            if isinstance(row, dict):
                lines.append(f"  {name}: counterfactual relative error "
                             f"{row['counterfactual_relative_error']:.3f}, displacement cosine "
                             f"{row['displacement_cosine']:.3f} (oracle: 0, 1)")
    return "\n".join(lines)
