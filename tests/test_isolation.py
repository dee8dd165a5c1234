"""Every chapter runs as it would in Colab: alone, with only the installed package.

For each chapter: convert it to ``.ipynb``, copy it alone into an empty folder, and
execute it with nbclient on a kernel from a fresh virtual environment that holds only
the built wheel of ``selfsup``, the dependencies its ``pyproject.toml`` declares
(pinned to the tested versions of requirements.txt) and ``ipykernel``. A chapter that
reads a repository file, imports an undeclared package or relies on a cache the
repository built fails here.

Slow (a venv and every chapter): ``make test-isolation``, marked ``isolation``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.md"))
KERNEL = "selfsup-isolated"

pytestmark = pytest.mark.isolation


def _pip(python: Path, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", "-q", *args],
                   check=True)  # fmt: skip


@pytest.fixture(scope="session")
def isolated_kernel(tmp_path_factory):
    """A venv with the wheel, its declared dependencies and ipykernel; its kernel spec
    lives inside it, found through JUPYTER_PATH."""
    base = tmp_path_factory.mktemp("isolated")
    # Build from a copy of what the sdist holds, so the checkout gets no build/ folder.
    source = base / "source"
    shutil.copytree(ROOT / "selfsup", source / "selfsup",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for name in ["pyproject.toml", "README.md"]:
        shutil.copy(ROOT / name, source / name)
    wheels = base / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(source)],
        check=True,
    )  # fmt: skip
    (wheel,) = wheels.glob("selfsup-*.whl")
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # The constraints pin what is installed to the tested versions (and keep the CPU
    # torch); they add nothing the wheel does not declare.
    _pip(python, "install", "-c", str(ROOT / "requirements.txt"), str(wheel), "ipykernel")
    subprocess.run(
        [str(python), "-m", "ipykernel", "install", "--prefix", str(env_dir), "--name", KERNEL],
        check=True, capture_output=True,
    )  # fmt: skip
    installed = subprocess.run(
        [str(python), "-c", "import selfsup, sys; print(selfsup.__file__)"],
        check=True, capture_output=True, text=True, cwd=base,
    ).stdout  # fmt: skip
    assert str(env_dir) in installed, f"selfsup must come from the venv, got {installed}"
    return env_dir


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_chapter_runs_alone_with_only_the_installed_package(
    chapter, isolated_kernel, tmp_path, monkeypatch
):
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    folder = tmp_path / "colab"
    folder.mkdir()
    notebook = folder / f"{chapter.stem}.ipynb"
    nbformat.write(jupytext.read(chapter), notebook)
    assert [p.name for p in folder.iterdir()] == [notebook.name]
    env = {
        "JUPYTER_PATH": str(isolated_kernel / "share" / "jupyter"),
        "SELFSUP_DATA": str(tmp_path / "data"),  # no cache from the repository
        "SELFSUP_PROFILE": "quick",
        "SELFSUP_PROGRESS": "0",
        "PYTHONPATH": "",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # the kernel inherits them; undone after the test
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name=KERNEL, resources={"metadata": {"path": str(folder)}}
    )
    from jupyter_client.kernelspec import KernelSpecManager

    python = KernelSpecManager().get_kernel_spec(KERNEL).argv[0]
    client.execute()
    assert str(isolated_kernel) in python, f"the kernel ran {python}, not the isolated venv"
    errors = [
        out for cell in nb.cells if cell.cell_type == "code"
        for out in cell.get("outputs", []) if out.get("output_type") == "error"
    ]  # fmt: skip
    assert not errors
