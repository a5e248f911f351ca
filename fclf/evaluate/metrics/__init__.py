"""Metrics of attribute edits: pure functions of arrays, one concept per module.

- transfer: flip_success / preservation read by frozen probes
- movement: movement, (centred) identity cosines, per-step distances
- counterfactual: distance and direction to known true counterfactuals
- neighbours: nearest real neighbours -> identity_top1, distinct_fraction
- neighbourhood: k-nearest-neighbour preservation from sources to edits
- coverage: density and coverage of edits against real target-class points
- diversity: effective rank (RankMe) and rank_ratio (reported, not a verdict)
- clustering: silhouettes and k-means purity (the original's numbers)
- collapse: the mode-collapse rule (collapse and noise both fail it)
- bootstrap: cluster (per-identity) bootstrap and percentile intervals
- curves: Pareto area and read-outs of flip/preservation trade-off curves
"""

from fclf.evaluate.metrics.bootstrap import cluster_bootstrap, percentile_interval
from fclf.evaluate.metrics.clustering import combination_labels, kmeans, kmeans_purity, silhouettes
from fclf.evaluate.metrics.collapse import collapse_verdict
from fclf.evaluate.metrics.counterfactual import (
    counterfactual_cosine,
    counterfactual_cosine_per_point,
    counterfactual_error,
    counterfactual_error_per_point,
    counterfactual_relative_error,
    counterfactual_relative_error_per_point,
    displacement_cosine,
    displacement_cosine_per_point,
)
from fclf.evaluate.metrics.coverage import density_coverage
from fclf.evaluate.metrics.curves import pareto_area, value_at
from fclf.evaluate.metrics.diversity import effective_rank, rank_ratio
from fclf.evaluate.metrics.movement import (
    centred_cosines,
    identity_cosine,
    movement,
    step_lengths,
    step_statistics,
)
from fclf.evaluate.metrics.neighbourhood import (
    k_nearest_others,
    neighbourhood_preservation,
    neighbourhood_preservation_per_point,
)
from fclf.evaluate.metrics.neighbours import (
    distinct_fraction,
    identity_top1,
    nearest_neighbours,
    nearest_other,
)
from fclf.evaluate.metrics.transfer import transfer_scores

__all__ = [
    "centred_cosines",
    "cluster_bootstrap",
    "collapse_verdict",
    "combination_labels",
    "counterfactual_cosine",
    "counterfactual_cosine_per_point",
    "counterfactual_error",
    "counterfactual_error_per_point",
    "counterfactual_relative_error",
    "counterfactual_relative_error_per_point",
    "density_coverage",
    "displacement_cosine",
    "displacement_cosine_per_point",
    "distinct_fraction",
    "effective_rank",
    "identity_cosine",
    "identity_top1",
    "k_nearest_others",
    "kmeans",
    "kmeans_purity",
    "movement",
    "nearest_neighbours",
    "nearest_other",
    "neighbourhood_preservation",
    "neighbourhood_preservation_per_point",
    "pareto_area",
    "percentile_interval",
    "rank_ratio",
    "silhouettes",
    "step_lengths",
    "step_statistics",
    "transfer_scores",
    "value_at",
]
