"""Training checkpoints: atomic saves, safe loads, run fingerprints, stale-checkpoint cleanup.

A fingerprint hashes everything that defines a training run (model, loss,
flips, optimisation settings including the epoch count, the training data).
A model is a function of params, data and code: resuming only survives an
interruption of the same run, so a run with other loss weights or another
`train.epochs` (the cosine schedule spans all epochs) starts over.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import torch

from fclf.atomic import torch_load, torch_save
from fclf.errors import FclfError

LATEST = "latest.pt"
RUN_MARKER = "run.json"  # written by the clean-checkpoints stage; never removed


def fingerprint(run_definition: dict[str, Any]) -> str:
    """sha256 of a JSON-serialisable description of the run."""
    blob = json.dumps(run_definition, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def array_digest(*arrays: Any) -> str:
    """sha256 over the raw bytes of numpy arrays / tensors (identifies the data)."""
    h = hashlib.sha256()
    for a in arrays:
        a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a
        h.update(str(a.shape).encode() + str(a.dtype).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save(path: str | Path, state: dict[str, Any]) -> None:
    torch_save(state, path)


def load(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with weights_only=True (no arbitrary code on load)."""
    return torch_load(path, "checkpoint")


def describe_difference(
    saved: dict[str, Any], current: dict[str, Any], prefix: str = ""
) -> list[str]:
    """Human-readable differences between two run definitions."""
    diffs = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key, "<absent>"), current.get(key, "<absent>")
        dotted = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += describe_difference(a, b, dotted + ".")
        elif a != b:
            diffs.append(f"{dotted}: checkpoint has {a!r}, now {b!r}")
    return diffs


def _safe_checkpoint_dir(directory: Path) -> Path:
    if directory.is_symlink():
        raise FclfError(
            f"{directory}: the checkpoint directory is a symlink; refusing to delete through it"
        )
    return directory


def clean_stale(directory: str | Path, current_fingerprint: str) -> str:
    """Remove the checkpoint directory's contents if they belong to another run.

    Returns what happened: 'absent', 'kept' or 'removed'. Only entries inside
    `directory` are touched (the run marker file is kept); symlinks are
    unlinked, never followed.
    """
    directory = _safe_checkpoint_dir(Path(directory))
    if not directory.exists():
        return "absent"
    entries = [e for e in directory.iterdir() if e.name != RUN_MARKER]
    if not entries:
        return "absent"
    latest = directory / LATEST
    if latest.exists() and not latest.is_symlink():
        try:
            saved = load(latest).get("fingerprint")
        except FclfError:
            saved = None
        if saved == current_fingerprint:
            return "kept"
    for entry in entries:
        if entry.is_symlink() or entry.is_file():
            entry.unlink()
        else:
            shutil.rmtree(entry)
    return "removed"
