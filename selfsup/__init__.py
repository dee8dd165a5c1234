"""selfsup: the library behind the course companion on unsupervised and
self-supervised learning.

Every model and metric the book's chapters use lives here, tested, importable on
its own (in Colab, in homework, in research scripts). Modules:

- :mod:`selfsup.runtime`: device, seeds, the quick/full profile and budgets;
- :mod:`selfsup.tensors`: random draws on a model's device from a (possibly CPU)
  generator, and eval mode as a context;
- :mod:`selfsup.data`: a package, one module per job: ``image_sets`` (8x8 digits,
  MNIST, :class:`~selfsup.data.ImageData`, grey levels), ``toys`` (2-D toys with exact
  densities), ``dequantization``, ``augment`` (views for contrastive learning);
- :mod:`selfsup.divergences`: TV, KL, JS, f-divergences, Gaussian KL, MMD,
  Wasserstein, and estimators from samples;
- :mod:`selfsup.pareto`, :mod:`selfsup.metrics`, :mod:`selfsup.features` (the stand-in
  classifier of the sample metrics), :mod:`selfsup.plotting` (plots of data and
  results);
- :mod:`selfsup.models`: every model of the book, with one protocol
  (:mod:`selfsup.protocols`), trained by :mod:`selfsup.train` and configured for the
  profile by :mod:`selfsup.configs`;
- :mod:`selfsup.saving`: :func:`save` and :func:`load`, a model with everything that
  rebuilds it (``selfsup.save(model, path)``, ``model = selfsup.load(path)``);
- :mod:`selfsup.devicecheck`: the stand-in accelerators (``SELFSUP_DEVICE=emulated``
  and ``SELFSUP_DEVICE=emulated-mps``) that refuse what CUDA and Apple's GPUs refuse.

:mod:`selfsup.book` holds what serves the book rather than a user's model: the
notebook helpers (``glue``, ``markdown_table``, ``claim``), the schematic drawings and
the homework kit builder. ``selfsup.notebook`` and ``selfsup.homework`` are the earlier
names of two of them and re-export them; :mod:`selfsup._checks` validates the library's
inputs.
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
