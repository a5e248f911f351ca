"""Metrics of attribute edits: pure functions of arrays, one concept per module.

- transfer: flip_success / preservation read by frozen probes
- movement: movement, identity_cosine, per-step distances
- neighbours: nearest real neighbours -> identity_top1, distinct_fraction
- diversity: effective rank (RankMe) and rank_ratio
- clustering: silhouettes and k-means purity (the original's numbers)
- collapse: the documented mode-collapse rule
"""

from fclf.evaluate.metrics.clustering import combination_labels, kmeans, kmeans_purity, silhouettes
from fclf.evaluate.metrics.collapse import collapse_verdict
from fclf.evaluate.metrics.diversity import effective_rank, rank_ratio
from fclf.evaluate.metrics.movement import identity_cosine, movement, step_lengths, step_statistics
from fclf.evaluate.metrics.neighbours import (
    distinct_fraction,
    identity_top1,
    nearest_neighbours,
    nearest_other,
)
from fclf.evaluate.metrics.transfer import transfer_scores

__all__ = [
    "collapse_verdict",
    "combination_labels",
    "distinct_fraction",
    "effective_rank",
    "identity_cosine",
    "identity_top1",
    "kmeans",
    "kmeans_purity",
    "movement",
    "nearest_neighbours",
    "nearest_other",
    "rank_ratio",
    "silhouettes",
    "step_lengths",
    "step_statistics",
    "transfer_scores",
]
