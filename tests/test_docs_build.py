"""The docs site builds in strict mode, with the CLI reference generated from the app."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli_reference():
    spec = importlib.util.spec_from_file_location(
        "cli_reference", ROOT / "docs" / "hooks" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_has_every_command_as_plain_text() -> None:
    import typer

    from fclf.cli.main import app

    page = cli_reference().cli_markdown()
    root = typer.main.get_command(app)
    for name in root.list_commands(None):
        assert f"## `fclf {name}`" in page
    for sub in ("fclf sweep work", "fclf bench train", "fclf sweep report"):
        assert f"## `{sub}`" in page and f"Usage: {sub} [OPTIONS]" in page
    assert "--shard" in page and "--set" in page  # options of sub-commands
    assert not set("╭╮╰╯│─") & set(page)  # no rich boxes on a web page


def test_mkdocs_builds_in_strict_mode(tmp_path) -> None:
    pytest.importorskip("mkdocs", reason="the docs extra: pip install -e '.[docs]'")
    pytest.importorskip("material", reason="the docs extra: pip install -e '.[docs]'")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={"PATH": str(Path(sys.executable).parent), "NO_MKDOCS_2_WARNING": "1",
             "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    built = (tmp_path / "site" / "cli" / "index.html").read_text()
    assert "Usage: fclf transfer" in built
    assert (tmp_path / "site" / "results" / "index.html").is_file()
