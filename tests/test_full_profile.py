"""The full profile's code paths, on a CPU: every chapter with ``SELFSUP_PROFILE=full``
and ``SELFSUP_SMOKE=1``.

The smoke check gives a chapter the full profile's data (MNIST, 28x28, 256 grey levels
or binarized; cut to a few hundred images) with the quick profile's model sizes and
training lengths (:mod:`selfsup.runtime`). It catches what the quick profile cannot:
hard-coded 8x8 shapes or 17 grey levels, the stand-in classifier of the wrong data set,
a plot that assumes the digits. The chapters' claims hold for trained models only: here
every claim cell runs, so its code path is executed, and
:func:`selfsup.book.claim` records each claim as *unverified* and never raises. They
are checked in the quick profile (``make test-chapters``) and in the full one on a GPU
(the CUDA workflow). The full-size models themselves are built and stepped on 28x28
tensors by ``tests/test_configs.py``.

The full profile is what a reader with a GPU runs, so the chapters run here on the CPU's
stand-in for Apple's GPU (``SELFSUP_DEVICE=emulated-mps``, :mod:`selfsup.devicecheck`),
the strictest of the stand-ins: a chapter that mixes a CPU tensor with a model's, or
calls ``.numpy()`` on a model's output, fails here as it would on CUDA, and one that
puts a float64 tensor on the device fails as it would on a MacBook.
``SELFSUP_SMOKE_DEVICE=emulated`` plays CUDA instead.

Slow (every chapter): ``make test-full-smoke``, marked ``fullsmoke``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.md"))

pytestmark = pytest.mark.fullsmoke


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_chapter_runs_in_the_full_profile(chapter, tmp_path, monkeypatch):
    import jupytext
    from nbclient import NotebookClient

    notebook = jupytext.read(chapter)
    log = tmp_path / "claims.jsonl"
    env = {"SELFSUP_PROFILE": "full", "SELFSUP_SMOKE": "1", "SELFSUP_STRICT": "1",
           "SELFSUP_PROGRESS": "0", "SELFSUP_CLAIMS_LOG": str(log),
           "SELFSUP_DEVICE": os.environ.get("SELFSUP_SMOKE_DEVICE", "emulated-mps")}  # fmt: skip
    monkeypatch.delenv("SELFSUP_DEVICECHECK_LOG", raising=False)  # device bugs raise
    for key, value in env.items():
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
    assert "device=emulated" in printed, "the chapter did not run on the stand-in accelerator"
    claims = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    assert claims, "the chapter stated no claim"
    assert {c["verdict"] for c in claims} == {"unverified"}
