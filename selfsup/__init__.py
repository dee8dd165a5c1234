"""selfsup: the library behind the course companion on unsupervised and
self-supervised learning.

Every model and metric the book's chapters use lives here, tested, importable on
its own (in Colab, in homework, in research scripts). Modules:

- :mod:`selfsup.runtime`: device, seeds, the quick/full profile and budgets;
- :mod:`selfsup.divergences`: TV, KL, JS, f-divergences, Gaussian KL, MMD,
  Wasserstein, and estimators from samples;
- :mod:`selfsup.saving`: :func:`save` and :func:`load`, a model with everything that
  rebuilds it (``selfsup.save(model, path)``, ``model = selfsup.load(path)``).
"""

__version__ = "0.1.0"
__all__ = ["load", "save"]


def save(model, path) -> None:
    """Write ``model`` and what rebuilds it to ``path``: :func:`selfsup.saving.save`."""
    from .saving import save as _save

    _save(model, path)


def load(path, map_location=None):
    """Rebuild the model :func:`save` wrote to ``path``: :func:`selfsup.saving.load`."""
    from .saving import load as _load

    return _load(path, map_location)
