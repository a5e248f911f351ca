"""Describe an embeddings data set: attribute rates, dependencies, cone geometry, probe accuracy.

Used to check the synthetic generator against CelebA's statistics and to see
what real CLIP embeddings look like; `fclf data-report` prints it.
"""

from __future__ import annotations

import numpy as np

from fclf.data.embeddings_io import EmbeddingSplit
from fclf.evaluate.probes import AttributeProbes


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


def data_report(splits: dict[str, EmbeddingSplit], probe_c: float = 1.0) -> dict:
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
        truth = test.attributes[:, j]
        row["probe_accuracy_test"] = float((predicted[:, j] == truth).mean())
        row["majority_class_test"] = float(max(truth.mean(), 1 - truth.mean()))
        report["attributes"][name] = row
    report.update(_cosines(test, np.random.default_rng(0)))
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
    lines.append(cos)
    return "\n".join(lines)
