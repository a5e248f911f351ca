"""The fenced blocks of README.md and docs/**/*.md, and the marker above each.

`<!-- runnable: NAME -->` above a block: tests/test_readme_recipes.py runs it as written.
`<!-- illustrative -->` (or `<!-- illustrative: why -->`): shown, not run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHELL = {"bash", "sh", "shell", "console", "zsh"}
FENCE = re.compile(r"^(?P<indent>[ ]*)```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)"
                   r"^(?P=indent)```[ ]*$", re.S | re.M)
MARKER = re.compile(r"^\s*<!-- (?:runnable: (?P<name>[\w-]+)"
                    r"|(?P<illustrative>illustrative)(?::[^>]*)?) -->\s*$")
HEREDOC = re.compile(r"\s*<<-?'?(\w+)'?\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    body: str
    marker: str | None  # "runnable", "illustrative" or None
    name: str | None  # a runnable block's name

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


@dataclass(frozen=True)
class Command:
    line: str  # continuation lines joined, comment dropped
    stdin: str | None  # a here-document's text


def documents(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = [line for line in text[: match.start()].splitlines() if line.strip()]
        marker = MARKER.match(before[-1]) if before else None
        kind = None if marker is None else ("runnable" if marker["name"] else "illustrative")
        found.append(Block(path, text.count("\n", 0, match.start()) + 1, match["lang"],
                           match["body"], kind, marker["name"] if marker else None))
    return found


def runnable(root: Path = ROOT) -> dict[str, Block]:
    """{name: block} across README.md and docs/; a name used twice is an error."""
    named: dict[str, Block] = {}
    for path in documents(root):
        for block in blocks(path):
            if block.marker == "runnable":
                if block.name in named:
                    raise ValueError(f"runnable block {block.name!r} at {block.where()} "
                                     f"and {named[block.name].where()}")
                named[block.name] = block
    return named


def commands(body: str) -> list[Command]:
    """A shell block's commands: `\\` continuations joined, comments dropped, a
    `<<'END'` here-document kept verbatim as the command's stdin."""
    found: list[Command] = []
    lines = iter(body.splitlines())
    pending = ""
    for raw in lines:
        if raw.rstrip().endswith("\\"):
            pending += raw.strip()[:-1].strip() + " "
            continue
        line = (pending + raw.strip()).split("  #")[0].strip()
        pending = ""
        if not line or line.startswith("#"):
            continue
        heredoc = HEREDOC.search(line)
        if heredoc:
            text = []
            for inner in lines:
                if inner.strip() == heredoc.group(1):
                    break
                text.append(inner)
            found.append(Command(line[: heredoc.start()].strip(), "\n".join(text) + "\n"))
        else:
            found.append(Command(line, None))
    return found
