"""The full profile's code paths, on a CPU: every chapter with ``SELFSUP_PROFILE=full``
and ``SELFSUP_SMOKE=1``.

The smoke check gives a chapter the full profile's data (MNIST, 28x28, 256 grey levels
or binarized; cut to a few hundred images) with the quick profile's model sizes and
training lengths (:mod:`selfsup.runtime`). It catches what the quick profile cannot:
hard-coded 8x8 shapes or 17 grey levels, the stand-in classifier of the wrong data set,
a plot that assumes the digits. The chapters' claim checks (the hidden cells that start
with ``# Claim``) hold for trained models only, so they are left out here; they run in
the quick profile (``make test-chapters``) and in the full one on a GPU (the CUDA
workflow). The full-size models themselves are built and stepped on 28x28 tensors by
``tests/test_configs.py``.

Slow (every chapter): ``make test-full-smoke``, marked ``fullsmoke``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.md"))
CLAIM = "# Claim"

pytestmark = pytest.mark.fullsmoke


def without_claims(notebook):
    """The notebook less its claim-check cells; returns it and how many were dropped."""
    kept = [
        cell for cell in notebook.cells
        if not (cell.cell_type == "code" and cell.source.lstrip().startswith(CLAIM))
    ]  # fmt: skip
    dropped = len(notebook.cells) - len(kept)
    notebook.cells = kept
    return notebook, dropped


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_chapter_runs_in_the_full_profile(chapter, tmp_path, monkeypatch):
    import jupytext
    from nbclient import NotebookClient

    notebook, _ = without_claims(jupytext.read(chapter))
    for key, value in {"SELFSUP_PROFILE": "full", "SELFSUP_SMOKE": "1",
                       "SELFSUP_PROGRESS": "0"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)  # the kernel inherits them; undone after the test
    start = time.perf_counter()
    NotebookClient(
        notebook, timeout=900, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()  # fmt: skip
    print(f"{chapter.stem}: {time.perf_counter() - start:.1f} s")
    printed = "".join(
        out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
        for out in cell.get("outputs", []) if out.get("output_type") == "stream"
    )  # fmt: skip
    assert "profile=full (smoke check" in printed, "the chapter did not run in the smoke check"


def test_claim_cells_are_recognised():
    """Every chapter with images has claim checks, and dropping them keeps the rest."""
    import jupytext

    for chapter in CHAPTERS:
        notebook = jupytext.read(chapter)
        code = sum(cell.cell_type == "code" for cell in notebook.cells)
        _, dropped = without_claims(notebook)
        assert 1 <= dropped < code, (chapter.stem, dropped, code)
