"""Tests of lfi.samplers: MCMC kernels against a known Gaussian, diagnostics against closed forms,
rejection and importance sampling against exact moments. Tolerances are Monte-Carlo errors:
5 standard errors from the measured ESS (fixed seeds make every run the same)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfi.samplers import ess, importance_sample, mcmc, rejection_sample, rhat

MEAN = np.array([1.0, -1.0, 0.5])
SD = np.array([0.5, 1.0, 2.0])
CORR = np.array([[1.0, 0.8, -0.3], [0.8, 1.0, -0.5], [-0.3, -0.5, 1.0]])  # eigenvalues ≥ 0.17
COV = CORR * np.outer(SD, SD)


def box_gaussian(p, u):
    """N(mean, cov) truncated to the box [low, high] (−inf outside)."""
    z = u - p["mean"]
    inside = jnp.all((u >= p["low"]) & (u <= p["high"]))
    return jnp.where(inside, -0.5 * z @ p["prec"] @ z, -jnp.inf)


def params(low=-np.inf, high=np.inf):
    box = lambda v: jnp.full(3, v, jnp.float32) if np.isscalar(v) else jnp.asarray(v, jnp.float32)
    return {
        "mean": jnp.asarray(MEAN, jnp.float32),
        "prec": jnp.asarray(np.linalg.inv(COV), jnp.float32),
        "low": box(low),
        "high": box(high),
    }


# one setting per kernel, shared by the tests below so that each compiles once
SETTINGS = {"nuts": 1, "hmc": 1, "slice": 1, "rwm": 8}  # thin
CHAINS, DRAWS, WARMUP = 16, 250, 150


def run(kernel, p, init, seed=0):
    return mcmc(box_gaussian, p, init, CHAINS * DRAWS, kernel=kernel, seed=seed,
                num_warmup=WARMUP, thin=SETTINGS[kernel])  # fmt: skip


@pytest.mark.parametrize("kernel", list(SETTINGS))
def test_kernel_matches_gaussian_moments(kernel):
    init = MEAN + 2 * SD * np.random.default_rng(1).normal(size=(CHAINS, 3))  # overdispersed
    result = run(kernel, params(), init)
    x = result.flat
    assert result.samples.shape == (CHAINS, DRAWS, 3) and x.shape == (CHAINS * DRAWS, 3)
    mcse = x.std(0) / np.sqrt(result.ess)
    assert np.all(np.abs(x.mean(0) - MEAN) < 5 * mcse), (x.mean(0), mcse, result.summary())
    # variance: the mean of (x - μ)² has sd √2 σ² per effective draw
    sq = (result.samples - MEAN) ** 2
    mcse_var = np.sqrt(2) * SD**2 / np.sqrt(np.minimum(ess(sq), sq[..., 0].size))
    assert np.all(np.abs(sq.reshape(-1, 3).mean(0) - SD**2) < 5 * mcse_var), result.summary()
    assert np.all(result.rhat < (1.01 if kernel in ("nuts", "hmc") else 1.05)), result.summary()
    assert result.divergences == 0 and 0 < result.acceptance <= 1
    if kernel in ("nuts", "hmc"):
        assert result.check(warn=False) == [], result.summary()


@pytest.mark.parametrize("kernel", list(SETTINGS))
def test_kernel_never_leaves_the_support(kernel):
    low, high = MEAN - [0.2, 0.5, 3.0], MEAN + [0.5, 0.1, 0.5]  # the mode sits near a face
    init = np.random.default_rng(2).uniform(low, high, size=(CHAINS, 3))
    result = run(kernel, params(low, high), init)
    x = result.flat
    assert np.all((x >= low) & (x <= high)), result.summary()
    assert np.all(x.std(0) > 0.05 * (high - low))  # it moved


def test_seed_reproducible_and_different():
    init = MEAN + SD * np.random.default_rng(3).normal(size=(CHAINS, 3))
    a, b, c = (run("nuts", params(), init, seed=s).samples for s in (7, 7, 8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_bad_arguments_name_the_argument():
    init = np.zeros((4, 3))
    with pytest.raises(ValueError, match="kernel.*nuts"):
        mcmc(box_gaussian, params(), init, 100, kernel="metropolis")
    with pytest.raises(ValueError, match="init"):
        mcmc(box_gaussian, params(), np.zeros(3), 100)
    outside = init.copy()
    outside[2] = 10.0  # outside the box: log density −inf
    with pytest.raises(ValueError, match=r"init.*rows \[2\]"):
        mcmc(box_gaussian, params(-1.0, 5.0), outside, 100)


def test_rhat_and_ess_against_closed_forms():
    rng = np.random.default_rng(0)
    iid = rng.normal(size=(4, 2000, 2))
    assert np.all(rhat(iid) < 1.01)
    assert np.all(np.abs(ess(iid) / iid[..., 0].size - 1) < 0.2)
    stuck = iid + np.array([0.0, 0.0, 3.0, 3.0])[:, None, None]  # two chains in another mode
    assert np.all(rhat(stuck) > 1.1)
    # AR(1) with coefficient ρ: ESS = n (1 − ρ) / (1 + ρ)
    rho, chains, n = 0.6, 8, 4000
    x = np.zeros((chains, n))
    noise = rng.normal(size=(chains, n)) * np.sqrt(1 - rho**2)
    x[:, 0] = rng.normal(size=chains)
    for t in range(1, n):
        x[:, t] = rho * x[:, t - 1] + noise[:, t]
    expected = chains * n * (1 - rho) / (1 + rho)
    assert abs(float(ess(x)) / expected - 1) < 0.15
    assert float(rhat(x)) < 1.01


def test_ess_of_short_chains_equals_arviz():
    # lfi's default IMH runs 50 chains; with 20 draws each the lag-0 autocorrelation must be 1
    # exactly (it came out 1 - 1/n and the ESS of iid draws 1.33x ArviZ's)
    az = pytest.importorskip("arviz")
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.normal(size=(50, 20, 1))
        np.testing.assert_allclose(ess(x)[0], az.ess(x[..., 0], method="bulk"), rtol=1e-6)


def gauss_1d(p, u):
    return -0.5 * jnp.sum(((u - p[0]) / p[1]) ** 2)  # unnormalised N(mu, s²)


def wide_proposal(scale):
    return (
        lambda key, m: scale * jax.random.normal(key, (m, 1)),
        lambda u: -0.5 * jnp.sum((u / scale) ** 2, 1) - np.log(scale * np.sqrt(2 * np.pi)),
    )


def test_rejection_sample_exact_moments_and_acceptance():
    mu, s, t = 1.0, 0.5, 2.0
    p = jnp.array([mu, s])
    # exact bound of log p̃ − log q: at the maximiser of −(x−μ)²/2s² + x²/2t²
    x_star = mu * t**2 / (t**2 - s**2)
    log_bound = (
        -0.5 * ((x_star - mu) / s) ** 2 + 0.5 * (x_star / t) ** 2 + np.log(t * np.sqrt(2 * np.pi))
    )
    n = 4000
    draws, rate = rejection_sample(gauss_1d, p, *wide_proposal(t), n, seed=0, log_bound=log_bound)
    assert draws.shape == (n, 1)
    assert abs(draws.mean() - mu) < 5 * s / np.sqrt(n)
    assert abs(draws.var() - s**2) < 5 * np.sqrt(2) * s**2 / np.sqrt(n)
    expected = s * np.sqrt(2 * np.pi) / np.exp(log_bound)  # Z_target / bound
    assert abs(rate - expected) < 5 * np.sqrt(expected / 10_000)  # ≥ 10k proposals made
    # estimated bound (pilot batch)
    draws, _ = rejection_sample(gauss_1d, p, *wide_proposal(t), n, seed=1)
    assert abs(draws.mean() - mu) < 5 * s / np.sqrt(n)


def test_rejection_sample_low_acceptance_suggests_mcmc():
    with pytest.raises(RuntimeError, match="mcmc"):
        rejection_sample(gauss_1d, jnp.array([0.0, 1e-4]), *wide_proposal(1.0), 1000, seed=0,
                         batch_size=1000, max_rounds=5)  # fmt: skip


def test_importance_sample_moments_and_ess():
    mu, s, t, m = 1.0, 0.5, 2.0, 40_000
    n = 4000
    draws, ess_w = importance_sample(gauss_1d, jnp.array([mu, s]), *wide_proposal(t), n,
                                     seed=0, num_proposals=m)  # fmt: skip
    assert draws.shape == (n, 1)
    # E_q[w²] / E_q[w]² = ∫ p²/q for p = N(μ, s²), q = N(0, t²)
    a = 1 / s**2 - 1 / (2 * t**2)
    ratio = t / (s**2 * np.sqrt(2 * np.pi)) * np.sqrt(np.pi / a)
    ratio *= np.exp(mu**2 / s**4 / a - mu**2 / s**2)
    assert abs(ess_w / (m / ratio) - 1) < 0.1
    se = s / np.sqrt(min(n, ess_w))
    assert abs(draws.mean() - mu) < 5 * se
    assert abs(draws.var() - s**2) < 5 * np.sqrt(2) * s**2 / np.sqrt(min(n, ess_w))
    with pytest.warns(UserWarning, match="ESS"):
        importance_sample(gauss_1d, jnp.array([8.0, 0.1]), *wide_proposal(1.0), 100, seed=0)


def test_diagnostics_agree_with_blackjax():
    diagnostics = pytest.importorskip("blackjax.diagnostics")
    if not hasattr(diagnostics, "ess_bulk"):
        pytest.skip("blackjax < 1.7 has no rank-normalised diagnostics")
    x = np.random.default_rng(4).normal(size=(8, 500, 3))
    x[:2] += 0.3  # two chains off: R-hat ≈ 1.01
    np.testing.assert_allclose(rhat(x), np.asarray(diagnostics.rhat(jnp.asarray(x))), rtol=1e-5)
    # same estimator up to Stan's last-pair refinement of the autocorrelation sum
    np.testing.assert_allclose(ess(x), np.asarray(diagnostics.ess_bulk(jnp.asarray(x))), rtol=0.05)


def test_average_ranks_match_scipy_rankdata_with_ties_and_nan():
    from scipy import stats

    from lfi.samplers import _average_ranks

    rng = np.random.default_rng(0)
    for v in (rng.normal(size=500), rng.integers(0, 5, 500).astype(float), np.array([1.0, 1.0])):
        np.testing.assert_array_equal(_average_ranks(v), stats.rankdata(v))
    assert np.isnan(_average_ranks(np.array([np.nan, 1.0, 2.0]))).all()


def test_rhat_threshold_keeps_false_alarms_of_short_chains_near_one_percent():
    """20 chains of 50 draws in 5-d (what a 1000-draw posterior sample gets): for independent
    draws max R-hat exceeds 1.01 in ~19% of runs, the threshold in ~1% (200 runs: ≤ 1% plus 3
    binomial sd). Long chains keep 1.01, and chains that did not mix are still flagged."""
    from lfi.samplers import rhat_threshold

    rng = np.random.default_rng(0)
    limit = rhat_threshold(20, 50, 5)
    maxima = np.array([rhat(rng.standard_normal((20, 50, 5))).max() for _ in range(200)])
    assert np.mean(maxima > 1.01) > 0.1
    assert np.mean(maxima > limit) <= 0.01 + 3 * np.sqrt(0.01 * 0.99 / 200)
    assert rhat_threshold(4, 1000, 2) == 1.01 and rhat_threshold(50, 200, 10) == 1.01
    stuck = rng.standard_normal((20, 50, 5)) + 0.5 * (np.arange(20) % 2)[:, None, None]
    assert rhat(stuck).max() > limit
