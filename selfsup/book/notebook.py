"""Helpers for running chapters both inside the book build and anywhere else.

:func:`glue` records a value for the book's ``{glue:text}`` role. Inside a
Jupyter Book build it is ``myst_nb.glue``; where myst-nb is not installed (Colab,
a plain Python script) it does nothing unless ``display=True``, so a chapter runs
unchanged with only ``selfsup`` installed.

:func:`claim` states a claim of the book and checks it: it raises in strict mode
(``SELFSUP_STRICT=1``: nbval, the book build, CI) and warns anywhere else.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import asdict, dataclass
from typing import Any


def glue(name: str, value: Any, display: bool = False) -> None:
    """Record ``value`` under ``name`` for the book; show it if ``display``.

    NumPy and torch scalars are stored as Python numbers, so that the book's
    format specs (``{glue:text}`name:.3f```) apply to them.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be an identifier-like string, got {name!r}")
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            from IPython.display import display as show

            show(value)
        return
    myst_glue(name, value, display=display)


def markdown_table(
    rows: dict[str, dict[str, float]],
    columns: list[str],
    digits: int = 3,
    index_name: str = "model",
):
    """A Markdown table (an IPython ``Markdown`` object) of named rows of numbers.

    ``index_name`` heads the column of row names.

    ``rows`` maps a row name to ``{column: value}``; missing or NaN values show as
    "–", infinite ones as "∞". ``columns`` is a sequence of column names (a list or
    tuple of strings; one name is ``["loss"]``, not ``"loss"``). In the book it renders
    as a table; in Jupyter too.
    """
    import math
    from collections.abc import Mapping

    from IPython.display import Markdown

    from .. import _checks as checks

    if isinstance(columns, (str, bytes)) or not isinstance(columns, (list, tuple)):
        fix = f"pass columns=[{columns!r}]" if isinstance(columns, str) else None
        checks._fail("columns", "a list of column names such as ['bits/dim', 'FID']",
                     columns, fix, checks.InputTypeError)  # fmt: skip
    if not isinstance(rows, Mapping) or not all(isinstance(r, Mapping) for r in rows.values()):
        got = checks.describe(rows)
        raise checks.InputTypeError(f"rows must map each row name to a dict, got {got}")
    digits = checks.integer(digits, "digits", low=0)

    def cell(value) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        if isinstance(value, float) and math.isinf(value):
            return "∞" if value > 0 else "-∞"
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    lines = [f"| {index_name} | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(cell(row.get(c)) for c in columns) + " |")
    return Markdown("\n".join(lines))


# --- Claims -----------------------------------------------------------------------

STRICT_ENV = "SELFSUP_STRICT"
CLAIMS_LOG_ENV = "SELFSUP_CLAIMS_LOG"
_COMPARE = {
    "<": lambda v, t: v < t,
    "<=": lambda v, t: v <= t,
    ">": lambda v, t: v > t,
    ">=": lambda v, t: v >= t,
}
#: Every claim this process has stated, in order (a list of :class:`Claim`).
CLAIMS: list[Claim] = []


@dataclass(frozen=True)
class Claim:
    """One statement of the book, what this run measured, and the verdict.

    ``verdict`` is ``"holds"``, ``"fails"`` or, in the full profile's smoke check
    (whose models are not trained), ``"unverified"``. ``margin`` is how far the value
    is on the right side of the threshold (negative when the claim fails), in the
    value's units; ``None`` for a yes/no claim. ``kind`` is ``"measured"`` (it varies
    with the seed and the machine: the claims appendix gives its margin in spreads
    across seeds) or ``"identity"`` (exact mathematics or deterministic arithmetic, the
    same on every seed up to rounding).
    """

    statement: str
    value: float | bool
    op: str | None
    threshold: float | None
    verdict: str
    margin: float | None
    seed: int
    profile: str
    kind: str = "measured"

    @property
    def expected(self) -> str:
        return "true" if self.op is None else f"{self.op} {_fmt(self.threshold)}"

    def describe(self) -> str:
        return (
            f'claim "{self.statement}": expected {self.expected}, '
            f"measured {_fmt(self.value)} (seed {self.seed}, {self.profile} profile)"
        )


def _fmt(x) -> str:
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _number(value, name: str):
    """A Python bool or float from a number, a bool, a NumPy scalar or a one-element tensor."""
    size = value.numel() if hasattr(value, "numel") else getattr(value, "size", 1)
    if hasattr(value, "item") and size == 1:
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    raise ValueError(f"{name} must be a number, a bool or a one-element tensor, got {value!r}")


def strict() -> bool:
    """Whether a false claim raises: ``SELFSUP_STRICT=1`` (nbval, the book build, CI)."""
    raw = os.environ.get(STRICT_ENV, "").strip().lower()
    if raw not in ("", "0", "1", "true", "false"):
        raise ValueError(f"{STRICT_ENV}={raw!r} must be 0 or 1")
    return raw in ("1", "true")


KINDS = ("measured", "identity")


def claim(
    statement: str, value, op: str | None = None, threshold=None, *, kind: str = "measured"
) -> bool:
    """State a claim of the book and check it against what this run measured.

    ``claim("the flow is within 0.1 nats of the entropy", gap, "<", 0.1)`` compares a
    number with a threshold (``op`` one of ``<``, ``<=``, ``>``, ``>=``);
    ``claim("the inverse is exact", torch.equal(a, b))`` checks a yes/no fact.

    Every claim is recorded (:data:`CLAIMS`, and one JSON line in the file that
    ``SELFSUP_CLAIMS_LOG`` names, which is how the seed sweep of the claims appendix
    collects them). A false claim raises an ``AssertionError`` that quotes the
    statement, the value and the threshold in strict mode (``SELFSUP_STRICT=1``);
    anywhere else (Colab, Jupyter, a script) it prints one plain warning under the
    cell and the chapter goes on. In the full profile's smoke check the models are
    not trained, so the claim is recorded as unverified and never raises.

    ``kind="identity"`` marks a claim that no seed can change (exact mathematics, such
    as a chain-rule sum, or deterministic arithmetic); the default ``"measured"`` is
    one that varies with the seed, which the claims appendix checks across seeds.

    Returns whether the claim held.
    """
    from .. import runtime

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    if not isinstance(statement, str) or not statement.strip():
        raise ValueError("statement must be a non-empty string saying what the book claims")
    value = _number(value, "value")
    if op is None:
        if threshold is not None:
            raise ValueError("a threshold needs an op: claim(statement, value, '<', threshold)")
        if not isinstance(value, bool):
            raise ValueError(
                f"a claim without op must be a bool, got {value!r}; "
                "pass op and threshold to compare a number"
            )
        ok, margin = value, None
    else:
        if op not in _COMPARE:
            raise ValueError(f"op must be one of {sorted(_COMPARE)}, got {op!r}")
        if threshold is None:
            raise ValueError(f"op {op!r} needs a threshold")
        threshold = _number(threshold, "threshold")
        if isinstance(value, bool) or isinstance(threshold, bool):
            raise ValueError("compare numbers with op, or pass a bool without op")
        if math.isnan(threshold):
            raise ValueError("threshold is NaN")
        ok = not math.isnan(value) and _COMPARE[op](value, threshold)
        margin = (threshold - value) if op in ("<", "<=") else (value - threshold)
        if math.isnan(margin):
            margin = -math.inf
    smoke = runtime.smoke_check()
    record = Claim(
        statement=statement.strip(),
        value=value,
        op=op,
        threshold=threshold,
        verdict="unverified" if smoke else ("holds" if ok else "fails"),
        margin=margin,
        seed=runtime._run_seed,
        profile=runtime.profile() + (" (smoke)" if smoke else ""),
        kind=kind,
    )
    CLAIMS.append(record)
    log = os.environ.get(CLAIMS_LOG_ENV, "").strip()
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(record), allow_nan=True) + "\n")
    if ok or smoke:
        return bool(ok)
    if strict():
        raise AssertionError(record.describe())
    if runtime.profile() == "quick":
        why = (
            "  Likely reasons: the quick profile trains briefly; another seed, processor or\n"
            "  torch version gives another training trajectory. The claims appendix gives\n"
            "  this claim's range over the seeds of its sweep."
        )
    else:
        why = (
            "  Likely reasons: not every claim holds in the full profile yet; another seed,\n"
            "  processor or torch version gives another training trajectory. The claims\n"
            "  appendix marks the claims that failed in a full-profile run (a claim that\n"
            "  only the full profile states has no row there)."
        )
    print(
        f"Warning: this run does not confirm a claim of the book.\n"
        f"  The book says: {record.statement} ({record.expected}).\n"
        f"  This run measured: {_fmt(value)} (seed {record.seed}, {record.profile} profile).\n"
        + why,
        file=sys.stderr,
    )
    return False
