"""Homework starter kits, generated from the library's own solutions.

A solution is written once, in the library, between two comment lines::

    def gaussian_kl(mu0, cov0, mu1, cov1) -> float:
        \"\"\"The docstring is the specification.\"\"\"
        mu0, cov0 = _gaussian_params(...)   # input checks stay in the kit
        # BEGIN SOLUTION
        ...                                 # what the student writes
        # END SOLUTION

``python -m selfsup.book.homework build OUT [--only MODULES] [--force]`` writes a kit
(``python -m selfsup.homework`` is the same command under its earlier name):

- ``OUT/selfsup/``: a copy of the package in which every marked block of the chosen
  modules is replaced by ``raise NotImplementedError(...)`` (signatures, docstrings
  and input checks kept; every other module keeps its solutions, so the chapters
  still run);
- ``OUT/tests/``: the graded tests of those modules (``tests/graded/test_<module>.py``
  in the source checkout) and a ``conftest.py`` that refuses to grade any copy of
  ``selfsup`` but the kit's own;
- ``OUT/pyproject.toml`` (``pip install -e OUT``) and ``OUT/README.md`` for students.

``python -m selfsup.book.homework list`` prints the exercises the markers define.
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
# This file is selfsup/book/homework.py: parents[1] is the package, its parent the checkout.
PACKAGE = Path(__file__).resolve().parents[1]
SOURCE_ROOT = PACKAGE.parent
GRADED_TESTS = SOURCE_ROOT / "tests" / "graded"

_KIT_CONFTEST = '''"""Grades the kit's own selfsup, never another installed copy."""

from pathlib import Path

import selfsup

KIT = Path(__file__).resolve().parents[1]


def pytest_report_header(config):
    return f"grading selfsup from {Path(selfsup.__file__).parent}"


def pytest_configure(config):
    if KIT not in Path(selfsup.__file__).resolve().parents:
        raise RuntimeError(
            f"these tests would grade {selfsup.__file__}, not this kit: run pytest "
            f"from {KIT}, or `pip install -e {KIT}`"
        )
'''


@dataclass(frozen=True)
class Exercise:
    """One marked block: the module (``"models.vae"``), the enclosing function's
    qualified name, the lines (1-based, markers included) and the docstring's
    first line."""

    module: str
    qualname: str
    begin: int
    end: int
    summary: str

    @property
    def test_file(self) -> str:
        return f"tests/test_{self.module.replace('.', '_')}.py"


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


def _functions(tree: ast.AST):
    """(qualname, node) for every function, methods included, outermost first."""

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    yield name, child
                yield from walk(child, name + ".")

    yield from walk(tree, "")


def find_exercises(source: str, module: str) -> list[Exercise]:
    """The marked blocks of one module's ``source``, checked: markers balanced, not
    nested, each block inside one function, and the stubbed source still compiles."""
    lines = source.splitlines()
    blocks, start = [], None
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if text == BEGIN:
            if start is not None:
                raise ValueError(f"{module}:{number}: {BEGIN} inside the block opened at {start}")
            start = number
        elif text == END:
            if start is None:
                raise ValueError(f"{module}:{number}: {END} without a {BEGIN}")
            blocks.append((start, number))
            start = None
        elif BEGIN in text or END in text:
            raise ValueError(f"{module}:{number}: a solution marker must be alone on its line")
    if start is not None:
        raise ValueError(f"{module}:{start}: {BEGIN} is never closed by {END}")
    tree = ast.parse(source)
    exercises = []
    for begin, end in blocks:
        owners = [
            (name, node)
            for name, node in _functions(tree)
            if node.lineno < begin and end - 1 <= node.end_lineno
        ]
        if not owners:
            raise ValueError(f"{module}:{begin}: a solution block must sit inside a function")
        name, node = owners[-1]  # the innermost
        doc = ast.get_docstring(node) or ""
        exercises.append(Exercise(module, name, begin, end, doc.strip().split("\n")[0]))
    return exercises


def stub_source(source: str, exercises: Sequence[Exercise]) -> str:
    """``source`` with each exercise's block replaced by a ``NotImplementedError``."""
    lines = source.splitlines(keepends=True)
    for ex in sorted(exercises, key=lambda e: e.begin, reverse=True):
        indent = re.match(r"\s*", lines[ex.begin - 1]).group(0)
        message = f"exercise: implement {ex.qualname} (see its docstring); graded by {ex.test_file}"
        lines[ex.begin - 1 : ex.end] = [f"{indent}raise NotImplementedError({message!r})\n"]
    stubbed = "".join(lines)
    compile(stubbed, f"<stub of selfsup.{exercises[0].module if exercises else ''}>", "exec")
    return stubbed


def all_exercises() -> dict[str, list[Exercise]]:
    """Every module of the package that has marked blocks -> its exercises."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == Path(__file__).resolve():
            continue  # this module quotes the markers
        module = _module_name(path)
        exercises = find_exercises(path.read_text(), module)
        if exercises:
            found[module] = exercises
    return found


def _normalise(modules: Sequence[str], available: Sequence[str]) -> list[str]:
    chosen = []
    for name in modules:
        short = name.removeprefix("selfsup.").replace("/", ".").removesuffix(".py")
        if short not in available:
            raise ValueError(
                f"--only: {name!r} has no exercises; choose from {', '.join(available)}"
            )
        chosen.append(short)
    return chosen


def _readme(exercises: dict[str, list[Exercise]]) -> str:
    rows = "\n".join(
        f"| `selfsup.{ex.module}.{ex.qualname}` | {ex.summary} | `{ex.test_file}` |"
        for module in exercises
        for ex in exercises[module]
    )
    return f"""# selfsup homework kit

This folder is a copy of the `selfsup` library in which some functions are left for
you to write. Each one raises `NotImplementedError`; its signature and docstring are
the specification, and the input checks above the gap are already there.

| function | what it computes | graded by |
|---|---|---|
{rows}

## Set up

Locally (Python 3.11 or newer):

    python -m venv .venv && . .venv/bin/activate
    pip install -e . pytest

In Colab, upload this folder (or clone your copy of it), then in a cell:

    %cd /content/<this folder>
    %pip install -e . pytest

## Work and grade

Write your code in place of each `raise NotImplementedError(...)`, then run

    python -m pytest tests -q

from this folder. Each test compares your function with an independent computation
(scipy, scikit-learn, autograd or brute force) on inputs you have not seen, so it
checks behaviour, not a stored answer. All tests fail until you write the code; all
pass once your functions are right. `tests/conftest.py` makes sure the tests grade
this folder's `selfsup`, not another installed copy.

The book's chapters explain each function (look for the coding exercise at the end of
the chapter), and the rest of the library, which is complete, shows how the function
is used.

## Keep a trained model

Train on Colab's GPU, keep the model, and load it on your laptop (or hand it in):

    import selfsup
    from selfsup import configs, data
    from selfsup.train import fit

    images = data.images()
    vae = configs.vae(images)
    fit(vae, images.x_train, epochs=50)
    selfsup.save(vae, "vae.pt")        # the weights, and what is needed to rebuild it

    vae = selfsup.load("vae.pt", map_location="cpu")   # no chapter, no data needed
    vae.sample(8)

Every model and baseline of the library saves this way; a model of your own saves its
`state_dict` with `torch.save`.
"""


def build(out, only: Sequence[str] | None = None, force: bool = False) -> dict:
    """Write a student kit into ``out``; returns ``{module: [Exercise, ...]}`` stubbed.

    Args:
        out: the kit's folder; must not exist or be empty, unless ``force``.
        only: module names (``"divergences"``, ``"models.vae"`` or
            ``"selfsup.models.vae"``) to stub; default: every module with exercises.
        force: replace an existing, non-empty ``out``.
    """
    out = Path(out)
    if not GRADED_TESTS.is_dir():
        raise FileNotFoundError(
            f"the graded tests are not at {GRADED_TESTS}: build kits from a source "
            "checkout of selfsup (git clone ...; pip install -e .)"
        )
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FileExistsError(f"out: {out} is not empty; choose a new folder or pass force")
        shutil.rmtree(out)
    available = all_exercises()
    chosen = _normalise(only, list(available)) if only else list(available)
    missing = [
        m for m in chosen if not (GRADED_TESTS / Path(available[m][0].test_file).name).exists()
    ]
    if missing:
        raise FileNotFoundError(f"no graded tests for {missing} in {GRADED_TESTS}")
    shutil.copytree(PACKAGE, out / "selfsup", ignore=shutil.ignore_patterns("__pycache__"))
    for module in chosen:
        path = out / "selfsup" / Path(*module.split(".")).with_suffix(".py")
        path.write_text(stub_source(path.read_text(), available[module]))
    (out / "tests").mkdir()
    (out / "tests" / "conftest.py").write_text(_KIT_CONFTEST)
    for module in chosen:
        name = Path(available[module][0].test_file).name
        shutil.copy(GRADED_TESTS / name, out / "tests" / name)
    if (SOURCE_ROOT / "pyproject.toml").exists():
        shutil.copy(SOURCE_ROOT / "pyproject.toml", out / "pyproject.toml")
    stubbed = {m: available[m] for m in chosen}
    (out / "README.md").write_text(_readme(stubbed))
    return stubbed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m selfsup.book.homework", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write a student kit")
    b.add_argument("out", help="the kit's folder (new or empty)")
    b.add_argument("--only", nargs="+", metavar="MODULE", help="stub only these modules")
    b.add_argument("--force", action="store_true", help="replace a non-empty OUT")
    sub.add_parser("list", help="list the exercises")
    args = parser.parse_args(argv)
    if args.command == "list":
        for module, exercises in all_exercises().items():
            for ex in exercises:
                print(f"selfsup.{module}.{ex.qualname}: {ex.summary}")
        return 0
    try:
        stubbed = build(args.out, args.only, args.force)
    except (ValueError, FileExistsError, FileNotFoundError) as err:
        parser.error(str(err))
    count = sum(len(v) for v in stubbed.values())
    print(f"wrote a kit with {count} exercises in {len(stubbed)} modules to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
