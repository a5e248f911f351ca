"""MkDocs hook: the CLI reference page (cli.md), rendered at build time from the Typer app.

Every command and sub-command of `fclf` (fclf.cli.main.app) with the help `--help` prints,
as plain text (click's formatter, not rich's boxes) at a fixed width, so the page cannot
drift from the code.
"""

from __future__ import annotations

import typer

WIDTH = 88  # columns of the rendered help


def context(command, name: str, parent=None):
    """A help context of `command` (typer's own click classes: it may vendor click)."""
    return command.context_class(command, info_name=name, parent=parent,
                                 terminal_width=WIDTH, max_content_width=WIDTH)


def commands(group, ctx):
    """(context, command) for `group` and every command below it, depth first."""
    yield ctx, group
    for name in group.list_commands(ctx) if hasattr(group, "list_commands") else []:
        sub = group.get_command(ctx, name)
        if sub is not None and not sub.hidden:
            yield from commands(sub, context(sub, name, ctx))


def plain_help(command, ctx) -> str:
    command.rich_markup_mode = None  # typer renders plain click help without rich markup
    return command.get_help(ctx)


def cli_markdown() -> str:
    from fclf.cli.main import app

    root = typer.main.get_command(app)
    top = context(root, "fclf")
    parts = ["# CLI reference", "",
             "Generated from the Typer app (`fclf.cli.main.app`) when the site is built: "
             "what `fclf COMMAND --help` prints. The pipeline's stages take `--help` "
             "too (`python stages/<name>.py --help`).", ""]
    for ctx, command in commands(root, top):
        path = ctx.command_path
        parts += [f"## `{path}`", "", "```text", plain_help(command, ctx).rstrip(), "```", ""]
    return "\n".join(parts)


def on_files(files, config, **kwargs):  # MkDocs hook
    from mkdocs.structure.files import File

    files.append(File.generated(config, "cli.md", content=cli_markdown()))
    return files
