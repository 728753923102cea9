"""Diagnostics: comparing posterior samples, calibration, and posterior predictive checks.

The calibration checks live in :mod:`lfi.calibration` and are re-exported here: :func:`sbc`
(simulation-based calibration; Talts et al. 2018, arXiv:1804.06788), :func:`expected_coverage`
(of highest-posterior-density regions; Hermans et al. 2022, "A trust crisis in simulation-based
inference?", arXiv:2110.06581) and :func:`tarp` (Lemos et al. 2023, arXiv:2302.03026). They run
an amortised posterior on many test simulations (θ*, x*) with θ* ~ prior, without retraining: a
calibrated posterior ranks θ* uniformly among its samples and its α-HPD region contains θ* a
fraction α of the time; an over-confident one puts θ* in the tails and under-covers.

:func:`posterior_predictive` checks one observation: it simulates x from θ drawn from the
posterior at x_o and reports where x_o falls among them (Gelman, Meng & Stern 1996, "Posterior
predictive assessment of model fitness"; drawn by :func:`lfi.plot.predictive`).

:func:`c2st` is the classifier two-sample test (C2ST) of Lopez-Paz & Oquab (2016,
arXiv:1610.06545) run with the protocol of the sbibm benchmark (Lueckmann et al. 2021,
arXiv:2101.04653): a score of 0.5 means the classifier cannot tell the two sets of samples
apart, a score of 1.0 means it separates them perfectly.

>>> import numpy as np
>>> from lfi.diagnostics import c2st
>>> rng = np.random.default_rng(0)
>>> reference = rng.normal(size=(200, 2))
>>> shifted = rng.normal(loc=10.0, size=(200, 2))
>>> c2st(reference, shifted) > 0.95
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lfi._rng import Seed
from lfi.calibration import (
    CoverageResult,
    SBCResult,
    TARPResult,
    ecdf_band,
    expected_coverage,
    sbc,
    tarp,
)

__all__ = [
    "CoverageResult",
    "PPCResult",
    "SBCResult",
    "TARPResult",
    "c2st",
    "ecdf_band",
    "expected_coverage",
    "posterior_predictive",
    "predictive_check",
    "sbc",
    "tarp",
]


def _as_samples(value: Any, name: str) -> np.ndarray:
    """Return ``value`` as a finite 2-d float64 array, or raise an error naming ``name``."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`{name}` must be a numeric array, got {type(value).__name__}") from err
    if arr.ndim != 2:
        raise ValueError(
            f"`{name}` must be a 2-d array of shape (num_samples, dim), got shape {arr.shape}"
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"`{name}` must have at least one row and one column, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.all(np.isfinite(arr), axis=1)))
        raise ValueError(f"`{name}` contains non-finite values (NaN or inf) in {bad} row(s)")
    return arr


def c2st(
    reference: Any,
    samples: Any,
    *,
    seed: int = 1,
    n_folds: int = 5,
    z_score: bool = True,
) -> float:
    """Classifier two-sample test: cross-validated accuracy of telling two sample sets apart.

    Re-implements the C2ST metric of sbibm 1.1.0 (``sbibm.metrics.c2st``), which follows
    Lopez-Paz & Oquab, "Revisiting Classifier Two-Sample Tests" (arXiv:1610.06545), as used
    in Lueckmann et al., "Benchmarking Simulation-Based Inference" (arXiv:2101.04653):

    1. if ``z_score``, both sets are standardised with the per-column mean and standard
       deviation (``ddof=1``, as ``torch.std``) of ``reference`` only;
    2. all arithmetic is in float32, as sbibm passes float32 tensors to scikit-learn;
    3. ``reference`` is labelled 0 and ``samples`` 1, and a scikit-learn ``MLPClassifier``
       (ReLU, two hidden layers of ``10 * dim`` units, adam, ``max_iter=10000``,
       ``random_state=seed``) is scored by ``n_folds``-fold cross-validation over a shuffled
       ``KFold(random_state=seed)``;
    4. the mean held-out accuracy over folds is returned.

    With ``z_score=False`` the result equals sbibm's exactly (same scikit-learn version);
    with ``z_score=True`` it can differ by about the classifier's own noise (~0.01), since
    torch and numpy round the float32 mean differently in the last bit and the MLP's
    training is sensitive to that.

    Args:
        reference: reference samples, shape ``(n, dim)`` (e.g. from the true posterior).
        samples: samples to test, shape ``(m, dim)`` (e.g. from an approximate posterior).
        seed: seed of both the classifier and the fold shuffling.
        n_folds: number of cross-validation folds (at least 2).
        z_score: standardise with the statistics of ``reference`` before classifying.

    Returns:
        The mean cross-validated accuracy, in [0, 1]; about 0.5 when the two sets come from
        the same distribution (with equal set sizes), 1.0 when they are perfectly separable.

    Raises:
        ValueError: an input is not 2-d, holds NaN/inf, the column counts differ, a column of
            ``reference`` is constant while ``z_score`` is set, or there are too few rows for
            ``n_folds``.

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=(100, 1))
    >>> 0.0 <= c2st(x, rng.normal(size=(100, 1))) <= 1.0
    True
    >>> c2st(x, np.zeros((5, 2)))
    Traceback (most recent call last):
    ...
    ValueError: `samples` has 2 columns but `reference` has 1; they must match
    """
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neural_network import MLPClassifier

    ref = _as_samples(reference, "reference")
    smp = _as_samples(samples, "samples")
    if smp.shape[1] != ref.shape[1]:
        raise ValueError(
            f"`samples` has {smp.shape[1]} columns but `reference` has {ref.shape[1]}; "
            "they must match"
        )
    if isinstance(n_folds, bool) or not isinstance(n_folds, int | np.integer) or n_folds < 2:
        raise ValueError(f"`n_folds` must be an integer >= 2, got {n_folds!r}")
    if ref.shape[0] + smp.shape[0] < n_folds:
        raise ValueError(
            f"`reference` and `samples` have {ref.shape[0] + smp.shape[0]} rows in all, "
            f"fewer than `n_folds`={n_folds}"
        )

    # sbibm works on float32 tensors: cast first, then z-score in float32 with statistics
    # accumulated in float64 and rounded to float32 (what torch.mean / torch.std give, to
    # within an ulp; ulp-level differences can still move the MLP's score by ~0.01).
    with np.errstate(over="ignore"):
        ref, smp = ref.astype(np.float32), smp.astype(np.float32)
    for arr, name in ((ref, "reference"), (smp, "samples")):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"`{name}` has values beyond the float32 range")
    if z_score:
        if ref.shape[0] < 2:
            raise ValueError("`reference` needs at least 2 rows to be z-scored")
        mean = ref.mean(axis=0, dtype=np.float64).astype(np.float32)
        std = ref.std(axis=0, ddof=1, dtype=np.float64).astype(np.float32)
        if np.any(std == 0.0):
            cols = np.flatnonzero(std == 0.0).tolist()
            raise ValueError(
                f"`reference` has zero standard deviation in column(s) {cols}; "
                "cannot z-score (pass z_score=False)"
            )
        ref = (ref - mean) / std
        smp = (smp - mean) / std

    dim = ref.shape[1]
    clf = MLPClassifier(
        activation="relu",
        hidden_layer_sizes=(10 * dim, 10 * dim),
        max_iter=10000,
        solver="adam",
        random_state=seed,
    )
    data = np.concatenate([ref, smp])
    target = np.concatenate([np.zeros(ref.shape[0]), np.ones(smp.shape[0])])
    folds = KFold(n_splits=int(n_folds), shuffle=True, random_state=seed)
    scores = cross_val_score(clf, data, target, cv=folds, scoring="accuracy")
    # sbibm reduces the fold scores to a float32 mean; keep that rounding.
    return float(np.float32(np.mean(scores)))


@dataclass
class PPCResult:
    """Where x_o falls among posterior predictive simulations x_j ~ p(x | θ_j), θ_j ~ q(θ | x_o).

    ``quantiles[k]``: the fraction of x_j[k] below x_o[k] (ties count half); ``pvalues[k]``:
    two-sided, 2 min(p₋, p₊) capped at 1 with the Monte-Carlo p-values p₋ = (#{x_j[k] ≤ x_o[k]}
    + 1) / (n + 1) and p₊ = (#{x_j[k] ≥ x_o[k]} + 1) / (n + 1), so x_o beyond all n draws gets
    2 / (n + 1), not 0 (n draws cannot show a smaller p-value); ``distance``: the Mahalanobis
    distance of x_o from the mean under the covariance of the n + 1 points (the x_j and x_o),
    ``distances`` those of the x_j, and ``distance_pvalue`` the fraction of the x_j at least as
    far ((count + 1) / (n + 1), an exact p-value when x_o is drawn from the draws' law).
    ``num_invalid``: simulations that gave NaN/inf (excluded). Posterior predictive p-values
    are conservative (concentrated near 1/2 rather than uniform when the model is right), so a
    small one is evidence of misfit, a large one is no proof of fit.
    """

    x_pred: np.ndarray
    x_o: np.ndarray
    quantiles: np.ndarray
    pvalues: np.ndarray
    distance: float
    distance_pvalue: float
    distances: np.ndarray
    num_invalid: int = 0

    def passed(self, alpha: float = 0.01) -> bool:
        """No test rejects at family-wise level ``alpha``: half of it to the dx marginal tests
        (Bonferroni, alpha / (2 dx) each), half to the distance test."""
        return bool(
            np.all(self.pvalues > alpha / (2 * len(self.pvalues)))
            and self.distance_pvalue > alpha / 2
        )


def predictive_check(x_pred: Any, x_o: Any) -> PPCResult:
    """:class:`PPCResult` of already simulated predictive draws ``x_pred`` (n, dx) against
    ``x_o`` (dx,).

    >>> import numpy as np
    >>> x_pred = np.random.default_rng(0).normal(size=(2000, 2))
    >>> result = predictive_check(x_pred, [0.0, 4.0])
    >>> result.quantiles.round(1).tolist(), result.passed()
    ([0.5, 1.0], False)
    """
    x_o = np.asarray(x_o, np.float64).reshape(-1)
    x_pred = np.asarray(x_pred, np.float64)
    x_pred = x_pred.reshape(len(x_pred), -1)
    if x_pred.shape[1] != x_o.size or not np.all(np.isfinite(x_o)):
        raise ValueError(f"x_o: expected {x_pred.shape[1]} finite values, got {x_o.shape}")
    ok = np.all(np.isfinite(x_pred), 1)
    x_pred, bad = x_pred[ok], int((~ok).sum())
    if len(x_pred) < 2:
        raise ValueError(f"x_pred: need at least 2 finite simulations, got {len(x_pred)}")
    q = np.mean(x_pred < x_o, 0) + 0.5 * np.mean(x_pred == x_o, 0)
    # mean and covariance of all n + 1 points, so that x_o and the draws are treated alike (fitted
    # on the draws alone, each draw is measured in-sample and x_o out-of-sample: x_o looks too
    # far, and a right model is rejected more often the larger dx is against n)
    both = np.vstack([x_pred, x_o[None]])
    mean = both.mean(0)
    cov = np.atleast_2d(np.cov(both, rowvar=False))
    prec = np.linalg.pinv(cov + 1e-12 * np.eye(len(cov)) * max(np.trace(cov), 1e-300))
    dist = lambda a: np.sqrt(np.maximum(np.sum((a - mean) @ prec * (a - mean), -1), 0))
    d_o, d_pred = float(dist(x_o)), dist(x_pred)
    p_dist = float((np.sum(d_pred >= d_o) + 1) / (len(d_pred) + 1))
    n = len(x_pred)
    p_low = (np.sum(x_pred <= x_o, 0) + 1) / (n + 1)
    p_high = (np.sum(x_pred >= x_o, 0) + 1) / (n + 1)
    pvalues = np.minimum(1.0, 2 * np.minimum(p_low, p_high))
    return PPCResult(x_pred, x_o, q, pvalues, d_o, p_dist, d_pred, bad)


def posterior_predictive(
    posterior: Any,
    simulator: Callable,
    x_o: Any = None,
    num_samples: int = 1000,
    seed: Seed = 0,
) -> PPCResult:
    """Posterior predictive check at one observation: θ_j ~ ``posterior`` at ``x_o``, one
    x_j ~ ``simulator`` per θ_j (any simulator form :func:`lfi.simulate` takes), and where x_o
    falls among the x_j (:func:`predictive_check`). ``x_o``: by default the posterior's
    ``default_x`` or ``x_o``; for an ABC posterior on summaries, give a simulator of summaries.

    >>> import numpy as np
    >>> class Post:  # θ ~ N(0, 1), x ~ N(θ, 1): the posterior N(x/2, 1/2), shifted by `shift`
    ...     def __init__(self, shift): self.shift = shift
    ...     def sample(self, n, x, seed):
    ...         rng = np.random.default_rng(0)
    ...         return x / 2 + self.shift + np.sqrt(0.5) * rng.standard_normal((n, 1))
    >>> sim = lambda theta, rng: theta + rng.standard_normal(theta.shape)
    >>> posterior_predictive(Post(0.0), sim, [0.5]).passed()
    True
    >>> posterior_predictive(Post(5.0), sim, [0.5]).pvalues < 0.01
    array([ True])
    """
    import jax

    from lfi._rng import as_key
    from lfi.simulate import run_simulator

    if x_o is None:
        x_o = getattr(posterior, "default_x", None)
        x_o = getattr(posterior, "x_o", None) if x_o is None else x_o
        if x_o is None:
            raise ValueError("x_o: give the observation (the posterior has no default)")
    x_o = np.asarray(x_o, np.float32)
    x_o = x_o[0] if x_o.ndim == 2 and len(x_o) == 1 else x_o
    if x_o.ndim != 1:
        raise ValueError(f"x_o: expected one observation (dx,), got shape {x_o.shape}")
    theta = np.asarray(posterior.sample(int(num_samples), x=x_o, seed=seed), np.float32)
    x_pred, _ = run_simulator(simulator, theta, jax.random.fold_in(as_key(seed), 1), progress=False)
    return predictive_check(x_pred, x_o)
