"""Every peer's hyper-parameters, chosen on val by the selection rule FCLF's are chosen by.

For each peer, every grid point (its own knobs times the walk length `alpha`)
edits the val split in told mode, and `fclf.evaluate.selection` picks the
winner, exactly as `fclf sweep report` picks among FCLF runs. The cheap parts
of each candidate's block (judge, truth, realism) are scored for every grid
point; the expensive ones (collapse measures, the curve's Pareto area) only for
the candidates that can still win: those eligible so far and within the rule's
tie window of the best, until the winner is eligible on everything.

Only train (fitting) and val (choosing) are seen: never test, and never the
judge split except through the judge's readings, as for FCLF. The reference
(`fclf.evaluate.peers.reference`) is fitted, not tuned: it is a marker, not a
competitor.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from fclf.evaluate.context import SplitContext
from fclf.evaluate.editors import EditBatch, curve_fractions, exp_map, slerp
from fclf.evaluate.peers.analogy import KnnAnalogy
from fclf.evaluate.peers.base import Peer, TrainData
from fclf.evaluate.peers.conditional_flow import ConditionalFlow
from fclf.evaluate.peers.lines import CodeLine, ConditionalDirection, MeanDirection
from fclf.evaluate.peers.reference import Reference
from fclf.evaluate.scoring import score_method, target_identity_scores
from fclf.evaluate.selection import SelectionRule, ineligibility, rank
from fclf.evaluate.tradeoff import curve_rows, reference_movements, summarise


@dataclass(frozen=True)
class PeerGrids:
    """The grids the peers are tuned over (the `peers` params; defaults equal the schema's)."""

    alphas: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5)
    probe_c: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)
    code_line_shrinkage: tuple[float, ...] = (0.0, 20.0, 100.0)
    knn_k: tuple[int, ...] = (10, 50, 200)
    flow_rank: int = 64
    flow_transforms: int = 4
    flow_hidden: int = 256
    flow_epochs: int = 10
    reference_hidden: int = 256
    reference_epochs: int = 10
    seed: int = 0


def peer_families(data: TrainData, grids: PeerGrids) -> dict[str, Callable[[], Iterable[Peer]]]:
    """name -> a generator of the peer's candidates before `alpha` (fitted lazily, in order)."""
    def flow() -> Iterable[Peer]:
        yield ConditionalFlow(data, grids.flow_rank, grids.flow_transforms, grids.flow_hidden,
                              grids.flow_epochs, grids.seed).fit()

    return {
        "mean_direction": lambda: [MeanDirection(data)],
        "conditional_direction": lambda: (ConditionalDirection(data, c=c)
                                          for c in grids.probe_c),
        "code_line": lambda: [CodeLine(data, shrinkage=s) for s in grids.code_line_shrinkage],
        "knn_analogy": lambda: [KnnAnalogy(data, k=k) for k in grids.knn_k],
        "conditional_flow": flow,
    }


def with_alpha(peer: Peer, alpha: float) -> Peer:
    peer.alpha = float(alpha)
    return peer


def _told_batch(ctx: SplitContext) -> EditBatch:
    return EditBatch(ctx.sources, ctx.index, ctx.source_attributes, ctx.targets)


@dataclass
class _Candidate:
    peer: Peer
    alpha: float
    moving: np.ndarray  # rows asked for a change
    displacement: np.ndarray  # the peer's displacement of those rows (shared across alphas)
    block: dict
    completed: bool = False

    def edited(self, ctx: SplitContext) -> np.ndarray:
        out = np.array(ctx.sources, np.float32)
        out[self.moving] = exp_map(ctx.sources[self.moving], self.displacement, self.alpha)
        return out


def _complete(ctx: SplitContext, cand: _Candidate, fractions: list[float],
              references: dict) -> None:
    """Add the expensive parts (collapse measures, curve summary) to a candidate's block."""
    edited = cand.edited(ctx)
    block, _, _ = score_method(ctx, edited, None, full=True)
    rows = ctx.curve_rows
    frames = [slerp(ctx.sources[rows], edited[rows], s) for s in fractions]
    block["curve"] = summarise(curve_rows(ctx, "candidate", fractions, frames), references)
    for key in ("collapsed", "collapse_reasons", "distinct_fraction", "neighbourhood_preservation",
                "coverage", "density", "curve"):
        cand.block[key] = block.get(key)
    cand.completed = True


def _choose(ctx: SplitContext, candidates: list[_Candidate], rule: SelectionRule,
            fractions: list[float], references: dict) -> _Candidate:
    """The rule's winner, completing blocks only where they can change the outcome."""
    while True:
        blocks = {str(i): c.block for i, c in enumerate(candidates)}
        ranked = rank(blocks, rule)
        leader = candidates[int(ranked[0].name)]
        if not ranked[0].eligible:  # nobody is eligible: completing cannot help
            return leader
        best = ranked[0].score
        contenders = [candidates[int(r.name)] for r in ranked if r.eligible and (
            r.score is None or best is None or abs(r.score - best) <= rule.tie)]
        pending = [c for c in contenders if not c.completed]
        if not pending:
            return leader
        for cand in pending:
            _complete(ctx, cand, fractions, references)


def tune_peer(family: Iterable[Peer], ctx: SplitContext, grids: PeerGrids,
              rule: SelectionRule, references: dict) -> tuple[Peer, dict]:
    """(the winning peer with its alpha set, a report of every candidate)."""
    batch = _told_batch(ctx)
    moving = np.flatnonzero((batch.target != batch.source).any(1))
    fractions = curve_fractions(10)
    candidates: list[_Candidate] = []
    for peer in family:
        displacement = peer.displacement(batch.subset(moving))
        for alpha in grids.alphas:
            cand = _Candidate(peer, float(alpha), moving, displacement, {})
            edited = cand.edited(ctx)
            cand.block, _, _ = score_method(ctx, edited, None, full=False)
            cand.block.pop("collapsed")
            cand.block.update(target_identity_scores(ctx, {"c": edited})["c"][0])
            candidates.append(cand)
    winner = _choose(ctx, candidates, rule, fractions, references)
    chosen = with_alpha(winner.peer, winner.alpha)
    report = {
        "chosen": chosen.hyper(),
        "val": {k: winner.block.get(k) for k in (
            "counterfactual_relative_error", "success_linear", "flip_success_linear",
            "preservation_linear", "off_manifold", "overshoot_rate", "identity_top1_target")},
        "eligible": not ineligibility(winner.block, rule),
        "candidates": [
            {**c.peer.hyper(), "alpha": c.alpha,
             "counterfactual_relative_error": c.block.get("counterfactual_relative_error"),
             "success_linear": c.block.get("success_linear"),
             "ineligible": ineligibility(c.block, rule)}
            for c in candidates],
    }
    return chosen, report


def tune_peers(data: TrainData, ctx: SplitContext, grids: PeerGrids | None = None,
               rule: SelectionRule | None = None, names: Iterable[str] | None = None,
               log: Callable[[str], None] | None = None) -> tuple[dict[str, Peer], dict]:
    """Fit every peer on train and choose its hyper-parameters on the val context `ctx`
    (told mode). Returns (peers by name, {name: report with the seconds it took}); `log`
    hears one line per peer."""
    grids, rule = grids or PeerGrids(), rule or SelectionRule()
    families = peer_families(data, grids)
    references = oracle_references(ctx)
    peers, reports = {}, {}
    for name in names or families:
        start = time.perf_counter()
        peers[name], reports[name] = tune_peer(families[name](), ctx, grids, rule, references)
        reports[name]["seconds"] = round(time.perf_counter() - start, 2)
        if log is not None:
            log(f"{name}: {reports[name]['chosen']} ({reports[name]['seconds']:.1f} s)")
    return peers, reports


def oracle_references(ctx: SplitContext) -> dict:
    """The movements curves are read at: the exact counterfactual's (None without truth)."""
    if ctx.counterfactuals is None:
        return {"oracle": None}
    rows = ctx.curve_rows
    curve = curve_rows(ctx, "oracle", [1.0], [ctx.counterfactuals[rows]])
    return {"oracle": reference_movements(curve)["oracle"]}


def fit_reference(data: TrainData, counterfactual, grids: PeerGrids | None = None) -> Reference:
    """The supervised reference, fitted on exact counterfactual pairs of train rows."""
    grids = grids or PeerGrids()
    return Reference(data, grids.reference_hidden, grids.reference_epochs, grids.seed).fit(
        counterfactual)
