"""The sweep leaderboard: every grid point once, ranked on val only, collapse never wins."""

from __future__ import annotations

import copy
import csv
import io
from pathlib import Path

import numpy as np
import pytest

from fclf.cli.compare import Run
from fclf.plotting.sweep_pareto import draw_sweep_pareto
from fclf.sweep.leaderboard import (
    PARETO_COLUMNS,
    Entry,
    csv_columns,
    entries_for,
    leaderboard_csv,
    leaderboard_markdown,
    pareto_csv,
    pareto_front,
    pareto_rows,
    rank_entries,
)
from fclf.sweep.spec import Selection, Sweep

CF_MIN = Selection("val", "counterfactual_relative_error", "min")
RULE = Selection("val", "rule", "rule")
FLIP_MAX = Selection("val", "flip_success_linear", "max")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_sweep(selection: Selection = CF_MIN, sample: int | None = None) -> Sweep:
    return Sweep(path=Path("s.yaml"), name="t",
                 params={"loss.lambda_identity": [0, 1, 10], "train.flip_prob": [0.25, 0.5]},
                 selection=selection, sample=sample, seed=0)


def headline(cf=0.5, flip=0.7, keep=0.8, collapsed=False, test=None, area=None,
             realistic=True) -> dict:
    """A metrics/headline.json: val.told, test.told (+ test.blind), as the pipeline writes."""
    test_block = {"flip_success_linear": 0.6, "preservation_linear": 0.75,
                  "identity_top1_target": 0.9, "counterfactual_relative_error": 0.55,
                  "noop_movement_ratio": 0.1, "collapsed": collapsed}
    test_block.update(test or {})
    return {"val": {"told": {"flip_success_linear": flip, "preservation_linear": keep,
                             "counterfactual_relative_error": cf, "collapsed": collapsed,
                             "pareto_area_linear": area, "realistic": realistic}},
            "test": {"told": test_block, "blind": {"counterfactual_relative_error": 0.65}}}


def names(entries: list[Entry]) -> list[str]:
    return [e.name for e in entries]


# --- entries_for -------------------------------------------------------------------------

def test_entries_for_holds_every_grid_point_exactly_once() -> None:
    points = make_sweep().points()
    assert len(points) == 6
    runs = [
        Run("workspace", headline()),                # not a grid point: ignored
        Run("other-experiment", headline()),         # not a grid point: ignored
        Run(points[0].name, None, "no headline.json"),
        Run(points[0].name, headline(cf=0.1)),       # same name, with a headline: wins
        Run(points[1].name, headline(cf=0.2)),
        Run(points[1].name, None, "error"),          # same name, no headline: loses
        Run(points[2].name, headline(cf=0.3)),
        Run(points[2].name, headline(cf=0.9)),       # two headlines: still one entry
        Run(points[3].name, None, "FileNotFoundError"),
    ]
    entries = entries_for(points, runs)
    assert names(entries) == [p.name for p in points]
    assert [e.status for e in entries] == ["ok", "ok", "ok", "no metrics", "missing", "missing"]
    assert entries[0].value("val", "counterfactual_relative_error") == 0.1
    assert entries[1].value("val", "counterfactual_relative_error") == 0.2
    assert entries[3].problem == "FileNotFoundError"
    assert [e.collapsed for e in entries] == [False, False, False, None, None, None]


def test_entries_for_with_no_runs_marks_every_point_missing() -> None:
    points = make_sweep(sample=3).points()
    entries = entries_for(points, [])
    assert names(entries) == [p.name for p in points]
    assert {e.status for e in entries} == {"missing"}


def test_collapsed_is_read_from_either_split() -> None:
    point = make_sweep().points()[0]
    only_test = headline()
    only_test["test"]["told"]["collapsed"] = True
    assert Entry(point, only_test, "ok").collapsed is True
    only_val = headline()
    only_val["val"]["told"]["collapsed"] = True
    assert Entry(point, only_val, "ok").collapsed is True
    assert Entry(point, headline(), "ok").collapsed is False
    assert Entry(point, None, "missing").collapsed is None


# --- pareto_front ------------------------------------------------------------------------

def brute_force_front(pairs: list[tuple[float, float]]) -> list[bool]:
    return [not any(b[0] >= a[0] and b[1] >= a[1] and (b[0] > a[0] or b[1] > a[1])
                    for b in pairs) for a in pairs]


def test_pareto_front_by_hand() -> None:
    assert pareto_front([]) == []
    assert pareto_front([(0.3, 0.4)]) == [True]
    assert pareto_front([(1, 0), (0, 1), (0.5, 0.5), (0.4, 0.4)]) == [True, True, True, False]
    assert pareto_front([(0.5, 0.5), (0.5, 0.5)]) == [True, True]  # duplicates stay together
    assert pareto_front([(0.5, 0.5), (0.5, 0.6)]) == [False, True]  # equal in one, > in other
    assert pareto_front([(0.2, 0.9), (0.9, 0.2), (0.9, 0.9)]) == [False, False, True]


def test_pareto_front_matches_brute_force_on_random_points() -> None:
    rng = np.random.default_rng(0)
    for size in (2, 5, 30, 80):
        for _ in range(20):
            # a coarse grid makes ties and exact duplicates common
            pairs = [tuple(p) for p in rng.integers(0, 6, size=(size, 2)) / 5.0]
            assert pareto_front(pairs) == brute_force_front(pairs)


# --- rank_entries ------------------------------------------------------------------------

def ranked_sweep(runs_by_index: dict[int, Run | dict | None], selection: Selection = CF_MIN):
    """Rank the 6-point sweep; values are a headline, a Run (as is), or None (no metrics)."""
    points = make_sweep(selection).points()
    runs = []
    for index, value in runs_by_index.items():
        if isinstance(value, Run):
            runs.append(value)
        else:
            runs.append(Run(points[index].name, value, "" if value else "no headline"))
    return points, rank_entries(entries_for(points, runs), selection)


def test_ranking_groups_and_min_order() -> None:
    points, ranked = ranked_sweep({
        0: headline(cf=0.4),
        1: headline(cf=0.1, collapsed=True),        # best metric, collapsed: group 2
        2: headline(cf=None),                       # no metric: group 3
        3: headline(cf=0.2),
        4: None,                                    # no metrics: group 4
        # 5: missing, group 4
    })
    assert names(ranked) == [points[i].name for i in (3, 0, 1, 2, 4, 5)]
    assert [e.rank for e in ranked] == [1, 2, 3, 4, 5, 6]
    assert [e.status for e in ranked] == ["ok", "ok", "ok", "ok", "no metrics", "missing"]


def test_ranking_max_order_ties_by_grid_index_and_non_finite_metrics() -> None:
    points, ranked = ranked_sweep({
        0: headline(flip=0.5),
        1: headline(flip=0.9),
        2: headline(flip=0.5),                      # tie with 0: grid order
        3: headline(flip=float("nan")),             # not finite: group 3
        4: headline(flip=0.95, collapsed=True),
        5: headline(flip=0.2, collapsed=True),
    }, FLIP_MAX)
    assert names(ranked) == [points[i].name for i in (1, 0, 2, 4, 5, 3)]


def test_the_cheater_a_collapsed_run_with_the_best_val_score_never_wins() -> None:
    sweep = make_sweep()
    points = sweep.points()
    cheater = headline(cf=0.0, flip=1.0, keep=1.0, collapsed=True)
    runs = [Run(points[0].name, cheater)] + [
        Run(p.name, headline(cf=0.3 + 0.1 * i, flip=0.5 + 0.05 * i, keep=0.9 - 0.05 * i))
        for i, p in enumerate(points[1:])]
    ranked = rank_entries(entries_for(points, runs), sweep.selection)
    assert ranked[-1].name == points[0].name and ranked[-1].rank == 6
    assert all(e.collapsed is False for e in ranked[:-1])
    assert not ranked[-1].on_front
    assert all(e.on_front for e in ranked[:-1])  # a trade-off curve: every healthy run on it
    row = next(line for line in leaderboard_markdown(ranked, sweep).splitlines()
               if f"| {points[0].name} |" in line)
    assert "COLLAPSED" in row and "| yes |" not in row
    assert [r["group"] for r in pareto_rows(ranked)] == ["val front"] * 5 + ["COLLAPSED"]


def test_front_needs_no_selection_metric_but_skips_collapsed_and_incomplete_runs() -> None:
    points, ranked = ranked_sweep({
        0: headline(cf=None, flip=0.6, keep=0.6),
        1: headline(cf=None, flip=0.5, keep=0.5),   # dominated by 0
        2: headline(cf=None, flip=0.9, keep=0.9, collapsed=True),
        3: headline(cf=None, flip=None, keep=0.99),
    })
    front = {e.name: e.on_front for e in ranked}
    assert front == {points[0].name: True, points[1].name: False, points[2].name: False,
                     points[3].name: False, points[4].name: False, points[5].name: False}


def test_test_numbers_never_change_rank_or_front() -> None:
    sweep = make_sweep()
    points = sweep.points()
    rng = np.random.default_rng(1)
    base = [headline(cf=float(rng.uniform()), flip=float(rng.uniform()),
                     keep=float(rng.uniform())) for _ in points]
    base[2]["val"]["told"]["collapsed"] = True
    base[2]["test"]["told"]["collapsed"] = True

    def ranking(headlines):
        runs = [Run(p.name, h) for p, h in zip(points, headlines, strict=True)]
        ranked = rank_entries(entries_for(points, runs), sweep.selection)
        return [(e.name, e.rank, e.on_front) for e in ranked]

    before = ranking(base)
    for _ in range(10):
        changed = copy.deepcopy(base)
        for h in changed:
            for key in ("flip_success_linear", "preservation_linear",
                        "counterfactual_relative_error", "identity_top1_target",
                        "noop_movement_ratio"):
                h["test"]["told"][key] = float(rng.uniform(-5, 5))
        assert ranking(changed) == before
    no_test = copy.deepcopy(base)
    for h in no_test:
        h["test"] = {"told": {"collapsed": h["test"]["told"]["collapsed"]}}
    assert ranking(no_test) == before


def test_rank_entries_returns_copies() -> None:
    points = make_sweep().points()
    entries = entries_for(points, [Run(points[1].name, headline())])
    ranked = rank_entries(entries, CF_MIN)
    assert ranked[0].rank == 1 and ranked[0].on_front
    assert entries[1].rank == 0 and not entries[1].on_front


# --- leaderboard text --------------------------------------------------------------------

def full_board(selection: Selection = CF_MIN):
    sweep = make_sweep(selection)
    points = sweep.points()
    runs = [Run(points[0].name, headline(cf=0.25, flip=0.7, keep=0.8)),
            Run(points[1].name, headline(cf=0.05, collapsed=True)),
            Run(points[2].name, headline(cf=0.3, flip=0.6, keep=0.85,
                                         test={"identity_top1_target": None})),
            Run(points[3].name, None, "FileNotFoundError | bad"),
            Run("workspace", headline())]
    return sweep, points, rank_entries(entries_for(points, runs), sweep.selection)


def test_markdown_has_heading_summary_header_and_one_row_per_grid_point() -> None:
    sweep, points, ranked = full_board()
    text = leaderboard_markdown(ranked, sweep)
    lines = text.splitlines()
    assert lines[0] == "# Sweep t"
    assert "6 grid points: 3 with results, 1 collapsed, 2 missing" in text
    assert ("Ranked on val counterfactual_relative_error (lower is better); test columns are "
            "reported, never used to choose") in text
    header = next(line for line in lines if line.startswith("| rank"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells == ["rank", "experiment", "loss.lambda_identity", "train.flip_prob",
                     "val cf error", "val flip", "val keep", "test cf error",
                     "test blind cf error", "test flip", "test keep", "test id@1 (target)",
                     "test no-op", "collapsed", "front", "status"]
    rows = [line for line in lines if line.startswith("| ") and line is not header]
    assert len(rows) == 6
    for point in points:
        assert sum(f"| {point.name} |" in row for row in rows) == 1
    first = [c.strip() for c in rows[0].strip("|").split("|")]
    assert first[:5] == ["1", points[0].name, "0", "0.25", "0.2500"]
    assert first[-3:] == ["no", "yes", "ok"]
    assert first[cells.index("test id@1 (target)")] == "0.9000"
    assert first[cells.index("test blind cf error")] == "0.6500"
    third = rows[1]  # points[2]: identity_top1_target is None
    assert "| - |" in third
    broken = next(row for row in rows if points[3].name in row)
    assert "no metrics: FileNotFoundError \\| bad" in broken  # the pipe is escaped
    missing = next(row for row in rows if points[5].name in row)
    assert missing.rstrip().endswith("| - | - | - | - | - | - | - | - | - | - |  | missing |")


def test_markdown_says_higher_is_better_for_max() -> None:
    sweep, _, ranked = full_board(FLIP_MAX)
    assert "Ranked on val flip_success_linear (higher is better)" in (
        leaderboard_markdown(ranked, sweep))


def test_csv_round_trips_with_machine_headers() -> None:
    sweep, points, ranked = full_board()
    text = leaderboard_csv(ranked, sweep)
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == [
        "rank", "name", "status", "problem", "loss.lambda_identity", "train.flip_prob",
        "val_counterfactual_relative_error", "val_flip_success_linear",
        "val_preservation_linear", "test_counterfactual_relative_error",
        "test_blind_counterfactual_relative_error", "test_flip_success_linear",
        "test_preservation_linear", "test_identity_top1_target", "test_noop_movement_ratio",
        "val_success_linear", "val_pareto_area_linear", "test_success_linear",
        "collapsed", "on_val_front", "not_eligible"]
    assert reader.fieldnames == csv_columns(sweep)
    rows = list(reader)
    assert [r["name"] for r in rows] == names(ranked)
    assert [int(r["rank"]) for r in rows] == list(range(1, 7))
    first = rows[0]
    assert first["status"] == "ok" and first["collapsed"] == "false"
    assert first["on_val_front"] == "true"
    assert first["loss.lambda_identity"] == "0" and first["train.flip_prob"] == "0.25"
    assert float(first["val_counterfactual_relative_error"]) == 0.25
    assert rows[1]["test_identity_top1_target"] == ""
    cheater = next(r for r in rows if r["name"] == points[1].name)
    assert cheater["collapsed"] == "true" and cheater["on_val_front"] == "false"
    broken = next(r for r in rows if r["name"] == points[3].name)
    assert broken["status"] == "no metrics" and broken["collapsed"] == ""
    assert broken["val_flip_success_linear"] == ""


def test_csv_keeps_full_precision() -> None:
    sweep = make_sweep()
    points = sweep.points()
    value = 0.123456789012345
    ranked = rank_entries(entries_for(points, [Run(points[0].name, headline(cf=value))]),
                          sweep.selection)
    row = next(csv.DictReader(io.StringIO(leaderboard_csv(ranked, sweep))))
    assert float(row["val_counterfactual_relative_error"]) == value


def test_pareto_rows_carry_test_numbers_and_groups() -> None:
    _, points, ranked = full_board()
    rows = pareto_rows(ranked)
    assert [r["name"] for r in rows] == [points[0].name, points[2].name, points[1].name]
    first = rows[0]
    assert first["flip_success_linear"] == 0.6 and first["preservation_linear"] == 0.75
    assert first["val_flip_success_linear"] == 0.7 and first["val_preservation_linear"] == 0.8
    assert first["group"] == "val front" and first["on_val_front"] is True
    assert rows[1]["group"] == "val front"  # 0.6/0.85 vs 0.7/0.8: neither dominates
    assert rows[2]["group"] == "COLLAPSED" and rows[2]["collapsed"] is True


def test_pareto_rows_skip_runs_without_both_test_numbers() -> None:
    sweep = make_sweep()
    points = sweep.points()
    runs = [Run(points[0].name, headline(test={"preservation_linear": None})),
            Run(points[1].name, headline())]
    rows = pareto_rows(rank_entries(entries_for(points, runs), sweep.selection))
    assert [r["name"] for r in rows] == [points[1].name]


# --- the figure --------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["normal", "empty", "many front runs"])
def test_draw_sweep_pareto_writes_a_png(tmp_path: Path, which: str) -> None:
    if which == "normal":
        rows = pareto_rows(full_board()[2])
    elif which == "empty":
        rows = []
    else:
        rows = [{"name": f"run{i}", "preservation_linear": i / 20,
                 "flip_success_linear": 1 - i / 20, "group": "val front"} for i in range(20)]
        rows.append({"name": "bad", "preservation_linear": None, "flip_success_linear": 0.5,
                     "group": "other"})
    path = tmp_path / "plots" / "pareto.png"
    draw_sweep_pareto(rows, path, "Sweep t")
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000
    assert list(path.parent.iterdir()) == [path], "no temp files left behind"


def test_a_collapse_seen_on_test_only_is_shown_but_does_not_move_the_run() -> None:
    sweep = make_sweep()
    points = sweep.points()
    best = headline(cf=0.1)
    best["test"]["told"]["collapsed"] = True  # val says healthy: ranking must not peek at test
    runs = [Run(points[0].name, headline(cf=0.5)), Run(points[1].name, best)]
    ranked = rank_entries(entries_for(points, runs), sweep.selection)
    assert ranked[0].name == points[1].name and ranked[0].on_front
    assert ranked[0].collapsed is True  # still flagged
    row = next(line for line in leaderboard_markdown(ranked, sweep).splitlines()
               if f"| {points[1].name} |" in line)
    assert "COLLAPSED(test)" in row


def test_pareto_csv_holds_every_row_and_a_header_when_empty() -> None:
    _, points, ranked = full_board()
    rows = pareto_rows(ranked)
    read = list(csv.DictReader(io.StringIO(pareto_csv(rows))))
    assert [r["name"] for r in read] == [r["name"] for r in rows]
    assert float(read[0]["flip_success_linear"]) == rows[0]["flip_success_linear"]
    assert read[2]["group"] == "COLLAPSED"
    empty = pareto_csv([]).splitlines()
    assert empty == [",".join(PARETO_COLUMNS)]


# --- the selection rule (the default select) ---------------------------------------------

def test_the_default_ranking_is_the_selection_rule_of_the_pipeline() -> None:
    """Eligible first (flip/keep at the gate, realistic, not collapsed), then the lowest val
    error, ties within 0.01 to the larger Pareto area: the order of
    fclf.evaluate.selection.rank, the function that picks the peers and the best baseline."""
    points, ranked = ranked_sweep({
        0: headline(cf=0.400, area=0.80, keep=0.9),
        1: headline(cf=0.405, area=0.90, keep=0.9),               # ties with 0, larger area: first
        2: headline(cf=0.10, flip=0.5, keep=0.9),                 # best error, flip below the gate
        3: headline(cf=0.20, keep=0.9, realistic=False),          # off the manifold: not eligible
        4: headline(cf=0.30, keep=0.9, collapsed=True),
        # 5: missing
    }, RULE)
    assert names(ranked) == [points[i].name for i in (1, 0, 2, 3, 4, 5)]
    assert ranked[0].held_back == () and ranked[2].held_back[0].startswith("flip_success")
    text = leaderboard_markdown(ranked, make_sweep(RULE))
    assert "Ranked by the selection rule (fclf.evaluate.selection)" in text
    row = next(line for line in text.splitlines() if f"| {points[3].name} |" in line)
    assert "not eligible: unrealistic" in row
    with_names = {e.name: e for e in ranked}
    from fclf.evaluate.selection import rank

    told = {p.name: with_names[p.name].headline["val"]["told"] for p in points[:5]}
    blocks = {name: dict(b, curve={"pareto_area_linear": b["pareto_area_linear"]})
              for name, b in told.items()}
    assert [r.name for r in rank(blocks)] == names(ranked)[:5]


def test_the_rule_takes_the_gate_thresholds_it_is_given() -> None:
    from fclf.evaluate.selection import SelectionRule

    points = make_sweep(RULE).points()
    runs = [Run(points[0].name, headline(cf=0.2, flip=0.65, keep=0.9)),
            Run(points[1].name, headline(cf=0.3, flip=0.75, keep=0.9))]
    loose = rank_entries(entries_for(points, runs), RULE, SelectionRule(0.6, 0.5))
    strict = rank_entries(entries_for(points, runs), RULE, SelectionRule(0.7, 0.5))
    assert names(loose)[:2] == [points[0].name, points[1].name]
    assert names(strict)[:2] == [points[1].name, points[0].name]


def test_flat_dotted_headlines_as_exp_show_gives_them_rank_like_nested_ones() -> None:
    from fclf.cli.compare import _nest

    points = make_sweep(RULE).points()
    nested = [headline(cf=0.3, keep=0.9), headline(cf=0.2, keep=0.9),
              headline(cf=0.1, keep=0.9, collapsed=True)]
    flat = [_nest(h) for h in nested]
    assert "val.told.counterfactual_relative_error" in flat[0]

    def order(headlines):
        runs = [Run(p.name, h) for p, h in zip(points, headlines, strict=False)]
        ranked = rank_entries(entries_for(points, runs), RULE)
        return [(e.name, e.collapsed, e.value("test", "counterfactual_relative_error", "blind"))
                for e in ranked]

    assert order(flat) == order(nested)
    assert order(flat)[0][0] == points[1].name and order(flat)[2][1] is True
