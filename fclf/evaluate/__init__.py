"""Evaluation wing: the yardstick that judges edits.

Owns the frozen probes (the judge), the straight-line baselines, evaluation
targets, the metrics and collapse verdict, the evaluation protocol and the
release gate, plus the data report. May import `fclf.model`, `fclf.data` and
the top-level helpers; never `fclf.train` (what is judged must not shape the
judge) or `fclf.cli`.
"""
