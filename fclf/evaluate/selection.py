"""The selection rule, as code: which configuration (of FCLF or of a peer) wins on val.

Choices are made on val and reported on test; this module is the only place
the rule lives. `fclf sweep report` ranks experiments with it, the
train-baselines stage picks every peer's hyper-parameters with it, the
evaluation picks `best_baseline` (the best peer) with it, and the Results
tables (README, docs/results.md) quote its output.

The rule, applied to each candidate's **val, told-mode** metric block:

1. *Eligible* candidates come first: not collapsed, realistic (no off-manifold
   drift, no overshoot: `fclf.evaluate.metrics.realism`), and at least the
   gate's `min_flip_success` / `min_preservation` (linear judge). A candidate
   whose block lacks a verdict (e.g. a light block) is not held back by it.
2. The *primary score*: `counterfactual_relative_error` (lower is better)
   where the truth is known; else `success_linear` (higher is better: the share
   of rows where the judge reads every requested attribute as the target and
   every other as on the source).
3. Candidates within `tie` (0.01) of the best primary score tie, and the tie
   goes to the larger *tie-break*: `curve.pareto_area_linear` with the truth,
   `identity_top1_target` without it (a missing tie-break counts as -inf).

`rank` applies the rule repeatedly (the winner, then the winner of the rest,
...), so its first entry is `select`'s choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TIE = 0.01


@dataclass(frozen=True)
class SelectionRule:
    min_flip_success: float = 0.6
    min_preservation: float = 0.85
    tie: float = TIE

    @classmethod
    def from_gate(cls, gate: Any, tie: float = TIE) -> SelectionRule:
        """The rule with a `GateConfig`'s flip/preservation thresholds."""
        return cls(gate.min_flip_success, gate.min_preservation, tie)


@dataclass(frozen=True)
class Ranked:
    name: str
    eligible: bool
    reasons: tuple[str, ...]
    score: float | None  # the primary score (None: not computable)
    tiebreak: float | None
    higher_is_better: bool = False
    block: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def score_name(self) -> str:
        return "success_linear" if self.higher_is_better else "counterfactual_relative_error"


def _get(block: Mapping[str, Any], dotted: str) -> Any:
    node: Any = block
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _number(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def uses_truth(blocks: Mapping[str, Mapping[str, Any]]) -> bool:
    """True when every candidate has a counterfactual error (the truth is known)."""
    return bool(blocks) and all(
        _number(b.get("counterfactual_relative_error")) is not None for b in blocks.values())


def ineligibility(block: Mapping[str, Any], rule: SelectionRule) -> list[str]:
    """Why a candidate is not eligible (empty: eligible)."""
    reasons = []
    if block.get("collapsed") is True:
        reasons.append("collapsed")
    if block.get("realistic") is False:
        reasons.append("unrealistic: " + "; ".join(block.get("realism_reasons") or []))
    for key, bound in (("flip_success_linear", rule.min_flip_success),
                       ("preservation_linear", rule.min_preservation)):
        value = _number(block.get(key))
        if value is None or value < bound:
            reasons.append(f"{key} {'missing' if value is None else f'{value:.3f}'} < {bound:g}")
    return reasons


def _candidate(name: str, block: Mapping[str, Any], rule: SelectionRule, truth: bool) -> Ranked:
    score_key, tiebreak_key = (("counterfactual_relative_error", "curve.pareto_area_linear")
                               if truth else ("success_linear", "identity_top1_target"))
    reasons = tuple(ineligibility(block, rule))
    return Ranked(name, not reasons, reasons, _number(_get(block, score_key)),
                  _number(_get(block, tiebreak_key)), not truth, block)


def rank(blocks: Mapping[str, Mapping[str, Any]], rule: SelectionRule | None = None,
         truth: bool | None = None) -> list[Ranked]:
    """Every candidate, best first, by the rule of the module doc. `blocks` maps a name to its
    val told-mode metric block; `truth` defaults to whether every block has a counterfactual
    error."""
    rule = rule or SelectionRule()
    truth = uses_truth(blocks) if truth is None else truth
    pool = [_candidate(name, block, rule, truth) for name, block in blocks.items()]
    ordered: list[Ranked] = []
    for eligible in (True, False):
        group = [c for c in pool if c.eligible is eligible]
        while group:
            winner = _winner(group, rule.tie)
            ordered.append(winner)
            group.remove(winner)
    return ordered


def _winner(group: list[Ranked], tie: float) -> Ranked:
    scored = [c for c in group if c.score is not None]
    if not scored:
        return group[0]
    sign = -1.0 if scored[0].higher_is_better else 1.0  # lower key is better
    best = min(sign * c.score for c in scored)
    tied = [c for c in scored if sign * c.score <= best + tie]
    return max(tied, key=lambda c: (float("-inf") if c.tiebreak is None else c.tiebreak,
                                    -sign * c.score))


def select(blocks: Mapping[str, Mapping[str, Any]], rule: SelectionRule | None = None,
           truth: bool | None = None) -> Ranked:
    """The winning candidate (`rank`'s first entry). ValueError when there are none."""
    if not blocks:
        raise ValueError("no candidates to select from")
    return rank(blocks, rule, truth)[0]
