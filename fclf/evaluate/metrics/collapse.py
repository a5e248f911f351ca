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
- min_density <= density <= max_density: edits lie where real faces of the
  target class lie (too low fails noise and rotations that keep every
  neighbourhood), but do not pile up in its densest region (too high fails
  pulls toward the class prototype, which sit inside most real balls);
- silhouette_by_target <= max_silhouette: edits do not form tight, separate
  clusters per target (a prototype per target).

Defaults equal the params schema's `eval.collapse_*` (a test keeps them in
sync). They were set on the pipeline's default synthetic world (test split,
k=5 against real test faces of the target code, 2,500 scored edits) between
the oracle (neighbourhood 0.58, coverage 0.81, density 0.76) and the cheats
of tests/test_yardstick.py (85 % prototype pull: neighbourhood 0.10, density
6.2; small noise: coverage 0.16, density 0.11; snapping: coverage 0.06).
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
    min_neighbourhood: float | None = 0.2,
    min_coverage: float | None = 0.2,
    min_density: float | None = 0.2,
    max_density: float | None = 2.0,
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
        ("density", max_density, ">"),
        ("silhouette_by_target", max_silhouette, ">"),
    )
    reasons = []
    for name, limit, fails_if in checks:
        value = measures.get(name)
        if limit is None or value is None:
            continue
        if math.isnan(value):  # nan edits give nan measures: never a pass
            if f"{name} is nan" not in reasons:
                reasons.append(f"{name} is nan")
        elif (value < limit) if fails_if == "<" else (value > limit):
            reasons.append(f"{name} {value:.3f} {fails_if} {limit:g}")
    return bool(reasons), reasons
