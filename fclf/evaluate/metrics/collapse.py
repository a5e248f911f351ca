"""The mode-collapse rule: collapse and noise must both fail it.

The first FCLF models sent 5,000 edited points to 10-15 places. Any single
number can be gamed: jitter around a few prototypes restores distinct nearest
neighbours (and effective rank: noise inflates it, so rank is only reported,
in diversity.py). The rule therefore asks for five things at once, each of
which some family of cheats cannot give:

- distinct_fraction >= min_distinct: edited points find many different
  nearest real embeddings (fails exact collapse);
- neighbourhood_preservation >= min_neighbourhood: each edit keeps its
  source's nearest neighbours (fails collapse with or without jitter, random
  real points of the target class, and noise large enough to matter);
- coverage >= min_coverage: edits reach most of the real target class (fails
  jittered prototypes and noise; plain prototypes only partly, see coverage.py);
- density >= min_density: edits lie where real faces of the target class lie
  (fails noise and rotations that keep every neighbourhood);
- silhouette_by_target <= max_silhouette: edits do not form tight, separate
  clusters per target (a prototype per target).

The default thresholds are provisional, set between the healthy edits and the
cheats of tests/test_metrics_collapse.py on synthetic CLIP-like data (density
and coverage with k=20 against train faces, 10 images per person); calibrate
them on the real pipeline, for the k and reference set it uses.
"""

from __future__ import annotations

import math

MEASURES = (
    "distinct_fraction",
    "neighbourhood_preservation",
    "coverage",
    "density",
    "silhouette_by_target",
)


def collapse_verdict(
    measures: dict[str, float | None],
    *,
    min_distinct: float | None = 0.5,
    min_neighbourhood: float | None = 0.1,
    min_coverage: float | None = 0.5,
    min_density: float | None = 0.25,
    max_silhouette: float | None = 0.9,
) -> tuple[bool, list[str]]:
    """Decide whether a set of edited points has collapsed (or is noise), and say why.

    `measures` maps the names in MEASURES to values (other keys are ignored,
    so a whole metric block can be passed); a threshold of None turns its
    check off, a missing or None measure is skipped (e.g. the silhouette with
    a single target), and a nan measure fails. Limits are strict: a value
    exactly at its threshold passes. Returns (collapsed, reasons), reasons being readable
    strings, empty if healthy.
    """
    checks = (
        ("distinct_fraction", min_distinct, "<"),
        ("neighbourhood_preservation", min_neighbourhood, "<"),
        ("coverage", min_coverage, "<"),
        ("density", min_density, "<"),
        ("silhouette_by_target", max_silhouette, ">"),
    )
    reasons = []
    for name, limit, fails_if in checks:
        value = measures.get(name)
        if limit is None or value is None:
            continue
        if math.isnan(value):  # nan edits give nan measures: never a pass
            reasons.append(f"{name} is nan")
        elif (value < limit) if fails_if == "<" else (value > limit):
            reasons.append(f"{name} {value:.3f} {fails_if} {limit:g}")
    return bool(reasons), reasons


def legacy_collapse_verdict(
    distinct_fraction: float,
    rank_ratio: float,
    silhouette_by_target: float,
    *,
    min_distinct: float = 0.5,
    min_rank_ratio: float = 0.25,
    max_silhouette: float = 0.9,
) -> tuple[bool, list[str]]:
    """The previous rule (distinct fraction, rank ratio, silhouette); to be removed.

    Kept only until protocol.py switches to collapse_verdict.
    """
    reasons = []
    if distinct_fraction < min_distinct:
        reasons.append(f"distinct_fraction {distinct_fraction:.3f} < {min_distinct:g}")
    if rank_ratio < min_rank_ratio:
        reasons.append(f"rank_ratio {rank_ratio:.3f} < {min_rank_ratio:g}")
    if silhouette_by_target > max_silhouette:
        reasons.append(f"silhouette_by_target {silhouette_by_target:.3f} > {max_silhouette:g}")
    return bool(reasons), reasons
