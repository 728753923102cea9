"""Priors: log_prob against scipy, support, sampling, bijections, config round trip."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import lfi
from lfi.priors import prior_from_config

PRIORS = {
    "box": lambda: lfi.BoxUniform([-1.0, 0.0, 2.0], [1.0, 3.0, 2.5]),
    "normal": lambda: lfi.Normal([0.0, 1.0], [1.0, 0.5]),
    "mvn": lambda: lfi.MultivariateNormal([0.0, 1.0], [[1.0, 0.3], [0.3, 0.5]]),
    "lognormal": lambda: lfi.LogNormal([0.0, 1.0], [0.5, 0.2]),
    "joint": lambda: lfi.Independent([lfi.BoxUniform(0.0, 1.0), lfi.LogNormal(0.0, 1.0)]),
}


def scipy_logpdf(name, theta):
    if name == "box":
        return stats.uniform([-1, 0, 2], [2, 3, 0.5]).logpdf(theta).sum(-1)
    if name == "normal":
        return stats.norm([0, 1], [1, 0.5]).logpdf(theta).sum(-1)
    if name == "mvn":
        return stats.multivariate_normal([0, 1], [[1, 0.3], [0.3, 0.5]]).logpdf(theta)
    if name == "lognormal":
        return stats.lognorm(s=[0.5, 0.2], scale=np.exp([0.0, 1.0])).logpdf(theta).sum(-1)
    return stats.uniform(0, 1).logpdf(theta[:, 0]) + stats.lognorm(s=1.0).logpdf(theta[:, 1])


@pytest.mark.parametrize("name", PRIORS)
def test_log_prob_matches_scipy_on_samples(name):
    prior = PRIORS[name]()
    theta = np.asarray(prior.sample(200, seed=1), np.float64)
    assert theta.shape == (200, prior.dim)
    assert bool(jnp.all(prior.in_support(theta)))
    np.testing.assert_allclose(
        prior.log_prob(theta), scipy_logpdf(name, theta), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("name", PRIORS)
def test_sampling_is_reproducible_and_seed_dependent(name):
    prior = PRIORS[name]()
    a, b, c = prior.sample(50, seed=3), prior.sample(50, seed=3), prior.sample(50, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("name", PRIORS)
def test_bijection_round_trip_and_jacobian(name):
    prior = PRIORS[name]()
    theta = prior.sample(20, seed=2)
    u = prior.to_unconstrained(theta)
    np.testing.assert_allclose(prior.from_unconstrained(u), theta, rtol=1e-4, atol=1e-5)
    jac = jax.vmap(jax.jacfwd(prior.from_unconstrained))(u)
    logdet = jnp.linalg.slogdet(jac)[1]
    np.testing.assert_allclose(prior.log_det_from_unconstrained(u), logdet, rtol=1e-3, atol=1e-3)
    # any unconstrained point maps inside the support, even far out
    far = jnp.full((3, prior.dim), 1e3) * jnp.array([[-1.0], [0.0], [1.0]])
    assert bool(jnp.all(prior.in_support(prior.from_unconstrained(far))))


@pytest.mark.parametrize(
    "prior, outside",
    [
        (lfi.BoxUniform([0.0, 0.0], [1.0, 1.0]), [[1.5, 0.5], [-0.1, 0.2], [np.nan, 0.5]]),
        (lfi.LogNormal(0.0, 1.0), [[-1.0], [0.0], [np.inf]]),
        (lfi.Normal(0.0, 1.0), [[np.inf], [-np.inf], [np.nan]]),
    ],
)
def test_outside_support_is_minus_inf_never_nan(prior, outside):
    lp = np.asarray(prior.log_prob(outside))
    assert np.all(lp == -np.inf)
    assert not np.any(prior.in_support(outside))
    # gradients at a point outside do not produce NaN in the inside branch
    g = jax.grad(lambda t: prior.log_prob(t))(jnp.asarray(outside[0], jnp.float32))
    assert not np.any(np.isnan(g))


@pytest.mark.parametrize("name", PRIORS)
def test_config_round_trip(name):
    prior = PRIORS[name]()
    back = prior_from_config(prior.to_config())
    theta = prior.sample(10, seed=0)
    np.testing.assert_allclose(back.log_prob(theta), prior.log_prob(theta), rtol=1e-6)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="high"):
        lfi.BoxUniform([0.0, 1.0], [1.0, 0.5])
    with pytest.raises(ValueError, match="scale"):
        lfi.Normal(0.0, -1.0)
    with pytest.raises(ValueError, match="covariance_matrix"):
        lfi.MultivariateNormal([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="non-symmetric"):  # cholesky would read [[1, 0], [0, 1]]
        lfi.MultivariateNormal([0.0, 0.0], [[1.0, 5.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="theta"):
        lfi.BoxUniform([0.0, 0.0], [1.0, 1.0]).log_prob([0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="config"):
        prior_from_config({"type": "Cauchy"})


@pytest.mark.parametrize("name", sorted(PRIORS))
def test_numpy_sample_has_the_prior_distribution(name):
    """The numpy path (used where threefry's compilation would cost seconds) draws the same law
    as ``sample``: every marginal passes a two-sample KS test against JAX's draws (p > 0.001:
    a false alarm in one of ~10 marginals has probability ~0.01), reproducibly per seed."""
    prior = PRIORS[name]()
    a = prior.numpy_sample(np.random.default_rng(0), 4000)
    b = np.asarray(prior.sample(4000, seed=1))
    assert a.shape == (4000, prior.dim) and a.dtype == np.float32
    assert np.all(np.asarray(prior.in_support(a)))
    for i in range(prior.dim):
        assert stats.ks_2samp(a[:, i], b[:, i]).pvalue > 1e-3, i
    np.testing.assert_array_equal(a, prior.numpy_sample(np.random.default_rng(0), 4000))
    if name == "mvn":  # the correlation too: 0.3 / sqrt(0.5), standard error (1 - ρ²) / √n
        rho = 0.3 / np.sqrt(0.5)
        assert abs(np.corrcoef(a.T)[0, 1] - rho) < 5 * (1 - rho**2) / np.sqrt(4000)


class _UserPrior:
    """A prior of the user's own (the protocol only): no numpy path."""

    def __init__(self):
        self._box, self.dim = lfi.BoxUniform(0.0, 1.0), 1

    def __getattr__(self, name):
        if name in ("sample", "log_prob", "in_support", "to_unconstrained"):
            return getattr(self._box, name)
        if name in ("from_unconstrained", "log_det_from_unconstrained", "to_config"):
            return getattr(self._box, name)
        raise AttributeError(name)


def test_numpy_sample_is_none_where_a_part_has_no_numpy_path():
    joint = lfi.Independent([lfi.BoxUniform(0.0, 1.0), _UserPrior()])
    assert joint.numpy_sample(np.random.default_rng(0), 10) is None
    assert joint.sample(10, seed=0).shape == (10, 2)  # the JAX path still works


def test_lognormal_log_det_is_minus_inf_beyond_the_clip():
    # from_unconstrained clips u to [-87, 88]; beyond, θ stops moving, so a log-det growing with u
    # would give the u-space target infinite mass (NUTS chains ran off to u ~ 1e13)
    prior = lfi.LogNormal(0.0, 40.0)
    target = lambda u: (
        prior.log_prob(prior.from_unconstrained(u))
        + (  # noqa: E731
            prior.log_det_from_unconstrained(u)
        )
    )
    assert np.isfinite(float(target(jnp.array([50.0]))))
    assert float(target(jnp.array([100.0]))) == -np.inf
    assert float(target(jnp.array([-100.0]))) == -np.inf


def test_lognormal_maps_extreme_but_valid_theta_consistently():
    # to_unconstrained used log(max(θ, 1e-30)) while from_unconstrained clips u to [-87, 88]:
    # θ in (e^-87, 1e-30) all mapped to one u, and θ > e^88 got a log-det of -inf (a posterior
    # log_prob of +inf)
    prior = lfi.LogNormal(-75.0, 1.0)
    theta = jnp.array([[1e-33], [1e-31], [2e38]], jnp.float32)
    u = prior.to_unconstrained(theta)
    assert len(set(np.asarray(u).ravel().tolist())) == 3
    np.testing.assert_allclose(prior.from_unconstrained(u[:2]), theta[:2], rtol=1e-5)
    assert np.all(np.isfinite(prior.log_det_from_unconstrained(u)))


def test_multivariate_normal_config_keeps_the_covariance_in_float64():
    cov = [[1.0, 1 - 1e-8], [1 - 1e-8, 1.0]]  # positive definite, singular in float32
    prior = lfi.MultivariateNormal([0.0, 0.0], cov)
    back = prior_from_config(prior.to_config())
    assert back.to_config()["covariance_matrix"] == cov
