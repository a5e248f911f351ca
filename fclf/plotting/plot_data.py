"""The CSV tables `dvc plots show` / `dvc plots diff` draw, in long format.

transfer_per_attribute: one row per (attribute or 'overall', method), plus a
`series` column ('Smiling | fclf') because DVC's bar templates take a single
nominal field for the bars. diversity: one row per method. pca_edited: a
seeded subsample of FCLF's edits in the real-data PCA plane.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fclf.atomic import atomic_path

OVERALL = "overall"
TRANSFER_COLUMNS = ("attribute", "method", "flip_success", "preservation", "series")
DIVERSITY_COLUMNS = ("method", "distinct_fraction", "rank_ratio", "identity_cosine", "movement")
PCA_COLUMNS = ("pc1", "pc2", "target", "method")


def transfer_table(blocks: Mapping[str, Mapping], names: Sequence[str]) -> pd.DataFrame:
    rows = []
    for attribute in (OVERALL, *names):
        for method, block in blocks.items():
            if attribute == OVERALL:
                flip, keep = block["flip_success"], block["preservation"]
            else:
                flip = block["flip_success_per_attribute"].get(attribute)
                keep = block["preservation_per_attribute"].get(attribute)
            rows.append((attribute, method, flip, keep, f"{attribute} | {method}"))
    return pd.DataFrame(rows, columns=list(TRANSFER_COLUMNS))


def diversity_table(blocks: Mapping[str, Mapping]) -> pd.DataFrame:
    rows = [(m, *(b.get(c) for c in DIVERSITY_COLUMNS[1:])) for m, b in blocks.items()]
    return pd.DataFrame(rows, columns=list(DIVERSITY_COLUMNS))


def pca_table(xy: np.ndarray, labels: Sequence[str], method: str = "fclf") -> pd.DataFrame:
    xy = np.asarray(xy, np.float64)
    return pd.DataFrame({"pc1": xy[:, 0], "pc2": xy[:, 1], "target": list(labels),
                         "method": method}, columns=list(PCA_COLUMNS))


def write_csv(table: pd.DataFrame, path: str | Path) -> None:
    """Atomic, byte-stable CSV (6 significant digits; empty cell for undefined values)."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
