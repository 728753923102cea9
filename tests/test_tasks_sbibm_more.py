"""Tests of the sbibm tasks slcp_distractors, bernoulli_glm(_raw), sir and lotka_volterra.

Checks: the stored data against itself and against sbibm's construction (the bernoulli summaries
are Vᵀy of the raw spikes; slcp_distractors' informative entries are slcp's observations);
simulations at the true parameters against the stored observations (rank of the observation's
log-likelihood among simulated ones); likelihoods against independent float64 math (scipy ODE
solves, scipy densities); the simulators against their likelihoods; the reference posteriors
against independent samplers (importance sampling, quadrature) and against the true parameters
over all 10 observations (θ* ~ prior and x ~ p(x | θ*), so θ* is a draw from p(θ | x): the
fraction of reference samples with a higher posterior density than θ* is uniform).

Tolerances: 5 Monte-Carlo standard errors; SMC samples counted as n/2 effective samples (as in
test_tasks.py); p-values below 1e-3 fail.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.integrate import solve_ivp
from scipy.linalg import solve_triangular

import lfi.tasks as tasks
from lfi.tasks import sbibm_distractors, sbibm_glm, sbibm_ode

NEW = ["slcp_distractors", "bernoulli_glm", "bernoulli_glm_raw", "sir", "lotka_volterra"]
DIMS = {
    "slcp_distractors": (5, 100),
    "bernoulli_glm": (10, 10),
    "bernoulli_glm_raw": (10, 100),
    "sir": (2, 10),
    "lotka_volterra": (4, 20),
}
Z, P_MIN = 5.0, 1e-3
M = 10_000  # one batch size for simulate / log_likelihood: each new shape costs a compile
N_ODE = 250  # reference samples per ODE check (SMC compiles per n)


@pytest.mark.parametrize("name", NEW)
def test_shapes_and_simulations_at_truth_match_the_observations(name):
    """Rank of log p(x_o | θ*) among log p(x | θ*), x simulated: uniform if the data match."""
    task = tasks.get(name)
    assert name in tasks.names() and (task.dim_theta, task.dim_x) == DIMS[name]
    theta = np.stack([task.true_parameters(k) for k in range(1, 11)])
    obs = np.stack([task.observation(k) for k in range(1, 11)])
    assert bool(np.all(task.prior.in_support(theta)))
    assert np.all(np.isfinite(task.log_likelihood(theta, obs)))
    pvals = []
    for k in range(1, 11):
        sims = task.simulate(np.tile(theta[k - 1], (M, 1)), seed=k)
        assert sims.shape == (M, task.dim_x) and np.all(np.isfinite(sims))
        ll_sim = np.asarray(task.log_likelihood(theta[k - 1], sims))
        ll_obs = float(task.log_likelihood(theta[k - 1], obs[k - 1]))
        pvals.append((1 + np.sum(ll_sim <= ll_obs)) / (1 + M))
    np.testing.assert_array_equal(sims, task.simulate(np.tile(theta[9], (M, 1)), seed=10))
    assert not np.allclose(sims, task.simulate(np.tile(theta[9], (M, 1)), seed=11))
    pvals = np.array(pvals)
    assert pvals.min() > P_MIN / 10, pvals  # Bonferroni over the 10 observations
    assert stats.combine_pvalues(pvals).pvalue > P_MIN, pvals  # Fisher: no systematic shift


# --- slcp_distractors --------------------------------------------------------------------------


def test_distractors_data_match_slcp_bit_for_bit():
    task, slcp = tasks.get("slcp_distractors"), tasks.get("slcp")
    idx = task.extras["informative"]
    assert sorted(np.concatenate([idx, task.extras["distractors"]])) == list(range(100))
    for k in range(1, 11):
        np.testing.assert_array_equal(task.observation(k)[idx], slcp.observation(k))
        np.testing.assert_array_equal(task.true_parameters(k), slcp.true_parameters(k))


def test_distractor_density_against_scipy_and_observed_distractors_are_typical():
    task = tasks.get("slcp_distractors")
    loc, tril, _ = sbibm_distractors.distractor_mixture()
    x = task.observation(3).astype(np.float64)[task.extras["distractors"]]
    want = np.logaddexp.reduce(_t_logpdfs(x[None], loc, tril)[:, 0]) - math.log(20)
    got = float(task.extras["distractor_log_prob"](jnp.asarray(x, jnp.float32)))
    assert abs(got - want) < 1e-3 * abs(want)
    # likelihood = slcp's on the informative entries + this density (constant in θ)
    theta = task.true_parameters(3) + 0.01 * np.arange(4)[:, None]  # moderate likelihoods: float32
    x_full = task.observation(3)
    diff = task.log_likelihood(theta, x_full) - tasks.get("slcp").log_likelihood(
        theta, x_full[task.extras["informative"]]
    )
    np.testing.assert_allclose(diff, got, rtol=1e-5)
    # the stored distractors are typical draws of the regenerated mixture
    sims = np.asarray(task.simulate(np.zeros((M, 5)), seed=0))[:, task.extras["distractors"]]
    lp = np.asarray(jax.vmap(task.extras["distractor_log_prob"])(jnp.asarray(sims)))
    for k in range(1, 11):
        obs = task.observation(k)[task.extras["distractors"]]
        lp_obs = float(task.extras["distractor_log_prob"](jnp.asarray(obs)))
        assert (1 + np.sum(lp <= lp_obs)) / (1 + len(lp)) > P_MIN, k


def _t_logpdfs(x, loc, tril):
    """(20, m) float64 log densities of x (m, 92) under each Student-t(ν = 2) component, from
    the textbook formula (scipy's multivariate_t rejects some of these ill-conditioned scales)."""
    p, nu = 92, 2.0
    out = []
    for c in range(len(loc)):
        # forward substitution, as torch's MultivariateStudentT (sbibm) does: these factors have
        # condition numbers up to 1e18, and a general LU solve gives whatever the BLAS gives
        q = np.sum(solve_triangular(tril[c], (x - loc[c]).T, lower=True) ** 2, 0)
        logdet = np.log(np.abs(np.diag(tril[c]))).sum()
        const = math.lgamma((nu + p) / 2) - math.lgamma(nu / 2) - p / 2 * math.log(nu * math.pi)
        out.append(const - logdet - (nu + p) / 2 * np.log1p(q / nu))
    return np.array(out)


def test_distractor_sampler_has_the_mixtures_marginals():
    """Each distractor's marginal is a mixture of 1-d Student-t(2)s with scales √(LLᵀ)ᵢᵢ: its CDF
    at the simulated values (the PIT) is uniform, mean 1/2 and mean square 1/3."""
    task = tasks.get("slcp_distractors")
    loc, tril, _ = sbibm_distractors.distractor_mixture()
    sims = np.asarray(task.simulate(np.zeros((M, 5)), seed=5), np.float64)
    sims = sims[:, task.extras["distractors"]]
    scale = np.sqrt(np.sum(tril**2, -1))  # (20, 92)
    pit = np.mean(stats.t(2).cdf((sims[None] - loc[:, None]) / scale[:, None]), 0)  # (M, 92)
    assert np.max(np.abs(pit.mean(0) - 1 / 2)) < Z * math.sqrt(1 / 12 / M)
    assert np.max(np.abs((pit**2).mean(0) - 1 / 3)) < Z * math.sqrt(4 / 45 / M)


def test_distractors_reference_is_slcps_on_the_informative_entries():
    task, slcp = tasks.get("slcp_distractors"), tasks.get("slcp")
    np.testing.assert_array_equal(
        task.reference_posterior(2, n=500, seed=3), slcp.reference_posterior(2, n=500, seed=3)
    )


# --- bernoulli_glm ---------------------------------------------------------------------------


def test_glm_summaries_are_the_design_matrix_times_the_spikes():
    summ, raw = tasks.get("bernoulli_glm"), tasks.get("bernoulli_glm_raw")
    v = sbibm_glm.design_matrix().astype(np.float64)
    assert v.shape == (100, 10) and np.all(v[:, 0] == 1) and np.all(np.triu(v[:, 1:], 1) == 0)
    for k in range(1, 11):
        y = raw.observation(k).astype(np.float64)
        assert set(np.unique(y)) <= {0.0, 1.0}
        np.testing.assert_allclose(v.T @ y, summ.observation(k), atol=2e-5)
        np.testing.assert_array_equal(raw.true_parameters(k), summ.true_parameters(k))
    # the log-likelihood is the Bernoulli one, and the summary's equals the raw's
    theta = np.asarray(summ.prior.sample(5, seed=1), np.float64)
    y = raw.observation(4).astype(np.float64)
    p = 1 / (1 + np.exp(-(theta @ v.T)))
    want = np.sum(y * np.log(p) + (1 - y) * np.log1p(-p), -1)
    np.testing.assert_allclose(raw.log_likelihood(theta, y), want, rtol=1e-5)
    np.testing.assert_allclose(summ.log_likelihood(theta, summ.observation(4)), want, rtol=1e-4)
    # prior: sbibm's precision matrix
    b = sbibm_glm.prior_precision()
    np.testing.assert_allclose(np.linalg.inv(summ.prior.covariance_matrix), b, atol=1e-3)


def test_glm_simulator_spike_rates():
    raw = tasks.get("bernoulli_glm_raw")
    theta, m = raw.true_parameters(2), M
    y = np.asarray(raw.simulate(np.tile(theta, (m, 1)), seed=0), np.float64)
    p = 1 / (1 + np.exp(-(sbibm_glm.design_matrix() @ theta)))
    se = np.sqrt(p * (1 - p) / m) + 1e-12
    assert np.max(np.abs(y.mean(0) - p) / se) < Z
    np.testing.assert_allclose(
        tasks.get("bernoulli_glm").simulate(theta[None], seed=3)[0],
        sbibm_glm.design_matrix().T @ np.asarray(raw.simulate(theta[None], seed=3)[0]),
        atol=1e-4,
    )


def test_glm_reference_against_importance_sampling():
    """NUTS moments vs self-normalised IS from a Student-t at the Laplace approximation."""
    task = tasks.get("bernoulli_glm")
    n = 2000
    s = task.reference_posterior(1, n=n, seed=0).astype(np.float64)
    ess_nuts = min(n, float(sbibm_glm.nuts_reference.last.ess.min()))
    assert sbibm_glm.nuts_reference.last.rhat.max() < 1.01
    v, b, x = sbibm_glm.design_matrix().astype(np.float64), sbibm_glm.prior_precision(), None
    x = task.observation(1).astype(np.float64)
    theta = np.zeros(10)
    for _ in range(50):  # Newton's method for the MAP
        p = 1 / (1 + np.exp(-v @ theta))
        hess = v.T @ (v * (p * (1 - p))[:, None]) + b
        theta = theta + np.linalg.solve(hess, x - v.T @ p - b @ theta)
    cov = np.linalg.inv(hess)
    prop = stats.multivariate_t(theta, cov, df=5)
    draws = prop.rvs(M, random_state=np.random.default_rng(0))
    logp = draws @ x - np.logaddexp(0, draws @ v.T).sum(1) - 0.5 * np.sum((draws @ b) * draws, 1)
    logw = logp - prop.logpdf(draws)
    w = np.exp(logw - logw.max())
    w /= w.sum()
    mean_is = w @ draws
    var_is = w @ (draws - mean_is) ** 2
    se_is = np.sqrt(np.sum(w[:, None] ** 2 * (draws - mean_is) ** 2, 0))
    assert 1 / np.sum(w**2) > M / 2  # the proposal fits: IS is precise
    se = np.sqrt(s.var(0) / ess_nuts + se_is**2)
    assert np.max(np.abs(s.mean(0) - mean_is) / se) < Z
    se_var = var_is * math.sqrt(2 / ess_nuts)  # Gaussian approximation of the variance's SE
    assert np.max(np.abs(s.var(0) - var_is) / se_var) < Z
    # the raw task has the same posterior: same sampler on Vᵀy gives the same draws
    np.testing.assert_allclose(
        tasks.get("bernoulli_glm_raw").reference_posterior(1, n=n, seed=0), s, atol=1e-4
    )


# --- ODE tasks -------------------------------------------------------------------------------


def _sir_scipy(theta):
    b, g = np.asarray(theta, np.float64)
    n = 1e6

    def f(t, u):
        return [-b * u[0] * u[1] / n, b * u[0] * u[1] / n - g * u[1], g * u[1]]

    sol = solve_ivp(f, (0, 160), [n - 1, 1, 0], "DOP853", sbibm_ode.SIR_TIMES, rtol=1e-10)
    return sol.y[1] / n


def _lv_scipy(theta):
    a, b, c, d = np.asarray(theta, np.float64)

    def f(t, u):
        return [a * u[0] - b * u[0] * u[1], -c * u[1] + d * u[0] * u[1]]

    sol = solve_ivp(f, (0, 19), [30, 1], "DOP853", sbibm_ode.LV_TIMES, rtol=1e-10, atol=1e-12)
    return sol.y.reshape(-1)


def test_ode_solutions_and_likelihoods_against_scipy():
    sir, lv = tasks.get("sir"), tasks.get("lotka_volterra")
    for task, path, ref in [
        (sir, sbibm_ode.sir_infected, _sir_scipy),
        (lv, sbibm_ode.lotka_volterra_path, _lv_scipy),
    ]:
        thetas = np.concatenate([task.prior.sample(10, seed=2), [task.true_parameters(4)]])
        got = np.asarray(jax.vmap(path)(jnp.asarray(thetas)), np.float64)
        for theta, g in zip(thetas, got):
            want = ref(theta)
            keep = want > 1e-8  # relative accuracy (log coordinates) above 1e-8 of N
            assert np.max(np.abs(np.log(g[keep] / want[keep]))) < 1e-3
    theta = sir.true_parameters(5)
    x = sir.observation(5)
    want = stats.binom.logpmf(x, 1000, np.clip(_sir_scipy(theta), 0, 1)).sum()
    assert abs(float(sir.log_likelihood(theta, x)) - want) < 1e-3 * abs(want) + 1e-2
    theta, x = lv.true_parameters(5), lv.observation(5).astype(np.float64)
    loc = np.log(np.clip(_lv_scipy(theta), 1e-10, 1e4))
    want = stats.lognorm(0.1, scale=np.exp(loc)).logpdf(x).sum()
    assert abs(float(lv.log_likelihood(theta, x)) - want) < 1e-3 * abs(want) + 1e-2


def test_ode_simulators_match_their_noise_models():
    m = M
    sir = tasks.get("sir")
    theta = sir.true_parameters(2)
    x = np.asarray(sir.simulate(np.tile(theta, (m, 1)), seed=0), np.float64)
    p = np.asarray(sbibm_ode.sir_infected(jnp.asarray(theta)), np.float64)
    se = np.sqrt(1000 * p * (1 - p) / m) + 1e-9
    assert np.max(np.abs(x.mean(0) - 1000 * p) / se) < Z
    lv = tasks.get("lotka_volterra")
    theta = lv.true_parameters(2)
    z = (np.log(lv.simulate(np.tile(theta, (m, 1)), seed=0)) - np.log(_lv_scipy(theta))) / 0.1
    assert np.max(np.abs(z.mean(0))) < Z / math.sqrt(m) and np.max(np.abs(z.std(0) - 1)) < 0.1
    assert not np.any(np.isnan(lv.simulate(lv.prior.sample(M, seed=0), seed=0)))


def _posterior_rank(task, k, n):
    """Fraction of reference samples with a higher log posterior density than θ*."""
    s = task.reference_posterior(k, n=n, seed=0)
    t = np.concatenate([s, task.true_parameters(k)[None]])  # one shape: one compile
    lp = np.asarray(task.log_likelihood(t, task.observation(k)) + task.prior.log_prob(t))
    return float(np.mean(lp[:-1] > lp[-1]))


@pytest.mark.parametrize("name", ["sir", "lotka_volterra"])
def test_ode_references_cover_the_true_parameters(name):
    task = tasks.get(name)
    ranks = np.array([_posterior_rank(task, k, N_ODE) for k in range(1, 11)])
    assert ranks.max() < 1 - P_MIN, ranks  # θ* is never outside every sample's HPD region
    assert stats.kstest(ranks, "uniform").pvalue > P_MIN, ranks


def test_sir_reference_against_quadrature():
    task = tasks.get("sir")
    n = N_ODE
    s = np.log(task.reference_posterior(1, n=n, seed=0).astype(np.float64))
    lo, hi = s.min(0) - 4 * s.std(0), s.max(0) + 4 * s.std(0)
    m = 100  # m² = M grid points
    axes = [np.linspace(lo[i], hi[i], m) for i in range(2)]
    u = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
    th = np.exp(u)
    logp = np.asarray(task.log_likelihood(th, task.observation(1)) + task.prior.log_prob(th))
    logp = logp + u.sum(1)  # density of log θ
    w = np.exp(logp - logp.max())
    w /= w.sum()
    mean = w @ u
    sd = np.sqrt(w @ (u - mean) ** 2)
    assert np.max(np.abs(s.mean(0) - mean) / (sd / math.sqrt(n / 2))) < Z
    assert np.max(np.abs(s.std(0) / sd - 1)) < Z * math.sqrt(1 / n)  # SE of sd ≈ sd / √(2 n_eff)


def test_lotka_volterra_reference_against_importance_sampling():
    task = tasks.get("lotka_volterra")
    n = N_ODE
    s = np.log(task.reference_posterior(1, n=n, seed=0).astype(np.float64))
    prop = stats.multivariate_t(s.mean(0), 2 * np.cov(s.T), df=5)
    u = prop.rvs(M, random_state=np.random.default_rng(1))
    th = np.exp(u)
    logp = np.asarray(task.log_likelihood(th, task.observation(1)) + task.prior.log_prob(th))
    logw = logp + u.sum(1) - prop.logpdf(u)
    w = np.exp(logw - logw.max())
    w /= w.sum()
    assert 1 / np.sum(w**2) > M / 10
    mean = w @ u
    sd = np.sqrt(w @ (u - mean) ** 2)
    se_is = np.sqrt(np.sum(w[:, None] ** 2 * (u - mean) ** 2, 0))
    se = np.sqrt(sd**2 / (n / 2) + se_is**2)
    assert np.max(np.abs(s.mean(0) - mean) / se) < Z
    assert np.max(np.abs(s.std(0) / sd - 1)) < Z * math.sqrt(1 / n)
