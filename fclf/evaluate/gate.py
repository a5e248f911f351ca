"""The release gate: fail loudly when a model collapsed, under-performs, or does not reproduce.

Checks one editor's block of one split and mode (by default `test.told.fclf`), each
by name:
- `collapsed` must be false (the verdict of neighbourhood, coverage, density,
  distinct-neighbour and silhouette measures) and `realistic` true (no
  off-manifold drift, no overshoot: the truth-free checks that refuse noise and
  walking too far);
- judge flip success / preservation (linear judge), identity top-1 among the
  people carrying the target attributes and, where the synthetic truth is
  known, the counterfactual relative error;
- the no-op: asked for no change, an editor told the source's labels must
  leave the point where it is (centred cosine, and movement relative to a real
  edit); the thresholds are what honest told editors do (they move exactly 0),
  and an edits file without a no-op cannot pass;
- with a reference (e.g. the metrics committed in git), every numeric metric
  must match it within `reproduce_tolerance`, and every flag must be equal;
- with a `dvc.lock` (`workspace_checks`): the metrics must be the ones the
  workspace's pipeline made (their md5 is the one dvc.lock records for the
  evaluate-transfer stage's `metrics/transfer.json`) and the model they score
  must be there (`models/fclf.pt` with the md5 recorded for the train stage),
  so committed metrics do not pass in a clone that never trained a model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fclf.config import GateConfig
from fclf.errors import FclfError


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


GATED = "test.told.fclf"


def threshold_checks(
    metrics: dict[str, Any], gate: GateConfig, where: str = GATED
) -> list[Check]:
    """The quality checks on the block at `where` (split.method, or a block given directly
    when `where` is empty)."""
    block = _lookup(metrics, where) if where else metrics
    block = block if isinstance(block, dict) else {}
    prefix = f"{where}." if where else ""
    collapsed, realistic = block.get("collapsed"), block.get("realistic")
    checks = [Check(f"{prefix}collapsed", collapsed, "false", collapsed is False),
              Check(f"{prefix}realistic",
                    realistic if realistic is not False else
                    "; ".join(block.get("realism_reasons") or ["false"]),
                    "true", realistic is True)]
    rules = (
        ("flip_success_linear", ">=", gate.min_flip_success, False),
        ("preservation_linear", ">=", gate.min_preservation, False),
        ("identity_top1_target", ">=", gate.min_identity_top1, True),
        ("counterfactual_relative_error", "<=", gate.max_counterfactual_relative_error, True),
        ("noop.cosine", ">=", gate.min_noop_cosine, False),
        ("noop.movement_ratio", "<=", gate.max_noop_movement_ratio, False),
    )
    for key, op, bound, may_be_absent in rules:
        value = _lookup(block, key)
        if key.startswith("noop.") and not isinstance(block.get("noop"), dict):
            checks.append(Check(f"{prefix}{key}", "no no-op edits",
                                f"{op} {bound:g} (a no-op is required)", False))
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


METRICS_OUT = ("evaluate-transfer", "metrics/transfer.json")  # (dvc.yaml stage, out path)
MODEL_OUT = ("train", "models/fclf.pt")
REPRO_HINT = "run `dvc repro`"


def file_md5(path: Path) -> str:
    """The md5 DVC records for a file out (the plain md5 of its bytes)."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _locked_md5(lock: dict[str, Any], stage: str, out: str) -> str | None:
    record = (lock.get("stages") or {}).get(stage) or {}
    for entry in record.get("outs") or []:
        if isinstance(entry, dict) and entry.get("path") == out:
            return entry.get("md5")
    return None


def read_lock(path: Path) -> dict[str, Any]:
    try:
        lock = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise FclfError(f"{path}: not a readable dvc.lock ({exc})") from None
    if not isinstance(lock, dict):
        raise FclfError(f"{path}: not a dvc.lock (expected a mapping with 'stages')")
    return lock


def _matches_lock(lock: dict, lock_path: Path, stage: str, out: str, path: Path,
                  requirement: str) -> Check:
    """One row: does `path` exist with the md5 `lock` records for `stage`'s `out`?"""
    want = _locked_md5(lock, stage, out)
    got = file_md5(path) if path.is_file() else None
    if got is None:
        value = f"{path} is missing: {REPRO_HINT}"
    elif want is None:
        value = f"{lock_path} records no {out} for stage {stage}: {REPRO_HINT}"
    elif got != want:
        value = f"{out} does not match dvc.lock: {REPRO_HINT}"
    else:
        value = f"md5 {got[:8]} as in dvc.lock"
    return Check(f"workspace {out}", value, requirement, got is not None and got == want)


def workspace_checks(metrics_path: Path, lock_path: Path) -> list[Check]:
    """Do the metrics and the model belong to the workspace of `lock_path` (see the module
    docstring)? The model is looked up next to the lock; a failed row says how to fix it."""
    lock = read_lock(lock_path)
    root = Path(lock_path).parent
    metrics_stage, metrics_out = METRICS_OUT
    model_stage, model_out = MODEL_OUT
    model = _matches_lock(lock, lock_path, model_stage, model_out, root / model_out,
                          f"exists, md5 == dvc.lock {model_stage}")
    if not (root / model_out).is_file():
        model = Check(model.name, f"no model in the workspace: {REPRO_HINT}", model.requirement,
                      False)
    return [
        _matches_lock(lock, lock_path, metrics_stage, metrics_out, Path(metrics_path),
                      f"md5 == dvc.lock {metrics_stage}"),
        model,
    ]


def format_table(checks: list[Check]) -> str:
    rows = [("check", "value", "required", "result")]
    for c in checks:
        value = f"{c.value:.4f}" if isinstance(c.value, float) else str(c.value)
        rows.append((c.name, value, c.requirement, "ok" if c.passed else "FAIL"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows)
    return "\n".join(lines)
