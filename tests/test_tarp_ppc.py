"""TARP, the simultaneous SBC ECDF band and posterior predictive checks: they pass the exact
posterior of gaussian_linear and flag an over-confident (shrunk) or shifted one."""

import numpy as np
import pytest
from scipy.stats import norm

import lfi
from lfi.calibration import ecdf_band, sbc, tarp
from lfi.diagnostics import posterior_predictive, predictive_check

TASK = lfi.tasks.get("gaussian_linear")  # θ ~ N(0, 0.1 I), x ~ N(θ, 0.1 I): N(x/2, 0.05 I)
N_TEST = 300


class Gaussian:
    """The exact posterior N(x/2, 0.05 I), its sd scaled by ``shrink``, its mean moved by
    ``shift``; ``batched`` adds ``sample_batched`` (the one-call path of amortised flows)."""

    dim_theta = 10

    def __init__(self, shrink: float = 1.0, shift: float = 0.0):
        self.sd, self.shift = np.sqrt(0.05) * shrink, shift

    def sample(self, n, x, seed):
        rng = np.random.default_rng(seed)
        return np.asarray(x) / 2 + self.shift + self.sd * rng.standard_normal((n, 10))

    def sample_batched(self, n, xs, seed):
        rng = np.random.default_rng(seed)
        xs = np.asarray(xs)
        return xs[:, None] / 2 + self.shift + self.sd * rng.standard_normal((len(xs), n, 10))


@pytest.fixture(scope="module")
def test_set():
    return lfi.simulate(TASK.simulator, TASK.prior, N_TEST, seed=11, progress=False)


def test_tarp_passes_the_exact_posterior_and_flags_shrunk_and_wide_ones(test_set):
    theta, x = test_set
    exact = tarp(Gaussian(), theta, x, num_samples=200)
    assert exact.f.shape == (N_TEST,) and exact.ecp.shape == exact.levels.shape
    # calibrated: ATC ~ N(0, 5/192/N); both tests pass at family-wise 1% with prob. >= 0.99
    assert exact.passed(0.01), (exact.atc, exact.ks_pvalue)
    assert abs(exact.atc) < 3 * exact.atc_stderr
    for shrink in (0.8, 0.5):  # over-confident: the TARP curve falls below the diagonal
        shrunk = tarp(Gaussian(shrink), theta, x, num_samples=200)
        assert not shrunk.passed(0.01) and shrunk.atc < -4 * shrunk.atc_stderr, shrink
    wide = tarp(Gaussian(1.25), theta, x, num_samples=200)  # under-confident: above it
    assert not wide.passed(0.01) and wide.atc > 4 * wide.atc_stderr


def test_tarp_summary_is_the_integral_of_its_curve(test_set):
    theta, x = test_set
    result = tarp(Gaussian(0.7), theta, x, num_samples=100, num_levels=20001)
    upper = result.levels >= 0.5
    area = np.trapezoid((result.ecp - result.levels)[upper], result.levels[upper])
    assert abs(area - result.atc) < 1e-3
    assert result.ks_statistic == pytest.approx(
        np.max(np.abs(result.ecp - result.levels)), abs=1 / N_TEST + 1e-3
    )


def test_tarp_takes_draws_a_per_pair_sequence_and_references(test_set):
    theta, x = test_set
    draws = Gaussian().sample_batched(100, x[:50], seed=4)
    from_draws = tarp(draws, theta[:50], seed=2)
    per_pair = tarp([Gaussian()] * 50, theta[:50], x[:50], num_samples=100, seed=2)
    assert from_draws.f.shape == per_pair.f.shape == (50,)
    # a reference point far away makes the balls half-spaces: still uniform if calibrated
    far = tarp(Gaussian(), theta, x, num_samples=100, references=np.full(10, 50.0))
    assert far.passed(0.01)
    with pytest.raises(ValueError, match="draws of shape"):
        tarp(draws[:, :, :3], theta[:50])
    with pytest.raises(ValueError, match="one per test pair"):
        tarp([Gaussian()] * 3, theta[:50], x[:50])
    with pytest.raises(ValueError, match="x: give"):
        tarp(Gaussian(), theta)


def test_abc_posteriors_one_per_observation_run_through_tarp_and_sbc(test_set):
    theta, x = test_set
    rng = np.random.default_rng(0)
    posts = [
        lfi.ParticlePosterior(
            TASK.prior, xi / 2 + np.sqrt(0.05) * rng.standard_normal((200, 10)), x_o=xi, kde=False
        )
        for xi in x[:20]
    ]
    assert tarp(posts, theta[:20], x[:20], num_samples=50).f.shape == (20,)
    assert sbc(posts, theta[:20], x[:20], num_samples=20).ranks.shape == (20, 10)


def test_ecdf_band_holds_uniform_ranks_and_not_shrunk_ones(test_set):
    theta, x = test_set
    level = 1 - 0.01 / 10  # all 10 dimensions inside with probability >= 0.99
    z, lo, hi = ecdf_band(N_TEST, 100, level)
    j = np.round(z * 101).astype(int)

    def inside(ranks):
        ecdf = np.mean(ranks[:, :, None] < j, 0)  # (dim, points)
        return np.all((ecdf >= lo) & (ecdf <= hi), 1)

    assert inside(sbc(Gaussian(), theta, x).ranks).all()
    assert not inside(sbc(Gaussian(0.8), theta, x).ranks).all()  # flagged (8 of 10 outside)
    assert not inside(sbc(Gaussian(0.5), theta, x).ranks).any()
    # the band's own level: 400 fresh uniform rank sets (sd of the fraction ~0.011 at 0.95)
    z, lo, hi = ecdf_band(N_TEST, 100, 0.95)
    ranks = np.random.default_rng(1).integers(0, 101, (400, N_TEST, 1))
    fraction = np.mean([inside(r)[0] for r in ranks])
    assert abs(fraction - 0.95) < 0.045, fraction


def test_predictive_check_quantiles_match_the_exact_predictive():
    theta_o, x_o = TASK.true_parameters(1), TASK.observation(1)
    result = posterior_predictive(Gaussian(), TASK.simulator, x_o, num_samples=4000, seed=0)
    # exact predictive N(x_o/2, 0.15 I): q_k = Φ(x_o,k / 2 / sqrt(0.15)) ± 4 binomial sd
    expected = norm.cdf(np.asarray(x_o).ravel() / 2 / np.sqrt(0.15))
    assert np.all(np.abs(result.quantiles - expected) <= 4 * 0.5 / np.sqrt(4000))
    assert result.passed(0.01) and result.x_pred.shape == (4000, 10)
    shifted = posterior_predictive(Gaussian(shift=1.5), TASK.simulator, x_o, num_samples=4000)
    assert not shifted.passed(0.01) and np.all(shifted.quantiles < 0.01)
    assert np.asarray(theta_o).size == 10


def test_predictive_check_ties_invalid_runs_and_errors():
    x_pred = np.array([[0.0], [1.0], [1.0], [2.0], [np.nan]])
    result = predictive_check(x_pred, [1.0])
    assert result.quantiles.tolist() == [0.5] and result.num_invalid == 1
    assert result.pvalues.tolist() == [1.0]  # 2 · min(4, 4) / 5, capped
    # beyond every one of n draws: the smallest p-value n draws can show, 2 / (n + 1), not 0
    far = predictive_check(x_pred, [5.0])
    assert far.quantiles.tolist() == [1.0] and np.allclose(far.pvalues, 2 / 5)
    with pytest.raises(ValueError, match="x_o: expected 1"):
        predictive_check(x_pred, [1.0, 2.0])
    with pytest.raises(ValueError, match="x_o: give"):
        posterior_predictive(Gaussian(), TASK.simulator)


def test_predictive_check_distance_pvalue_is_uniform_in_many_dimensions():
    # x_o from the draws' own law, dx = 100 against n = 200 draws: the p-value must be uniform
    # (fitted on the draws alone, the distance test rejected 99.5% of these at 1%)
    rng = np.random.default_rng(0)
    p = [
        predictive_check(rng.standard_normal((200, 100)), rng.standard_normal(100)).distance_pvalue
        for _ in range(200)
    ]
    # P(p <= 0.05) = 0.05 exactly; 4 binomial sd over 200 repetitions: 0.062
    assert abs(np.mean(np.asarray(p) <= 0.05) - 0.05) <= 0.062, np.mean(np.asarray(p) <= 0.05)


def test_tarp_checks_theta_and_references(test_set):
    theta, x = (np.asarray(a, np.float64) for a in test_set)
    exact = Gaussian().sample_batched(100, x, seed=0)
    with pytest.raises(ValueError, match="theta: expected"):
        tarp(exact, theta.T)
    with pytest.raises(ValueError, match="references: expected finite"):
        tarp(exact, theta, references=np.full(theta.shape[1], np.nan))
    with pytest.raises(ValueError, match="references: expected"):
        tarp(exact, theta, references=np.zeros((3, theta.shape[1])))
    # a pair left out (NaN in θ*) leaves out its own reference point too: the others stay aligned
    refs = np.random.default_rng(2).uniform(-1, 1, theta.shape)
    theta_nan = theta.copy()
    theta_nan[0] = np.nan
    with pytest.warns(UserWarning, match="left out 1"):
        dropped = tarp(exact, theta_nan, references=refs, seed=3)
    kept = tarp(exact[1:], theta[1:], references=refs[1:], seed=3)
    assert np.allclose(dropped.f, kept.f)
