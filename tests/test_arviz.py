"""posterior.to_arviz(): InferenceData for every posterior type; MCMC chains kept."""

import sys

import jax.numpy as jnp
import numpy as np
import pytest

import lfi
from lfi.nets.flows import build_flow, flow_config
from lfi.posteriors.direct import Standardizer

az = pytest.importorskip("arviz")


def test_mcmc_posterior_keeps_its_chains_and_their_rhat():
    prior = lfi.Normal(0.0, 1.0)
    loglik = lambda theta, x: -0.5 * jnp.sum((x - theta) ** 2) / 0.5**2
    post = lfi.LikelihoodPosterior(prior, loglik, dim_x=1)
    idata = post.to_arviz(2000, x=[1.0], seed=3, num_chains=4, labels=["mu"])
    theta = idata.posterior["theta"]
    assert theta.dims == ("chain", "draw", "theta_dim") and theta.shape == (4, 500, 1)
    assert list(theta["theta_dim"].values) == ["mu"]
    # the same draws as sample() with the same seed, chain by chain
    draws = np.asarray(post.sample(2000, x=[1.0], seed=3, num_chains=4))
    flat = np.swapaxes(theta.values, 0, 1).reshape(-1, 1)[:2000]
    np.testing.assert_allclose(flat, draws, rtol=1e-6)
    # ArviZ's split R-hat on the kept chains is the sampler's own (identity bijection here)
    rhat = float(az.rhat(idata)["theta"].values[0])
    assert abs(rhat - float(post.diagnostics.rhat[0])) < 5e-3
    assert idata.posterior.attrs["sampler"] == "nuts"
    assert idata.sample_stats["lp"].shape == (4, 500)
    assert idata.sample_stats.attrs["lp_normalized"] == 0
    np.testing.assert_allclose(idata.observed_data["x"].values, [1.0])
    # posterior N(0.8, 0.2): mean within 5 sd / sqrt(ESS)
    assert abs(float(theta.mean()) - 0.8) < 5 * np.sqrt(0.2 / float(az.ess(idata)["theta"][0]))


def test_independent_draws_are_split_into_pseudo_chains():
    prior = lfi.BoxUniform([0.0, 0.0], [1.0, 1.0])
    particles = np.random.default_rng(0).uniform(0.3, 0.7, (200, 2))
    post = lfi.ParticlePosterior(prior, particles, x_o=[0.5, 0.5], info={"method": "smc_abc"})
    idata = post.to_arviz(1000, seed=1)
    assert idata.posterior["theta"].shape == (4, 250, 2)
    assert idata.posterior.attrs["method"] == "smc_abc"
    assert idata.posterior.attrs["sampler"] == "independent"
    assert np.all(np.isfinite(idata.sample_stats["lp"].values))
    # i.i.d. draws: R-hat within a few of its ~0.002 sampling sd of 1
    assert float(az.rhat(idata)["theta"].max()) < 1.02


def test_direct_flow_posterior_and_importance_sampling():
    prior = lfi.BoxUniform([0.0, 0.0], [1.0, 1.0])
    config = flow_config(2, 3, kind="maf", flow_layers=2, nn_width=8)
    stand = Standardizer.fit(np.zeros((10, 2)), np.random.default_rng(0).normal(size=(10, 3)))
    post = lfi.DirectPosterior(prior, build_flow(config), stand, config, dim_x=3)
    idata = post.to_arviz(300, x=[0.0, 1.0, 2.0], num_chains=3)
    assert idata.posterior["theta"].shape == (3, 100, 2)
    assert idata.observed_data["x"].shape == (3,)
    assert idata.sample_stats.attrs["lp_normalized"] == 1

    loglik = lambda theta, x: -0.5 * jnp.sum((x - theta) ** 2) / 0.1**2
    lik = lfi.LikelihoodPosterior(prior, loglik, dim_x=2, sampler="importance")
    idata = lik.to_arviz(400, x=[0.5, 0.5], num_chains=2, log_prob=False)
    assert idata.posterior["theta"].shape == (2, 200, 2) and "sample_stats" not in idata.groups()


def test_missing_arviz_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "arviz", None)
    post = lfi.ParticlePosterior(lfi.BoxUniform([0.0], [1.0]), np.full((5, 1), 0.5), x_o=[0.0])
    with pytest.raises(ImportError, match=r"pip install 'lfi\[arviz\]'"):
        post.to_arviz(10)


def test_conjugate_posterior_to_arviz_matches_the_closed_form():
    post = lfi.conjugate.BetaBernoulli(2, 3).posterior(np.array([1, 0, 1, 1]))
    theta = post.to_arviz(4000, seed=0).posterior["theta"].values.ravel()
    # Beta(5, 4): mean 5/9, sd sqrt(20/(81*10)); 4000 draws -> standard error sd/63
    sd = np.sqrt(5 * 4 / (9**2 * 10))
    assert abs(theta.mean() - 5 / 9) < 4 * sd / np.sqrt(4000)
