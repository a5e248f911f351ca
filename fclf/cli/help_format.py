"""Help that reads well: every paragraph reflowed to the terminal, sensible type labels."""

from __future__ import annotations

import inspect
import re

import typer
from typer.core import TyperCommand, TyperGroup

# Docstrings are wrapped at the source's line length. Typer's rich help keeps those breaks in
# the command list and in every paragraph after the first, so sentences broke mid-line; and
# its type column shows `<bool>` for flags and `<list[str]>` for repeatable options. Every
# command and group of `fclf` is made by `TidyTyper`, whose classes reflow each paragraph (`_flow`)
# and give flags no type and repeatable options their element's (`_tidy_params`).

_ITEM = re.compile(r"\s*([-*]|\d+[.)])\s")  # a line that starts a list item keeps its break


def _flow(text: str | None) -> str | None:
    """Each paragraph of `text` as one line (paragraphs, list items and click's `\\b`
    blocks are kept), so that the help is wrapped to the terminal, not to the source."""
    if not text:
        return text
    paragraphs = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        if paragraph.startswith("\b"):
            paragraphs.append(paragraph)
            continue
        lines = [line.strip() for line in paragraph.splitlines()]
        joined = lines[0]
        for line in lines[1:]:
            joined += ("\n" if _ITEM.match(line) else " ") + line
        paragraphs.append(joined)
    return "\n\n".join(paragraphs)


def _tidy_params(params: list, ctx) -> list:
    """Flags show no type (typer shows `<bool>`); a repeatable option shows its element's type
    (`<str>`, not `<list[str]>`; its help says it repeats); `<int range> [x>=1]` becomes
    `<int> [x>=1]`. Options given a metavar keep it."""
    for param in params:
        shown = getattr(param, "display_type_rich", None)
        if shown is None or getattr(param, "_fclf_tidy", False):
            continue  # an older typer (no type column) or already done
        param._fclf_tidy = True
        if getattr(param, "is_flag", False):
            param.metavar = ""
            continue
        label = shown(ctx=ctx)
        if not isinstance(label, str):
            continue
        if label.endswith(" range>"):  # the range itself follows in typer's `[x>=1]`
            param.metavar = label[: -len(" range>")] + ">"
            continue
        if not (label.startswith("<list[") and label.endswith("]>")):
            continue
        element = f"<{label[len('<list['):-len(']>')]}>"
        if param.param_type_name == "option":
            param.metavar = element
        else:  # an argument's type column ignores its metavar (which renames it)
            param.display_type_rich = lambda ctx, _label=element: _label
    return params


class _TidyHelp:
    """Mixed into typer's command and group classes: reflowed help, tidied type column."""

    def __init__(self, *args, **kwargs):
        kwargs["help"] = _flow(kwargs.get("help"))
        super().__init__(*args, **kwargs)

    def get_params(self, ctx):
        return _tidy_params(super().get_params(ctx), ctx)


class _Command(_TidyHelp, TyperCommand):
    pass


class _Group(_TidyHelp, TyperGroup):
    pass


class TidyTyper(typer.Typer):
    """typer.Typer whose groups and commands render their help with `_flow`/`_tidy_params`."""

    def __init__(self, **kwargs):
        kwargs.setdefault("cls", _Group)
        super().__init__(**kwargs)

    def command(self, *args, **kwargs):
        kwargs.setdefault("cls", _Command)
        return super().command(*args, **kwargs)
