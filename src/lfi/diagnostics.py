"""Diagnostics: comparing posterior samples, and checking a posterior's calibration.

:func:`sbc` (simulation-based calibration; Talts et al. 2018, arXiv:1804.06788) and
:func:`expected_coverage` (of highest-posterior-density regions; Hermans et al. 2022, "A trust
crisis in simulation-based inference?", arXiv:2110.06581) run an amortised posterior on many
test simulations (θ*, x*) with θ* ~ prior, without retraining: a calibrated posterior ranks θ*
uniformly among its samples and its α-HPD region contains θ* a fraction α of the time; an
over-confident one puts θ* in the tails and under-covers.

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

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CoverageResult", "SBCResult", "c2st", "expected_coverage", "sbc"]


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
class SBCResult:
    """Ranks of θ* among the posterior draws, per test simulation and dimension (0..L), and a
    chi-square test of their uniformity per dimension (``pvalues``)."""

    ranks: np.ndarray
    num_samples: int
    pvalues: np.ndarray

    def passed(self, alpha: float = 0.01) -> bool:
        """All dimensions uniform at family-wise level ``alpha`` (Bonferroni)."""
        return bool(np.all(self.pvalues > alpha / len(self.pvalues)))


@dataclass
class CoverageResult:
    """``alphas``: per test simulation, the smallest HPD level whose region holds θ*;
    ``coverage[j]``: the fraction of θ* inside the ``levels[j]`` HPD region."""

    levels: np.ndarray
    coverage: np.ndarray
    alphas: np.ndarray

    def stderr(self) -> np.ndarray:
        """Binomial standard error of each coverage at its nominal level."""
        return np.sqrt(self.levels * (1 - self.levels) / len(self.alphas))


def _test_set(posterior: Any, theta: Any, x: Any) -> tuple[np.ndarray, np.ndarray]:
    theta, x = np.asarray(theta, np.float32), np.asarray(x, np.float32)
    theta = theta[:, None] if theta.ndim == 1 else theta
    x = x.reshape(len(x), -1) if x.ndim != 2 else x
    if theta.ndim != 2 or len(x) != len(theta) or len(theta) < 2:
        raise ValueError(
            f"theta, x: expected (n, dθ) and (n, dx) with n >= 2, got "
            f"{np.shape(theta)}, {np.shape(x)}"
        )
    dim = getattr(posterior, "dim_theta", theta.shape[1])
    if theta.shape[1] != dim:
        raise ValueError(f"theta: expected {dim} columns, got {theta.shape[1]}")
    ok = np.all(np.isfinite(theta), 1) & np.all(np.isfinite(x), 1)
    if not ok.all():
        import warnings

        warnings.warn(
            f"excluded {int((~ok).sum())} of {ok.size} test simulations with NaN/inf", stacklevel=3
        )
    return theta[ok], x[ok]


def _draws(posterior: Any, n: int, x: np.ndarray, seed: int) -> np.ndarray:
    return np.asarray(posterior.sample(int(n), x=x, seed=seed), np.float64)


def sbc(
    posterior: Any, theta: Any, x: Any, num_samples: int = 100, seed: int = 0, bins: int = 20
) -> SBCResult:
    """Simulation-based calibration of ``posterior`` on test pairs θ* ~ prior, x* ~ p(x | θ*)
    (e.g. ``lfi.simulate(simulator, prior, 200, seed=...)``): the rank of θ*_d among
    ``num_samples`` draws at x*, and a chi-square test of uniformity over ``bins`` bins.

    >>> import numpy as np
    >>> class Exact:  # θ ~ N(0, 1), x ~ N(θ, 1): posterior N(x/2, 1/2)
    ...     def sample(self, n, x, seed):
    ...         rng = np.random.default_rng(seed)
    ...         return x / 2 + np.sqrt(0.5) * rng.standard_normal((n, 1))
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.standard_normal((300, 1)); x = theta + rng.standard_normal((300, 1))
    >>> sbc(Exact(), theta, x).passed()
    True
    """
    from scipy.stats import chisquare

    theta, x = _test_set(posterior, theta, x)
    num_samples = int(num_samples)
    if num_samples < 2 or bins < 2:
        raise ValueError(f"num_samples, bins: expected >= 2, got {num_samples}, {bins}")
    ranks = np.stack(
        [
            np.sum(_draws(posterior, num_samples, x[i], seed + i) < theta[i], axis=0)
            for i in range(len(theta))
        ]
    )
    bins = min(int(bins), num_samples + 1)
    which = np.arange(num_samples + 1) * bins // (num_samples + 1)  # rank value -> bin
    expected = np.bincount(which, minlength=bins) * len(theta) / (num_samples + 1)
    pvalues = np.array(
        [
            chisquare(np.bincount(which[ranks[:, d]], minlength=bins), expected).pvalue
            for d in range(ranks.shape[1])
        ]
    )
    return SBCResult(ranks, num_samples, pvalues)


def expected_coverage(
    posterior: Any,
    theta: Any,
    x: Any,
    levels: Any = (0.5, 0.8, 0.95),
    num_samples: int = 200,
    seed: int = 0,
) -> CoverageResult:
    """Expected coverage of the posterior's highest-density regions on test pairs (θ*, x*):
    θ* lies in the α-HPD region when at most a fraction α of ``num_samples`` draws have a higher
    ``log_prob`` (unnormalised is fine). A calibrated posterior covers α of the θ*."""
    theta, x = _test_set(posterior, theta, x)
    levels = np.atleast_1d(np.asarray(levels, np.float64))
    if np.any((levels <= 0) | (levels >= 1)):
        raise ValueError(f"levels: expected values in (0, 1), got {levels.tolist()}")
    alphas = np.empty(len(theta))
    for i in range(len(theta)):
        draws = _draws(posterior, num_samples, x[i], seed + i)
        lp = np.asarray(posterior.log_prob(np.concatenate([theta[i : i + 1], draws]), x=x[i]))
        alphas[i] = np.mean(lp[1:] > lp[0])
    coverage = np.array([np.mean(alphas <= lv) for lv in levels])
    return CoverageResult(levels, coverage, alphas)
