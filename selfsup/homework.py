"""The homework kit builder, under its earlier name.

The builder now lives in :mod:`selfsup.book.homework` (``python -m selfsup.book.homework
build OUT``); this module re-exports its functions and still runs as
``python -m selfsup.homework build OUT [--only MODULES] [--force]`` or ``... list``, so
that scripts and notes written against the old name keep working.
"""

import sys

from .book.homework import (
    BEGIN,
    END,
    GRADED_TESTS,
    PACKAGE,
    SOURCE_ROOT,
    Exercise,
    _functions,  # noqa: F401  (read by tests written against this name)
    all_exercises,
    build,
    find_exercises,
    main,
    stub_source,
)

__all__ = [
    "BEGIN",
    "END",
    "GRADED_TESTS",
    "PACKAGE",
    "SOURCE_ROOT",
    "Exercise",
    "all_exercises",
    "build",
    "find_exercises",
    "main",
    "stub_source",
]

if __name__ == "__main__":
    sys.exit(main())
