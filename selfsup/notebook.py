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
