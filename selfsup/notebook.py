"""Helpers for running chapters both inside the book build and anywhere else.

:func:`glue` records a value for the book's ``{glue:text}`` role. Inside a
Jupyter Book build it is ``myst_nb.glue``; where myst-nb is not installed (Colab,
a plain Python script) it does nothing unless ``display=True``, so a chapter runs
unchanged with only ``selfsup`` installed.
"""

from __future__ import annotations

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
    "–", infinite ones as "∞". In the book it renders as a table; in Jupyter too.
    """
    import math

    from IPython.display import Markdown

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
