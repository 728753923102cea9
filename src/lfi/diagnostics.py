"""Diagnostics for comparing posterior samples.

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

from typing import Any

import numpy as np

__all__ = ["c2st"]


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
