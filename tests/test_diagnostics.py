"""Tests for lfi.diagnostics.c2st."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lfi.diagnostics import c2st

N = 500  # samples per set: 1000 classified points in all


def test_identical_distributions_give_chance_accuracy() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(N, 2))
    samples = rng.normal(size=(N, 2))
    # Each of the 2N points is predicted once, out of fold; under the null the accuracy is
    # a binomial proportion with standard error sqrt(0.25 / 2N) ≈ 0.016. Allow 4 of them.
    se = math.sqrt(0.25 / (2 * N))
    assert abs(c2st(reference, samples) - 0.5) < 4 * se


def test_well_separated_distributions_give_accuracy_one() -> None:
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(N, 2))
    samples = rng.normal(loc=8.0, size=(N, 2))
    assert c2st(reference, samples) > 0.99


def test_deterministic_given_seed_and_accepts_lists() -> None:
    rng = np.random.default_rng(2)
    reference = rng.normal(size=(100, 1))
    samples = rng.normal(loc=0.5, size=(100, 1))
    first = c2st(reference, samples, seed=3)
    assert isinstance(first, float)
    assert c2st(reference.tolist(), samples.tolist(), seed=3) == first


def test_z_score_uses_reference_statistics() -> None:
    # A scale of 1e3 on both sets is removed by z-scoring with the reference's statistics,
    # so the classifier sees the same data up to float32 rounding.
    rng = np.random.default_rng(4)
    reference = rng.normal(size=(150, 1))
    samples = rng.normal(loc=1.0, size=(150, 1))
    base = c2st(reference, samples)
    scaled = c2st(1e3 * reference + 5.0, 1e3 * samples + 5.0)
    assert abs(base - scaled) < 0.05


@pytest.mark.parametrize(
    ("reference", "samples", "match"),
    [
        (np.zeros(10), np.zeros((10, 1)), "`reference` must be a 2-d array"),
        (np.zeros((10, 1)), np.zeros((2, 5, 1)), "`samples` must be a 2-d array"),
        (np.ones((10, 2)), np.ones((10, 3)), "`samples` has 3 columns but `reference` has 2"),
        (np.full((10, 1), np.nan), np.zeros((10, 1)), "`reference` contains non-finite"),
        (np.zeros((10, 1)), [[np.inf]] * 10, "`samples` contains non-finite"),
        (np.zeros((0, 1)), np.zeros((10, 1)), "`reference` must have at least one row"),
        (np.ones((10, 1)), np.zeros((10, 1)), "zero standard deviation in column"),
    ],
)
def test_bad_inputs_raise_naming_the_argument(reference, samples, match) -> None:
    with pytest.raises(ValueError, match=match):
        c2st(reference, samples)


def test_bad_n_folds_and_non_numeric_input() -> None:
    x = np.arange(20.0).reshape(10, 2)
    with pytest.raises(ValueError, match="`n_folds` must be an integer >= 2"):
        c2st(x, x, n_folds=1)
    with pytest.raises(ValueError, match="fewer than `n_folds`"):
        c2st(x[:2], x[:2], n_folds=5)
    with pytest.raises(TypeError, match="`samples` must be a numeric array"):
        c2st(x, [["a", "b"]])
