"""The package's shape: imports only go down the wings, and dvc.yaml deps cover what stages import.

Order (lowest first): top-level helpers -> data, model -> train, evaluate, plotting -> sweep
-> cli.
A module may import its own wing, any lower level, never a higher level and
never a sibling wing of its own level (train must not read evaluate's judge).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "fclf"
LEVELS = {"helpers": 0, "data": 1, "model": 1, "train": 2, "evaluate": 2, "plotting": 2,
          "sweep": 3, "cli": 4}


def module_name(path: Path, repo: Path = REPO) -> str:
    parts = list(path.relative_to(repo).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def wing(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LEVELS:
        return parts[1]
    return "helpers"


def resolve(module: str, repo: Path = REPO) -> Path | None:
    base = repo.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def fclf_imports(path: Path, repo: Path = REPO) -> set[str]:
    """Absolute fclf modules imported by a file (`from fclf.x import y` counts y if a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "fclf")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "fclf":
                continue
            found.add(node.module)
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                if resolve(candidate, repo) is not None:
                    found.add(candidate)
    return found


def upward_imports(repo: Path = REPO) -> list[str]:
    """Every import of a higher level or of a sibling wing, as readable lines."""
    bad = []
    for path in sorted((repo / "fclf").rglob("*.py")):
        here = wing(module_name(path, repo))
        for target in sorted(fclf_imports(path, repo)):
            there = wing(target)
            if there == here or target == "fclf":
                continue
            if LEVELS[there] >= LEVELS[here]:
                bad.append(f"{module_name(path, repo)} ({here}) imports {target} ({there})")
    return bad


def test_imports_only_go_down_the_wings() -> None:
    assert upward_imports() == []


def test_the_direction_check_catches_upward_and_sibling_imports(tmp_path) -> None:
    for wing_name in ("model", "evaluate", "train"):
        (tmp_path / "fclf" / wing_name).mkdir(parents=True)
        (tmp_path / "fclf" / wing_name / "__init__.py").write_text("")
    (tmp_path / "fclf" / "__init__.py").write_text("")
    (tmp_path / "fclf" / "errors.py").write_text("")
    (tmp_path / "fclf" / "evaluate" / "probes.py").write_text("from fclf import errors\n")
    (tmp_path / "fclf" / "model" / "field.py").write_text(
        "from fclf.evaluate.probes import AttributeProbes\n")
    (tmp_path / "fclf" / "train" / "loop.py").write_text("import fclf.evaluate.probes\n")
    assert upward_imports(tmp_path) == [
        "fclf.model.field (model) imports fclf.evaluate.probes (evaluate)",
        "fclf.train.loop (train) imports fclf.evaluate.probes (evaluate)",
    ]


def test_the_sweep_wing_imports_only_evaluate_plotting_and_helpers() -> None:
    """The sweep library sits under the command (fclf.cli parses arguments and calls it) and
    over what it ranks and draws; it never reaches into training."""
    allowed = {"sweep", "evaluate", "plotting", "helpers"}
    reached = {f"{module_name(path)} imports {target}"
               for path in sorted((PACKAGE / "sweep").rglob("*.py"))
               for target in fclf_imports(path) if wing(target) not in allowed}
    assert reached == set()
    assert not (PACKAGE / "cli" / "sweep").exists(), "the sweep library moved to fclf/sweep/"


def test_the_direction_check_covers_the_sweep_wing(tmp_path) -> None:
    for wing_name in ("sweep", "cli", "evaluate"):
        (tmp_path / "fclf" / wing_name).mkdir(parents=True)
        (tmp_path / "fclf" / wing_name / "__init__.py").write_text("")
    (tmp_path / "fclf" / "__init__.py").write_text("")
    (tmp_path / "fclf" / "cli" / "main.py").write_text("from fclf.sweep import work\n")
    (tmp_path / "fclf" / "sweep" / "work.py").write_text("import fclf.evaluate\n")
    (tmp_path / "fclf" / "sweep" / "report.py").write_text("from fclf.cli.main import app\n")
    (tmp_path / "fclf" / "evaluate" / "gate.py").write_text("from fclf.sweep.work import run\n")
    assert upward_imports(tmp_path) == [
        "fclf.evaluate.gate (evaluate) imports fclf.sweep.work (sweep)",
        "fclf.sweep.report (sweep) imports fclf.cli.main (cli)",
    ]


def test_every_wing_has_a_docstring_saying_what_it_may_import() -> None:
    for name in LEVELS:
        if name == "helpers":
            continue
        init = PACKAGE / name / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and "import" in doc, f"{init} needs a docstring naming what it may import"


def transitive_modules(script: Path) -> set[str]:
    seen: set[str] = set()
    todo = list(fclf_imports(script))
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = resolve(module)
        if path is not None:
            todo.extend(fclf_imports(path))
    return seen


def stage_specs() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(stage_specs()))
def test_stage_deps_cover_every_fclf_module_the_stage_imports(stage: str) -> None:
    spec = stage_specs()[stage]
    script = REPO / spec["cmd"].split()[1]
    deps = [REPO / d for d in spec["deps"]]
    assert script in deps
    uncovered = []
    for module in sorted(transitive_modules(script)):
        path = resolve(module)
        if path is None or path.name == "__init__.py" and path.parent == PACKAGE:
            continue  # fclf/__init__.py holds only the version string
        if not any(path == d or d in path.parents for d in deps):
            uncovered.append(str(path.relative_to(REPO)))
    assert uncovered == [], f"stage {stage!r}: add these to its deps in dvc.yaml"


def test_stage_names_are_the_designed_ones() -> None:
    assert list(stage_specs()) == ["check-params", "embed", "fit-judge", "train-baselines",
                                   "clean-checkpoints", "train", "evaluate-transfer", "plot"]


def test_every_stage_waits_for_the_params_check() -> None:
    """DVC deletes a stage's outputs before running it: the params check must come first,
    so a bad params file never costs the embeddings or the models."""
    specs = stage_specs()
    (checked,) = [next(iter(out)) if isinstance(out, dict) else out
                  for out in specs["check-params"]["outs"]]
    assert specs["check-params"]["params"] == [{"params.yaml": None}]  # every key
    for stage, spec in specs.items():
        if stage != "check-params":
            assert checked in spec["deps"], stage


def test_the_peers_never_depend_on_fclf_models() -> None:
    """FCLF experiments must reuse the judge and the tuned peers from DVC's cache."""
    for stage in ("fit-judge", "train-baselines"):
        spec = stage_specs()[stage]
        assert not any(d.startswith(("models/fclf", "models/replicates", "fclf/train",
                                     "fclf/model")) for d in spec["deps"]), stage
        assert not {"loss", "train", "model", "flow"} & {p.split(".")[0]
                                                          for p in spec.get("params", [])}
