"""The documented mode-collapse rule."""

from __future__ import annotations


def collapse_verdict(
    distinct_fraction: float,
    rank_ratio: float,
    silhouette_by_target: float,
    *,
    min_distinct: float = 0.5,
    min_rank_ratio: float = 0.25,
    max_silhouette: float = 0.9,
) -> tuple[bool, list[str]]:
    """Decide whether a set of edited points has collapsed, and say why.

    Collapsed if any of:
    - distinct_fraction < min_distinct: many edited points share one nearest
      real embedding (the first FCLF models sent 5,000 points to 10-15 places);
    - rank_ratio < min_rank_ratio: the edited set spans far fewer directions
      than the real points it came from;
    - silhouette_by_target > max_silhouette: edited points form tight, separate
      clusters per target attribute combination, i.e. the flow maps each target
      to a prototype instead of editing each person.

    Returns (collapsed, reasons); reasons are readable strings, empty if healthy.
    """
    reasons = []
    if distinct_fraction < min_distinct:
        reasons.append(f"distinct_fraction {distinct_fraction:.3f} < {min_distinct:g}")
    if rank_ratio < min_rank_ratio:
        reasons.append(f"rank_ratio {rank_ratio:.3f} < {min_rank_ratio:g}")
    if silhouette_by_target > max_silhouette:
        reasons.append(f"silhouette_by_target {silhouette_by_target:.3f} > {max_silhouette:g}")
    return bool(reasons), reasons
