"""What the plot stage reads, checked: the evaluation's edits and metrics, dvclive's logs.

Problems a user can fix (a missing file, a file from an older evaluation) are
`DataError`s that name the file and what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fclf.errors import DataError

BLOCK_KEYS = (
    "flip_success", "flip_success_per_attribute", "preservation", "preservation_per_attribute",
    "distinct_fraction", "rank_ratio", "identity_cosine", "movement", "collapsed",
)


@dataclass
class EditArtifacts:
    """The arrays of eval/edits.npz the figures draw (N evaluated points, k attributes)."""

    names: tuple[str, ...]
    sources: np.ndarray  # (N, d)
    source_attributes: np.ndarray  # (N, k) 0/1
    targets: np.ndarray  # (N, k) 0/1
    trajectories: np.ndarray  # (steps + 1, N, d), FCLF
    edited_fclf: np.ndarray  # (N, d)
    nearest_real_fclf: np.ndarray  # (N,)

    @property
    def size(self) -> int:
        return len(self.sources)


def edits_from_arrays(arrays: Mapping[str, np.ndarray], source: str = "<edits>") -> EditArtifacts:
    """Check and pick the arrays the figures need from an edits.npz-like mapping."""
    need = ("attribute_names", "source_embeddings", "source_attributes", "targets",
            "fclf_trajectories", "edited_fclf", "nearest_real_fclf")
    missing = [key for key in need if key not in arrays]
    if missing:
        raise DataError(f"{source}: missing array(s) {', '.join(missing)}; "
                        "rerun the evaluate-transfer stage")
    names = tuple(str(n) for n in np.asarray(arrays["attribute_names"]).reshape(-1))
    sources = np.asarray(arrays["source_embeddings"])
    n, k = len(sources), len(names)
    out = EditArtifacts(
        names=names,
        sources=sources,
        source_attributes=np.asarray(arrays["source_attributes"]),
        targets=np.asarray(arrays["targets"]),
        trajectories=np.asarray(arrays["fclf_trajectories"]),
        edited_fclf=np.asarray(arrays["edited_fclf"]),
        nearest_real_fclf=np.asarray(arrays["nearest_real_fclf"]),
    )
    if sources.ndim != 2 or n < 2:
        raise DataError(f"{source}: source_embeddings must be (N >= 2, d), got {sources.shape}")
    expected = {
        "source_attributes": (out.source_attributes, (n, k)),
        "targets": (out.targets, (n, k)),
        "edited_fclf": (out.edited_fclf, sources.shape),
        "nearest_real_fclf": (out.nearest_real_fclf, (n,)),
    }
    for key, (array, shape) in expected.items():
        if array.shape != shape:
            raise DataError(f"{source}: {key} has shape {array.shape}, expected {shape}")
    traj = out.trajectories
    if traj.ndim != 3 or traj.shape[1:] != sources.shape or len(traj) < 1:
        raise DataError(f"{source}: fclf_trajectories has shape {traj.shape}, "
                        f"expected (steps + 1, {n}, {sources.shape[1]})")
    return out


def load_edits(path: str | Path) -> EditArtifacts:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run the evaluate-transfer stage first") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    return edits_from_arrays(arrays, str(path))


def method_blocks(metrics: Mapping, source: str = "<metrics>") -> dict[str, dict]:
    """The per-method metric blocks of transfer.json, in file order; 'fclf' must be one."""
    blocks = {m: b for m, b in metrics.items() if isinstance(b, dict) and "flip_success" in b}
    if "fclf" not in blocks:
        raise DataError(f"{source}: no 'fclf' metric block; rerun the evaluate-transfer stage")
    for method, block in blocks.items():
        missing = [key for key in BLOCK_KEYS if key not in block]
        if missing:
            raise DataError(f"{source}: {method} block lacks {', '.join(missing)}; "
                            "rerun the evaluate-transfer stage")
    return blocks


def load_metrics(path: str | Path) -> dict:
    path = Path(path)
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run the evaluate-transfer stage first") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(metrics, dict):
        raise DataError(f"{path}: expected a JSON object at the top level")
    method_blocks(metrics, str(path))
    return metrics


@dataclass(frozen=True)
class Curve:
    steps: np.ndarray
    values: np.ndarray


# component -> split ("train", "val", or "" for run-wide series such as lr) -> curve
TrainingCurves = dict[str, dict[str, Curve]]


def read_training_curves(metrics_dir: str | Path) -> tuple[TrainingCurves, list[str]]:
    """dvclive's per-step TSVs under `metrics_dir` (<split>/<name>.tsv and <name>.tsv).

    Returns (curves, notes): a missing folder gives no curves and a note;
    an unreadable file is left out with a note rather than failing the stage.
    """
    root = Path(metrics_dir)
    if not root.is_dir():
        return {}, [f"no training logs at {root}"]
    curves: TrainingCurves = {}
    notes: list[str] = []
    for path in sorted(root.glob("*.tsv")) + sorted(root.glob("*/*.tsv")):
        split = path.parent.name if path.parent != root else ""
        try:
            table = pd.read_csv(path, sep="\t")
            value_col = "value" if "value" in table else next(c for c in table if c != "step")
            steps = table["step"].to_numpy(np.float64)
            values = pd.to_numeric(table[value_col], errors="coerce").to_numpy(np.float64)
        except (OSError, ValueError, KeyError, StopIteration, pd.errors.ParserError) as exc:
            notes.append(f"skipped {path} ({type(exc).__name__}: {exc})")
            continue
        if len(steps):
            curves.setdefault(path.stem, {})[split] = Curve(steps, values)
    if not curves and not notes:
        notes.append(f"no training logs in {root}")
    return curves, notes
