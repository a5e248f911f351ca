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
