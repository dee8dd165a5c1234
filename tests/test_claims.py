"""selfsup.book.claim (strict and reader modes, records, smoke) and SELFSUP_SEED."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from selfsup import runtime
from selfsup.book import claim, notebook


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ["SELFSUP_STRICT", "SELFSUP_SEED", "SELFSUP_SMOKE", "SELFSUP_CLAIMS_LOG"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SELFSUP_PROFILE", "quick")
    monkeypatch.setattr(notebook, "CLAIMS", [])
    yield
    monkeypatch.delenv("SELFSUP_SEED", raising=False)
    runtime.setup(seed=0, quiet=True)


def test_strict_mode_raises_and_quotes_everything(monkeypatch):
    monkeypatch.setenv("SELFSUP_STRICT", "1")
    assert claim("the gap is small", 0.05, "<", 0.1) is True
    with pytest.raises(AssertionError) as info:
        claim("the moons flow is within 0.1 nats of the entropy", 0.102, "<", 0.1)
    message = str(info.value)
    for part in ["the moons flow is within 0.1 nats of the entropy", "< 0.1", "0.102", "seed"]:
        assert part in message
    with pytest.raises(AssertionError, match="expected true, measured false"):
        claim("the inverse is exact", torch.equal(torch.zeros(2), torch.ones(2)))


def test_reader_mode_warns_once_and_goes_on(capsys):
    assert claim("the gap is small", torch.tensor(0.3), "<", 0.1) is False
    err = capsys.readouterr().err
    assert err.count("Warning") == 1
    assert "the gap is small (< 0.1)" in err and "0.3" in err
    assert "claims appendix" in err and "seeds of its sweep" in err and "seed 0" in err
    assert "quick profile trains briefly" in err
    assert claim("holds", np.float64(0.01), "<", 0.1) is True
    assert capsys.readouterr().err == ""


def test_the_full_profile_warning_says_what_the_appendix_holds(capsys, monkeypatch):
    monkeypatch.setenv("SELFSUP_PROFILE", "full")
    assert claim("the gap is small", 0.3, "<", 0.1) is False
    err = capsys.readouterr().err
    assert "full profile" in err and "not every claim holds in the full profile" in err
    assert "no row there" in err and "quick profile trains briefly" not in err


def test_every_claim_is_recorded_with_its_margin(tmp_path, monkeypatch):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv("SELFSUP_CLAIMS_LOG", str(log))
    runtime.setup(seed=3, quiet=True)
    claim("a", 0.25, "<", 1.0)
    claim("b", 2.0, ">=", 3.0)
    claim("c", True, kind="identity")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["kind"] for r in records] == ["measured", "measured", "identity"]
    assert [r["statement"] for r in records] == ["a", "b", "c"]
    assert [r["verdict"] for r in records] == ["holds", "fails", "holds"]
    assert records[0]["margin"] == pytest.approx(0.75)
    assert records[1]["margin"] == pytest.approx(-1.0)
    assert records[2]["margin"] is None
    assert {r["seed"] for r in records} == {3}
    assert [c.statement for c in notebook.CLAIMS] == ["a", "b", "c"]


def test_nan_never_holds(monkeypatch):
    monkeypatch.setenv("SELFSUP_STRICT", "1")
    for op in ["<", ">", "<=", ">="]:
        with pytest.raises(AssertionError, match="nan"):
            claim("a number", float("nan"), op, 1.0)


def test_smoke_check_records_unverified_and_never_raises(monkeypatch):
    monkeypatch.setenv("SELFSUP_STRICT", "1")
    monkeypatch.setenv("SELFSUP_PROFILE", "full")
    monkeypatch.setenv("SELFSUP_SMOKE", "1")
    claim("an untrained model's claim", 5.0, "<", 0.1)
    assert notebook.CLAIMS[-1].verdict == "unverified"


@pytest.mark.parametrize(
    "args, match",
    [
        (("", 1.0, "<", 2.0), "statement"),
        (("s", 1.0, "~", 2.0), "op must be one of"),
        (("s", 1.0, "<", None), "needs a threshold"),
        (("s", 1.0), "without op must be a bool"),
        (("s", True, None, 1.0), "threshold needs an op"),
        (("s", "big", "<", 1.0), "value must be a number"),
        (("s", torch.ones(3), "<", 1.0), "value must be a number"),
        (("s", 1.0, "<", float("nan")), "threshold is NaN"),
    ],
)
def test_bad_claims_are_clear_errors(args, match):
    with pytest.raises(ValueError, match=match):
        claim(*args)


def test_a_claim_is_measured_or_an_identity():
    with pytest.raises(ValueError, match="kind must be one of"):
        claim("s", True, kind="exact")


def test_strict_flag_is_checked(monkeypatch):
    monkeypatch.setenv("SELFSUP_STRICT", "yes")
    with pytest.raises(ValueError, match="SELFSUP_STRICT"):
        notebook.strict()


def test_seed_from_the_environment_overrides_setup(monkeypatch, capsys):
    monkeypatch.setenv("SELFSUP_SEED", "4")
    rt = runtime.setup(seed=0)
    assert rt.seed == 4 and "seed=4" in capsys.readouterr().out
    a = torch.rand(3)
    runtime.setup(seed=4, quiet=True)
    assert torch.equal(a, torch.rand(3))
    monkeypatch.setenv("SELFSUP_SEED", "-1")
    with pytest.raises(ValueError, match="SELFSUP_SEED"):
        runtime.setup()
    monkeypatch.setenv("SELFSUP_SEED", "one")
    with pytest.raises(ValueError, match="SELFSUP_SEED"):
        runtime.setup()


def test_derived_seeds_keep_seed_zero_and_move_with_the_seed():
    rt = runtime.setup(seed=0, quiet=True)
    assert [rt.derived_seed(k) for k in (0, 1, 7)] == [0, 1, 7]
    zero = rt.generator(5).seed()
    rt = runtime.setup(seed=2, quiet=True)
    assert rt.derived_seed(5) == 2 * runtime.STREAMS + 5 != zero
    # Streams of different seeds never coincide.
    seeds = {runtime.STREAMS * s + k for s in range(5) for k in range(runtime.STREAMS)}
    assert len(seeds) == 5 * runtime.STREAMS
    with pytest.raises(ValueError, match="stream"):
        rt.derived_seed(runtime.STREAMS)


def test_fit_shuffles_with_the_run_seed():
    from selfsup.train import fit

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.seen = []

        def loss(self, batch):
            self.seen.append(batch.clone())
            return ((batch - self.w) ** 2).mean()

    def order(seed):
        runtime.setup(seed=seed, quiet=True)
        model = Model()
        fit(model, torch.arange(8.0), epochs=1, batch_size=8, device="cpu")
        return model.seen[0]

    assert torch.equal(order(0), order(0))
    assert not torch.equal(order(0), order(1))


def test_budget_has_a_smoke_value(monkeypatch):
    monkeypatch.setenv("SELFSUP_PROFILE", "full")
    monkeypatch.setenv("SELFSUP_SMOKE", "1")
    assert runtime.budget(quick=20, full=200) == 20
    assert runtime.budget(quick=20, full=200, smoke=2) == 2
    assert runtime.smoke_cap(150, runtime.SMOKE_EPOCHS) == runtime.SMOKE_EPOCHS
    monkeypatch.setenv("SELFSUP_SMOKE", "0")
    assert runtime.budget(quick=20, full=200, smoke=2) == 200
    assert runtime.smoke_cap(150, runtime.SMOKE_EPOCHS) == 150
    monkeypatch.setenv("SELFSUP_PROFILE", "quick")
    assert runtime.budget(quick=20, full=200, smoke=2) == 20
