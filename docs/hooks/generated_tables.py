"""Tables in README.md and docs/ that are generated from the committed metrics, not typed.

A generated block sits between `<!-- generated: NAME -->` and `<!-- end generated -->`;
NAME is one of `tables()`'s keys. `python docs/hooks/generated_tables.py --write` rewrites
every block from metrics/transfer.json (what `fclf results` prints); `--check` (and the
MkDocs build, as a warning that fails `mkdocs build --strict`) names the stale ones.
tests/test_docs_generated_tables.py runs the check in the fast tier.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"(<!-- generated: ([\w-]+) -->\n)(.*?)(<!-- end generated -->)", re.S)
log = logging.getLogger("mkdocs.hooks.generated_tables")


def judge_markdown(metrics: dict) -> str:
    """The judge's balanced accuracy per attribute (linear and MLP), from the judge block."""
    judge = metrics["judge"]
    linear, mlp = judge["linear"], judge["mlp"]
    lines = [f"| balanced accuracy on {judge['scored_on']} | linear judge | MLP judge |",
             "|---|---|---|"]
    for name, scores in linear["attributes"].items():
        other = mlp["attributes"][name]["balanced_accuracy"]
        lines.append(f"| {name} | {scores['balanced_accuracy']:.3f} | {other:.3f} |")
    lines.append(f"| **mean** | **{linear['mean_balanced_accuracy']:.3f}** "
                 f"| **{mlp['mean_balanced_accuracy']:.3f}** |")
    return "\n".join(lines)


def tables(root: Path = ROOT) -> dict[str, str]:
    """{block name: its text} from `root`/metrics/transfer.json (test split)."""
    from fclf.evaluate.report import results_markdown

    metrics = json.loads((root / "metrics" / "transfer.json").read_text(encoding="utf-8"))
    editors, seeds, peers = results_markdown(metrics, "test").strip().split("\n\n")
    return {"results-editors": editors, "results-seeds": f"```text\n{seeds}\n```",
            "results-peers": peers, "judge": judge_markdown(metrics)}


def render(text: str, generated: dict[str, str]) -> str:
    """`text` with every generated block's body replaced by its table."""
    def body(match: re.Match) -> str:
        name = match.group(2)
        if name not in generated:
            raise KeyError(f"unknown generated block {name!r}; known: {sorted(generated)}")
        return f"{match.group(1)}{generated[name]}\n{match.group(4)}"
    return BLOCK.sub(body, text)


def documents(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def stale(root: Path = ROOT) -> list[str]:
    """'path: block' for every generated block whose committed text differs from the metrics."""
    generated = tables(root)
    found = []
    for path in documents(root):
        text = path.read_text(encoding="utf-8")
        fresh = {m.group(2): m.group(0) for m in BLOCK.finditer(render(text, generated))}
        for match in BLOCK.finditer(text):
            if match.group(0) != fresh[match.group(2)]:
                found.append(f"{path.relative_to(root)}: {match.group(2)}")
    return found


def on_pre_build(config, **kwargs) -> None:  # MkDocs hook
    for where in stale():
        log.warning(f"generated table is stale: {where} "
                    "(run `python docs/hooks/generated_tables.py --write`)")


def main(argv: list[str]) -> int:
    if argv[1:] == ["--write"]:
        generated = tables()
        for path in documents():
            text = path.read_text(encoding="utf-8")
            if render(text, generated) != text:
                path.write_text(render(text, generated), encoding="utf-8")
                print(f"rewrote {path.relative_to(ROOT)}")
        return 0
    if argv[1:] == ["--check"]:
        found = stale()
        for where in found:
            print(f"stale: {where}")
        return 1 if found else 0
    print("usage: generated_tables.py --check | --write", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
