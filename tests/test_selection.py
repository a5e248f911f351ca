"""The selection rule: eligibility first, the primary score, ties broken by the tie-break."""

from __future__ import annotations

import pytest

from fclf.evaluate.selection import SelectionRule, rank, select, uses_truth

RULE = SelectionRule(min_flip_success=0.6, min_preservation=0.85, tie=0.01)


def block(error=0.5, flip=0.7, keep=0.95, area=0.8, collapsed=False, realistic=True,
          success=0.6, identity=0.6):
    return {"counterfactual_relative_error": error, "flip_success_linear": flip,
            "preservation_linear": keep, "curve": {"pareto_area_linear": area},
            "collapsed": collapsed, "realistic": realistic, "realism_reasons": [],
            "success_linear": success, "identity_top1_target": identity}


def names(ranked):
    return [r.name for r in ranked]


def test_the_lowest_error_wins_and_ties_go_to_the_larger_pareto_area():
    blocks = {"a": block(0.500, area=0.80), "b": block(0.505, area=0.85), "c": block(0.60)}
    assert names(rank(blocks, RULE)) == ["b", "a", "c"]  # a and b tie within 0.01
    blocks["b"] = block(0.520, area=0.85)  # no longer a tie
    assert select(blocks, RULE).name == "a"


def test_ineligible_candidates_rank_below_every_eligible_one_whatever_their_score():
    blocks = {"collapsed": block(0.1, collapsed=True), "noisy": block(0.2, realistic=False),
              "timid": block(0.3, flip=0.5), "leaky": block(0.3, keep=0.8),
              "ok": block(0.9)}
    ranked = rank(blocks, RULE)
    assert ranked[0].name == "ok" and ranked[0].eligible
    assert all(not r.eligible for r in ranked[1:])
    assert "collapsed" in ranked[names(ranked).index("collapsed")].reasons
    assert any("flip_success_linear" in why for why in ranked[names(ranked).index("timid")]
               .reasons)


def test_without_truth_success_decides_and_identity_breaks_ties():
    blocks = {"a": block(None, success=0.70, identity=0.50),
              "b": block(None, success=0.695, identity=0.60),
              "c": block(None, success=0.60)}
    assert not uses_truth(blocks)
    assert names(rank(blocks, RULE)) == ["b", "a", "c"]
    assert rank(blocks, RULE)[0].higher_is_better


def test_a_missing_tie_break_loses_the_tie_and_no_candidates_is_an_error():
    blocks = {"a": block(0.5, area=None), "b": block(0.505, area=0.1)}
    blocks["a"]["curve"] = None
    assert select(blocks, RULE).name == "b"
    with pytest.raises(ValueError):
        select({}, RULE)


def test_the_rule_takes_the_gates_thresholds():
    class Gate:
        min_flip_success, min_preservation = 0.8, 0.9

    rule = SelectionRule.from_gate(Gate)
    assert (rule.min_flip_success, rule.min_preservation) == (0.8, 0.9)
    assert not rank({"a": block(flip=0.7)}, rule)[0].eligible
