"""Root pytest hooks: nbval runs the jupytext Markdown chapters directly.

``pytest --nbval-lax chapters/`` collects every ``chapters/*.md`` that carries a
jupytext header, reads it with jupytext, and hands the notebook to nbval's own
notebook collector, so no generated ``.ipynb`` is ever committed. Each chapter runs
in a fresh temporary folder, as it would in an empty Colab session.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from unittest import mock

try:
    import jupytext
    from nbval import plugin as nbval_plugin
except ImportError:  # the library's own tests do not need nbval
    nbval_plugin = None


if nbval_plugin is not None:

    class MarkdownNotebook(nbval_plugin.IPyNbFile):
        """nbval's notebook collector, fed a notebook that jupytext read from Markdown."""

        def collect(self):
            notebook = jupytext.read(self.path)
            # nbval reads the file with nbformat.read; hand it the jupytext notebook.
            with mock.patch.object(nbval_plugin.nbformat, "read", return_value=notebook):
                self._cells = list(super().collect())
            for item in self._cells:
                # nbval waits 5 s for a cell's output messages after its reply; on a busy
                # 2-core machine the kernel's IOPub thread can take longer to flush them.
                item.output_timeout = 60
            yield from self._cells

        def setup(self):
            self._started = time.perf_counter()
            # Run in an empty folder: a chapter may use only what it writes itself.
            self._workdir = tempfile.TemporaryDirectory(prefix=f"selfsup-{self.path.stem}-")
            start_kernel = nbval_plugin.RunningKernel

            def start_in_workdir(*args, **kwargs):
                return start_kernel(*args, **{**kwargs, "cwd": self._workdir.name})

            with mock.patch.object(nbval_plugin, "RunningKernel", start_in_workdir):
                super().setup()

        def teardown(self):
            super().teardown()
            self._workdir.cleanup()
            folder = os.environ.get("SELFSUP_EXECUTED_NOTEBOOKS")
            if folder:  # the CUDA workflow uploads these
                self._save(Path(folder), time.perf_counter() - self._started)

        def _save(self, folder: Path, seconds: float) -> None:
            """Write the executed notebook (outputs from nbval's run) and its wall time."""
            import json

            import nbformat

            folder.mkdir(parents=True, exist_ok=True)
            for item in self._cells:
                item.cell.outputs = item.test_outputs or []
            nbformat.write(self.nb, folder / f"{self.path.stem}.ipynb")
            times = folder / "times.json"
            record = json.loads(times.read_text()) if times.exists() else {}
            record[self.path.stem] = round(seconds, 1)
            times.write_text(json.dumps(record, indent=2) + "\n")


def _is_chapter(path: Path) -> bool:
    if path.suffix != ".md" or path.parent.name != "chapters":
        return False
    return "jupytext:" in path.read_text(encoding="utf-8")[:2000]


def pytest_collect_file(file_path: Path, parent):
    opt = parent.config.option
    if nbval_plugin is None or not (
        getattr(opt, "nbval", False) or getattr(opt, "nbval_lax", False)
    ):
        return None
    if _is_chapter(file_path):
        return MarkdownNotebook.from_parent(parent, path=file_path)
    return None


def pytest_ignore_collect(collection_path: Path, config):
    # Never collect the build output or the virtual environment.
    if collection_path.name in {"_build", ".venv", "node_modules"}:
        return True
    return None
