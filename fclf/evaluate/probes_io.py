"""The read-out probes as a file: fitted once by the pipeline, reused by `fclf transfer`.

Fitting the probes (one converged logistic regression per attribute on the train split)
takes seconds; the edit itself takes milliseconds. The file records what the probes were
fitted on, the train split's fingerprint and C, so a reader can tell that reusing them
gives exactly what refitting would, and refit when it would not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fclf.atomic import torch_load, torch_save
from fclf.errors import FclfError
from fclf.evaluate.probes import AttributeProbes

FORMAT = 1
READOUT_C = 1.0  # the probes' C unless asked otherwise (`fclf transfer --probe-c`)


def split_fingerprint(split) -> str:
    """A digest of what a probe fit reads from an `EmbeddingSplit`: embeddings, labels, names."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.ascontiguousarray(split.embeddings).tobytes())
    digest.update(np.ascontiguousarray(split.attributes).astype(np.int8).tobytes())
    digest.update("\0".join(split.attribute_names).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class SavedProbes:
    probes: AttributeProbes
    fingerprint: str  # split_fingerprint of the split they were fitted on


def save_probes(path: str | Path, probes: AttributeProbes, fingerprint: str) -> None:
    torch_save({
        "format": FORMAT,
        "weights": torch.from_numpy(np.array(probes.weights)),
        "bias": torch.from_numpy(np.array(probes.bias)),
        "attribute_names": list(probes.attribute_names),
        "c": probes.c,
        "class_weight": probes.class_weight,
        "fingerprint": fingerprint,
    }, path)


def load_probes(path: str | Path) -> SavedProbes | None:
    """The saved probes, or None when `path` is not a probes file of this format."""
    try:
        record = torch_load(path, "probes file")
    except FclfError:  # unreadable: the caller refits
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return None
    probes = AttributeProbes.from_parameters(
        record["weights"].numpy(), record["bias"].numpy(), record["attribute_names"],
        c=record["c"], class_weight=record["class_weight"],
    )
    return SavedProbes(probes, record["fingerprint"])


def probes_for(split, c: float, saved_path: str | Path | None) -> tuple[AttributeProbes, str]:
    """Probes fitted on `split` with C = `c`: read from `saved_path` when that file holds
    exactly those (same fingerprint, C and unweighted classes), else fitted now.
    Returns the probes and a line saying where they came from."""
    if saved_path is not None and Path(saved_path).is_file():
        saved = load_probes(saved_path)
        if saved is None:
            why = "not a probes file of this version"
        elif saved.fingerprint != split_fingerprint(split):
            why = "fitted on another train split"
        elif saved.probes.c != float(c) or saved.probes.class_weight is not None:
            why = f"fitted with C = {saved.probes.c:g}, not {float(c):g}"
        else:
            return saved.probes, f"read from {saved_path}"
        return AttributeProbes.from_split(split, c=c), f"fitted ({saved_path}: {why})"
    return AttributeProbes.from_split(split, c=c), "fitted"
