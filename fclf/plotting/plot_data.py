"""The CSV tables `dvc plots show` / `dvc plots diff` draw, in long format (test split).

transfer_per_attribute: one row per (attribute or 'overall', method) with both
judges' flip success and preservation, plus a `series` column ('Smiling | fclf')
because DVC's bar templates take a single nominal field for the bars.
diversity: one row per method with its collapse measures and verdict.
pca_edited: a seeded subsample of every method's edits in the real-data PCA plane.
(The trade-off curves need no table here: dvc.yaml reads metrics/curves_test.csv.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fclf.atomic import atomic_path

OVERALL = "overall"
SCORE_COLUMNS = ("flip_success_linear", "preservation_linear", "flip_success_mlp",
                 "preservation_mlp")
TRANSFER_COLUMNS = ("attribute", "method", *SCORE_COLUMNS, "series")
DIVERSITY_COLUMNS = ("method", "distinct_fraction", "rank_ratio", "coverage", "density",
                     "neighbourhood_preservation", "identity_top1_target", "identity_cosine",
                     "movement", "collapsed")
PCA_COLUMNS = ("pc1", "pc2", "target", "method")


def transfer_table(blocks: Mapping[str, Mapping], names: Sequence[str]) -> pd.DataFrame:
    rows = []
    for attribute in (OVERALL, *names):
        for method, block in blocks.items():
            if attribute == OVERALL:
                scores = [block.get(key) for key in SCORE_COLUMNS]
            else:
                scores = [(block.get(f"{key}_per_attribute") or {}).get(attribute)
                          for key in SCORE_COLUMNS]
            rows.append((attribute, method, *scores, f"{attribute} | {method}"))
    return pd.DataFrame(rows, columns=list(TRANSFER_COLUMNS))


def diversity_table(blocks: Mapping[str, Mapping]) -> pd.DataFrame:
    rows = [(m, *(b.get(c) for c in DIVERSITY_COLUMNS[1:])) for m, b in blocks.items()]
    return pd.DataFrame(rows, columns=list(DIVERSITY_COLUMNS))


def pca_table(xy_by_method: Mapping[str, np.ndarray], labels: Sequence[str]) -> pd.DataFrame:
    """Rows of every method's edits (same sources, same order), method by method."""
    parts = []
    for method, xy in xy_by_method.items():
        xy = np.asarray(xy, np.float64)
        parts.append(pd.DataFrame({"pc1": xy[:, 0], "pc2": xy[:, 1], "target": list(labels),
                                   "method": method}, columns=list(PCA_COLUMNS)))
    if not parts:
        return pd.DataFrame(columns=list(PCA_COLUMNS))
    return pd.concat(parts, ignore_index=True)


def write_csv(table: pd.DataFrame, path: str | Path) -> None:
    """Atomic, byte-stable CSV (6 significant digits; empty cell for undefined values)."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
