"""The fitted proposal and independence Metropolis–Hastings (lfi.proposals)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import lfi
from lfi.posteriors.tractable import LikelihoodPosterior
from lfi.proposals import (
    PriorProposal,
    ProposalFit,
    StudentTMixture,
    fit_proposal,
    independence_mh,
    repeat_fraction,
)


def test_t_mixture_log_prob_matches_scipy_and_samples_match_it():
    chols = jnp.array([[[1.0, 0.0], [0.5, 0.8]], [[0.3, 0.0], [0.0, 2.0]]])
    q = StudentTMixture(jnp.log(jnp.array([0.3, 0.7])), jnp.array([[0.0, 1.0], [3.0, -1.0]]),
                        chols, df=5.0)  # fmt: skip
    u = np.random.default_rng(0).normal(size=(7, 2)) * 2
    expected = np.log(
        sum(w * stats.multivariate_t(m, c @ c.T, df=5).pdf(u)
            for w, m, c in zip([0.3, 0.7], np.asarray(q.means), np.asarray(chols)))
    )  # fmt: skip
    got = np.asarray(jax.vmap(q.log_prob)(jnp.asarray(u)))
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    np.testing.assert_allclose(q.log_probs(u), expected, rtol=1e-6)  # numpy, float64
    far = np.array([[1e3, -1e3], [0.0, 40.0]])  # far tails: no overflow in the log-sum-exp
    np.testing.assert_allclose(q.log_probs(far), np.asarray(jax.vmap(q.log_prob)(far)), rtol=1e-4)
    draws = np.asarray(q.sample(jax.random.key(0), 40_000))
    # mixture mean: Σ w_k μ_k; standard error of a mean of 40 000 draws with sd < 4: < 0.02
    np.testing.assert_allclose(draws.mean(0), [0.3 * 0 + 0.7 * 3, 0.3 * 1 - 0.7], atol=0.08)


def _bimodal(params, u):  # 0.25 N(+m, I) + 0.75 N(-m, I)
    a = -0.5 * jnp.sum((u - params) ** 2) + jnp.log(0.25)
    b = -0.5 * jnp.sum((u + params) ** 2) + jnp.log(0.75)
    return jnp.logaddexp(a, b) - jnp.log(2 * jnp.pi)


def test_imh_mixes_between_separated_modes_with_the_right_weights():
    m = jnp.array([5.0, 5.0, 5.0])
    base = StudentTMixture.wide(jnp.zeros(3), 25.0 * jnp.eye(3))
    q, fit = fit_proposal(_bimodal, m, base, seed=0)
    assert fit.betas[-1] == 1.0 and fit.ess_fractions[-1] > 0.3
    result = independence_mh(_bimodal, m, q, fit.starts(40), 8000, seed=1, thin=2)
    assert result.samples.shape == (40, 200, 3)
    assert np.max(result.rhat) < 1.01 and np.min(result.ess) > 1000
    # weight of the + mode: 0.25, binomial sd with ESS >= 1000 is <= 0.014: 4 sd
    frac = np.mean(result.flat[:, 0] > 0)
    assert abs(frac - 0.25) < 0.055
    # within the mode: unit variance
    plus = result.flat[result.flat[:, 0] > 0]
    np.testing.assert_allclose(plus.std(0), 1.0, atol=0.1)


def test_repeat_fraction_counts_draws_equal_to_the_previous_kept_draw():
    x = np.zeros((2, 5, 3))
    x[0] = np.arange(15).reshape(5, 3)  # chain 0 moves every time: no repeats
    x[1, 2:] = 1.0  # chain 1: 0, 0, 1, 1, 1 -> draws 2, 4, 5 repeat their predecessor
    assert repeat_fraction(x) == 3 / 8
    assert repeat_fraction(x[:, :1]) == 0.0


def test_thin_for_from_the_importance_weights():
    draws = np.zeros((4, 1))
    exact = ProposalFit(draws, np.zeros(4), (1.0,), 0)  # proposal = target: every move accepted
    assert exact.thin_for(0.01) == 1
    # weights 1, 1, 1, 3 (target mass 1/6 each, 1/2 at the heavy draw): from a light draw a move
    # is always accepted, from the heavy one with α = (3 · 1/3 + 1) / 4 = 1/2; a repeat after t
    # steps has probability 1/2 · (1/2)^t, <= 0.01 first at t = 6
    fit = ProposalFit(draws, np.log([1.0, 1.0, 1.0, 3.0]), (0.5,), 0)
    assert fit.thin_for(0.01) == 6 and fit.thin_for(0.01, most=4) == 4


def test_imh_default_thinning_leaves_few_repeated_draws():
    # a proposal fitted to a Gaussian posterior accepts most moves but not all: at thin=1 some
    # kept draws repeat the last one; the posterior's thin="auto" must bring that to <= 1%
    prior = lfi.Normal(jnp.zeros(3), jnp.ones(3))
    loglik = lambda theta, x: -0.5 * jnp.sum(((theta - x) / 0.3) ** 2)  # noqa: E731
    post = LikelihoodPosterior(prior, loglik, dim_x=3, sampler="imh")
    x = jnp.array([0.5, -0.5, 0.0])
    post.sample(4000, x=x, seed=0, thin=1)
    assert repeat_fraction(post.diagnostics.samples) > 0.02
    draws = np.asarray(post.sample(4000, x=x, seed=0))
    assert repeat_fraction(post.diagnostics.samples) <= 0.01
    # conjugate: mean x / (1 + 0.09), sd 0.3 / sqrt(1.09); 4000 near-independent draws: the
    # mean's standard error is < 0.005, allow 5 of them
    np.testing.assert_allclose(draws.mean(0), np.asarray(x) / 1.09, atol=0.025)
    np.testing.assert_allclose(draws.std(0), 0.3 / np.sqrt(1.09), rtol=0.05)


def test_fit_proposal_errors_are_clear():
    base = StudentTMixture.wide(jnp.zeros(2), jnp.eye(2))
    with pytest.raises(RuntimeError, match="-inf"):
        fit_proposal(lambda p, u: -jnp.inf, None, base, seed=0, num_draws=100)
    q, fit = fit_proposal(lambda p, u: -0.5 * jnp.sum(u**2), None, base, seed=0, num_draws=500)
    with pytest.raises(ValueError, match="init"):
        independence_mh(lambda p, u: -0.5 * jnp.sum(u**2), None, q, np.zeros((4, 3)), 100)


def test_prior_proposal_is_the_prior_in_unconstrained_space():
    prior = lfi.BoxUniform(low=[-1.0, 0.0], high=[1.0, 2.0])
    base = PriorProposal(prior)
    u = base.sample(jax.random.key(0), 5)
    theta = prior.from_unconstrained(u)
    expected = prior.log_prob(theta) + prior.log_det_from_unconstrained(u)
    np.testing.assert_allclose(jax.vmap(base.log_prob)(u), expected, rtol=1e-5)


def test_gaussian_mixture_em_recovers_separated_components():
    from lfi.proposals import _gaussian_mixture

    rng = np.random.default_rng(0)
    cov_b = np.array([[1.0, 0.8], [0.8, 1.0]])
    z = np.concatenate([rng.normal(size=(600, 2)) * 0.5 + [-4.0, 0.0],
                        rng.multivariate_normal([4.0, 1.0], cov_b, size=1400)])  # fmt: skip
    weights, means, covs = _gaussian_mixture(z, 2, seed=0)
    order = np.argsort(means[:, 0])
    # 2000 draws: weight sd sqrt(.3 .7 / 2000) = 0.010; mean sd <= 1/sqrt(600) = 0.04;
    # covariance entries sd <= sqrt(2/1400) ~ 0.04 (b) and 0.25 sqrt(2/600) ~ 0.015 (a)
    np.testing.assert_allclose(weights[order], [0.3, 0.7], atol=0.04)
    np.testing.assert_allclose(means[order], [[-4.0, 0.0], [4.0, 1.0]], atol=0.16)
    np.testing.assert_allclose(covs[order[0]], 0.25 * np.eye(2), atol=0.06)
    np.testing.assert_allclose(covs[order[1]], cov_b, atol=0.16)


def test_imh_stream_gives_the_same_first_proposals_however_many_are_asked_for():
    from lfi.proposals import CHUNK, _Stream

    q = StudentTMixture.wide(jnp.zeros(2), jnp.eye(2))
    target = lambda p, u: -0.5 * jnp.sum(u**2)  # noqa: E731
    stream = _Stream(target, None, q, seed=3)
    v, log_w, log_u = stream.take(CHUNK + 10)
    assert v.shape == (CHUNK + 10, 2) and log_w.shape == log_u.shape == (CHUNK + 10,)
    assert len(stream.chunks) == 2
    shorter = stream.take(CHUNK + 5)  # a shorter run: nothing new evaluated
    assert len(stream.chunks) == 2
    fresh = _Stream(target, None, q, seed=3).take(3)  # a new stream with the same seed
    for a, b, c in zip((v, log_w, log_u), shorter, fresh):
        np.testing.assert_array_equal(b, a[: CHUNK + 5])
        np.testing.assert_array_equal(c, a[:3])
    expected = -0.5 * np.sum(v**2, axis=1) - np.asarray(jax.vmap(q.log_prob)(jnp.asarray(v)))
    np.testing.assert_allclose(log_w, expected, rtol=1e-5, atol=1e-5)
