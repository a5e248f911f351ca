"""Every shell block in README.md and docs/ is run by a test or marked illustrative."""

from __future__ import annotations

import pytest
from doc_blocks import SHELL, blocks, commands, documents, runnable
from test_readme_recipes import TOUR


def test_the_documents_include_the_readme_and_the_docs_pages() -> None:
    names = {path.name for path in documents()}
    assert {"README.md", "index.md", "troubleshooting.md", "transfer.md"} <= names


@pytest.mark.parametrize("path", documents(), ids=lambda p: p.name)
def test_every_fenced_block_names_its_language(path) -> None:
    unnamed = [block.where() for block in blocks(path) if not block.lang]
    assert not unnamed, f"fenced blocks without a language (use text for output): {unnamed}"


@pytest.mark.parametrize("path", documents(), ids=lambda p: p.name)
def test_no_fence_opens_inside_a_block(path) -> None:
    nested = [block.where() for block in blocks(path)
              if any(line.lstrip().startswith("```") for line in block.body.splitlines())]
    assert not nested, f"a fence line inside a fenced block (an unclosed block?): {nested}"


@pytest.mark.parametrize("path", documents(), ids=lambda p: p.name)
def test_every_shell_block_is_runnable_or_illustrative(path) -> None:
    unmarked = [block.where() for block in blocks(path)
                if block.lang in SHELL and block.marker is None]
    assert not unmarked, ("shell blocks need <!-- runnable: NAME --> or <!-- illustrative --> "
                          f"on the line above: {unmarked}")


def test_every_runnable_block_is_run_by_the_recipe_test() -> None:
    assert set(runnable()) == set(TOUR)  # a new recipe must be added to the test's TOUR
    assert all(block.lang in SHELL for block in runnable().values())


def test_the_marker_check_catches_an_unmarked_block(tmp_path) -> None:
    page = tmp_path / "page.md"
    page.write_text("Text.\n\n```bash\nls\n```\n\n<!-- illustrative: why -->\n```sh\nls\n```\n\n"
                    "<!-- runnable: x -->\n\n```console\n$ ls\n```\n\n```\nout\n```\n")
    found = blocks(page)
    assert [(b.lang, b.marker, b.name) for b in found] == [
        ("bash", None, None), ("sh", "illustrative", None), ("console", "runnable", "x"),
        ("", None, None)]


def test_commands_join_continuations_drop_comments_and_keep_heredocs() -> None:
    body = ("# a comment\ndvc exp run -n a \\\n    -S x=1   # why\n"
            "python - <<'PY'\nimport sys  # kept\nprint(1)\nPY\nfclf score --edits e.npz\n")
    assert [(c.line, c.stdin) for c in commands(body)] == [
        ("dvc exp run -n a -S x=1", None),
        ("python -", "import sys  # kept\nprint(1)\n"),
        ("fclf score --edits e.npz", None)]


def test_the_tour_recipes_are_in_the_readme() -> None:
    found = runnable()
    assert [found[name].path.name for name in TOUR] == ["README.md"] * len(TOUR)
    first = commands(found["collapsed-vs-fixed"].body)[0].line
    assert first.startswith("dvc exp run -n collapsed")
