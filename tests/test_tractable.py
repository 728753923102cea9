"""MCMC on a known likelihood (LikelihoodPosterior) against analytic posteriors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lfi


def test_nuts_on_gaussian_linear_matches_the_analytic_posterior():
    task = lfi.tasks.get("gaussian_linear")
    loglik = lambda theta, x: task.log_likelihood(theta[None], x[None])[0]  # noqa: E731
    post = lfi.LikelihoodPosterior(task.prior, loglik, dim_x=task.dim_x)
    x_o = task.observation(1)
    draws = np.asarray(post.sample(10_000, x=x_o, seed=0))
    d = post.diagnostics
    assert d.kernel == "nuts" and np.max(d.rhat) < 1.01 and d.divergences == 0
    ref = np.asarray(task.reference_posterior(1, 100_000, seed=0))
    sd = ref.std(0)
    # mean error of each coordinate: 5 Monte Carlo standard errors from the bulk ESS
    assert np.all(np.abs(draws.mean(0) - ref.mean(0)) < 5 * sd / np.sqrt(d.ess))
    assert np.all(np.abs(draws.std(0) / sd - 1) < 5 / np.sqrt(2 * np.min(d.ess)))


def test_iid_trials_add_and_bad_use_is_clear():
    prior = lfi.Normal(0.0, 1.0)
    loglik = lambda theta, x: -0.5 * jnp.sum((x - theta) ** 2) / 0.25  # noqa: E731
    post = lfi.LikelihoodPosterior(prior, loglik, dim_x=1)
    trials = np.array([[1.0], [0.5], [1.5], [1.0]])  # 4 trials: precision 1 + 16
    draws = np.asarray(post.sample(8000, x=trials, seed=1, num_chains=8))
    mean, sd = 16 * 1.0 / 17, 1 / np.sqrt(17)
    ess = float(np.min(post.diagnostics.ess))
    assert abs(draws.mean() - mean) < 5 * sd / np.sqrt(ess)
    lp = post.log_prob(np.array([[0.0], [1.0]]), x=trials)
    expected = -0.5 * np.array([0.0, 1.0]) - 0.5 * np.array([4.5, 0.5]) / 0.25
    np.testing.assert_allclose(lp[1] - lp[0], expected[1] - expected[0], rtol=1e-5)
    with pytest.raises(TypeError, match="cannot be saved"):
        post.save("x.lfi")
    with pytest.raises(ValueError, match="log_likelihood"):
        lfi.LikelihoodPosterior(prior, lambda t, x: jnp.zeros(3), dim_x=1)
    with pytest.raises(TypeError, match="log_likelihood"):
        lfi.LikelihoodPosterior(prior, 3.0, dim_x=1)


def test_chain_starts_are_distinct_even_for_a_narrow_posterior():
    """A posterior of width 1e-3 on U(0, 1)²: the importance weights of 400 prior draws have an
    effective size of ~1, and resampling with replacement put all 20 chains at one point."""
    prior = lfi.BoxUniform([0.0, 0.0], [1.0, 1.0])
    post = lfi.LikelihoodPosterior(prior, lambda t, x: -0.5 * jnp.sum((t - x) ** 2) / 1e-6, dim_x=2)
    starts = np.asarray(post.initial_points(post._params(jnp.array([0.3, 0.6])), 20,
                                            jax.random.key(0)))  # fmt: skip
    assert len(np.unique(starts, axis=0)) == 20


def test_map_is_the_mode_in_theta_space():
    """θ ~ U(0, 1), four Bernoulli(θ) trials 1, 0, 1, 1: the posterior Beta(4, 2) has its mode
    at 3/4. The density of u = logit θ peaks elsewhere (a / (a + b) = 2/3): map must climb
    θ's density, not u's."""
    prior = lfi.BoxUniform([0.0], [1.0])

    def loglik(theta, x):
        return jnp.sum(x * jnp.log(theta) + (1 - x) * jnp.log1p(-theta))

    post = lfi.LikelihoodPosterior(prior, loglik, dim_x=1)
    mode = float(np.asarray(post.map(x=np.array([[1.0], [0.0], [1.0], [1.0]]))).ravel()[0])
    assert abs(mode - 0.75) < 0.01, mode
