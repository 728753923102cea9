"""SBC and expected coverage pass the exact posterior of gaussian_linear and flag an
over-confident one (issue 6's first acceptance item)."""

import numpy as np
import pytest

import lfi
from lfi.diagnostics import expected_coverage, sbc

TASK = lfi.tasks.get("gaussian_linear")  # θ ~ N(0, 0.1 I), x ~ N(θ, 0.1 I): N(x/2, 0.05 I)
N_TEST = 300


class Gaussian:
    """The exact posterior N(x/2, 0.05 I), or with its sd scaled by ``shrink``."""

    dim_theta = 10

    def __init__(self, shrink: float = 1.0):
        self.sd = np.sqrt(0.05) * shrink

    def sample(self, n, x, seed):
        rng = np.random.default_rng(seed)
        return np.asarray(x) / 2 + self.sd * rng.standard_normal((n, 10))

    def log_prob(self, theta, x):
        return -0.5 * np.sum(((np.asarray(theta) - np.asarray(x) / 2) / self.sd) ** 2, -1)


@pytest.fixture(scope="module")
def test_set():
    return lfi.simulate(TASK.simulator, TASK.prior, N_TEST, seed=11, progress=False)


def test_sbc_passes_the_exact_posterior_and_flags_a_shrunk_one(test_set):
    theta, x = test_set
    exact = sbc(Gaussian(), theta, x, num_samples=100)
    assert exact.ranks.shape == (N_TEST, 10) and exact.ranks.max() <= 100
    # under uniformity each p-value is U(0, 1): all 10 above 0.01/10 with probability 0.99
    assert exact.passed(0.01), exact.pvalues
    shrunk = sbc(Gaussian(0.5), theta, x, num_samples=100)
    assert not shrunk.passed(0.01) and shrunk.pvalues.max() < 1e-6


def test_coverage_is_nominal_for_the_exact_posterior_and_low_when_shrunk(test_set):
    theta, x = test_set
    exact = expected_coverage(Gaussian(), theta, x, num_samples=200)
    # binomial sd over 300 tests, plus 1/200 from the finite number of draws per test
    tol = 4 * exact.stderr() + 1 / 200
    assert np.all(np.abs(exact.coverage - exact.levels) <= tol), exact.coverage
    shrunk = expected_coverage(Gaussian(0.8), theta, x, num_samples=200)
    assert np.all(shrunk.coverage < shrunk.levels - tol), shrunk.coverage


def test_bad_inputs_are_named(test_set):
    theta, x = test_set
    with pytest.raises(ValueError, match="levels"):
        expected_coverage(Gaussian(), theta, x, levels=[0.5, 1.0])
    with pytest.raises(ValueError, match="theta, x"):
        sbc(Gaussian(), theta, x[:10])
    with pytest.raises(ValueError, match="theta: expected 10 columns"):
        sbc(Gaussian(), theta[:, :3], x)


class _NaNDraws(Gaussian):
    """NaN draws would compare as False (every rank 0); a NaN density at θ* would count as
    covered at every level: both must be errors, not biased results."""

    def sample(self, n, x, seed):
        draws = super().sample(n, x, seed)
        draws[0, 0] = np.nan
        return draws


class _NaNDensity(Gaussian):
    def log_prob(self, theta, x):
        lp = super().log_prob(theta, x)
        lp[0] = np.nan  # at θ*
        return lp


def test_nonfinite_draws_or_densities_are_errors(test_set):
    theta, x = test_set
    with pytest.raises(ValueError, match="draws .* contain NaN"):
        sbc(_NaNDraws(), theta[:5], x[:5], num_samples=20)
    with pytest.raises(ValueError, match="draws .* contain NaN"):
        expected_coverage(_NaNDraws(), theta[:5], x[:5], num_samples=20)
    with pytest.raises(ValueError, match="log_prob is NaN"):
        expected_coverage(_NaNDensity(), theta[:5], x[:5], num_samples=20)
    draws = np.random.default_rng(0).standard_normal((6, 50, 2))
    draws[1, 3, 0] = np.nan
    with pytest.warns(UserWarning, match="left out 1 of 6"):
        lfi.diagnostics.tarp(draws, np.zeros((6, 2)))


def test_calibration_plots_are_written(test_set, tmp_path):
    from lfi.plot import coverage_curve, sbc_ranks

    theta, x = test_set
    for shrink in (1.0, 0.5):
        cov = expected_coverage(Gaussian(shrink), theta[:100], x[:100], num_samples=50)
        ranks = sbc(Gaussian(shrink), theta[:100], x[:100], num_samples=50)
        a, b = tmp_path / f"cov{shrink}.png", tmp_path / f"sbc{shrink}.png"
        coverage_curve(cov, path=a)
        fig = sbc_ranks(ranks, path=b)
        assert a.stat().st_size > 5000 and b.stat().st_size > 5000
        assert len(fig.axes) == 10


class _Flat:
    """θ ~ U(0, 1), x = 1[θ > 1/2]: the exact posterior is uniform on the half x points to, a
    flat density (every draw ties with θ*) that a rank without tie-breaking calls covered."""

    dim_theta = 1

    def sample(self, n, x, seed):
        return 0.5 * (np.asarray(x).ravel()[0] + np.random.default_rng(seed).uniform(size=(n, 1)))

    def log_prob(self, theta, x):
        return np.zeros(len(theta))


def test_ties_are_broken_at_random_in_coverage_and_sbc():
    rng = np.random.default_rng(5)
    theta = rng.uniform(size=(400, 1))
    x = (theta > 0.5).astype(float)
    flat = expected_coverage(_Flat(), theta, x, levels=(0.1, 0.5, 0.9), num_samples=50)
    # exact posterior: coverage = levels within 4 binomial sd over 400 tests (was 1.0 at all)
    assert np.all(np.abs(flat.coverage - flat.levels) <= 4 * flat.stderr()), flat.coverage

    class Discrete:  # θ uniform on {0, 1, 2}, x uninformative: the posterior is the prior
        dim_theta = 1

        def sample(self, n, x, seed):
            return np.random.default_rng(seed).integers(0, 3, (n, 1)).astype(float)

    theta_d = rng.integers(0, 3, (400, 1)).astype(float)
    ranks = sbc(Discrete(), theta_d, np.zeros((400, 1)), num_samples=20, bins=5)
    assert ranks.passed(0.01), ranks.pvalues  # without tie-breaking: p ~ 1e-110
