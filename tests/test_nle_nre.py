"""NLE and NRE against a closed-form posterior, i.i.d. trials, and the ratio's meaning."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lfi
from lfi.posteriors.direct import Standardizer
from lfi.posteriors.ensemble import _MeanPosterior
from lfi.proposals import repeat_fraction

# gaussian_linear in 2-d: θ ~ N(0, 0.1 I), x | θ ~ N(θ, 0.1 I); for k i.i.d. trials with mean
# x̄ the posterior is N(k x̄ / (k + 1), 0.1 / (k + 1) I) (prior and noise variances are equal).
VAR, DIM = 0.1, 2
PRIOR = lfi.Normal(jnp.zeros(DIM), jnp.sqrt(VAR) * jnp.ones(DIM))


def gaussian(key, theta):
    return theta + jnp.sqrt(VAR) * jax.random.normal(key, theta.shape)


@pytest.fixture(scope="module")
def data():
    return lfi.simulate(gaussian, PRIOR, 3000, seed=0, progress=False)


def closed_form(x):
    x = np.atleast_2d(x)
    k = x.shape[0]
    return k * x.mean(0) / (k + 1), np.sqrt(VAR / (k + 1))


def check_posterior(post, x, tol_mean=0.25, tol_sd=0.2):
    s = np.asarray(post.sample(4000, x=x, seed=1, num_chains=8))  # 500 draws per chain
    mean, sd = closed_form(x)
    # Monte-Carlo error of 4000 MCMC draws (ESS > 400) is < 0.05 sd; the rest of the allowance
    # (a quarter of a posterior sd for the mean, 20% for the sd, for one trial) is the
    # estimator's, as for NPE. With k trials the k errors of the learned log-likelihood add up
    # while the posterior sd shrinks as 1/sqrt(k + 1): the error in posterior-sd units grows as
    # sqrt(k + 1), so the allowance is scaled by sqrt((k + 1) / 2) (1 for one trial).
    scale = np.sqrt((np.atleast_2d(x).shape[0] + 1) / 2)
    np.testing.assert_array_less(np.abs(s.mean(0) - mean), scale * tol_mean * sd)
    np.testing.assert_array_less(np.abs(s.std(0) / sd - 1), scale * tol_sd)
    d = post.diagnostics
    assert float(np.max(d.rhat)) < 1.01
    # the default sampler (imh) thins until at most 1% of the draws repeat the previous one
    assert d.kernel == "imh" and repeat_fraction(d.samples) <= 0.01


@pytest.fixture(scope="module")
def nle(data):
    return lfi.NLE(PRIOR, progress=False).fit(*data, seed=0)


def test_nle_matches_closed_form(nle):
    check_posterior(nle, np.array([0.3, -0.2]))


def test_nle_iid_trials_sum_log_likelihoods(nle):
    trials = np.array([[0.3, -0.2], [0.1, 0.0], [0.4, -0.3], [0.2, -0.1]], np.float32)
    check_posterior(nle, trials)
    # log_prob with k trials = log prior + the sum of the single-trial likelihood terms
    theta = np.array([[0.1, -0.1], [0.2, 0.0]], np.float32)
    prior = np.asarray(PRIOR.log_prob(theta))
    single = [np.asarray(nle.log_prob(theta, x=t)) - prior for t in trials]
    np.testing.assert_allclose(nle.log_prob(theta, x=trials), prior + np.sum(single, 0), 1e-4)


@pytest.mark.parametrize("variant", ["a", "b", "c", "bnre"])
def test_nre_variants_match_closed_form(variant, data):
    post = lfi.NRE(PRIOR, variant=variant, progress=False).fit(*data, seed=0)
    # a classifier's ratio is a noisier fit than a flow's density: a third of a posterior sd for
    # the mean, and a quarter for the sd (BNRE is built to be wider: conservative by design)
    check_posterior(
        post, np.array([0.3, -0.2]), tol_mean=0.35, tol_sd=0.35 if variant == "bnre" else 0.25
    )


def test_nre_c_logit_is_the_log_ratio(data):
    # NRE-C's optimal logit is exactly log p(x|θ)/p(x); differences in θ at one x cancel p(x) and
    # compare with the closed-form log-likelihood differences
    post = lfi.NRE(PRIOR, variant="c", progress=False).fit(*data, seed=0)
    x = np.array([0.3, -0.2], np.float32)
    theta = np.array([[0.3, -0.2], [0.1, 0.0], [0.0, -0.3], [0.4, -0.1]], np.float32)
    learned = np.asarray(post.log_prob(theta, x=x) - PRIOR.log_prob(theta))
    exact = -0.5 * np.sum((x - theta) ** 2, 1) / VAR
    diff_l, diff_e = learned - learned[0], exact - exact[0]
    # θ's within ~1 posterior sd: log-ratio differences are ~1 nat; allow 0.35 nat
    np.testing.assert_allclose(diff_l, diff_e, atol=0.35)


def test_spline_interval_holds_the_z_scored_training_data():
    from lfi.methods.nle import spline_interval

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 3))
    assert spline_interval(x) == 5.0  # every |z| < 5: the default
    assert spline_interval(None) == 5.0  # a store: rows not in memory
    x[0, 1] = 40.0
    z = abs(40.0 - x[:, 1].mean()) / x[:, 1].std()
    assert spline_interval(x) == np.ceil(z) + 1
    x[1] = np.nan  # non-finite rows are left out, as in training
    assert np.isfinite(spline_interval(x))


def test_nle_likelihood_depends_on_theta_beyond_five_standard_deviations():
    """A spline is the identity outside its interval: with the interval fixed at 5, an
    observation 6 sd out has a learned likelihood flat in θ; the default widens it."""
    prior = lfi.BoxUniform([0.0], [2.0])
    rng = np.random.default_rng(0)
    theta = np.asarray(prior.sample(3000, seed=0))
    x = theta + 0.2 * rng.standard_t(2, size=theta.shape)  # heavy tails: |z| up to ~30
    z = (x - x.mean()) / x.std()
    x_o = x.mean() + 6.0 * x.std()
    assert np.abs(z).max() > 7  # the training data reach past x_o
    grid = np.linspace(0.05, 1.95, 20)[:, None]
    spread = {}
    for interval in (5.0, "auto"):
        post = lfi.NLE(prior, max_epochs=3, progress=False, interval=interval).fit(theta, x, seed=0)
        spread[interval] = float(np.ptp(np.asarray(post.log_prob(grid, x=[x_o]))))
    assert post.net_config["interval"] == np.ceil(np.abs(z).max()) + 1
    assert spread[5.0] < 1e-4
    assert spread["auto"] > 1e-2


class _Steep(eqx.Module):
    """A stand-in ratio network whose logit is 3 u: steeper than the logistic tail (slope 1)
    of a uniform prior in unconstrained space, as a ReLU network extrapolates."""

    def __call__(self, z_theta, z_x):
        return 3.0 * z_theta[0]


def _steep_posterior(box):
    prior = lfi.BoxUniform([0.0], [1.0])
    ones, zeros = jnp.ones(1), jnp.zeros(1)
    stand = Standardizer(zeros, ones, zeros, ones)
    args = (prior, _Steep(), stand, {}, 1)
    return lfi.UnnormalizedPosterior(*args, kind="ratio", method="nre", theta_box=box)


def test_unnormalized_posterior_does_not_extrapolate_beyond_the_training_box():
    """Unclamped, p̃(u) ∝ e^{3u} σ'(u) grows as e^{2u}: not normalisable. Clamped into the box
    [-5, 5], it is e^{15} σ'(u) beyond 5 (the prior's tail); the draws' mean matches the
    clamped density's, by quadrature, within 5 Monte-Carlo standard errors."""
    unclamped = _steep_posterior(None)
    edge = np.array([[0.999], [1 - 1e-6]])
    lp = np.asarray(unclamped.log_prob(edge, x=[0.0]))
    assert lp[1] - lp[0] > 15  # toward the edge the unclamped density keeps rising
    post = _steep_posterior((np.array([-5.0]), np.array([5.0])))
    lp = np.asarray(post.log_prob(edge, x=[0.0]))
    assert lp[0] == pytest.approx(15.0) and lp[1] == pytest.approx(15.0)  # f(5) + log 1
    mixed = _MeanPosterior([post, post])  # an ensemble clamps each member to its own box
    np.testing.assert_allclose(np.asarray(mixed.log_prob(edge, x=[0.0])), [15.0, 15.0])
    u = np.linspace(-40, 40, 400_001)
    log_w = 3 * np.clip(u, -5, 5) - np.logaddexp(0, u) - np.logaddexp(0, -u)
    w = np.exp(log_w - log_w.max())
    theta = 1 / (1 + np.exp(-u))
    mean = np.sum(w * theta) / w.sum()
    sd = np.sqrt(np.sum(w * (theta - mean) ** 2) / w.sum())
    s = np.asarray(post.sample(4000, x=[0.0], seed=0))
    d = post.diagnostics
    assert float(np.max(d.rhat)) < 1.01
    assert abs(s.mean() - mean) < 5 * sd / np.sqrt(float(np.min(d.ess)))


def test_fitted_box_is_the_training_theta_and_survives_save_load(tmp_path):
    prior = lfi.BoxUniform([0.0, 0.0], [1.0, 1.0])
    theta = np.array(prior.sample(200, seed=0))
    x = theta + 0.1
    theta[0] = [1e-6, 0.5]  # the most extreme θ, but its simulation failed: not trained on
    x[0] = np.nan
    post = lfi.NRE(prior, max_epochs=1, progress=False).fit(theta, x, seed=0)
    u = np.asarray(prior.to_unconstrained(theta[1:]))
    np.testing.assert_allclose(np.asarray(post.theta_box[0]), u.min(0), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(post.theta_box[1]), u.max(0), rtol=1e-6)
    post.save(tmp_path / "p.lfi")
    back = lfi.load(tmp_path / "p.lfi")
    for a, b in zip(post.theta_box, back.theta_box):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(ValueError, match="theta_box"):
        _steep_posterior((np.array([1.0]), np.array([-1.0])))
    with pytest.raises(ValueError, match="theta_box"):
        _steep_posterior((np.zeros(2), np.ones(2)))


@pytest.mark.parametrize("variant, n", [("b", 60), ("c", 90), ("a", 12), ("bnre", 12)])
def test_nre_with_too_few_rows_for_its_contrasts_says_so(variant, n):
    prior = lfi.BoxUniform([0.0, 0.0], [2.0, 2.0])
    theta = np.asarray(prior.sample(n, seed=0))
    x = theta + 0.1 * np.random.default_rng(0).standard_normal(theta.shape)
    with pytest.raises(ValueError, match="num_atoms, validation_fraction"):
        lfi.NRE(prior, variant=variant, max_epochs=1, progress=False).fit(theta, x, seed=0)
