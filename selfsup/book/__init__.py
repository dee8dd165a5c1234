"""The book's own machinery, apart from the library a user imports.

What serves the book rather than a user's model lives here:

- :mod:`selfsup.book.notebook`: :func:`glue` (numbers for the prose's ``{glue:text}``
  role), :func:`markdown_table` and :func:`claim` (a claim of the book, checked: it
  raises in strict mode, ``SELFSUP_STRICT=1``, and warns in a reader's notebook);
- :mod:`selfsup.book.drawings`: the schematic figures (block diagrams with
  :class:`~selfsup.book.drawings.Box` and :class:`~selfsup.book.drawings.Arrow`, the
  taxonomy of generative models);
- :mod:`selfsup.book.homework`: the homework kit builder,
  ``python -m selfsup.book.homework build OUT``.

A chapter imports ``from selfsup.book import claim, glue, markdown_table``.
"""

from .notebook import claim, glue, markdown_table

__all__ = ["claim", "glue", "markdown_table"]
