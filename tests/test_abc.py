"""Rejection ABC and SMC-ABC against the exact ε-posterior of a Gaussian model."""

import numpy as np
import pytest
from scipy import integrate, stats

import lfi
from lfi.methods.abc import RejectionABC, smc_abc

SIGMA, X_O = 0.5, 1.0
PRIOR = lfi.Normal(0.0, 1.0)


def simulator(theta, rng):
    return theta + SIGMA * rng.standard_normal(theta.shape)


def eps_posterior_moments(eps):
    """Mean and sd of p(θ | |x − x_o| <= ε) ∝ N(θ; 0, 1) P(|x − x_o| <= ε | θ), by quadrature."""

    def dens(t):
        window = stats.norm.cdf((X_O + eps - t) / SIGMA) - stats.norm.cdf((X_O - eps - t) / SIGMA)
        return stats.norm.pdf(t) * window

    z = integrate.quad(dens, -8, 8, epsabs=1e-12)[0]
    m = integrate.quad(lambda t: t * dens(t), -8, 8, epsabs=1e-12)[0] / z
    v = integrate.quad(lambda t: (t - m) ** 2 * dens(t), -8, 8, epsabs=1e-12)[0] / z
    return m, np.sqrt(v)


@pytest.fixture(scope="module")
def sims():
    return lfi.simulate(simulator, PRIOR, 40_000, seed=0, progress=False)


def test_rejection_abc_matches_the_eps_posterior(sims):
    theta, x = sims
    post = RejectionABC(PRIOR, eps=0.1, scale=None).fit(theta, x, x_o=[X_O])
    m, s = eps_posterior_moments(0.1)
    k = post.info["num_accepted"]
    assert k > 1000 and post.info["num_simulations"] == 40_000 and post.info["eps"] == 0.1
    # mean of k i.i.d. draws: 5 standard errors; sd: relative se ≈ 1/sqrt(2k)
    assert abs(post.particles.mean() - m) < 5 * s / np.sqrt(k)
    assert abs(post.particles.std() / s - 1) < 5 / np.sqrt(2 * k)


@pytest.mark.parametrize("adjust", [True, "uniform"])
def test_regression_adjustment_recovers_the_exact_posterior_of_a_linear_model(sims, adjust):
    theta, x = sims
    # linear-Gaussian: E[θ|x] is linear in x and Var[θ|x] constant, so the adjustment is exact
    # (weighted by the Epanechnikov kernel or not)
    post = RejectionABC(PRIOR, quantile=0.2, adjust=adjust, scale=None).fit(theta, x, x_o=[X_O])
    assert post.info["adjusted"] == ("epanechnikov" if adjust is True else adjust)
    with pytest.raises(ValueError, match="adjust"):
        RejectionABC(PRIOR, adjust="gaussian")
    mean, sd = X_O / (1 + SIGMA**2), np.sqrt(SIGMA**2 / (1 + SIGMA**2))
    w = post.weights
    ess = 1 / np.sum(w**2)
    got_mean = float(w @ post.particles[:, 0])
    got_sd = float(np.sqrt(w @ (post.particles[:, 0] - got_mean) ** 2))
    assert abs(got_mean - mean) < 5 * sd / np.sqrt(ess)
    assert abs(got_sd / sd - 1) < 5 / np.sqrt(2 * ess)


def test_smc_abc_reaches_a_small_eps_and_matches_its_eps_posterior():
    post = smc_abc(simulator, PRIOR, [X_O], 20_000, seed=1, population_size=500, scale=None,
                   progress=False)  # fmt: skip
    info = post.info
    assert info["num_simulations"] <= 20_000 and info["num_rounds"] >= 3
    assert info["eps_per_round"][-1] < info["eps_per_round"][0] / 4
    m, s = eps_posterior_moments(info["eps"])
    w, t = post.weights, post.particles[:, 0]
    ess = 1 / np.sum(w**2)
    got = float(w @ t)
    assert abs(got - m) < 5 * s / np.sqrt(ess)
    # the spread too: uniform weights or a missing prior factor move it by 40% / 10% here
    got_sd = float(np.sqrt(w @ (t - got) ** 2))
    assert abs(got_sd / s - 1) < 5 / np.sqrt(2 * ess), (got_sd, s)
    # draws resampled from the weighted particles keep the mean (4000 draws of ess particles)
    assert abs(float(np.mean(post.sample(4000, seed=0))) - m) < 5 * s / np.sqrt(ess) + 0.05


def test_one_liner_and_cli_names():
    post = lfi.infer(simulator, PRIOR, "rejection_abc", num_simulations=2000, x_o=[X_O],
                     progress=False)  # fmt: skip
    assert isinstance(post, lfi.ParticlePosterior) and post.sample(7).shape == (7, 1)
    with pytest.raises(ValueError, match="x_o"):
        lfi.infer(simulator, PRIOR, "smc_abc", num_simulations=2000, progress=False)
    with pytest.raises(ValueError, match="rejection_abc"):
        lfi.infer(simulator, PRIOR, "abc", num_simulations=10, progress=False)


def test_clear_errors(sims):
    theta, x = sims
    with pytest.raises(ValueError, match="eps: .* accepts none"):
        RejectionABC(PRIOR, eps=1e-9).fit(theta, x, x_o=[50.0])
    with pytest.raises(ValueError, match="summary: expected"):
        RejectionABC(PRIOR, summary=lambda x: x[:10]).fit(theta, x, x_o=[X_O])
    with pytest.raises(ValueError, match="distance: returned"):
        RejectionABC(PRIOR, distance=lambda s, s_o: np.full(len(s), np.nan)).fit(
            theta, x, x_o=[X_O]
        )
    with pytest.raises(ValueError, match="num_accept, quantile, eps"):
        RejectionABC(PRIOR, eps=0.1, quantile=0.1)
    with pytest.raises(ValueError, match="x_o"):
        RejectionABC(PRIOR).fit(theta, x, x_o=[1.0, 2.0])


def test_invalid_simulations_are_counted_and_never_accepted():
    def flaky(theta, rng):
        x = simulator(theta, rng)
        x[::10] = np.nan
        return x

    theta, x = lfi.simulate(flaky, PRIOR, 5000, seed=0, progress=False)
    with pytest.warns(UserWarning, match="500 of 5000"):
        post = RejectionABC(PRIOR, num_accept=100).fit(theta, x, x_o=[X_O])
    assert post.info["num_invalid"] == 500 and post.info["num_accepted"] == 100
    assert np.isfinite(post.particles).all()
    # not even at eps = inf (their distance is +inf, and inf <= inf)
    with pytest.warns(UserWarning, match="500 of 5000"):
        everything = RejectionABC(PRIOR, eps=np.inf).fit(theta, x, x_o=[X_O])
    assert everything.info["num_accepted"] == 4500


def test_a_summary_of_shape_n_works_for_x_o_too_and_smc_counts_every_round():
    theta, x = lfi.simulate(simulator, PRIOR, 2000, seed=0, progress=False)
    flat = RejectionABC(PRIOR, summary=lambda a: a[:, 0], num_accept=50).fit(theta, x, x_o=[X_O])
    kept = RejectionABC(PRIOR, summary=lambda a: a[:, :1], num_accept=50).fit(theta, x, x_o=[X_O])
    np.testing.assert_array_equal(flat.particles, kept.particles)
    for budget in (1500, 1700, 2100):  # 1700: a last round abandoned with under half accepted
        post = smc_abc(simulator, PRIOR, [X_O], budget, seed=0, population_size=200,
                       progress=False)  # fmt: skip
        info = post.info
        assert (
            sum(info["simulations_per_round"]) + info["simulations_discarded"]
            == (info["num_simulations"])
        ), info


def test_posteriors_for_one_observation_refuse_another_x():
    from lfi.methods.density import grid_posterior
    from lfi.posteriors.samples import ParticlePosterior

    prior = lfi.BoxUniform([0.0, 0.0], [1.0, 1.0])
    rng = np.random.default_rng(0)
    post = ParticlePosterior(prior, rng.uniform(0.3, 0.7, (200, 2)), x_o=[0.5, 0.5])
    post.sample(2, x=[[0.5, 0.5]])  # the same observation, with a leading axis of 1
    for x in (0.5, [0.5], [[0.5, 0.5]] * 3):  # broadcast-equal values, wrong shapes
        with pytest.raises(ValueError, match="x: expected shape"):
            post.log_prob([0.5, 0.5], x=x)
    grid = grid_posterior(simulator, lfi.BoxUniform([0.0], [2.0]), [1.2], grid_size=11,
                          per_point=20, seed=0, progress=False)  # fmt: skip
    grid.sample(2, x=[1.2])
    with pytest.raises(ValueError, match="x: this posterior"):
        grid.log_prob([1.2], x=[0.1])  # another observation: not silently x_o's posterior


def test_particle_posterior_support_and_round_trip(tmp_path):
    prior = lfi.BoxUniform([0.0, 0.0], [1.0, 1.0])
    particles = np.random.default_rng(0).uniform(0.0, 0.05, size=(200, 2))
    post = lfi.ParticlePosterior(prior, particles, x_o=[0.0], info={"method": "test"})
    draws = np.asarray(post.sample(5000, seed=0))
    assert np.all((draws >= 0) & (draws <= 1))
    assert np.isneginf(float(post.log_prob(np.array([1.5, 0.5]))))
    # the KDE is a density: it integrates to 1 over the box (midpoint rule, fine grid near 0)
    g = (np.arange(400) + 0.5) / 400
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    total = float(np.exp(np.asarray(post.log_prob(grid))).sum() / 400**2)
    assert abs(total - 1) < 0.02
    post.save(tmp_path / "p.lfi")
    loaded = lfi.load(tmp_path / "p.lfi")
    np.testing.assert_allclose(loaded.sample(10, seed=3), post.sample(10, seed=3))
    with pytest.raises(ValueError, match="x:"):
        post.sample(3, x=[1.0])
