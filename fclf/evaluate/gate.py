"""The release gate: fail loudly when a model collapsed, under-performs, or does not reproduce.

Checks one method's block of one split (by default `test.fclf`), each by name:
- `collapsed` must be false (the verdict of neighbourhood, coverage, density,
  distinct-neighbour and silhouette measures);
- judge flip success / preservation (linear judge), identity top-1 and, where
  the synthetic truth is known, the counterfactual relative error;
- the no-op: an edit asked for the attributes a point already has must barely
  move it (centred cosine, and movement relative to a real edit);
- with a reference (e.g. the metrics committed in git), every numeric metric
  must match it within `reproduce_tolerance`, and every flag must be equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fclf.config import GateConfig


@dataclass(frozen=True)
class Check:
    name: str
    value: Any
    requirement: str
    passed: bool


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _lookup(block: dict[str, Any], dotted: str) -> Any:
    node: Any = block
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


def threshold_checks(
    metrics: dict[str, Any], gate: GateConfig, where: str = "test.fclf"
) -> list[Check]:
    """The quality checks on the block at `where` (split.method, or a block given directly
    when `where` is empty)."""
    block = _lookup(metrics, where) if where else metrics
    block = block if isinstance(block, dict) else {}
    prefix = f"{where}." if where else ""
    collapsed = block.get("collapsed")
    checks = [Check(f"{prefix}collapsed", collapsed, "false", collapsed is False)]
    rules = (
        ("flip_success_linear", ">=", gate.min_flip_success, False),
        ("preservation_linear", ">=", gate.min_preservation, False),
        ("identity_top1", ">=", gate.min_identity_top1, True),
        ("counterfactual_relative_error", "<=", gate.max_counterfactual_relative_error, True),
        ("noop.cosine", ">=", gate.min_noop_cosine, False),
        ("noop.movement_ratio", "<=", gate.max_noop_movement_ratio, False),
    )
    for key, op, bound, may_be_absent in rules:
        value = _lookup(block, key)
        if key.startswith("noop.") and block.get("noop", "absent") is None:
            checks.append(Check(f"{prefix}{key}", None, "absent: the edits have no no-op", True))
            continue
        if value is None and may_be_absent:
            checks.append(Check(f"{prefix}{key}", None, "absent: not known for this data", True))
            continue
        ok = _is_number(value) and (value >= bound if op == ">=" else value <= bound)
        checks.append(Check(f"{prefix}{key}", value, f"{op} {bound:g}", ok))
    return checks


def reproduction_checks(
    metrics: dict[str, Any], reference: dict[str, Any], tolerance: float
) -> list[Check]:
    """Compare every leaf of the reference with the reproduced metrics."""
    now, ref = _flatten(metrics), _flatten(reference)
    checks = []
    for key in sorted(ref):
        want, got = ref[key], now.get(key, "<missing>")
        if _is_number(want):
            if not (_is_number(got) and abs(got - want) <= tolerance):
                checks.append(Check(f"reproduce {key}", got, f"{want:.4g} ± {tolerance:g}", False))
        elif type(got) is not type(want) or got != want:  # flags: False must not equal 0
            checks.append(Check(f"reproduce {key}", got, f"== {want!r}", False))
    passed = len(ref) - len(checks)
    checks.append(Check("reproduce (all metrics)", f"{passed}/{len(ref)} match", f"± {tolerance:g}",
                        not checks))
    return checks


def run_gate(
    metrics: dict[str, Any], gate: GateConfig, reference: dict[str, Any] | None = None
) -> list[Check]:
    checks = threshold_checks(metrics, gate)
    if reference is not None:
        checks += reproduction_checks(metrics, reference, gate.reproduce_tolerance)
    return checks


def format_table(checks: list[Check]) -> str:
    rows = [("check", "value", "required", "result")]
    for c in checks:
        value = f"{c.value:.4f}" if isinstance(c.value, float) else str(c.value)
        rows.append((c.name, value, c.requirement, "ok" if c.passed else "FAIL"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows)
    return "\n".join(lines)
