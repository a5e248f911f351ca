"""The `fclf` command."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import typer
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


# --- --help of every command ---------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TYPE_LABELS = re.compile(r"<bool>|<list\[")


def command_paths(group=None, prefix=()) -> list[tuple[tuple[str, ...], object]]:
    """(path, command) for every command and group under the fclf app."""
    group = group or typer.main.get_command(app)
    out = []
    for name, command in group.commands.items():
        out.append(((*prefix, name), command))
        if hasattr(command, "commands"):
            out += command_paths(command, (*prefix, name))
    return out


def help_of(args, monkeypatch) -> str:
    """`fclf ARGS --help` on a terminal wide enough that nothing is wrapped: a sentence the
    docstring's line breaks cut is then visible as one."""
    import typer.rich_utils

    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", None, raising=False)
    result = CliRunner().invoke(app, [*args, "--help"], prog_name="fclf",
                                env={"COLUMNS": "1000", "TERMINAL_WIDTH": "1000"})
    assert result.exit_code == 0, result.output
    return ANSI.sub("", result.output)


def unwrapped_paragraphs(command) -> list[str]:
    """The command's docstring (or help=), each paragraph on one line."""
    text = (inspect.getdoc(command.callback) if command.callback else None) or command.help
    return [" ".join(p.split()) for p in inspect.cleandoc(text).split("\n\n")]


def first_sentence(paragraph: str) -> str:
    return paragraph.split(". ")[0]


def test_every_help_page_flows_and_names_no_python_types(monkeypatch):
    paths = command_paths()
    names = {" ".join(path) for path, _ in paths}
    assert {"transfer", "gate", "score", "plots", "bench train", "sweep work"} <= names
    pages = {(): help_of([], monkeypatch)}
    for path, _ in paths:
        pages[path] = help_of(path, monkeypatch)
    for path, page in pages.items():
        assert not TYPE_LABELS.search(page), (path, TYPE_LABELS.findall(page))
    for path, command in paths:
        paragraphs = unwrapped_paragraphs(command)
        # the command list of its group shows the first sentence on one line ...
        listing = pages[path[:-1]]
        assert first_sentence(paragraphs[0]) in listing, (path, paragraphs[0])
        # ... and its own page every paragraph that is not a list
        for paragraph in paragraphs:
            if " - " not in paragraph and " * " not in paragraph:
                assert paragraph in pages[path], (path, paragraph)


def test_help_of_the_commands_a_newcomer_reads_first(monkeypatch):
    transfer = help_of(["transfer"], monkeypatch)
    assert re.search(r"--set +NAME=0\|1 ", transfer)
    assert re.search(r"--source-attr +NAME=0\|1 ", transfer)
    assert re.search(r"--json +print only JSON", transfer)  # a flag: no type between
    plots = help_of(["plots"], monkeypatch)
    assert "e.g. `fclf plots diff collapsed fixed -o dvc_plots`." in plots
    train = help_of(["bench", "train"], monkeypatch)
    assert re.search(r"--checkpoint-gradients +recompute", train)
    assert re.search(r"--steps +<int> \[x>=1\]", train)
    assert re.search(r"--objective +<str> +objective families to time \(repeatable\)", train)
