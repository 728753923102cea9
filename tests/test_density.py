"""Grid density estimation and learned summaries against closed forms."""

import numpy as np
import pytest

import lfi
from lfi.methods.density import grid_posterior, learn_summary

PRIOR = lfi.BoxUniform([-2.0], [2.0])


def sim(theta, rng):  # x = θ + 0.3 ε, 2 i.i.d. copies
    return theta + 0.3 * rng.standard_normal((len(theta), 2))


def test_grid_posterior_matches_the_exact_posterior_and_mle():
    x_o = np.array([0.4, 0.6])
    post = grid_posterior(sim, PRIOR, x_o, grid_size=81, per_point=400, seed=0, progress=False)
    # exact: flat prior, two N(θ, 0.3²) copies -> N(0.5, 0.3²/2) (truncation negligible)
    mean, sd = 0.5, 0.3 / np.sqrt(2)
    draws = post.sample(20_000, seed=1)[:, 0]
    # KDE bias: Scott bandwidth h ≈ 400^(-1/6) = 0.37 of the summaries' sd widens p̂(s|θ);
    # the posterior sd grows by at most sqrt(1 + h²) ≈ 1.07; the mean is unbiased by symmetry
    assert abs(draws.mean() - mean) < 0.02
    assert 1.0 <= draws.std() / sd < 1.12
    # MLE: p̂ has ~10% relative noise with 400 draws per point; on a likelihood of width
    # σ = 0.21 that moves the argmax by up to sqrt(2 · 0.1) σ ≈ 0.095
    assert abs(post.mle()[0] - 0.5) < 0.1
    # log_prob is a density: integrates to 1 over the grid
    g = np.linspace(-2, 2, 4001)[:-1] + 0.0005
    assert abs(np.exp(post.log_prob(g[:, None])).sum() * 0.001 - 1) < 1e-3
    assert post.info["num_simulations"] == 81 * 400
    assert np.isneginf(post.log_prob(np.array([2.5])))


def test_learned_summary_regresses_the_mean():
    theta, x = lfi.simulate(sim, PRIOR, 4000, seed=0, progress=False)
    s = learn_summary(PRIOR, theta, x, seed=0, max_epochs=60)
    out = s(x[:500])
    assert out.shape == (500, 1)
    # E[θ|x] is monotone in mean(x): the learned summary is strongly correlated with it
    assert np.corrcoef(out[:, 0], x[:500].mean(1))[0, 1] > 0.95


def test_grid_errors():
    with pytest.raises(ValueError, match="dθ <= 3"):
        grid_posterior(sim, lfi.BoxUniform([0.0] * 4, [1.0] * 4), np.zeros(2), progress=False)
    with pytest.raises(ValueError, match="summary"):
        grid_posterior(sim, PRIOR, np.zeros(2), summary=lambda x: x[:3], grid_size=4,
                       per_point=5, progress=False)  # fmt: skip


def test_estimator_grid_posterior_with_the_exact_likelihood_and_with_nde():
    """θ as input: the exact likelihood of madminer_toy (p(x|θ) = N(x; θ, 5)) on a 120-cell
    grid gives the truncated-normal posterior's mean to within the cell width; NDE (SCANDAL
    with α = 0) trained on 3000 runs goes through the same call."""
    from scipy.stats import truncnorm

    from lfi.frequentist import ExactLikelihood
    from lfi.methods.density import estimator_grid_posterior

    task = lfi.tasks.get("madminer_toy")
    x_o = np.array([[1.0], [2.0], [0.6]])  # three i.i.d. events: N(θ; 1.2, 5/3) on [-3, 3]
    post = estimator_grid_posterior(ExactLikelihood(task), task.prior, x_o, grid_size=120)
    sd = np.sqrt(5 / 3)
    exact = truncnorm((-3 - 1.2) / sd, (3 - 1.2) / sd, loc=1.2, scale=sd)
    w = np.exp(post.log_mass)
    assert abs(float(w @ post.centres[:, 0]) - exact.mean()) < 0.05  # cell width 0.05
    assert abs(post.mle()[0] - 1.2) <= 0.025
    data = lfi.simulate(task.simulator, task.prior, 3000, seed=0, augmented=True, progress=False)
    nde = lfi.SCANDAL(task.prior, 0.0, max_epochs=20, progress=False).fit(data, seed=0)
    post = estimator_grid_posterior(nde, task.prior, x_o, grid_size=30)
    assert post.sample(100, seed=0).shape == (100, 1) and np.isfinite(post.log_mass).all()
    with pytest.raises(ValueError, match="grid_size"):
        estimator_grid_posterior(nde, task.prior, x_o, grid_size=1)


def test_invalid_simulations_count_as_other_outcomes():
    """The same 100 valid summaries, alone or beside 100 NaN rows: with the NaN rows the
    likelihood is P(valid | θ) = 1/2 times as large (the bandwidth comes from the valid rows
    alone, so the difference is exactly log 2), as rejection ABC would weigh them."""
    from lfi.methods.density import _kde_log_density

    valid = np.random.default_rng(0).standard_normal((1, 100, 2))
    half = np.concatenate([valid, np.full((1, 100, 2), np.nan)], axis=1)
    s_o = np.array([0.3, -0.1])
    diff = _kde_log_density(valid, s_o) - _kde_log_density(half, s_o)
    np.testing.assert_allclose(diff, np.log(2.0), rtol=1e-10)


def test_grid_of_an_unbounded_prior_warns_when_mass_reaches_its_edge():
    """The grid of a Normal prior spans its 0.1%-99.9% range; a likelihood peaked beyond that
    range puts the posterior in the outermost cells, and the truncation is reported."""
    import warnings

    from lfi.methods.density import GridPosterior, _cells

    prior = lfi.Normal(0.0, 1.0)
    edges, centres = _cells(prior, 30, 0)
    far = -0.5 * ((centres[:, 0] - 4.0) / 0.3) ** 2  # N(4, 0.3²): beyond the 99.9% point 3.09
    with pytest.warns(UserWarning, match="outermost cells"):
        GridPosterior(prior, edges, far, x_o=[0.0])
    near = -0.5 * ((centres[:, 0] - 0.5) / 0.3) ** 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GridPosterior(prior, edges, near, x_o=[0.0])
        GridPosterior(PRIOR, [np.linspace(-2, 2, 31)], np.linspace(0, 30, 30), x_o=[0.0])


def test_grid_posterior_upper_edge_is_inside():
    prior = lfi.BoxUniform([-3.0], [3.0])

    def sim(theta, rng):
        return theta + 0.5 * rng.standard_normal(theta.shape)

    post = grid_posterior(sim, prior, [2.9], grid_size=20, per_point=50, seed=0, progress=False)
    lp = post.log_prob([[3.0], [2.9999], [3.0001]])
    assert np.isfinite(lp[0]) and lp[0] == lp[1] and lp[2] == -np.inf  # high is in the support


def test_grid_posterior_saves_and_loads_without_pickle(tmp_path):
    prior = lfi.BoxUniform([-3.0, -3.0], [3.0, 3.0])

    def sim(theta, rng):
        return theta + 0.5 * rng.standard_normal(theta.shape)

    post = grid_posterior(sim, prior, [0.5, -1.0], grid_size=8, per_point=30, seed=0,
                          progress=False)  # fmt: skip
    post.save(tmp_path / "grid.lfi")
    back = lfi.load(tmp_path / "grid.lfi")
    theta = [[0.4, -0.9], [2.9, 2.9]]
    np.testing.assert_array_equal(back.log_prob(theta), post.log_prob(theta))
    np.testing.assert_array_equal(back.sample(5, seed=1), post.sample(5, seed=1))
    assert back.info["num_simulations"] == post.info["num_simulations"]
