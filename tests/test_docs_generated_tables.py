"""The tables in README.md and docs/ that come from metrics/transfer.json match it."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def generated():
    spec = importlib.util.spec_from_file_location(
        "generated_tables", ROOT / "docs" / "hooks" / "generated_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_tables_match_the_committed_metrics(generated) -> None:
    assert generated.stale() == [], "run `python docs/hooks/generated_tables.py --write`"


def test_the_readme_and_the_results_page_hold_the_generated_tables(generated) -> None:
    readme = (ROOT / "README.md").read_text()
    results = (ROOT / "docs" / "results.md").read_text()
    tables = generated.tables()
    assert tables["results-editors"] in readme and tables["results-editors"] in results
    assert tables["results-peers"] in results
    assert "| **mean** |" in (ROOT / "docs" / "evaluation.md").read_text()  # the judge table


def test_a_drifted_table_is_found_and_rewritten(generated, tmp_path) -> None:
    (tmp_path / "metrics").mkdir()
    shutil.copy(ROOT / "metrics" / "transfer.json", tmp_path / "metrics" / "transfer.json")
    (tmp_path / "docs").mkdir()
    fresh = generated.tables(tmp_path)["judge"]
    drifted = fresh.replace(fresh.splitlines()[2], "| Smiling | 0.872 | 0.902 |")
    page = tmp_path / "docs" / "page.md"
    page.write_text(f"Judge:\n\n<!-- generated: judge -->\n{drifted}\n<!-- end generated -->\n")
    (tmp_path / "README.md").write_text("No tables.\n")
    assert generated.stale(tmp_path) == ["docs/page.md: judge"]
    rendered = generated.render(page.read_text(), generated.tables(tmp_path))
    assert fresh in rendered and "0.872" not in rendered
    with pytest.raises(KeyError):
        generated.render("<!-- generated: nope -->\n<!-- end generated -->", {})
