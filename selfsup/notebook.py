"""The book's notebook helpers, under their earlier name.

:func:`glue`, :func:`markdown_table`, :class:`Claim`, :func:`claim`, :func:`strict` and
the rest now live in :mod:`selfsup.book.notebook` (import them with
``from selfsup.book import claim, glue, markdown_table``); this module re-exports
them so that code written against ``selfsup.notebook`` keeps working. The record of
claims is the same list object, :data:`selfsup.book.notebook.CLAIMS`.
"""

from .book.notebook import (
    CLAIMS,
    CLAIMS_LOG_ENV,
    KINDS,
    STRICT_ENV,
    Claim,
    claim,
    glue,
    markdown_table,
    strict,
)

__all__ = [
    "CLAIMS",
    "CLAIMS_LOG_ENV",
    "KINDS",
    "STRICT_ENV",
    "Claim",
    "claim",
    "glue",
    "markdown_table",
    "strict",
]
