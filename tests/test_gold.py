"""Mining gold: autodiff joint score/ratio vs closed forms, the tasks' exact likelihoods, every
method through one contract, the frequentist tools against closed forms, and clear errors."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import chi2

import lfi
from lfi import frequentist as fq
from lfi.augment import run_augmented
from lfi.methods.mining import GOLD_METHODS
from lfi.tasks import get

TOY, GALTON = get("madminer_toy"), get("galton")


# --- augmentation vs closed forms ------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_toy_joint_score_and_ratio_match_closed_forms(seed):
    key = jax.random.key(seed)
    theta, other = jnp.array([0.7]), jnp.array([-1.3])
    x, log_p, score = TOY.simulator.joint(key, theta, jnp.stack([theta, other]))
    x_lat, z = TOY.extras["simulate_with_latents"](key, theta)
    np.testing.assert_array_equal(x, x_lat)  # the same path
    lp_a, t_a = TOY.extras["joint_log_prob"](theta, z, x[0])
    lp_b, t_b = TOY.extras["joint_log_prob"](other, z, x[0])
    np.testing.assert_allclose(log_p, [lp_a, lp_b], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(score[:, 0], [t_a, t_b], rtol=1e-6, atol=1e-6)
    # the joint score is (z − θ)/σ_z², not MadMiner's (x − θ)/σ_z²
    np.testing.assert_allclose(score[0, 0], (z - 0.7) / 4.0, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_galton_joint_score_and_ratio_match_closed_forms(seed):
    key = jax.random.key(seed)
    theta, other = jnp.array([-0.8]), jnp.array([-0.6])
    x, log_p, score = GALTON.simulator.joint(key, theta, jnp.stack([theta, other]))
    x_lat, z = GALTON.extras["simulate_with_latents"](key, theta)
    np.testing.assert_array_equal(x, x_lat)
    assert z.shape == (20,) and set(np.unique(z)) <= {0.0, 1.0}
    lp_a, t_a = GALTON.extras["joint_log_prob"](theta, z)
    lp_b, t_b = GALTON.extras["joint_log_prob"](other, z)
    np.testing.assert_allclose(log_p, [lp_a, lp_b], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(score[:, 0], [t_a, t_b], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_chain_joint_score_and_ratio_match_closed_forms(seed):
    chain = get("particle_chain")
    key = jax.random.key(seed)
    theta, other = jnp.array([1.2]), jnp.array([2.0])
    x, log_p, score = chain.simulator.joint(key, theta, jnp.stack([theta, other]))
    x_lat, z = chain.extras["simulate_with_latents"](key, theta)
    np.testing.assert_array_equal(x, x_lat)
    for i, th in enumerate((theta, other)):
        lp, t = chain.extras["joint_log_prob"](th, z, x)
        np.testing.assert_allclose(log_p[i], lp, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(score[i, 0], t, rtol=1e-5, atol=1e-5)


def test_chain_quadrature_likelihood_is_a_density_with_the_simulated_mean():
    """∫ p(x | θ) dx = 1 on a grid, and E[x] under it matches 100 000 simulations within 5
    Monte Carlo standard errors (plus the grid's resolution)."""
    chain = get("particle_chain")
    e, m = np.linspace(-2, 7, 181), np.linspace(-5, 30, 176)
    grid_x = np.stack(np.meshgrid(e, m, indexing="ij"), -1).reshape(-1, 2)
    p = np.exp(np.asarray(chain.log_likelihood(np.full((len(grid_x), 1), 1.5), grid_x)))
    cell = (e[1] - e[0]) * (m[1] - m[0])
    assert abs(p.sum() * cell - 1) < 2e-3
    mean = (p[:, None] * grid_x).sum(0) * cell
    xs = np.asarray(chain.simulate(np.full((100_000, 1), 1.5), seed=0))
    se = xs.std(0) / np.sqrt(len(xs))
    assert np.all(np.abs(xs.mean(0) - mean) < 5 * se + 2e-3), (xs.mean(0), mean)


def test_lotka_volterra_joint_score_matches_finite_differences_along_the_path():
    """log p(x, z | θ) re-evaluated along one Gillespie path at θ ± h e_j; central differences
    in float32 (log p ≈ 1.6e4: rounding ±0.002/2h) with h = 0.02 (truncation h²/6 · ∂³ ≈ 0.3
    for ~5000 events) agree with autodiff to within 1 + 3%."""
    lv = get("lotka_volterra_gillespie")
    key, theta = jax.random.key(0), jnp.log(jnp.array([0.01, 0.5, 1.0, 0.01]))
    _, _, score = lv.simulator.joint(key, theta, theta[None])
    h = 0.02
    for j in range(4):
        e = jnp.zeros(4).at[j].set(h)
        _, lps, _ = lv.simulator.joint(key, theta, jnp.stack([theta + e, theta - e]))
        fd = float(lps[0] - lps[1]) / (2 * h)
        assert abs(fd - float(score[0, j])) <= 1 + 0.03 * abs(float(score[0, j])), (j, fd)


def test_primitives_outside_augmentation_are_plain_samplers():
    key = jax.random.key(0)
    z, lp = lfi.augment.normal(key, 1.0, 2.0, (3,))
    np.testing.assert_allclose(z, 1.0 + 2.0 * jax.random.normal(key, (3,)), rtol=1e-6)
    expected = -0.5 * ((z - 1.0) / 2.0) ** 2 - np.log(2.0) - 0.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(lp, expected.sum(), rtol=1e-6)
    k, lp_k = lfi.augment.poisson(key, 3.0)
    np.testing.assert_allclose(
        lp_k, k * np.log(3.0) - 3.0 - np.log(np.prod(np.arange(1, k + 1))), rtol=1e-5
    )


def test_galton_probabilities_match_simulation():
    p = np.asarray(GALTON.extras["probabilities"](-0.7), np.float64)
    assert abs(p.sum() - 1) < 1e-5 and np.all(p >= 0)
    n = 40_000
    x = np.asarray(GALTON.simulate(np.full((n, 1), -0.7), seed=0))[:, 0].astype(int)
    freq = np.bincount(x, minlength=31) / n
    sd = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(freq - p) <= 5 * sd + 1e-12)  # 5 binomial sd per bin


def test_simulate_gold_rows_and_seeds():
    a = lfi.simulate_gold(TOY.simulator, TOY.prior, 101, [0.0], seed=3, progress=False)
    b = lfi.simulate_gold(TOY.simulator, TOY.prior, 101, [0.0], seed=3, progress=False)
    c = lfi.simulate_gold(TOY.simulator, TOY.prior, 101, [0.0], seed=4, progress=False)
    assert a.x.shape == (101, 1) and a.score.shape == (101, 1) and a.log_r.shape == (101,)
    assert int((a.y == 0).sum()) == 51 and int((a.y == 1).sum()) == 50
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.log_r, b.log_r)
    assert not np.allclose(a.x, c.x)
    # the sign convention, log r = log p(x, z | θ) − log p(x, z | θ_ref): rows drawn at θ_ref
    # have E[r] = 1 and rows drawn at θ have E[1/r] = 1 (importance weights; 4 standard errors)
    big = lfi.simulate_gold(TOY.simulator, TOY.prior, 8000, [0.0], seed=5, progress=False)
    for label, w in ((1, np.exp(big.log_r)), (0, np.exp(-big.log_r))):
        w = w[big.y == label].astype(np.float64)
        assert abs(w.mean() - 1) < 4 * w.std() / np.sqrt(len(w)), (label, w.mean())
    d = lfi.simulate(
        TOY.simulator, TOY.prior, 50, seed=0, augmented=True, theta_ref=[0.5], progress=False
    )
    assert d.log_r.shape == (50,) and np.all(d.y == 0)


def test_run_augmented_shapes_and_errors():
    x, lp, score = run_augmented(
        GALTON.simulator, np.full((4, 1), -0.7), np.full((4, 3, 1), -0.7), seed=0, progress=False
    )
    assert x.shape == (4, 1) and lp.shape == (4, 3) and score.shape == (4, 3, 1)
    with pytest.raises(ValueError, match="theta_sample, theta_eval"):
        run_augmented(GALTON.simulator, np.zeros((4, 1)), np.zeros((4, 1)), progress=False)
    with pytest.raises(TypeError, match="augmented simulator"):
        lfi.simulate_gold(lambda key, th: th, TOY.prior, 10, [0.0], progress=False)
    with pytest.raises(ValueError, match="theta_ref"):
        lfi.simulate_gold(TOY.simulator, TOY.prior, 10, [5.0], progress=False)
    with pytest.raises(ValueError, match="theta_ref: only used with augmented"):
        lfi.simulate(TOY.simulator, TOY.prior, 10, theta_ref=[0.0], progress=False)


# --- every method through one contract -------------------------------------------------------

FAST = dict(max_epochs=3, progress=False)
REF = [0.0]
RATIOS = ("carl", "rolr", "rascal", "cascal", "alice", "alices")


def _fit(method, seed=0, n=300, **extra):
    ref = REF if method not in ("nde", "scandal") else None
    return lfi.infer(TOY.simulator, TOY.prior, method, n, seed=seed, theta_ref=ref, **FAST, **extra)


@pytest.fixture(scope="module", params=GOLD_METHODS)
def trained(request):
    return request.param, _fit(request.param)


def _values(method, est):
    x = np.array([[0.3], [-1.0]], np.float32)
    if method in ("sally", "sallino"):
        return np.asarray(est.summary(x) if method == "sally" else est.sallino(x, [1.0]))
    return np.asarray(est.log_ratio(x[:1], [[0.5], [-0.5], [1.0]]))


def test_shapes_and_finiteness(trained):
    method, est = trained
    v = _values(method, est)
    expected = {"sally": (2, 1), "sallino": (2,)}.get(method, (3,))
    assert v.shape == expected and np.all(np.isfinite(v))
    if method not in ("sally", "sallino"):
        assert np.asarray(est.log_ratio([0.3], [[4.0]]))[0] == -np.inf  # outside the prior
        assert len(est.history.val_loss) == 3


def test_training_is_reproducible(trained):
    method, est = trained
    np.testing.assert_allclose(_values(method, _fit(method)), _values(method, est), rtol=1e-5)
    assert not np.allclose(_values(method, _fit(method, seed=1)), _values(method, est))


def test_gradient_in_theta_is_finite(trained):
    method, est = trained
    if method in ("sally", "sallino"):
        return
    h = 1e-2
    up, down = (np.asarray(est.log_ratio([0.3], [[0.5 + s]])) for s in (h, -h))
    assert np.isfinite((up - down) / (2 * h)).all()


def test_save_load_round_trip(trained, tmp_path):
    method, est = trained
    if method in ("sally", "sallino"):
        pytest.skip("SALLY is a summary function; it is not saved as a model file")
    path = tmp_path / "est.lfi"
    est.save(str(path))
    back = lfi.load(str(path))
    assert type(back) is type(est)
    np.testing.assert_allclose(_values(method, back), _values(method, est), rtol=1e-6)


@pytest.mark.parametrize("method", RATIOS)
def test_ratio_methods_give_a_posterior(method):
    est = _fit(method)
    post = est.posterior(num_chains=4, num_warmup=20)
    s = np.asarray(post.sample(40, x=[0.3], seed=0))
    assert s.shape == (40, 1) and bool(np.all(TOY.prior.in_support(s)))


def test_anchored_ratio_is_zero_at_the_reference():
    x = [[0.3], [2.0], [-4.0]]
    est = _fit("alice")
    np.testing.assert_allclose(est.log_ratio(x, [REF]), 0.0, atol=1e-5)
    assert abs(float(est.log_ratio(x, [[1.0]])[0])) > 1e-3
    free = _fit("alice", anchored=False)
    assert abs(float(free.log_ratio(x, [REF])[0])) > 1e-5


# --- errors ------------------------------------------------------------------------------------


def test_methods_name_what_the_data_lacks():
    theta, x = lfi.simulate(TOY.simulator, TOY.prior, 100, seed=0, progress=False)
    y = (np.arange(100) >= 50).astype(np.float32)
    plain = lfi.GoldData(theta, x, None, None, y)
    for method, missing in (
        ("rolr", "log_r"),
        ("rascal", "log_r"),
        ("alice", "log_r"),
        ("cascal", "score"),
    ):
        with pytest.raises(ValueError, match=f"data.{missing}: method '{method}' needs"):
            lfi.GoldRatio(TOY.prior, REF, method, **FAST).fit(plain)
    lfi.GoldRatio(TOY.prior, REF, "carl", **FAST).fit(plain)  # CARL needs only x and y
    with pytest.raises(ValueError, match="data.score: method 'scandal' needs"):
        lfi.SCANDAL(TOY.prior, 1.0, **FAST).fit(plain)
    with pytest.raises(ValueError, match="data.y"):
        lfi.GoldRatio(TOY.prior, REF, "carl", **FAST).fit(lfi.GoldData(theta, x, None))
    with pytest.raises(TypeError, match="GoldData"):
        lfi.GoldRatio(TOY.prior, REF, "carl", **FAST).fit((theta, x))
    with pytest.raises(ValueError, match="method: expected one of"):
        lfi.GoldRatio(TOY.prior, REF, "rascl")
    with pytest.raises(ValueError, match="alpha"):
        lfi.GoldRatio(TOY.prior, REF, "rascal", alpha=-1.0)
    with pytest.raises(ValueError, match="theta_ref: method 'rascal'"):
        lfi.infer(TOY.simulator, TOY.prior, "rascal", 50, progress=False)
    with pytest.raises(ValueError, match="bins=31 needs integers"):
        data = lfi.simulate(TOY.simulator, TOY.prior, 50, seed=0, augmented=True, progress=False)
        lfi.SCANDAL(TOY.prior, 1.0, bins=31, **FAST).fit(data)


def test_nonfinite_rows_are_counted():
    data = lfi.simulate_gold(TOY.simulator, TOY.prior, 200, REF, seed=0, progress=False)
    data.log_r[:6] = np.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lfi.GoldRatio(TOY.prior, REF, "rascal", **FAST).fit(data)
    assert any("excluded 6 of 200" in str(w.message) for w in caught)


# --- quality: the score helps, against the exact ratio ----------------------------------------


def test_scandal_beats_nde_on_galton():
    """Categorical densities on 1000 Galton runs: the joint score (α = 1) cuts the error of
    log r̂(x | −0.8, −0.6) several-fold (the paper's Fig. 3; measured 0.026 → 0.002)."""
    p0 = np.asarray(GALTON.extras["probabilities"](-0.8), np.float64)
    p1 = np.asarray(GALTON.extras["probabilities"](-0.6), np.float64)
    ok = (p0 > 0) & (p1 > 0)
    nails = np.arange(31.0)[ok][:, None]
    exact = np.log(p0[ok]) - np.log(p1[ok])
    data = lfi.simulate(
        GALTON.simulator, GALTON.prior, 1000, seed=0, augmented=True, progress=False
    )
    errors = {}
    for alpha in (0.0, 1.0):
        est = lfi.SCANDAL(GALTON.prior, alpha, bins=31, progress=False).fit(data, seed=0)
        ll = np.array([np.asarray(est.log_likelihood(x, [[-0.8], [-0.6]])) for x in nails])
        errors[alpha] = float(np.sum(p1[ok] * (ll[:, 0] - ll[:, 1] - exact) ** 2))
    assert errors[1.0] < errors[0.0] / 3, errors


# --- frequentist tools -------------------------------------------------------------------------


def test_exact_gaussian_mle_and_wilks_interval():
    """x_i ~ N(θ, 5): the MLE is the mean, q(θ) = n (θ − x̄)²/5 exactly, so the Wilks set is
    x̄ ± sqrt(5 c / n) with c the χ²₁ quantile."""
    exact = fq.ExactLikelihood(TOY)
    x = np.asarray(TOY.simulate(np.full((400, 1), 0.5), seed=1))
    g = fq.grid(-3.0, 3.0, 1201)
    assert abs(fq.mle(exact, x, g)[0] - x.mean()) < 1e-3
    q = fq.q_statistic(exact, x, g)
    np.testing.assert_allclose(q, 400 * (g[:, 0] - x.mean()) ** 2 / 5, atol=2e-3)
    for level in (0.68, 0.95):
        lo, hi = fq.confidence_set(exact, x, g, level=level).interval()
        half = np.sqrt(5 * chi2.ppf(level, 1) / 400)
        assert abs(lo - (x.mean() - half)) <= 0.005 and abs(hi - (x.mean() + half)) <= 0.005


def test_interval_ends_interpolate_between_grid_points():
    """On a coarse grid (step h = 0.1) the interval ends of the exact Gaussian q(θ) = n(θ − x̄)²/5
    are where its linear interpolation crosses c: off by at most q''h²/8 / |q'| at the end
    (q'' = 2n/5), against up to h for the last accepted grid point."""
    exact = fq.ExactLikelihood(TOY)
    x = np.asarray(TOY.simulate(np.full((400, 1), 0.5), seed=1))
    g = fq.grid(-3.0, 3.0, 61)
    for level in (0.68, 0.95):
        lo, hi = fq.confidence_set(exact, x, g, level=level).interval()
        c = chi2.ppf(level, 1)
        half = np.sqrt(5 * c / 400)
        slope = 2 * 400 * half / 5
        tol = (2 * 400 / 5) * 0.1**2 / 8 / slope + 1e-3  # + the MLE's parabola refinement
        assert abs(lo - (x.mean() - half)) <= tol and abs(hi - (x.mean() + half)) <= tol


def test_log_likelihood_sums_in_float64_and_rejects_nan():
    """2500 events in 3 chunks: ℓ (≈ −6000) equals the float64 sum of the exact per-event terms
    up to the float32 rounding inside each chunk (~1e-3; float32's spacing at 6000 is 5e-4)."""
    exact = fq.ExactLikelihood(TOY)
    x = np.asarray(TOY.simulate(np.full((2500, 1), 0.5), seed=2))
    g = fq.grid(-1.0, 1.0, 5)
    direct = np.array(
        [np.sum(-0.5 * (x[:, 0].astype(np.float64) - t) ** 2 / 5 - 0.5 * np.log(2 * np.pi * 5))
         for t in g[:, 0]]
    )  # fmt: skip
    np.testing.assert_allclose(fq.log_likelihood(exact, x, g), direct, rtol=0, atol=5e-3)

    class NaNAtOne:
        def log_ratio(self, x, theta):
            out = np.zeros(len(theta))
            out[2] = np.nan
            return out

    with pytest.raises(ValueError, match="NaN or \\+inf at 1 of 5 grid points"):
        fq.q_statistic(NaNAtOne(), x, g)


def test_neyman_critical_value_matches_chi2_for_a_gaussian_mean():
    """For a Gaussian mean q(θ_true) ~ χ²₁ exactly; the 68% quantile of 300 toys has standard
    error sqrt(.68 · .32 / 300) / f(0.99) ≈ 0.11 (f the χ²₁ density), so 4 se = 0.45."""
    exact = fq.ExactLikelihood(TOY)
    g = fq.grid(-3.0, 3.0, 601)
    i = 300  # θ = 0
    c = fq.neyman_critical_values(exact, TOY.simulator, g, 50, 0.68, 300, seed=0, points=[i])
    assert np.isnan(c[0]) and abs(c[i] - chi2.ppf(0.68, 1)) < 0.45


def test_expected_limits_and_errors():
    exact = fq.ExactLikelihood(TOY)
    g = fq.grid(-3.0, 3.0, 121)
    exp = fq.expected_limits(exact, TOY.simulator, [0.0], g, 100, 0.95, num_toys=50, seed=0)
    lo, hi = exp.interval()
    half = np.sqrt(5 * chi2.ppf(0.95, 1) / 100)
    assert lo < 0 < hi and abs((hi - lo) / 2 - half) < 0.15
    x = np.zeros((10, 1))
    with pytest.raises(ValueError, match="level"):
        fq.confidence_set(exact, x, g, level=1.5)
    with pytest.raises(ValueError, match="simulator"):
        fq.confidence_set(exact, x, g, method="neyman")
    with pytest.raises(ValueError, match="method"):
        fq.confidence_set(exact, x, g, method="bayes")
    with pytest.raises(ValueError, match="x: the events contain NaN"):
        fq.q_statistic(exact, np.full((3, 1), np.nan), g)
    with pytest.raises(ValueError, match="no tractable likelihood"):
        fq.ExactLikelihood(type("T", (), {"has_likelihood": False, "name": "t"})())
    assert fq.grid(0.0, 1.0, 4, interior=True).ravel().tolist() == [0.125, 0.375, 0.625, 0.875]


def test_scandal_on_ratio_data_conditions_reference_rows_on_theta_ref():
    """Rows drawn at θ_ref (y = 1) are (θ_ref, x) pairs for the density: training on ratio data
    and on the same rows with θ replaced by θ_ref (y = 1 rows out of the score term) agree."""
    data = lfi.simulate_gold(TOY.simulator, TOY.prior, 300, REF, seed=0, progress=False)
    a = lfi.SCANDAL(TOY.prior, 1.0, **FAST).fit(data, seed=0)
    theta = np.where(data.y[:, None] == 1, np.float32(REF[0]), data.theta)
    same = lfi.GoldData(theta, data.x, data.score, None, data.y, data.theta_ref)
    b = lfi.SCANDAL(TOY.prior, 1.0, **FAST).fit(same, seed=0)
    probe = [[0.5], [-1.0], [2.0]]
    np.testing.assert_allclose(
        a.log_likelihood([0.3], probe), b.log_likelihood([0.3], probe), rtol=1e-6
    )
    with pytest.raises(ValueError, match="data.theta_ref"):
        lfi.SCANDAL(TOY.prior, 1.0, **FAST).fit(
            lfi.GoldData(data.theta, data.x, data.score, None, data.y, None)
        )
    with pytest.raises(ValueError, match="data.y"):
        lfi.SCANDAL(TOY.prior, 1.0, **FAST).fit(
            lfi.GoldData(data.theta, data.x, data.score, None, data.y + 2, REF)
        )


def test_carl_by_name_runs_on_a_plain_simulator():
    def sim(theta, rng):  # numpy, batched: no latent path exposed
        return theta + 2.2 * rng.standard_normal(theta.shape)

    est = lfi.infer(sim, TOY.prior, "carl", 400, seed=0, theta_ref=REF, **FAST)
    assert isinstance(est, lfi.GoldRatio) and np.isfinite(est.log_ratio([0.3], [[1.0]])).all()
    with pytest.raises(TypeError, match="augmented simulator"):
        lfi.infer(sim, TOY.prior, "rascal", 100, seed=0, theta_ref=REF, **FAST)


# --- the losses' minimisers are the true ratio and score ---------------------------------------


@pytest.mark.parametrize("method", RATIOS)
def test_each_loss_is_smallest_at_the_exact_ratio(method):
    """madminer_toy: p(x | θ) = N(x; θ, 5), so log r(x | θ, θ_ref) = ((x − θ_ref)² − (x − θ)²)/10
    and ∇θ log r = t(x | θ). Each loss, on the same 20 000 rows, is lower at the exact log r
    than at it scaled by 0.8 or 1.2 (a wrong label convention, sign or score factor is not)."""
    data = lfi.simulate_gold(TOY.simulator, TOY.prior, 20_000, REF, seed=0, progress=False)
    est = lfi.GoldRatio(TOY.prior, REF, method, alpha=1.0, progress=False)
    batch, stand = est.training_batch(data)
    loss = lfi.methods.gold.gold_loss(method, 1.0)

    def scaled(c):
        def net(a, b):
            theta = TOY.prior.from_unconstrained(a * stand.theta_std + stand.theta_mean)[0]
            x = (b * stand.x_std + stand.x_mean)[0]
            return c * ((x - REF[0]) ** 2 - (x - theta) ** 2) / 10.0

        return float(loss(net, batch, jax.random.key(0)))

    at = {c: scaled(c) for c in (0.8, 1.0, 1.2)}
    assert at[1.0] < at[0.8] and at[1.0] < at[1.2], at


def test_infinite_joint_ratios_are_kept_and_unused_scores_ignored():
    data = lfi.simulate_gold(TOY.simulator, TOY.prior, 200, REF, seed=0, progress=False)
    y0, y1 = np.flatnonzero(data.y == 0), np.flatnonzero(data.y == 1)
    data.log_r[y0[:3]] = np.inf  # 1/r = 0: a valid target for a row drawn at θ
    data.score[y1[:4]] = np.nan  # rows drawn at θ_ref: the score term does not use them
    data.score[y0[3:5]] = np.nan  # used by the score term: left out of it, kept for the ratio
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batch, _ = lfi.GoldRatio(TOY.prior, REF, "rascal").training_batch(data)
    assert len(batch[0]) == 200  # no row dropped by a y-dependent rule
    assert int(np.isnan(np.asarray(batch[4])).any(1).sum()) == 6
    assert any("2 of 200 rows have a non-finite joint score" in str(w.message) for w in caught)
    assert not any("excluded" in str(w.message) for w in caught)
    assert lfi.GoldRatio(TOY.prior, REF, "rascal", **FAST).fit(data).theta_box is not None


def test_the_score_term_leaves_out_rows_without_a_score():
    from lfi.methods.gold import score_term

    rng = np.random.default_rng(0)
    g, t = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    jinv = np.broadcast_to(np.eye(2), (6, 2, 2))
    mask = np.array([1.0, 1, 1, 1, 0, 0])
    t_nan = t.copy()
    t_nan[1] = np.nan
    expected = np.sum(((t - g) ** 2)[[0, 2, 3]]) / 6
    np.testing.assert_allclose(score_term(g, t_nan, jinv, mask), expected, rtol=1e-6)


def test_bernoulli_and_poisson_scores_are_finite_at_the_edges():
    key = jax.random.key(0)
    g = jax.grad(lambda p: lfi.augment.bernoulli(key, p, (5,))[1])(1.0)
    assert np.isfinite(g)  # b = 1 always: d/dp Σ log p = 5
    np.testing.assert_allclose(g, 5.0, rtol=1e-6)
    k, lp = lfi.augment.poisson(key, 0.0, (3,))
    assert np.all(np.asarray(k) == 0) and abs(float(lp)) < 1e-5  # log 0! in float32
    g = jax.grad(lambda r: lfi.augment.poisson(key, r, (3,))[1])(0.0)
    np.testing.assert_allclose(g, -3.0)  # d/dr Σ (k log r − r) at k = 0


@pytest.mark.parametrize("projected", [False, True])
def test_sally_and_sallino_grid_posteriors_match_the_exact_one(projected):
    """x ~ N(θ, I₂), θ_ref = 0: the exact score t(x | θ_ref) = x stands in for a trained t̂, so
    only the density step is tested. With 25 events the posterior sd is 0.2; the grid posterior's
    mean from kernel densities (SALLY: of t̂; SALLINO: the ratio of h_θ's densities at θ and at
    θ_ref) is within 0.05 (a quarter sd) of the exact likelihood's on the same cells (measured:
    0.017 SALLY, 0.037 SALLINO). The unratioed p̂(h_θ | θ) puts all its mass at θ_ref, 0.5 away."""
    prior = lfi.BoxUniform([-1.5, -1.5], [1.5, 1.5])
    rng = np.random.default_rng(0)
    fit_x = rng.standard_normal((200, 2)).astype(np.float32)
    sally = lfi.SALLY(prior, [0.0, 0.0], max_epochs=1, progress=False)
    sally = sally.fit(lfi.GoldData(np.zeros((200, 2), np.float32), fit_x, fit_x), seed=0)
    sally.summary = lambda x: jnp.asarray(np.asarray(x, np.float32))  # the exact score at 0
    events = np.array([0.5, -0.3]) + rng.standard_normal((25, 2))

    def simulator(key, theta):
        return theta + jax.random.normal(key, theta.shape)

    post = sally.grid_posterior(simulator, events, projected=projected, grid_size=21,
                                per_point=1000, seed=1, progress=False)  # fmt: skip
    exact_ll = -0.5 * ((events[None] - post.centres[:, None]) ** 2).sum((1, 2))
    exact = lfi.methods.density.GridPosterior(prior, post.edges, exact_ll, x_o=events)
    mean = lambda p: np.exp(p.log_mass) @ p.centres  # noqa: E731
    assert np.all(np.abs(mean(post) - mean(exact)) < 0.05), (mean(post), mean(exact))
    assert post.info["num_simulations"] == 441_000 + (1000 if projected else 0)


def test_sally_summary_of_one_observation_is_one_row():
    prior = lfi.BoxUniform([-1.5, -1.5], [1.5, 1.5])
    x = np.random.default_rng(0).standard_normal((200, 2)).astype(np.float32)
    sally = lfi.SALLY(prior, [0.0, 0.0], max_epochs=1, progress=False)
    sally = sally.fit(lfi.GoldData(np.zeros((200, 2), np.float32), x, x), seed=0)
    one = np.asarray(sally.summary(x[0]))  # (dx,): one observation, not dx observations
    np.testing.assert_allclose(one, np.asarray(sally.summary(x[:1])))
    assert one.shape == (1, 2) and np.asarray(sally.sallino(x[0], [1.0, 0.0])).shape == (1,)
    with pytest.raises(ValueError, match="x: expected shape"):
        sally.summary(np.zeros((4, 3)))


def test_sally_saves_and_loads_without_pickle(tmp_path):
    prior = lfi.BoxUniform([-1.5, -1.5], [1.5, 1.5])
    x = np.random.default_rng(0).standard_normal((200, 2)).astype(np.float32)
    sally = lfi.SALLY(prior, [0.0, 0.0], max_epochs=1, width=8, progress=False)
    sally = sally.fit(lfi.GoldData(np.zeros((200, 2), np.float32), x, x), seed=0)
    sally.save(tmp_path / "sally.lfi")
    back = lfi.load(tmp_path / "sally.lfi")
    np.testing.assert_array_equal(back.summary(x[:5]), sally.summary(x[:5]))
    np.testing.assert_array_equal(back.theta_ref, sally.theta_ref)
