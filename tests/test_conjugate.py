"""Conjugate posteriors against independent formulas, scipy, quadrature and Monte Carlo."""

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import betaln, gammaln

from lfi.methods.conjugate import (
    BetaBernoulli,
    BetaBinomial,
    BetaNegativeBinomial,
    ConjugatePosterior,
    DirichletCategorical,
    GammaPoisson,
    NormalNormal,
)

# Likelihoods and priors written out by hand, independent of the module and of scipy's
# parameterisations: log p(x | θ) summed over x, and log p(θ).


def ll_bernoulli(t, x):
    return np.sum(x) * np.log(t) + np.sum(1 - x) * np.log1p(-t)


def ll_binomial(t, x, m=5):
    log_comb = gammaln(m + 1) - gammaln(x + 1) - gammaln(m - x + 1)
    return np.sum(log_comb) + np.sum(x) * np.log(t) + np.sum(m - x) * np.log1p(-t)


def ll_negbin(t, x, r=3):  # x successes (probability t) before the r-th failure
    log_comb = gammaln(x + r) - gammaln(x + 1) - gammaln(r)
    return np.sum(log_comb) + np.sum(x) * np.log(t) + x.size * r * np.log1p(-t)


def ll_poisson(t, x):
    return np.sum(x) * np.log(t) - x.size * t - np.sum(gammaln(x + 1))


def ll_normal(t, x, s=0.5):
    return np.sum(-0.5 * ((x - t) / s) ** 2 - np.log(s * np.sqrt(2 * np.pi)))


def lp_beta(a, b):
    return lambda t: (a - 1) * np.log(t) + (b - 1) * np.log1p(-t) - betaln(a, b)


def lp_gamma(shape, rate):
    return lambda t: shape * np.log(rate) + (shape - 1) * np.log(t) - rate * t - gammaln(shape)


def lp_normal(m, s):
    return lambda t: -0.5 * ((t - m) / s) ** 2 - np.log(s * np.sqrt(2 * np.pi))


# name: model, data, log prior, log likelihood, integration range, posterior worked out by hand,
# simulator of x | θ for an array of θ (from the definition, not from scipy).
CASES = {
    "bernoulli": (
        BetaBernoulli(2.0, 3.0),
        np.array([1, 0, 1, 1, 0, 1, 1, 1]),
        lp_beta(2.0, 3.0),
        ll_bernoulli,
        (0.0, 1.0),
        stats.beta(2 + 6, 3 + 2),
        lambda rng, t: (rng.random(t.size) < t).astype(float),
    ),
    "binomial": (
        BetaBinomial(1.5, 2.5, trials=5),
        np.array([3, 1, 4, 5, 2, 0]),
        lp_beta(1.5, 2.5),
        ll_binomial,
        (0.0, 1.0),
        stats.beta(1.5 + 15, 2.5 + 30 - 15),
        lambda rng, t: (rng.random((5, t.size)) < t).sum(0).astype(float),
    ),
    "negbin": (
        BetaNegativeBinomial(2.0, 1.5, failures=3),
        np.array([0, 4, 2, 7, 1]),
        lp_beta(2.0, 1.5),
        ll_negbin,
        (0.0, 1.0),
        stats.beta(2 + 14, 1.5 + 5 * 3),
        # successes before each of 3 failures: geometric(1 − θ) − 1 each, summed
        lambda rng, t: (rng.geometric(1 - t, size=(3, t.size)) - 1).sum(0).astype(float),
    ),
    "poisson_rate": (
        GammaPoisson(2.5, rate=0.8),
        np.array([3, 0, 2, 5, 4, 1, 2]),
        lp_gamma(2.5, 0.8),
        ll_poisson,
        (0.0, 60.0),
        stats.gamma(2.5 + 17, scale=1 / (0.8 + 7)),
        lambda rng, t: rng.poisson(t).astype(float),
    ),
    "poisson_scale": (
        GammaPoisson(2.5, scale=1.25),
        np.array([3, 0, 2, 5, 4, 1, 2]),
        lp_gamma(2.5, 0.8),
        ll_poisson,
        (0.0, 60.0),
        stats.gamma(2.5 + 17, scale=1 / (0.8 + 7)),
        lambda rng, t: rng.poisson(t).astype(float),
    ),
    "normal": (
        NormalNormal(1.0, 2.0, noise_std=0.5),
        np.array([0.3, -0.2, 0.8, 0.1]),
        lp_normal(1.0, 2.0),
        ll_normal,
        (-15.0, 15.0),
        stats.norm((1.0 / 4 + 1.0 / 0.25) / (1 / 4 + 4 / 0.25), (1 / 4 + 4 / 0.25) ** -0.5),
        lambda rng, t: rng.normal(t, 0.5),
    ),
}
SCALAR = sorted(CASES)

DIR_PRIOR = np.array([1.5, 2.0, 1.0])
DIR_X = np.array([0, 2, 1, 1, 0, 1, 2, 1])  # counts (2, 4, 2)
DIR_POST = DIR_PRIOR + np.array([2, 4, 2])


def quad(f, lo, hi, points=None):
    value, _ = integrate.quad(f, lo, hi, points=points, epsabs=0, epsrel=1e-11, limit=500)
    return value


@pytest.mark.parametrize("name", SCALAR)
def test_moments_and_density_match_brute_force_integration(name):
    model, x, log_prior, log_lik, (lo, hi), _, _ = CASES[name]
    post = model.posterior(x)

    def log_joint(t):
        return log_prior(t) + log_lik(t, x.astype(float))

    grid = np.linspace(lo, hi, 4003)[1:-1]
    peak = grid[np.argmax([log_joint(t) for t in grid])]
    shift = log_joint(peak)  # keeps exp() in range; undone below

    def f(t):
        return np.exp(log_joint(t) - shift)

    z = quad(f, lo, hi, [peak])
    mean = quad(lambda t: t * f(t), lo, hi, [peak]) / z
    var = quad(lambda t: (t - mean) ** 2 * f(t), lo, hi, [peak]) / z
    np.testing.assert_allclose(post.mean(), [mean], rtol=1e-6)
    np.testing.assert_allclose(post.var(), [var], rtol=1e-6)
    np.testing.assert_allclose(post.cov(), [[var]], rtol=1e-6)
    # the normalised density, normalising constant from the quadrature
    pts = mean + np.sqrt(var) * np.array([-2.0, -0.5, 0.0, 1.0, 2.5])
    brute = np.array([log_joint(t) for t in pts]) - shift - np.log(z)
    np.testing.assert_allclose(post.log_prob(pts[:, None]), brute, rtol=0, atol=1e-6)


def test_dirichlet_moments_match_2d_integration():
    post = DirichletCategorical(DIR_PRIOR).posterior(DIR_X)
    alpha = DIR_PRIOR

    def joint(t2, t1):  # θ = (t1, t2, 1 − t1 − t2); prior × likelihood with its constant
        t = np.array([t1, t2, max(1.0 - t1 - t2, 0.0)])
        log_prior = gammaln(alpha.sum()) - gammaln(alpha).sum() + np.sum((alpha - 1) * np.log(t))
        return np.exp(log_prior + np.sum(np.bincount(DIR_X, minlength=3) * np.log(t)))

    def integral(g):
        value, _ = integrate.dblquad(
            lambda t2, t1: g(t1, t2) * joint(t2, t1),
            0,
            1,
            0,
            lambda t1: 1 - t1,
            epsabs=0,
            epsrel=1e-10,
        )
        return value

    z = integral(lambda t1, t2: 1.0)
    m1, m2 = integral(lambda t1, t2: t1) / z, integral(lambda t1, t2: t2) / z
    mean = np.array([m1, m2, 1 - m1 - m2])
    v1 = integral(lambda t1, t2: (t1 - m1) ** 2) / z
    v3 = integral(lambda t1, t2: (1 - t1 - t2 - mean[2]) ** 2) / z
    c12 = integral(lambda t1, t2: (t1 - m1) * (t2 - m2)) / z
    np.testing.assert_allclose(post.mean(), mean, rtol=1e-6)
    np.testing.assert_allclose(post.var()[[0, 2]], [v1, v3], rtol=1e-6)
    np.testing.assert_allclose(post.cov()[0, 1], c12, rtol=1e-6)
    np.testing.assert_allclose(np.diag(post.cov()), post.var(), rtol=1e-12)
    # log p(θ | x) = log p(θ) + log p(x | θ) − log Z at a point
    t = np.array([0.3, 0.5, 0.2])
    np.testing.assert_allclose(post.log_prob(t), np.log(joint(t[1], t[0]) / z), atol=1e-6)


@pytest.mark.parametrize("name", SCALAR)
def test_posterior_matches_scipy(name):
    model, x, *_, expected, _ = CASES[name]
    post = model.posterior(x)
    pts = expected.ppf([0.01, 0.2, 0.5, 0.8, 0.99])
    np.testing.assert_allclose(post.log_prob(pts[:, None]), expected.logpdf(pts), rtol=1e-10)
    np.testing.assert_allclose(post.mean(), [expected.mean()], rtol=1e-12)
    np.testing.assert_allclose(post.var(), [expected.var()], rtol=1e-12)


def test_dirichlet_matches_scipy():
    post = DirichletCategorical(DIR_PRIOR).posterior(DIR_X)
    np.testing.assert_array_equal(post.model.concentration, DIR_POST)
    pts = np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [1 / 3, 1 / 3, 1 / 3]])
    expected = stats.dirichlet(DIR_POST)
    np.testing.assert_allclose(post.log_prob(pts), expected.logpdf(pts.T), rtol=1e-10)
    np.testing.assert_allclose(post.mean(), expected.mean(), rtol=1e-12)
    np.testing.assert_allclose(post.var(), expected.var(), rtol=1e-12)
    assert post.log_prob([0.5, 0.6, -0.1]) == -np.inf  # off the simplex
    assert post.log_prob([0.5, 0.6, 0.1]) == -np.inf


@pytest.mark.parametrize("name", SCALAR)
def test_log_likelihood_matches_formula(name):
    model, x, _, log_lik, (lo, hi), *_ = CASES[name]
    thetas = lo + (hi - lo) * np.array([0.1, 0.37, 0.5, 0.8])
    got = model.log_likelihood(thetas, x)
    assert got.shape == (4,)
    np.testing.assert_allclose(got, [log_lik(t, x.astype(float)) for t in thetas], rtol=1e-10)


def test_dirichlet_log_likelihood():
    model = DirichletCategorical(DIR_PRIOR)
    thetas = np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
    expected = [np.sum(np.log(t[DIR_X])) for t in thetas]
    np.testing.assert_allclose(model.log_likelihood(thetas, DIR_X), expected, rtol=1e-12)


def test_gamma_parameterisations_agree():
    x = CASES["poisson_rate"][1]
    by_rate = GammaPoisson(2.5, rate=0.8).posterior(x)
    by_scale = GammaPoisson(2.5, scale=1.25).posterior(x)
    assert repr(by_rate.model) == "GammaPoisson(shape=19.5, rate=7.8)"
    assert repr(by_scale.model).startswith("GammaPoisson(shape=19.5, scale=0.128")
    np.testing.assert_allclose(by_scale.model.rate, by_rate.model.rate, rtol=1e-14)
    np.testing.assert_allclose(by_scale.model.scale, 1 / 7.8, rtol=1e-14)
    t = np.array([[1.5], [2.5], [3.0]])
    np.testing.assert_allclose(by_rate.log_prob(t), by_scale.log_prob(t), rtol=1e-12)
    np.testing.assert_allclose(by_rate.sample(50, seed=3), by_scale.sample(50, seed=3), rtol=1e-12)
    pred_r, pred_s = by_rate.predictive(), by_scale.predictive()
    np.testing.assert_allclose(pred_r.pmf(np.arange(8)), pred_s.pmf(np.arange(8)), rtol=1e-12)


@pytest.mark.parametrize("name", SCALAR)
def test_sequential_update_equals_batch(name):
    model, x, *_ = CASES[name]
    one = model.update(x)
    two = model.update(x[:2]).update(x[2:])
    for key in one._params:
        np.testing.assert_allclose(getattr(two, key), getattr(one, key), rtol=1e-12)
    assert repr(model.update([])) == repr(model)  # no data: posterior = prior


N_MC = 200_000


def assert_within_5se(value, samples):
    se = samples.std() / np.sqrt(samples.size)
    assert abs(value - samples.mean()) <= 5 * se, (value, samples.mean(), se)


def check_var(pred_var, draws):
    dev = draws - draws.mean()
    s2 = np.mean(dev**2)
    se = np.sqrt((np.mean(dev**4) - s2**2) / draws.size)
    assert abs(pred_var - s2) <= 5 * se, (pred_var, s2, se)


@pytest.mark.parametrize("name", SCALAR)
def test_predictive_matches_monte_carlo(name):
    model, x, *_, simulate = CASES[name]
    post = model.posterior(x)
    theta = post.sample(N_MC, seed=11)[:, 0]
    draws = simulate(np.random.default_rng(12), theta)
    pred = post.predictive()
    assert_within_5se(pred.mean(), draws)
    check_var(pred.var(), draws)
    if name == "normal":
        for v in np.quantile(draws, [0.1, 0.5, 0.9]):
            assert_within_5se(pred.cdf(v), (draws <= v).astype(float))
    else:
        for v in np.unique(np.quantile(draws, [0.1, 0.3, 0.5, 0.7, 0.9])):
            assert_within_5se(pred.pmf(v), (draws == v).astype(float))


def test_dirichlet_predictive_matches_monte_carlo():
    post = DirichletCategorical(DIR_PRIOR).posterior(DIR_X)
    theta = post.sample(N_MC, seed=11)
    u = np.random.default_rng(12).random(N_MC)
    draws = (u[:, None] > np.cumsum(theta, axis=1)).sum(1).astype(float)
    pred = post.predictive()
    for k in range(3):
        assert_within_5se(pred.pmf(k), (draws == k).astype(float))
    assert_within_5se(pred.mean(), draws)
    check_var(pred.var(), draws)
    np.testing.assert_allclose(pred.pmf([0, 1, 2]), DIR_POST / DIR_POST.sum(), rtol=1e-12)


@pytest.mark.parametrize("name", SCALAR)
def test_map_is_the_mode(name):
    model, x, *_, expected, _ = CASES[name]
    post = model.posterior(x)
    mode = post.map()
    assert mode.shape == (1,)
    step = 1e-4 * expected.std()
    lp = post.log_prob(mode[0] + np.array([-step, 0.0, step])[:, None])
    assert lp[1] > lp[0] and lp[1] > lp[2]


def test_boundary_and_undefined_modes():
    assert ConjugatePosterior(BetaBernoulli(1.0, 3.0), []).map()[0] == 0.0
    assert ConjugatePosterior(BetaBernoulli(3.0, 0.5), []).map()[0] == 1.0
    assert GammaPoisson(0.5, rate=1.0).posterior([]).map()[0] == 0.0
    with pytest.raises(ValueError, match="map"):
        BetaBernoulli(0.5, 0.5).posterior([]).map()
    with pytest.raises(ValueError, match="map"):
        DirichletCategorical([1.0, 2.0, 3.0]).posterior([]).map()
    mode = DirichletCategorical(DIR_PRIOR).posterior(DIR_X).map()
    np.testing.assert_allclose(mode, (DIR_POST - 1) / (DIR_POST.sum() - 3), rtol=1e-12)


def test_sample_shapes_and_seeds():
    post = BetaBinomial(1.0, 1.0, trials=4).posterior([1, 2, 3])
    a = post.sample(7, seed=5)
    assert a.shape == (7, 1) and np.all((a > 0) & (a < 1))
    np.testing.assert_array_equal(a, post.sample(7, seed=5))
    assert not np.array_equal(a, post.sample(7, seed=6))
    assert post.sample(0).shape == (0, 1)
    assert post.log_prob(a).shape == (7,)
    assert post.log_prob([0.5]).shape == ()
    assert np.shape(post.log_prob(0.5)) == ()
    d = DirichletCategorical([1.0, 2.0, 3.0, 4.0]).posterior([0, 3, 3])
    s = d.sample(6, seed=1)
    assert s.shape == (6, 4)
    np.testing.assert_allclose(s.sum(1), 1.0, rtol=1e-12)
    assert d.log_prob(s).shape == (6,) and np.all(np.isfinite(d.log_prob(s)))
    assert d.cov().shape == (4, 4) and d.mean().shape == (4,)
    assert post.normalized is True and post.model.alpha == 7.0 and post.prior.alpha == 1.0


def test_posterior_is_fixed_to_its_data():
    post = BetaBernoulli(1.0, 1.0).posterior([1, 0])
    for call in (
        lambda: post.sample(3, x=[1]),
        lambda: post.log_prob([0.5], x=[1]),
        lambda: post.map(x=[1]),
    ):
        with pytest.raises(ValueError, match="x=None"):
            call()
    with pytest.raises(ValueError, match="theta"):
        post.log_prob(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="n:"):
        post.sample(-1)
    with pytest.raises(TypeError, match="seed"):
        post.sample(3, seed=1.5)


@pytest.mark.parametrize(
    "model, x, match",
    [
        (BetaBernoulli(1.0, 1.0), [0, 2], "0..1"),
        (BetaBernoulli(1.0, 1.0), [0.5], "0..1"),
        (BetaBinomial(1.0, 1.0, trials=3), [4], "0..3"),
        (BetaBinomial(1.0, 1.0, trials=3), [-1], "0..3"),
        (BetaNegativeBinomial(1.0, 1.0, failures=2), [1.5], "non-negative integers"),
        (GammaPoisson(1.0, rate=1.0), [-2], "non-negative integers"),
        (DirichletCategorical([1.0, 1.0, 1.0]), [0, 3], "0..2"),
        (GammaPoisson(1.0, rate=1.0), [1, np.nan], "NaN"),
        (NormalNormal(0.0, 1.0, 1.0), [0.0, np.inf], "NaN or inf"),
        (NormalNormal(0.0, 1.0, 1.0), [[0.0, 1.0]], "1-d"),
        (BetaBernoulli(1.0, 1.0), ["a"], "numbers"),
    ],
)
def test_bad_x(model, x, match):
    with pytest.raises(ValueError, match=rf"^x: .*{match}"):
        model.update(x)
    with pytest.raises(ValueError, match="^x: "):
        model.posterior(x)


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda: BetaBernoulli(0.0, 1.0), "alpha"),
        (lambda: BetaBernoulli(1.0, -2.0), "beta"),
        (lambda: BetaBernoulli(np.nan, 1.0), "alpha"),
        (lambda: BetaBernoulli([1.0, 2.0], 1.0), "alpha"),
        (lambda: BetaBinomial(1.0, 1.0, trials=2.5), "trials"),
        (lambda: BetaBinomial(1.0, 1.0, trials=0), "trials"),
        (lambda: BetaNegativeBinomial(1.0, 1.0, failures=0), "failures"),
        (lambda: GammaPoisson(1.0), "rate, scale"),
        (lambda: GammaPoisson(1.0, rate=1.0, scale=1.0), "rate, scale"),
        (lambda: GammaPoisson(-1.0, rate=1.0), "shape"),
        (lambda: GammaPoisson(1.0, scale=np.inf), "scale"),
        (lambda: DirichletCategorical([1.0]), "concentration"),
        (lambda: DirichletCategorical([1.0, 0.0, 2.0]), "concentration"),
        (lambda: DirichletCategorical([[1.0, 2.0]]), "concentration"),
        (lambda: NormalNormal(np.nan, 1.0, 1.0), "mean"),
        (lambda: NormalNormal(0.0, 0.0, 1.0), "std"),
        (lambda: NormalNormal(0.0, 1.0, -1.0), "noise_std"),
        (lambda: NormalNormal("a", 1.0, 1.0), "mean"),
    ],
)
def test_bad_hyperparameters(build, name):
    with pytest.raises(ValueError, match=f"^{name}: "):
        build()


@pytest.mark.parametrize(
    "model, x",
    [
        (BetaBernoulli(1.0, 2.0), [1, 0, 1]),
        (BetaBinomial(2.0, 3.0, trials=5), [1, 4]),
        (BetaNegativeBinomial(2.0, 3.0, failures=2.5), [0, 3]),
        (GammaPoisson(2.0, rate=0.5), [3, 1]),
        (GammaPoisson(2.0, scale=0.5), [3, 1]),
        (DirichletCategorical([1.0, 2.0, 0.5]), [0, 2, 2]),
        (NormalNormal(-1.0, 2.0, 0.5), [0.3, -0.7]),
    ],
)
def test_save_and_load_without_pickle(tmp_path, model, x):
    import lfi

    post = model.posterior(x)
    path = tmp_path / "post.lfi"
    post.save(str(path))
    back = lfi.load(str(path))
    assert isinstance(back, ConjugatePosterior) and repr(back.model) == repr(post.model)
    theta = post.sample(5, seed=0)
    np.testing.assert_array_equal(back.log_prob(theta), post.log_prob(theta))
    np.testing.assert_array_equal(back.sample(5, seed=0), theta)


def test_load_names_an_unknown_model(tmp_path):
    from lfi.posteriors.io import write_archive

    path = tmp_path / "odd.lfi"
    write_archive(path, {"class": "ConjugatePosterior", "model": {"kind": "Exec"}}, {"x": [1.0]})
    with pytest.raises(ValueError, match="unknown conjugate model 'Exec'"):
        ConjugatePosterior.load(str(path))
    import lfi

    for model, match in [
        ({"kind": "BetaBernoulli", "alpha": "a", "beta": 1.0}, "alpha"),
        ({"kind": "BetaBernoulli", "alpha": 1.0}, "not a valid"),
        ({"kind": "BetaBernoulli", "alpha": 1.0, "beta": 1.0, "gamma": 2}, "not a valid"),
        ("BetaBernoulli", "holds no conjugate model"),
    ]:
        write_archive(path, {"class": "ConjugatePosterior", "model": model}, {"x": [1.0]})
        with pytest.raises(ValueError, match=match):
            lfi.load(str(path))


def test_save_refuses_a_subclass(tmp_path):
    class Mine(BetaBernoulli):
        pass

    with pytest.raises(TypeError, match="Mine"):
        Mine(1.0, 1.0).posterior([1]).save(str(tmp_path / "p.lfi"))
