"""The output of `fclf transfer`: the JSON of `--json` and the human-readable table.

`path_to_json` gives {"source": ..., "target": {attr: 0|1}, "steps": [...]}, where "source"
(`source_json`) says where the face came from, its attributes and who said so (probe or
given; `overridden`: the given values the probes read the other way), and each step has the
probes' probabilities, the cosine to the source and the nearest real face (id, identity,
cosine); `format_table` gives the same as a table, and `override_notes` says what each
overridden value does to the edit. Pure: dicts and a `TransferPath` in, dicts and strings out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fclf.cli.transfer.edit import TransferPath
from fclf.cli.transfer.inputs import SourceReading


def _rounded(value: float) -> float:
    return round(float(value), 6)


def path_to_json(source: Mapping[str, Any], path: TransferPath) -> dict[str, Any]:
    """{"source": ..., "target": {attr: 0|1}, "steps": [...]} (see the module docstring)."""
    names = path.attribute_names
    steps = [
        {
            "step": k,
            "probabilities": {n: _rounded(p) for n, p in zip(names, probs, strict=True)},
            "cosine_to_source": _rounded(path.cosine_to_source[k]),
            "nearest_id": path.nearest_ids[k],
            "nearest_identity": path.nearest_identities[k],
            "nearest_cosine": _rounded(path.nearest_cosine[k]),
        }
        for k, probs in enumerate(path.probabilities)
    ]
    return {
        "source": dict(source),
        "target": {n: int(v) for n, v in zip(names, path.target, strict=True)},
        "steps": steps,
    }


def source_json(
    names: Sequence[str], reading: SourceReading, *, image_id: str | None = None,
    split: str | None = None, identity: int | None = None, labels: np.ndarray | None = None,
    image: str | None = None,
) -> dict[str, Any]:
    """The "source" block: where it came from, its attributes and who said so."""
    out: dict[str, Any] = (
        {"kind": "image_id", "image_id": image_id, "split": split, "identity": identity}
        if image is None else {"kind": "image", "path": image}
    )
    out["attributes"] = {n: int(v) for n, v in zip(names, reading.attributes, strict=True)}
    out["attributes_from"] = {
        n: "given" if g else "probe" for n, g in zip(names, reading.given, strict=True)
    }
    out["probabilities"] = {
        n: _rounded(p) for n, p in zip(names, reading.probabilities, strict=True)
    }
    out["overridden"] = {
        n: {"given": int(a), "probe_reading": int(r), "probability": _rounded(p)}
        for n, a, r, p, o in zip(names, reading.attributes, reading.probe_reading,
                                 reading.probabilities, reading.overridden, strict=True)
        if o
    }
    if labels is not None:
        out["labels"] = {n: int(v) for n, v in zip(names, labels, strict=True)}
    return out


def override_notes(source: Mapping[str, Any], target: Mapping[str, int]) -> list[str]:
    """One sentence per `--source-attr` value that the probes read the other way, saying what
    the flow does with it (it is told the given value: delta = target - given)."""
    notes = []
    for name, o in source.get("overridden", {}).items():
        given, read, t = o["given"], o["probe_reading"], int(target[name])
        head = f"{name}: you said {given}, the probes read {read} (p={o['probability']:.2f})"
        if t == given:
            notes.append(
                f"{head}: kept as given means delta 0, so the flow does not move {name} and "
                f"the face keeps what the probes read; to move it towards {given}, drop "
                f"--source-attr {name} and --set {name}={given}"
            )
        else:
            notes.append(
                f"{head}: the flow is told {given}->{t} and pushes {name} towards {t}, "
                "which the probes already read"
            )
    return notes


def describe_source(source: Mapping[str, Any]) -> str:
    if source["kind"] == "image":
        return f"image {source['path']}"
    who = f", identity {source['identity']}" if source.get("identity") is not None else ""
    return f"{source['split']} {source['image_id']}{who}"


def format_table(source: Mapping[str, Any], path: TransferPath) -> str:
    """The human-readable output: source, target, then one row per step."""
    names = path.attribute_names
    src = source["attributes"]
    reading = ", ".join(
        f"{n} {src[n]} (given; probe {source['probabilities'][n]:.2f})"
        if source["attributes_from"][n] == "given"
        else f"{n} {src[n]} (probe {source['probabilities'][n]:.2f})"
        for n in names
    )
    changes = ", ".join(
        f"{n} {src[n]}->{int(t)}" for n, t in zip(names, path.target, strict=True)
        if int(t) != src[n]
    )
    headers = [
        f"{n}->{int(t)}" if int(t) != src[n] else n
        for n, t in zip(names, path.target, strict=True)
    ]
    widths = [max(len(h), 5) for h in headers]
    id_width = max(10, *(len(i) for i in path.nearest_ids))
    notes = override_notes(source, dict(zip(names, path.target.tolist(), strict=True)))
    lines = [
        f"source: {describe_source(source)}",
        f"  attributes: {reading}",
        f"target: {changes} (others kept)" + "".join(f"; {note}" for note in notes),
        "  ".join(
            ["step", *(h.rjust(w) for h, w in zip(headers, widths, strict=True)),
             "cos_src", "nearest".ljust(id_width), "identity", "cos_nn"]
        ),
    ]
    for k in range(len(path.trajectory)):
        identity = path.nearest_identities[k]
        lines.append("  ".join([
            f"{k:4d}",
            *(f"{p:{w}.3f}" for p, w in zip(path.probabilities[k], widths, strict=True)),
            f"{path.cosine_to_source[k]:7.3f}",
            path.nearest_ids[k].ljust(id_width),
            f"{'-' if identity is None else identity:>8}",
            f"{path.nearest_cosine[k]:6.3f}",
        ]))
    return "\n".join(lines)
