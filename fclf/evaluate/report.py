"""Readable forms of the protocol's results: the curve CSV, console lines, a Markdown table."""

from __future__ import annotations

import csv
import io

from fclf.evaluate.tradeoff import CURVE_METRICS

HEADLINE = ("counterfactual_relative_error", "flip_success_linear", "preservation_linear",
            "flip_success_mlp", "preservation_mlp", "identity_top1_target", "off_manifold",
            "overshoot_rate", "movement")


def curves_csv(rows: list[dict]) -> str:
    """The trade-off curves as CSV (what `dvc plots` reads); empty cells for unknown values."""
    out = io.StringIO()
    fields = ["split", "method", "strength", *CURVE_METRICS]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else _fmt(row[k])) for k in fields})
    return out.getvalue()


def _fmt(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def method_blocks(mode_metrics: dict) -> dict[str, dict]:
    """The per-editor blocks of one split and mode."""
    return {m: b for m, b in mode_metrics.items() if isinstance(b, dict) and "movement" in b}


def _value(value) -> str:
    return "-" if value is None else f"{value:.3f}"


SUMMARY_KEYS = ("counterfactual_relative_error", "flip_success_linear", "preservation_linear",
                "identity_top1_target", "off_manifold", "overshoot_rate", "noop_movement_ratio",
                "mean_step", "pareto_area_linear")
SUMMARY_LEGEND = (
    "legend: cf err = counterfactual relative error, sum |edit - truth| / sum |truth - source| "
    "(told mode; blind: the editor reads the source itself); flip / keep = linear judge: "
    "requested attributes flipped / the others kept; id@1 = identity top-1 among the people "
    "with the target attributes; offman = off-manifold energy ratio; over = overshoot rate; "
    "no-op = movement when asked for nothing / an edit's; step = mean step length; pareto = "
    "Pareto area (linear judge); n/a = cannot be computed (step, pareto: no 'trajectories'; "
    "cf err: no ground truth)")


def summary_row(block: dict) -> dict:
    """One editor's summary values (`SUMMARY_KEYS`, its role and flags); None where a value
    cannot be computed (no trajectories: no step or Pareto area; no truth: no cf error)."""
    row = {"role": block.get("role")}
    for key in SUMMARY_KEYS:
        dotted = {"noop_movement_ratio": "noop.movement_ratio",
                  "pareto_area_linear": "curve.pareto_area_linear"}.get(key, key)
        row[key] = _get(block, dotted)
    row["collapsed"], row["realistic"] = block.get("collapsed"), block.get("realistic")
    return row


def best_baseline(mode_metrics: dict) -> tuple[str | None, str]:
    """The peer with the lowest counterfactual relative error in one split and mode (not
    FCLF, its seeds, the oracle or the supervised reference), and how it was chosen; without
    errors (no truth), the pipeline's own `best_baseline` (picked on val)."""
    peers = {m: b for m, b in method_blocks(mode_metrics).items() if b.get("role") == "peer"
             and b.get("counterfactual_relative_error") is not None}
    if peers:
        name = min(peers, key=lambda m: peers[m]["counterfactual_relative_error"])
        return name, "lowest counterfactual_relative_error among the peers"
    name = mode_metrics.get("best_baseline")
    if name in method_blocks(mode_metrics):
        return name, "the pipeline's best_baseline (chosen on val; no counterfactual error)"
    return None, "no peers"


def workspace_rows(split_metrics: dict) -> dict[str, dict[str, dict]]:
    """{mode: {"fclf" | "best_baseline" | "oracle": summary row with its "editor"}} of one
    split of the pipeline's metrics file (editors it lacks are left out)."""
    out: dict[str, dict[str, dict]] = {}
    for mode, mode_metrics in split_metrics.items():
        if not isinstance(mode_metrics, dict):
            continue
        blocks = method_blocks(mode_metrics)
        best, chosen_by = best_baseline(mode_metrics)
        rows = {}
        for key, name in (("fclf", "fclf"), ("best_baseline", best), ("oracle", "oracle")):
            if name in blocks:
                rows[key] = {"editor": name, **summary_row(blocks[name])}
        if "best_baseline" in rows:
            rows["best_baseline"]["chosen_by"] = chosen_by
        out[mode] = rows
    return out


def _summary_value(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def headline_line(split_metrics: dict, editor: str = "edits") -> str:
    """The headline: an editor's counterfactual relative error, told (blind beside it when
    that mode was scored)."""
    told = (split_metrics.get("told") or {}).get(editor) or {}
    blind = (split_metrics.get("blind") or {}).get(editor)
    error = told.get("counterfactual_relative_error")
    if error is None:
        return ("headline: counterfactual relative error n/a (no ground truth for this split: "
                "the judge's flip / keep readings below are all there is)")
    line = f"headline: counterfactual relative error {error:.3f} told"
    if blind is not None:
        line += f", {_summary_value(blind.get('counterfactual_relative_error'))} blind"
    return line + " (0 = the true counterfactual, 1 = no closer than not editing; lower is better)"


def score_lines(split_metrics: dict, workspace: dict | None = None,
                workspace_source: str = "the workspace") -> list[str]:
    """`fclf score`'s summary: the headline first, a one-line legend, then one line per editor
    of this run (told mode, blind error beside it) and, when `workspace` (one split of the
    pipeline's metrics file) is given, its FCLF, best baseline and oracle for comparison."""
    told, blind = split_metrics["told"], split_metrics.get("blind") or {}
    rows = [(("yours" if m == "edits" else f"{m} (this run)"), b, blind.get(m))
            for m, b in method_blocks(told).items()]
    rows.sort(key=lambda row: row[1].get("role") != "edits")
    extra: list[tuple[str, dict, dict | None]] = []
    if workspace:
        w_told, w_blind = workspace.get("told") or {}, workspace.get("blind") or {}
        blocks = method_blocks(w_told)
        best, _ = best_baseline(w_told)
        for label, name in (("fclf", "fclf"), (f"best baseline: {best}", best),
                            ("oracle", "oracle")):
            if name in blocks:
                extra.append((f"  {label}", blocks[name], method_blocks(w_blind).get(name)))
    width = max(len(label) for label, _, _ in rows + extra + [("editor", {}, None)])
    columns = ("cf err", "blind", "flip", "keep", "id@1", "offman", "over", "no-op", "step",
               "pareto")
    lines = [headline_line(split_metrics), SUMMARY_LEGEND,
             f"{'editor':{width}s} " + " ".join(f"{c:>6s}" for c in columns) + "  verdict"]

    def line(label: str, block: dict, blind_block: dict | None) -> str:
        row = summary_row(block)
        values = [row[k] for k in SUMMARY_KEYS]
        values.insert(1, (blind_block or {}).get("counterfactual_relative_error"))
        verdict = ("COLLAPSED" if block.get("collapsed") else
                   "unrealistic" if block.get("realistic") is False else "ok")
        return (f"{label:{width}s} " + " ".join(f"{_summary_value(v):>6s}" for v in values)
                + f"  {verdict}")

    lines += [line(*row) for row in rows]
    if extra:
        lines.append(f"from {workspace_source} (the pipeline's run, same split):")
        lines += [line(*row) for row in extra]
    return lines


def summary_lines(split_metrics: dict) -> list[str]:
    """One console line per editor (told mode, blind error beside it) and a legend."""
    told, blind = split_metrics["told"], split_metrics.get("blind") or {}
    lines = [f"{'editor':22s} {'cf err':>6s} {'blind':>6s} {'flip':>6s} {'keep':>6s} "
             f"{'id@1':>6s} {'offman':>6s} {'over':>6s} {'no-op':>6s}  verdict"]
    for method, b in method_blocks(told).items():
        noop = b.get("noop") or {}
        verdict = ("COLLAPSED" if b.get("collapsed") else
                   "unrealistic" if b.get("realistic") is False else "ok")
        if method == told.get("best_baseline"):
            verdict += " (best baseline)"
        lines.append(
            f"{method:22s} {_value(b.get('counterfactual_relative_error')):>6s} "
            f"{_value((blind.get(method) or {}).get('counterfactual_relative_error')):>6s} "
            f"{_value(b['flip_success_linear']):>6s} {_value(b['preservation_linear']):>6s} "
            f"{_value(b.get('identity_top1_target')):>6s} {_value(b.get('off_manifold')):>6s} "
            f"{_value(b.get('overshoot_rate')):>6s} {_value(noop.get('movement_ratio')):>6s}  "
            f"{verdict}")
    lines.append("cf err: counterfactual relative error, told (blind: the editor reads the "
                 "source itself); flip/keep: linear judge; id@1: identity among the people "
                 "with the target attributes; offman: off-manifold energy ratio; over: "
                 "overshoot rate; no-op: movement when asked for nothing / an edit's")
    return lines


def markdown_table(mode_metrics: dict, keys: tuple[str, ...] = HEADLINE) -> str:
    """Editors x headline metrics with their 95 % intervals, as a Markdown table."""
    header = "| editor | " + " | ".join(keys) + " | collapsed |"
    lines = [header, "|" + "---|" * (len(keys) + 2)]
    for method, b in method_blocks(mode_metrics).items():
        cells = []
        for key in keys:
            value, interval = b.get(key), b.get("intervals", {}).get(key)
            cell = _value(value)
            if value is not None and interval:
                cell += f" [{interval[0]:.3f}, {interval[1]:.3f}]"
            cells.append(cell)
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {b.get('collapsed')} |")
    return "\n".join(lines)


def _cell(block: dict, key: str, intervals: bool = True) -> str:
    value = _get(block, key)
    if value is None:
        return "-"
    text = f"{value:.3f}"
    interval = (block.get("intervals") or {}).get(key) if intervals else None
    return f"{text} [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else text


def _get(block: dict, dotted: str):
    for key in dotted.split("."):
        block = block.get(key) if isinstance(block, dict) else None
    return block


ROLE_ORDER = ("fclf", "peer", "reference", "oracle")


def results_markdown(metrics: dict, split: str = "test") -> str:
    """The Results tables (README, docs/results.md): every editor in told mode with its
    blind error beside it, 95 % intervals over identities, FCLF's seeds against the best
    baseline, and FCLF's rank."""
    told, blind = metrics[split]["told"], metrics[split].get("blind") or {}
    best = told.get("best_baseline")
    editors = sorted(method_blocks(told), key=lambda m: (
        ROLE_ORDER.index(told[m].get("role", "peer")) if told[m].get("role") in ROLE_ORDER
        else len(ROLE_ORDER), m))
    editors = [m for m in editors if told[m].get("role") != "replicate"]
    head = ("| editor | cf error, told [95 %] | cf error, blind [95 %] | flip lin / mlp "
            "| keep lin / mlp | id@1 target | off-manifold | overshoot | no-op told "
            "| Pareto area lin / mlp | verdict |")
    lines = [head, "|" + "---|" * 11]
    for m in editors:
        b, bl = told[m], blind.get(m) or {}
        curve = b.get("curve") or {}
        verdict = ("COLLAPSED" if b.get("collapsed") else
                   "unrealistic" if b.get("realistic") is False else "ok")
        label = {"peer": f"peer: {m}", "reference": "reference (true pairs)",
                 "oracle": "oracle (exact)"}.get(b.get("role"), m)
        if m == best:
            label += " (best baseline)"
        noop = _get(b, "noop.movement_ratio")
        lines.append(
            f"| {label} | {_cell(b, 'counterfactual_relative_error')} "
            f"| {_cell(bl, 'counterfactual_relative_error')} "
            f"| {_cell(b, 'flip_success_linear', False)} / {_cell(b, 'flip_success_mlp', False)} "
            f"| {_cell(b, 'preservation_linear', False)} / "
            f"{_cell(b, 'preservation_mlp', False)} "
            f"| {_cell(b, 'identity_top1_target', False)} | {_cell(b, 'off_manifold', False)} "
            f"| {_cell(b, 'overshoot_rate', False)} "
            f"| {'-' if noop is None else f'{noop:.3f}'} "
            f"| {_cell(curve, 'pareto_area_linear', False)} / "
            f"{_cell(curve, 'pareto_area_mlp', False)} | {verdict} |")
    return "\n".join(lines + [""] + seeds_lines(told) + [rank_line(told, editors), ""]
                     + peers_lines(metrics))


def peers_lines(metrics: dict) -> list[str]:
    """Each peer's settings, chosen on val, with its val scores."""
    chosen = metrics.get("peers") or {}
    val = (metrics.get("val") or {}).get("told") or {}
    if not chosen:
        return []
    lines = ["| peer | chosen on val | val cf error | val success (lin) | val flip / keep (lin) |",
             "|---|---|---|---|---|"]
    for name, hyper in chosen.items():
        b = val.get(name) or {}
        settings = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                             for k, v in hyper.items())
        lines.append(f"| {name} | {settings} | {_cell(b, 'counterfactual_relative_error', False)}"
                     f" | {_cell(b, 'success_linear', False)} | "
                     f"{_cell(b, 'flip_success_linear', False)} / "
                     f"{_cell(b, 'preservation_linear', False)} |")
    return lines


def seeds_lines(told: dict) -> list[str]:
    seeds = told.get("seeds")
    if not seeds:
        return []
    versus = seeds.get("versus_best_baseline") or {}
    metric = versus.get("metric", "counterfactual_relative_error")
    values = ", ".join("-" if v is None else f"{v:.3f}" for v in seeds.get(metric) or [])
    lines = [f"FCLF over training seeds {seeds['seeds']}: {metric} {values}"]
    spread = seeds.get(f"{metric}_spread")
    if spread:
        lines[-1] += f" (spread {spread[0]:.3f}-{spread[1]:.3f})"
    for seed, diff in zip(seeds["seeds"], versus.get("differences") or [], strict=False):
        if diff:
            lines.append(f"- seed {seed}: FCLF minus {versus['baseline']}: "
                         f"{diff['difference']:+.3f} [{diff['low']:+.3f}, {diff['high']:+.3f}]")
    lines.append(f"- verdict over every seed: {seeds.get('verdict')}")
    return lines


def rank_line(told: dict, editors: list[str]) -> str:
    """FCLF's place among itself and the peers by the headline error (or success)."""
    pool = [m for m in editors if told[m].get("role") in ("fclf", "peer")]
    error = told.get("fclf", {}).get("counterfactual_relative_error")
    key, reverse = (("counterfactual_relative_error", False) if error is not None
                    else ("success_linear", True))
    ordered = sorted(pool, key=lambda m: told[m].get(key) or 0.0, reverse=reverse)
    if "fclf" not in ordered:
        return ""
    return (f"FCLF ranks {ordered.index('fclf') + 1} of {len(ordered)} among itself and its "
            f"peers by {key} (told mode): " + " < ".join(ordered))
