"""The `fclf` command."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from typer.testing import CliRunner

import fclf
from fclf.cli.main import app


def test_version_option_prints_the_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"fclf {fclf.__version__}"


def test_version_matches_the_package_metadata():
    try:
        installed = metadata.version("fclf")
    except metadata.PackageNotFoundError:
        pytest.skip("fclf is not installed")
    assert installed == fclf.__version__


def test_help_lists_the_version_option():
    result = CliRunner().invoke(app, ["--help"], prog_name="fclf")
    assert result.exit_code == 0
    assert "Usage: fclf" in result.output
    assert "--version" in result.output and "print the version" in result.output


def test_no_arguments_shows_help_instead_of_failing_obscurely():
    result = CliRunner().invoke(app, [], prog_name="fclf")
    assert "Usage: fclf" in result.output
    assert "Traceback" not in result.output


def test_installed_console_script(tmp_path):
    script = Path(sys.executable).parent / "fclf"
    if not script.exists():
        pytest.skip("the fclf console script is not installed next to this python")
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"fclf {fclf.__version__}"
