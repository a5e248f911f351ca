"""The release gate: fail loudly when a model collapsed, under-performs, or does not reproduce.

Checks (each reported by name):
- `fclf.collapsed` must be false;
- `fclf.flip_success`, `fclf.preservation`, `fclf.identity_top1` must reach
  their thresholds;
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


def threshold_checks(metrics: dict[str, Any], gate: GateConfig) -> list[Check]:
    block = metrics.get("fclf", {})
    collapsed = block.get("collapsed")
    checks = [Check("fclf.collapsed", collapsed, "false", collapsed is False)]
    for key, minimum in (
        ("flip_success", gate.min_flip_success),
        ("preservation", gate.min_preservation),
        ("identity_top1", gate.min_identity_top1),
    ):
        value = block.get(key)
        if value is None and key == "identity_top1":
            checks.append(Check(f"fclf.{key}", None, "absent: identities unknown", True))
            continue
        ok = _is_number(value) and value >= minimum
        checks.append(Check(f"fclf.{key}", value, f">= {minimum:g}", ok))
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
