"""Readable forms of the protocol's results: the curve CSV, console lines, a Markdown table."""

from __future__ import annotations

import csv
import io

from fclf.evaluate.tradeoff import CURVE_METRICS

HEADLINE = ("flip_success_linear", "preservation_linear", "flip_success_mlp",
            "preservation_mlp", "identity_top1", "counterfactual_cosine",
            "counterfactual_relative_error", "movement")


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


def method_blocks(split_metrics: dict) -> dict[str, dict]:
    return {m: b for m, b in split_metrics.items() if isinstance(b, dict) and "movement" in b}


def _value(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def summary_lines(split_metrics: dict) -> list[str]:
    """One console line per method: the headline numbers and the collapse verdict."""
    lines = []
    for method, b in method_blocks(split_metrics).items():
        noop = b.get("noop") or {}
        lines.append(
            f"{method:31s} flip {_value(b['flip_success_linear'])}/"
            f"{_value(b['flip_success_mlp'])}  keep {_value(b['preservation_linear'])}/"
            f"{_value(b['preservation_mlp'])}  cf_cos {_value(b['counterfactual_cosine'])}  "
            f"id@1 {_value(b['identity_top1'])}  noop {_value(noop.get('movement_ratio'))}  "
            f"collapsed {b['collapsed']}"
        )
    return lines


def markdown_table(split_metrics: dict, keys: tuple[str, ...] = HEADLINE) -> str:
    """Methods x headline metrics with their 95 % intervals, as a Markdown table."""
    header = "| method | " + " | ".join(keys) + " | collapsed |"
    lines = [header, "|" + "---|" * (len(keys) + 2)]
    for method, b in method_blocks(split_metrics).items():
        cells = []
        for key in keys:
            value, interval = b.get(key), b.get("intervals", {}).get(key)
            cell = _value(value)
            if value is not None and interval:
                cell += f" [{interval[0]:.3f}, {interval[1]:.3f}]"
            cells.append(cell)
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {b['collapsed']} |")
    return "\n".join(lines)
