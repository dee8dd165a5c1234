"""selfsup.runtime: profile selection, budgets, seeding, threads."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from selfsup import runtime
from selfsup.book import glue


def test_profile_defaults_to_quick_on_every_device(monkeypatch):
    """The full profile is opt-in until a GPU run has verified it: CUDA does not choose it."""
    monkeypatch.delenv("SELFSUP_PROFILE", raising=False)
    for cuda in (False, True):
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        assert runtime.profile() == "quick"


def test_the_first_line_says_how_to_opt_in(monkeypatch):
    monkeypatch.delenv("SELFSUP_PROFILE", raising=False)
    line = str(runtime.setup(seed=0, quiet=True))
    assert "profile=quick" in line and "SELFSUP_PROFILE=full" in line


@pytest.mark.parametrize(
    "value, expected", [("quick", "quick"), ("FULL", "full"), (" full ", "full")]
)
def test_profile_from_environment(monkeypatch, value, expected):
    monkeypatch.setenv("SELFSUP_PROFILE", value)
    assert runtime.profile() == expected


def test_bad_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("SELFSUP_PROFILE", "fast")
    with pytest.raises(ValueError, match=r"SELFSUP_PROFILE='fast' is not a profile.*quick.*full"):
        runtime.profile()


def test_budget_follows_profile(monkeypatch):
    monkeypatch.setenv("SELFSUP_PROFILE", "quick")
    assert runtime.budget(quick=30, full=300) == 30
    monkeypatch.setenv("SELFSUP_PROFILE", "full")
    assert runtime.budget(quick=30, full=300) == 300


def test_seed_everything_makes_runs_repeatable():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    runtime.seed_everything(123)
    first = draw()
    runtime.seed_everything(123)
    assert draw() == first
    runtime.seed_everything(124)
    assert draw() != first


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "0", True])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match="seed must be"):
        runtime.seed_everything(seed)


def test_device_prefers_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.device().type in {"cpu", "mps"}


def test_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        for name in runtime.THREAD_ENVS:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        assert runtime.configure_threads() == 1
        monkeypatch.setenv("SELFSUP_THREADS", "2")
        assert runtime.configure_threads() == 2 == torch.get_num_threads()
        monkeypatch.setenv("SELFSUP_THREADS", "zero")
        with pytest.raises(ValueError, match="SELFSUP_THREADS='zero' must be a positive integer"):
            runtime.configure_threads()
    finally:
        torch.set_num_threads(before)


def test_setup_reports_what_it_chose(monkeypatch):
    monkeypatch.setenv("SELFSUP_PROFILE", "quick")
    monkeypatch.setenv("SELFSUP_THREADS", "1")
    rt = runtime.setup(seed=7)
    assert (rt.profile, rt.seed, rt.threads) == ("quick", 7, 1)
    assert "profile=quick" in str(rt)


def test_glue_stores_python_numbers(monkeypatch):
    recorded = {}
    import myst_nb

    monkeypatch.setattr(
        myst_nb, "glue", lambda name, value, display: recorded.update({name: value})
    )
    glue("x", np.float64(0.25))
    glue("t", torch.tensor(3))
    assert recorded == {"x": 0.25, "t": 3} and type(recorded["x"]) is float
    with pytest.raises(ValueError, match="name must be"):
        glue("not a name", 1)


def test_markdown_table():
    from selfsup.book import markdown_table

    md = markdown_table(
        {"a": {"x": 1.23456, "y": float("inf")}, "b": {"x": float("nan")}}, ["x", "y"]
    )
    lines = md.data.splitlines()
    assert lines[0] == "| model | x | y |" and lines[1] == "|---|---|---|"
    assert lines[2] == "| a | 1.235 | ∞ |" and lines[3] == "| b | – | – |"


def test_tensor_helpers_are_still_reached_through_runtime():
    """randn and the other tensor helpers live in selfsup.tensors; runtime keeps the
    names, and a draw through either consumes the generator alike."""
    from selfsup import tensors

    for name in ("draw_device", "eval_mode", "rand", "randn", "step_generator"):
        assert getattr(runtime, name) is getattr(tensors, name)
    a = tensors.randn((3, 2), torch.Generator().manual_seed(0))
    assert torch.equal(a, torch.randn((3, 2), generator=torch.Generator().manual_seed(0)))
