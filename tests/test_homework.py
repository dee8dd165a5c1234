"""The homework builder: markers, stubs, and a generated kit graded end to end."""

import ast
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import selfsup
from selfsup.book import homework

SRC = Path(selfsup.__file__).parent


def _run_kit_tests(kit: Path, tmp_path: Path, name: str) -> list[tuple[str, str | None]]:
    """Run the kit's tests from the kit's folder; (test id, failure message or None)."""
    report = tmp_path / f"{name}.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider",
         f"--junitxml={report}"],
        cwd=kit, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    cases = ET.parse(report).getroot().iter("testcase")
    results = []
    for case in cases:
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        results.append((case.get("name"), None if bad is None else bad.get("message", "")))
    return results


def _api(tree):
    return {n: (ast.dump(f.args), ast.get_docstring(f)) for n, f in homework._functions(tree)}


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    out = tmp_path_factory.mktemp("kit") / "hw"
    stubbed = homework.build(out)
    return out, stubbed


def test_every_marked_module_has_graded_tests_and_a_chapter_exercise():
    exercises = homework.all_exercises()
    assert len(exercises) >= 10
    graded = {p.name for p in (SRC.parent / "tests" / "graded").glob("test_*.py")}
    expected = {f"test_{m.replace('.', '_')}.py" for m in exercises}
    assert graded == expected, "one graded test file per module with exercises, no more"
    chapters = "\n".join(p.read_text() for p in (SRC.parent / "chapters").glob("*.md"))
    for module, found in exercises.items():
        for ex in found:
            name = ex.qualname.split(".")[0]
            assert f"selfsup.{module}.{name}" in chapters, f"no chapter sets {module}.{name}"


def test_stubs_keep_signatures_docstrings_and_input_checks(kit):
    out, stubbed = kit
    for module, exercises in stubbed.items():
        rel = Path(*module.split(".")).with_suffix(".py")
        original = ast.parse((SRC / rel).read_text())
        stub_src = (out / "selfsup" / rel).read_text()
        assert "BEGIN SOLUTION" not in stub_src and "END SOLUTION" not in stub_src
        stub = ast.parse(stub_src)
        before = {
            n: (ast.dump(f.args), ast.get_docstring(f)) for n, f in homework._functions(original)
        }
        after = {n: (ast.dump(f.args), ast.get_docstring(f)) for n, f in homework._functions(stub)}
        assert before == after, f"signatures or docstrings changed in {module}"
        for ex in exercises:
            assert f"implement {ex.qualname}" in stub_src
    # Input checks sit above the markers and survive: the stub still names the argument.
    kl = (out / "selfsup" / "divergences.py").read_text()
    assert "_cholesky" not in kl.split("def gaussian_kl")[1].split("def ")[0]
    assert 'mu0, cov0 = _gaussian_params(mu0, cov0, "mu0", "cov0")' in kl


def test_kit_imports_cleanly_from_its_own_folder(kit):
    out, _ = kit
    modules = [
        "selfsup." + ".".join(p.relative_to(out / "selfsup").with_suffix("").parts)
        for p in (out / "selfsup").rglob("*.py")
        if p.name != "__init__.py"
    ]
    code = (
        "import importlib, selfsup\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(selfsup.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=out, capture_output=True, text=True, check=True
    )
    assert Path(done.stdout.strip()).resolve().parent == (out / "selfsup").resolve()
    assert (out / "README.md").read_text().count("| `selfsup.") == sum(
        len(v) for v in kit[1].values()
    )


def test_graded_tests_fail_on_the_stubs_and_pass_with_the_solutions(kit, tmp_path):
    out, _ = kit
    stub_results = _run_kit_tests(out, tmp_path, "stubs")
    assert len(stub_results) >= 20
    passed = [name for name, failure in stub_results if failure is None]
    assert not passed, f"these graded tests pass without any student code: {passed}"
    assert all("NotImplementedError" in failure for _, failure in stub_results)
    # Put the solutions back: the same tests, unchanged, now all pass.
    shutil.copytree(SRC, out / "selfsup", dirs_exist_ok=True)
    solved = _run_kit_tests(out, tmp_path, "solved")
    assert [n for n, _ in solved] == [n for n, _ in stub_results]
    failed = [(name, failure) for name, failure in solved if failure is not None]
    assert not failed


def test_only_stubs_the_chosen_modules(tmp_path):
    stubbed = homework.build(tmp_path / "kit", only=["selfsup.pareto", "models/vae.py"])
    assert sorted(stubbed) == ["models.vae", "pareto"]
    kit = tmp_path / "kit"
    assert sorted(p.name for p in (kit / "tests").glob("test_*.py")) == [
        "test_models_vae.py",
        "test_pareto.py",
    ]
    assert (kit / "selfsup" / "divergences.py").read_text() == (SRC / "divergences.py").read_text()
    assert "NotImplementedError" in (kit / "selfsup" / "pareto.py").read_text()


def test_bad_requests_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="--only: 'plotting' has no exercises"):
        homework.build(tmp_path / "a", only=["plotting"])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        homework.build(tmp_path / "full")
    # The command, under its name and under the earlier selfsup.homework.
    for module in ("selfsup.book.homework", "selfsup.homework"):
        done = subprocess.run(
            [sys.executable, "-m", module, "build", str(tmp_path / "b"), "--only", "nope"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 2 and "no exercises" in done.stderr, module


def test_the_earlier_module_name_is_the_same_builder():
    from selfsup import homework as earlier

    assert earlier.build is homework.build and earlier.main is homework.main
    assert earlier.PACKAGE == SRC and earlier.all_exercises() == homework.all_exercises()


@pytest.mark.parametrize(
    "source, message",
    [
        ("def f():\n    # BEGIN SOLUTION\n    return 1\n", "never closed"),
        ("def f():\n    return 1\n    # END SOLUTION\n", "without a"),
        ("def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n", "inside the block"),
        ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", "inside a function"),
        ("def f():\n    x = 1  # BEGIN SOLUTION\n", "alone on its line"),
    ],
)
def test_malformed_markers_are_rejected(source, message):
    with pytest.raises(ValueError, match=message):
        homework.find_exercises(source, "m")


def test_stub_of_a_method_keeps_the_class_working():
    source = (
        "class A:\n"
        "    def f(self, x):\n"
        '        """Doc."""\n'
        "        if x < 0:\n"
        '            raise ValueError("x")\n'
        "        # BEGIN SOLUTION\n"
        "        return 2 * x\n"
        "        # END SOLUTION\n"
        "    def g(self):\n"
        "        return 3\n"
    )
    exercises = homework.find_exercises(source, "m")
    assert [(e.qualname, e.begin, e.end, e.summary) for e in exercises] == [("A.f", 6, 8, "Doc.")]
    namespace = {}
    exec(homework.stub_source(source, exercises), namespace)
    a = namespace["A"]()
    assert a.g() == 3
    with pytest.raises(ValueError):
        a.f(-1)
    with pytest.raises(NotImplementedError, match="implement A.f"):
        a.f(1)
