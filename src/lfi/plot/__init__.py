"""Plots of posterior samples, calibration checks, predictive checks and training.

- :func:`pairplot`: a corner plot, the 1-d marginal histograms on the diagonal and the 2-d
  marginals (scatter) below, with reference samples (e.g. the true posterior) in a second colour
  and the true θ marked with lines (:mod:`lfi.plot.pairs`);
- :func:`sbc_ranks`, :func:`sbc_ecdf`, :func:`coverage_curve`, :func:`tarp_curve`: the results of
  :func:`lfi.diagnostics.sbc`, :func:`~lfi.diagnostics.expected_coverage` and
  :func:`~lfi.diagnostics.tarp` (:mod:`lfi.plot.calibration`);
- :func:`predictive`, :func:`loss_curves`, :func:`q_curve`: a posterior predictive check, a
  training history, and q(θ) = −2 log r̂ with a confidence-set threshold
  (:mod:`lfi.plot.checks`).

Every function returns a :class:`matplotlib.figure.Figure` made on the non-interactive Agg
canvas, without pyplot (nothing needs a display and no figure is kept alive by a global
registry), and writes it as a PNG when given ``path``.

>>> import numpy as np
>>> from lfi.plot import pairplot
>>> rng = np.random.default_rng(0)
>>> fig = pairplot(rng.normal(size=(500, 3)), truth=[0.0, 0.0, 0.0])
>>> len(fig.axes)  # 3 diagonal + 3 lower-triangle panels
6
"""

from lfi.plot.calibration import coverage_curve, sbc_ecdf, sbc_ranks, tarp_curve
from lfi.plot.checks import loss_curves, predictive, q_curve
from lfi.plot.pairs import pairplot

__all__ = [
    "coverage_curve",
    "loss_curves",
    "pairplot",
    "predictive",
    "q_curve",
    "sbc_ecdf",
    "sbc_ranks",
    "tarp_curve",
]
