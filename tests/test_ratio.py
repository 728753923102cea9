"""The likelihood-ratio trick and CARL against closed-form ratios; save/load, seeds, errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lfi
from lfi.methods.ratio import CARL, ClassifierRatio, simulate_carl_data

# Two hypotheses in 1-d: p(x | θ0) = N(0, 1), p(x | θ1) = N(1, 1), so
# log p(x | θ1) / p(x | θ0) = -(x - 1)²/2 + x²/2 = x - 1/2 exactly.
GRID = np.linspace(-1.5, 2.5, 81, dtype=np.float32)  # the bulk of both classes
EXACT = GRID - 0.5
QUICK = dict(batch_size=200, learning_rate=2e-3, patience=5, progress=False)


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(0)
    return rng.normal(0, 1, (10_000, 1)), rng.normal(1, 1, (5_000, 1))


@pytest.fixture(scope="module")
def ratio(samples):
    x0, x1 = samples
    return ClassifierRatio(classifier="mlp", width=32, **QUICK).fit(x0[:5000], x1, seed=0)


# Tolerances. A logistic regression on the exact features (1, x) fitted to 10^4 points would have
# standard errors ≈ 0.01 (intercept) and ≈ 0.02 (slope: Fisher information n·E[p(1-p)(x-x̄)²]
# ≈ 10^4 · 0.2 · 1.25), ≈ 0.05 at the grid's ends. The net does not know the logit is linear: it
# acts more like a local estimate, from the N_c(x) ≈ 0.4 n_c p_c(x) points of each class within
# ±0.2 of x, with log-odds error ≈ sqrt(1/N_0 + 1/N_1): 0.05 at x = 0.5, 0.11 at x = -1 and 0.18 at
# x = -1.5 (2.5 sd from class 1) for n = 5000. Pointwise we allow 3 such errors + 0.1 for the fit's
# bias (early stopping), on average 0.15 (3x the parametric error). Ignoring the class sizes
# (n0 = 2 n1) would be off by log 2 = 0.69 everywhere.
def local_error(n0, n1):
    density = lambda mean: np.exp(-0.5 * (GRID - mean) ** 2) / math.sqrt(2 * math.pi)
    return np.sqrt(1 / (0.4 * n0 * density(0.0)) + 1 / (0.4 * n1 * density(1.0)))


def check_against_exact(log_ratio, n0, n1):
    err = np.abs(np.asarray(log_ratio) - EXACT)
    assert err.mean() < 0.15, err.mean()
    bound = 3 * local_error(n0, n1) + 0.1
    assert np.all(err < bound), GRID[err >= bound]


def test_ratio_matches_closed_form(ratio):
    check_against_exact(ratio.log_ratio(GRID), 5000, 5000)  # measured: mean 0.02, max 0.06
    assert ratio.log_ratio(GRID[:, None]).shape == (81,)
    assert ratio.log_ratio([0.5]).shape == (1,)


def test_unequal_class_sizes_are_corrected(samples):
    x0, x1 = samples  # n0 = 10 000 = 2 n1
    fitted = ClassifierRatio(classifier="mlp", width=32, **QUICK).fit(x0, x1, seed=1)
    assert fitted.offset == pytest.approx(math.log(0.5))
    corrected = np.asarray(fitted.log_ratio(GRID))
    check_against_exact(corrected, 10_000, 5000)  # measured: mean 0.04, max 0.14
    raw_logit = corrected + fitted.offset  # what the classifier outputs, log 2 too low
    assert np.abs(raw_logit - EXACT).mean() > 0.5


def test_ratio_save_load_seeds_and_errors(ratio, samples, tmp_path):
    path = tmp_path / "ratio.lfi"
    ratio.save(path)
    back = ClassifierRatio.load(path)
    np.testing.assert_array_equal(back.log_ratio(GRID), ratio.log_ratio(GRID))
    assert back.history.best_epoch == ratio.history.best_epoch
    with pytest.raises(ValueError, match="path: holds a ClassifierRatio, not a CARL"):
        CARL.load(path)
    # a file whose z-scoring does not fit the classifier's inputs is refused (it was broadcast)
    from lfi.posteriors.io import read_archive, write_archive

    config, arrays = read_archive(path)
    config = {k: v for k, v in config.items() if k not in ("format", "version")}
    wide = {k: np.repeat(arrays[k], 2) for k in ("stand_0002", "stand_0003")}  # 2-d x stats
    write_archive(tmp_path / "bad.lfi", config, {**arrays, **wide})
    with pytest.raises(ValueError, match="z-scoring"):
        ClassifierRatio.load(tmp_path / "bad.lfi")

    # (the small fits share one shape, 493 + 500 rows, so the training epoch compiles once)
    x0, x1 = samples[0][:500], samples[1][:500]
    small = ClassifierRatio(classifier="mlp", width=8, max_epochs=3, progress=False)
    a, b, c = (small.fit(x0[7:], x1, seed=s).log_ratio(GRID) for s in (5, 5, 6))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert small.history is not None and small.net is None  # fit returns a fitted copy

    bad = x0.copy()
    bad[:7] = np.nan
    with pytest.warns(UserWarning, match="x0: excluded 7 of 500"):
        small.fit(bad, x1, seed=0)
    with pytest.raises(ValueError, match=r"x1: expected shape \(n, 1\)"):
        small.fit(x0, np.zeros((10, 2)))
    with pytest.raises(ValueError, match="x0: need at least 5"), pytest.warns(UserWarning):
        small.fit(np.full((9, 1), np.inf), x1)
    with pytest.raises(ValueError, match=r"x: expected shape \(n, 1\)"):
        ratio.log_ratio(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="x: contains NaN"):
        ratio.log_ratio([np.nan])
    with pytest.raises(ValueError, match="classifier"):
        ClassifierRatio(classifier="svm")
    with pytest.raises(ValueError, match=r"options: unknown \['hidden'\]"):
        ClassifierRatio(hidden=3)
    with pytest.raises(RuntimeError, match="not fitted"):
        ClassifierRatio().log_ratio(GRID)


# gaussian_linear as in sbibm, in 2-d for speed: θ ~ N(0, 0.1 I), x | θ ~ N(θ, 0.1 I), θ_ref = 0:
# log p(x | θ) / p(x | 0) = (|x|² - |x - θ|²) / 0.2 = (2 x·θ - |θ|²) / 0.2 per trial, so for k
# i.i.d. trials the MLE is their mean x̄ and the likelihood has sd sqrt(0.1 / k) per coordinate.
VAR, DIM = 0.1, 2
SD = math.sqrt(VAR)


def gaussian(key, theta):
    return theta + SD * jax.random.normal(key, theta.shape)


def exact_log_ratio(x, theta):
    x, theta = np.atleast_2d(x), np.atleast_2d(theta)
    return (2 * theta @ x.sum(0) - len(x) * np.sum(theta**2, 1)) / (2 * VAR)


@pytest.fixture(scope="module")
def carl():
    prior = lfi.Normal(jnp.zeros(DIM), SD * jnp.ones(DIM))
    data = simulate_carl_data(gaussian, prior, [0.0, 0.0], 5000, seed=0, progress=False)
    options = dict(batch_size=100, learning_rate=1e-3, patience=10, progress=False)
    return CARL(prior, [0.0, 0.0], **options).fit(*data, seed=0), data


# Observations in the bulk of the prior, from fixed θ's. Errors of the learned ratio are systematic
# in (x, θ) (the net's approximation; measured: its curvature around x̄ is 1.1-1.5x the exact one
# and its peak moves by 0.15-0.3 sd), so they do not average out over trials: the MLE is held to
# half a single-trial sd, 0.5 sqrt(0.1) ≈ 0.16, for k = 1 and k = 4 alike (for k = 4 that is one
# sd of x̄; using only the first trial would miss by ~0.87 sqrt(0.1) on average).
def test_carl_mle(carl):
    model, _ = carl
    rng = np.random.default_rng(1)
    for theta, k in [([0.1, -0.2], 1), ([-0.15, 0.05], 1), ([0.2, 0.1], 4)]:
        x = np.asarray(theta) + SD * rng.standard_normal((k, DIM))
        mle = np.asarray(model.mle(x if k > 1 else x[0], seed=0))
        err = np.abs(mle - x.mean(0))
        assert np.all(err < 0.5 * SD), (k, err / SD)  # measured 0.05-0.29 sd over 4 seeds


# The log ratio on draws of the exact posterior N(x / 2, 0.05 I), centred (MCMC and the MLE only
# see differences in θ): a constant, ignoring θ, would miss by the spread of the exact values
# (0.46 nats mean abs here); we allow half that (measured 0.09-0.15 over 4 seeds).
def test_carl_log_ratio_vs_closed_form(carl):
    model, _ = carl
    rng = np.random.default_rng(2)
    x = np.array([[0.25, -0.15]], np.float32)
    theta = x / 2 + math.sqrt(VAR / 2) * rng.standard_normal((1000, DIM))
    learned, exact = np.asarray(model.log_ratio(x, theta)), exact_log_ratio(x, theta)
    err = np.abs((learned - learned.mean()) - (exact - exact.mean())).mean()
    null = np.abs(exact - exact.mean()).mean()
    assert err < 0.5 * null, (err, null)
    # pairwise: the exact drop from θ = x to θ = x + 2 sd e_1 is (2 sd)² / 0.2 = 2 nats; the learned
    # curvature is within ±50% (measured drops 1.6-2.2 over 4 seeds)
    pair = np.asarray(model.log_ratio(x[0], np.stack([x[0], x[0] + [2 * SD, 0.0]])))
    assert 1.0 < pair[0] - pair[1] < 3.0, pair


def test_carl_trials_shapes_and_posterior(carl):
    model, _ = carl
    xs = np.array([[0.1, 0.0], [0.3, -0.2], [0.0, 0.1]], np.float32)
    theta = np.array([[0.0, 0.0], [0.1, -0.1], [0.3, 0.2], [-0.2, 0.1]], np.float32)
    total = model.log_ratio(xs, theta)
    parts = sum(model.log_ratio(xi, theta) for xi in xs)
    np.testing.assert_allclose(total, parts, atol=1e-4)  # i.i.d. trials add up
    assert total.shape == (4,) and model.log_ratio(xs, theta[0]).shape == ()
    assert model.log_ratio(xs, theta.reshape(2, 2, 2)).shape == (2, 2)
    # the posterior is prior × r̂: its unnormalised log density differs from log prior + log r̂
    # by the constant log-class-ratio offset only (so the classifier is called as (z_θ, z_x))
    post = model.posterior()
    assert post.kind == "ratio" and post.method == "carl"
    gap = post.log_prob(theta, x=xs) - model.prior.log_prob(theta) - total
    np.testing.assert_allclose(gap, np.full(4, 3 * model.offset), atol=1e-4)


def test_carl_save_load_seeds_and_errors(carl, tmp_path):
    model, (theta, x, x_ref) = carl
    path = tmp_path / "carl.lfi"
    model.save(path)
    back = CARL.load(path)
    grid = np.asarray(model.prior.sample(50, seed=3))
    x_o = [0.2, 0.1]
    np.testing.assert_array_equal(back.log_ratio(x_o, grid), model.log_ratio(x_o, grid))
    np.testing.assert_array_equal(back.theta_ref, model.theta_ref)
    u = np.asarray(model.prior.to_unconstrained(theta))  # the posterior's box: the training θ
    np.testing.assert_allclose(model.theta_box[0], u.min(0), rtol=1e-6)
    np.testing.assert_allclose(model.theta_box[1], u.max(0), rtol=1e-6)
    for a, b in zip(back.posterior().theta_box, model.posterior().theta_box):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    options = dict(max_epochs=3, width=8, learning_rate=1e-2, batch_size=20, progress=False)
    small = CARL(model.prior, [0.0, 0.0], **options)
    fits = [small.fit(theta[:300], x[:300], x_ref[:400], seed=s) for s in (5, 5, 6)]
    a, b, c = (f.log_ratio(x_o, grid) for f in fits)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert fits[0].offset == pytest.approx(math.log(300 / 400))

    prior = model.prior
    with pytest.raises(ValueError, match="theta_ref: expected 2 finite values"):
        CARL(prior, [0.0])
    with pytest.raises(ValueError, match="theta_ref: .* outside"):
        CARL(lfi.BoxUniform([0.0, 0.0], [1.0, 1.0]), [2.0, 0.5])
    with pytest.raises(TypeError, match="prior"):
        CARL("normal", [0.0, 0.0])
    with pytest.raises(ValueError, match=r"x_ref: expected shape \(n, 2\)"):
        small.fit(theta[:300], x[:300], x_ref[:300, :1])
    with pytest.raises(ValueError, match="x: expected shape"):
        small.fit(theta[:300], x[:200], x_ref[:300])
    with pytest.raises(ValueError, match=r"x: expected one observation \(2,\)"):
        model.log_ratio(np.zeros(3), grid)
    with pytest.raises(ValueError, match="theta: expected shape"):
        model.log_ratio(np.zeros(2), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="x: the observation contains NaN"):
        model.mle([np.nan, 0.0])
    with pytest.raises(ValueError, match="num_starts"):
        model.mle([0.0, 0.0], num_starts=0)


def test_carl_mle_stays_within_the_training_box(carl):
    # an observation far beyond the training θ: the network's logit keeps growing outside the
    # box it was fitted on, so the climb must stop at the box (it ran on to the prior's clip)
    model, _ = carl
    mle = model.mle(np.array([20.0, -20.0]), seed=0)
    u = np.asarray(model.prior.to_unconstrained(mle))
    low, high = (np.asarray(b) for b in model.theta_box)
    assert np.all(u >= low - 1e-4) and np.all(u <= high + 1e-4), (u, low, high)
