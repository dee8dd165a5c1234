"""Models of the book, each with the protocol of DESIGN.md (``loss``, ``log_prob``
in nats per example, ``sample``, and ``encode``/``decode``/``embed`` where they apply)."""
