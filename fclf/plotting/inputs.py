"""What the plot stage reads, checked: the evaluation's metrics, edits and curves; dvclive's logs.

metrics/transfer.json holds {"judge", "peers", "val", "test"}; each split holds
a "told" and a "blind" block, each with one metric block per editor ("oracle"
on synthetic data only, "fclf", the peers, the reference, FCLF's other seeds)
next to "comparisons", "seeds" and a few scalars. The figures draw told mode. eval/edits.npz
holds the test split's edits: `edited_<method>`, `judge_after_<method>`,
`nearest_real_<method>` per method and the shared source arrays.
metrics/curves_<split>.csv holds one row per (method, strength).

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

RERUN = "rerun the evaluate-transfer stage"
BLOCK_KEYS = (
    "flip_success_linear", "preservation_linear", "flip_success_mlp", "preservation_mlp",
    "flip_success_linear_per_attribute", "preservation_linear_per_attribute",
    "flip_success_mlp_per_attribute", "preservation_mlp_per_attribute",
    "distinct_fraction", "rank_ratio", "identity_cosine", "identity_top1_target", "movement",
    "collapsed",
)
CURVE_COLUMNS = (
    "split", "method", "strength", "movement", "flip_success_linear", "preservation_linear",
    "flip_success_mlp", "preservation_mlp", "overshoot_rate", "counterfactual_cosine",
    "displacement_cosine",
)
SHARED_ARRAYS = ("attribute_names", "source_embeddings", "source_attributes", "targets")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run the evaluate-transfer stage first") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object at the top level")
    return data


def split_metrics(metrics: Mapping, split: str = "test", source: str = "<metrics>",
                  mode: str = "told") -> dict:
    """The block of one evaluated split ('val' or 'test') and mode of transfer.json."""
    block = (metrics.get(split) or {}).get(mode) if isinstance(metrics.get(split), dict) else None
    if not isinstance(block, dict):
        older = " (it looks like an older evaluation's file)" if split in metrics else ""
        raise DataError(f"{source}: no '{split}.{mode}' block{older}; {RERUN}")
    return block


def method_blocks(split_block: Mapping, source: str = "<metrics>") -> dict[str, dict]:
    """The full per-editor metric blocks of one split, in file order (light blocks, e.g.
    FCLF's other seeds, are left out); 'fclf' must be one."""
    blocks = {m: b for m, b in split_block.items()
              if isinstance(b, dict) and b.get("collapsed") is not None and "movement" in b}
    if "fclf" not in blocks:
        raise DataError(f"{source}: no 'fclf' metric block; {RERUN}")
    for method, block in blocks.items():
        missing = [key for key in BLOCK_KEYS if key not in block]
        if missing:
            raise DataError(f"{source}: {method} block lacks {', '.join(missing)}; {RERUN}")
    return blocks


def load_metrics(path: str | Path, split: str = "test") -> tuple[dict, dict[str, dict]]:
    """(the split's block, its method blocks) of metrics/transfer.json, checked."""
    path = Path(path)
    block = split_metrics(_read_json(path), split, str(path))
    return block, method_blocks(block, f"{path} ({split})")


@dataclass
class EditArtifacts:
    """The arrays of eval/edits.npz the figures draw (N evaluated points, k attributes)."""

    names: tuple[str, ...]
    sources: np.ndarray  # (N, d)
    source_attributes: np.ndarray  # (N, k) 0/1
    targets: np.ndarray  # (N, k) 0/1
    edited: dict[str, np.ndarray]  # method -> (N, d), in file order
    nearest_real: dict[str, np.ndarray]  # method -> (N,) row of each edit's nearest real

    @property
    def size(self) -> int:
        return len(self.sources)

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(self.edited)


def edits_from_arrays(arrays: Mapping[str, np.ndarray], source: str = "<edits>") -> EditArtifacts:
    """Check and pick the arrays the figures need from an edits.npz-like mapping."""
    methods = [key.removeprefix("edited_") for key in arrays if key.startswith("edited_")]
    need = [*SHARED_ARRAYS, *(f"nearest_real_{m}" for m in methods)]
    if "fclf" not in methods:
        need.append("edited_fclf")
    missing = [key for key in need if key not in arrays]
    if missing:
        raise DataError(f"{source}: missing array(s) {', '.join(missing)}; {RERUN}")
    names = tuple(str(n) for n in np.asarray(arrays["attribute_names"]).reshape(-1))
    sources = np.asarray(arrays["source_embeddings"])
    if sources.ndim != 2 or len(sources) < 2:
        raise DataError(f"{source}: source_embeddings must be (N >= 2, d), got {sources.shape}")
    n, k = len(sources), len(names)
    out = EditArtifacts(
        names=names,
        sources=sources,
        source_attributes=np.asarray(arrays["source_attributes"]),
        targets=np.asarray(arrays["targets"]),
        edited={m: np.asarray(arrays[f"edited_{m}"]) for m in methods},
        nearest_real={m: np.asarray(arrays[f"nearest_real_{m}"]) for m in methods},
    )
    expected = {
        "source_attributes": (out.source_attributes, (n, k)),
        "targets": (out.targets, (n, k)),
        **{f"edited_{m}": (out.edited[m], sources.shape) for m in methods},
        **{f"nearest_real_{m}": (out.nearest_real[m], (n,)) for m in methods},
    }
    for key, (array, shape) in expected.items():
        if array.shape != shape:
            raise DataError(f"{source}: {key} has shape {array.shape}, expected {shape}")
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


def check_same_run(split_block: Mapping, blocks: Mapping[str, Mapping], edits: EditArtifacts,
                   metrics_source: str, edits_source: str) -> None:
    """The metrics and the edits must come from the same evaluation."""
    stale = f"{metrics_source} and {edits_source} come from different evaluations; {RERUN}"
    for method, block in blocks.items():
        if set(block["flip_success_linear_per_attribute"]) != set(edits.names):
            raise DataError(f"{stale} ({method}: different attributes)")
        if method not in edits.edited:
            raise DataError(f"{stale} (no edits of {method} in {edits_source})")
    num = split_block.get("num_samples")
    if num is not None and int(num) != edits.size:
        raise DataError(f"{stale} ({num} samples scored, {edits.size} edits stored)")


def load_curves(path: str | Path, split: str = "test") -> pd.DataFrame:
    """The trade-off curves of one split: numbers as floats, NaN where unknown (real data)."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype={"split": str, "method": str})
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run the evaluate-transfer stage first") from None
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    missing = [c for c in CURVE_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; {RERUN}")
    table = table.loc[table["split"] == split, list(CURVE_COLUMNS)].reset_index(drop=True)
    if table.empty:
        raise DataError(f"{path}: no rows of the '{split}' split; {RERUN}")
    for column in CURVE_COLUMNS[2:]:
        table[column] = pd.to_numeric(table[column], errors="coerce").astype(np.float64)
    if "fclf" not in set(table["method"]):
        raise DataError(f"{path}: no 'fclf' rows; {RERUN}")
    return table


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
