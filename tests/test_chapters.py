"""Chapter conventions that hold for every chapter (DESIGN.md), checked statically."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from unittest import mock

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.md"))


def _code_cells(path):
    return [c for c in jupytext.read(path).cells if c.cell_type == "code"]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_colab_cell_installs_only_in_colab(chapter):
    """The first code cell is hidden, pip-installs selfsup inside Colab and does
    nothing anywhere else."""
    first = _code_cells(chapter)[0]
    assert "remove-cell" in first.metadata.get("tags", [])
    calls = []
    shell = types.SimpleNamespace(run_line_magic=lambda *a: calls.append(a))
    namespace = {"get_ipython": lambda: shell}
    exec(first.source, dict(namespace))
    assert calls == [], "outside Colab the set-up cell must do nothing"
    with mock.patch.dict(sys.modules, {"google.colab": types.ModuleType("google.colab")}):
        exec(first.source, dict(namespace))
    assert len(calls) == 1
    magic, line = calls[0]
    assert magic == "pip" and line.startswith("install") and "selfsup" in line


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_chapter_reads_no_repository_path(chapter):
    """Code cells never reach into the repository with relative paths."""
    for cell in _code_cells(chapter):
        for needle in ["../", "chapters/", "selfsup/", "benchmarks/", "_build"]:
            assert needle not in cell.source, f"{chapter.name}: {needle!r} in a code cell"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_chapter_has_three_exercises_and_a_coding_one(chapter):
    text = chapter.read_text()
    assert text.count("```{exercise}") >= 3
    assert "{exercise} Coding:" in text
    assert "{doc}`../book/homework`" in text
    # Every exercise states its difficulty (book/homework.md explains the scale).
    import re

    titles = re.findall(r"^```\{exercise\} (.+)$", text, flags=re.M)
    unmarked = [t for t in titles if not re.search(r" \((easy|medium|hard)\)$", t)]
    assert not unmarked, f"{chapter.name}: exercises without a difficulty: {unmarked}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_claims_are_stated_with_claim_not_assert(chapter):
    """A chapter checks its claims with selfsup.book.claim (which warns in a
    reader's notebook and raises only in strict mode), never with a bare assert, and
    takes its seeds from runtime.setup (so SELFSUP_SEED moves every draw)."""
    import ast

    claims = 0
    for cell in _code_cells(chapter):
        source = "\n".join(
            line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))
        )
        tree = ast.parse(source)
        assert not any(isinstance(node, ast.Assert) for node in ast.walk(tree)), (
            f"{chapter.name}: a bare assert; state the claim with claim(...)"
        )
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "claim":
                claims += 1
                assert "remove-cell" in cell.metadata.get("tags", []), (
                    f"{chapter.name}: claims belong in hidden cells"
                )
        for needle in ["torch.manual_seed(", "torch.Generator().manual_seed("]:
            assert needle not in cell.source, (
                f"{chapter.name}: {needle} ignores SELFSUP_SEED; use rt.manual_seed(k) "
                "or rt.generator(k)"
            )
    assert claims >= 3, f"{chapter.name} checks only {claims} claims"
