"""selfsup: the library behind the course companion on unsupervised and
self-supervised learning.

Every model and metric the book's chapters use lives here, tested, importable on
its own (in Colab, in homework, in research scripts). Modules:

- :mod:`selfsup.runtime`: device, seeds, the quick/full profile and budgets;
- :mod:`selfsup.divergences`: TV, KL, JS, f-divergences, Gaussian KL, MMD,
  Wasserstein, and estimators from samples.
"""

__version__ = "0.1.0"
