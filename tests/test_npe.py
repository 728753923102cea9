"""NPE end to end: against a closed-form posterior, no leakage, save/load, seeds, errors."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lfi

# gaussian_linear as in sbibm, in 3-d for speed: θ ~ N(0, 0.1 I), x | θ ~ N(θ, 0.1 I), so the
# posterior is N(x/2, 0.05 I) in closed form.
PRIOR_VAR, NOISE_VAR, DIM = 0.1, 0.1, 3
POST_VAR = 1 / (1 / PRIOR_VAR + 1 / NOISE_VAR)


def gaussian(key, theta):
    return theta + jnp.sqrt(NOISE_VAR) * jax.random.normal(key, theta.shape)


@pytest.fixture(scope="module")
def trained():
    prior = lfi.Normal(jnp.zeros(DIM), jnp.sqrt(PRIOR_VAR) * jnp.ones(DIM))
    theta, x = lfi.simulate(gaussian, prior, 3000, seed=0, progress=False)
    npe = lfi.NPE(prior, progress=False)
    return npe, npe.fit(theta, x, seed=0), (theta, x)


def test_matches_closed_form_posterior(trained):
    _, posterior, _ = trained
    x_o = np.array([0.3, -0.2, 0.1], np.float32)
    samples = np.asarray(posterior.sample(5000, x=x_o, seed=1))
    mean = x_o * POST_VAR / NOISE_VAR
    sd = np.sqrt(POST_VAR)
    # Monte-Carlo error of the sample mean is sd/sqrt(5000) = 0.014 sd: the bounds below are the
    # estimator's allowance (a quarter of a posterior sd for the mean, 20% for the sd).
    np.testing.assert_array_less(np.abs(samples.mean(0) - mean), 0.25 * sd)
    np.testing.assert_array_less(np.abs(samples.std(0) / sd - 1), 0.2)
    # the density agrees with the closed form up to the same tolerance on average
    exact = -0.5 * np.sum((samples - mean) ** 2, 1) / POST_VAR - 0.5 * DIM * np.log(
        2 * np.pi * POST_VAR
    )
    learned = np.asarray(posterior.log_prob(samples, x=x_o))
    assert abs(np.mean(exact - learned)) < 0.2  # a KL(q || p) estimate, in nats
    # map() climbs the learned density: at least as high as any of the samples. The mode of a
    # fitted density is not pinned like its mean (a flat top moves it freely: here it sat 0.55 sd
    # from the true mode while the mean was within 0.25 sd), so the second check only rules out
    # gross failures, a mode outside the posterior's bulk (one sd)
    mode = np.asarray(posterior.map(x_o))
    assert float(posterior.log_prob(mode, x=x_o)) >= learned.max() - 1e-4
    np.testing.assert_array_less(np.abs(mode - mean), sd)


def test_history_and_early_stopping(trained):
    npe, _, _ = trained
    h = npe.history
    assert len(h.train_loss) == len(h.val_loss) == len(h.epoch_seconds) > 0
    assert 0 <= h.best_epoch < len(h.val_loss)
    assert h.val_loss[h.best_epoch] == min(h.val_loss)
    # two learning-rate decays by default: the last stretch without improvement is half the
    # patience (10 epochs) at least, and the run ends on it
    assert h.stopped_early and len(h.val_loss) - 1 - h.best_epoch >= 10


def test_sample_batched_and_default_x(trained):
    _, posterior, _ = trained
    xs = np.array([[0.3, -0.2, 0.1], [0.0, 0.0, 0.0]], np.float32)
    s = posterior.sample_batched(100, xs, seed=0)
    assert s.shape == (2, 100, DIM)
    posterior.set_default_x(xs[0])
    assert posterior.sample(7).shape == (7, DIM)
    posterior.default_x = None
    with pytest.raises(ValueError, match="x: no observation"):
        posterior.sample(3)
    with pytest.raises(ValueError, match=r"x: expected one observation of shape \(3,\)"):
        posterior.sample(3, x=[1.0, 2.0])
    with pytest.raises(ValueError, match="theta"):
        posterior.log_prob(np.zeros((4, 2)), x=xs[0])


def test_save_load_round_trip(trained, tmp_path):
    _, posterior, _ = trained
    x_o = np.array([0.3, -0.2, 0.1], np.float32)
    path = tmp_path / "post.lfi"
    posterior.save(path)
    back = lfi.load(path)
    theta = posterior.sample(50, x=x_o, seed=3)
    np.testing.assert_allclose(back.log_prob(theta, x=x_o), posterior.log_prob(theta, x=x_o), 1e-6)
    np.testing.assert_array_equal(back.sample(50, x=x_o, seed=3), theta)
    with pytest.raises(ValueError, match="path"):
        (tmp_path / "junk.lfi").write_bytes(b"not a zip")
        lfi.load(tmp_path / "junk.lfi")


def test_same_seed_same_posterior(trained):
    npe, posterior, (theta, x) = trained
    small = lfi.NPE(npe.prior, progress=False, max_epochs=3)
    a = small.fit(theta[:500], x[:500], seed=5).sample(20, x=x[0], seed=0)
    b = small.fit(theta[:500], x[:500], seed=5).sample(20, x=x[0], seed=0)
    c = small.fit(theta[:500], x[:500], seed=6).sample(20, x=x[0], seed=0)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_no_leakage_outside_a_bounded_prior():
    # the likelihood is far wider than the prior: a flow on θ itself would leak mass past the bounds
    prior = lfi.BoxUniform([0.0, 0.0], [1.0, 1.0])

    def wide(key, theta):
        return theta + 2.0 * jax.random.normal(key, theta.shape)

    theta, x = lfi.simulate(wide, prior, 2000, seed=0, progress=False)
    post = lfi.NPE(prior, progress=False, max_epochs=30).fit(theta, x, seed=0)
    s = np.asarray(post.sample(20_000, x=[1.5, -0.5], seed=0))
    assert np.all((s >= 0) & (s <= 1))
    assert np.all(np.isfinite(post.log_prob(s, x=[1.5, -0.5])))
    assert float(post.log_prob([1.2, 0.5], x=[1.5, -0.5])) == -np.inf


def test_bad_training_data_is_named():
    prior = lfi.BoxUniform([0.0], [1.0])
    theta = np.linspace(0.01, 0.99, 50, dtype=np.float32)[:, None]
    with pytest.raises(ValueError, match="x: expected shape"):
        lfi.NPE(prior).fit(theta, np.zeros((49, 2)))
    with pytest.raises(ValueError, match=r"theta: expected shape \(n, 1\)"):
        lfi.NPE(prior).fit(np.zeros((50, 2)), np.zeros((50, 2)))
    with pytest.raises(ValueError, match="outside the prior"):
        lfi.NPE(prior).fit(theta + 0.5, np.zeros((50, 2)))
    with pytest.raises(ValueError, match="flow"):
        lfi.NPE(prior, flow="realnvp")
    with pytest.raises(ValueError, match="unknown"):
        lfi.NPE(prior, hidden_size=3)
    x = np.zeros((50, 2), np.float32)
    x[:5] = np.nan
    with pytest.warns(UserWarning, match="excluded 5 of 50"):
        lfi.NPE(prior, progress=False, max_epochs=1).fit(theta, x)


def test_maf_option_and_one_dim():
    prior = lfi.BoxUniform([0.0], [1.0])
    theta, x = lfi.simulate(gaussian, prior, 300, seed=0, progress=False)
    for flow in ("maf", "nsf"):
        post = lfi.NPE(prior, flow=flow, progress=False, max_epochs=2).fit(theta, x)
        assert post.sample(4, x=[0.5], seed=0).shape == (4, 1)


def test_infer_one_liner_and_unknown_method():
    prior = lfi.BoxUniform([0.0, 0.0], [1.0, 1.0])
    post = lfi.infer(
        gaussian, prior, "npe", num_simulations=300, seed=0, progress=False, max_epochs=2
    )
    assert isinstance(post, lfi.Posterior)
    assert post.sample(5, x=[0.5, 0.5]).shape == (5, 2)
    # x_o given to an amortised method becomes the posterior's default observation
    with_default = lfi.infer(gaussian, prior, "npe", num_simulations=300, seed=0, progress=False,
                             max_epochs=2, x_o=[0.5, 0.5])  # fmt: skip
    np.testing.assert_array_equal(with_default.sample(5), post.sample(5, x=[0.5, 0.5]))
    with pytest.raises(ValueError, match="valid methods are .*nle.*npe.*nre.*snpe"):
        lfi.infer(gaussian, prior, "snake_oil", num_simulations=10)


class _ExactTruncatedNormal(eqx.Module):
    """q(z_θ | z_x) of the exact posterior of θ ~ U(-1, 1), x ~ N(θ, σ²), in the z-scored
    unconstrained space of lfi's BoxUniform (the densities a balanced-NPE loss compares).
    ``shrink`` < 1 narrows it: an over-confident posterior."""

    stand: Any
    prior: Any = eqx.field(static=True)
    sigma: float = eqx.field(static=True)
    shrink: float = eqx.field(static=True, default=1.0)

    def log_prob(self, z_theta, z_x):
        import jax.scipy.stats as jss

        u = self.stand.theta_mean + self.stand.theta_std * z_theta
        theta = self.prior.from_unconstrained(u)[..., 0]
        x = (self.stand.x_mean + self.stand.x_std * z_x)[..., 0]
        s = self.sigma * self.shrink
        a, b = (-1 - x) / s, (1 - x) / s  # P(-1 < θ < 1), in the tail that keeps digits
        norm = jnp.where(
            x < 0, jss.norm.cdf(-a) - jss.norm.cdf(-b), jss.norm.cdf(b) - jss.norm.cdf(a)
        )
        log_post = jss.norm.logpdf(theta, x, s) - jnp.log(norm)
        jac = self.prior.log_det_from_unconstrained(u)
        return log_post + jac + jnp.sum(jnp.log(self.stand.theta_std))

    def sample_and_log_prob(self, key, sample_shape, condition):
        x = (self.stand.x_mean + self.stand.x_std * condition)[..., 0]
        s = self.sigma * self.shrink
        eps = jax.random.truncated_normal(key, (-1 - x) / s, (1 - x) / s, sample_shape + x.shape)
        u = self.prior.to_unconstrained((x + s * eps)[..., None])
        z = (u - self.stand.theta_mean) / self.stand.theta_std
        return z, self.log_prob(z, condition)


def _standardized_batch(prior, sigma, n):
    """n pairs θ ~ prior, x ~ N(θ, σ²) as a training loop sees them: (standardizer, batch)."""
    from lfi.posteriors.direct import Standardizer

    theta = np.asarray(prior.sample(n, seed=0))
    x = theta + sigma * np.random.default_rng(1).standard_normal(theta.shape).astype(np.float32)
    u = np.asarray(prior.to_unconstrained(theta))
    stand = Standardizer.fit(u, x)
    return stand, (stand.z_theta(jnp.asarray(u)), stand.z_x(jnp.asarray(x)))


def test_balanced_npe_penalty_vanishes_at_the_exact_posterior():
    """The Bayes-optimal classifier d = log p(θ|x) − log p(θ) is balanced:
    E_joint σ(d) + E_marginal σ(d) = 1 exactly (Delaunoy et al. 2023, arXiv:2304.10978).
    The loss's penalty at the exact posterior must be zero within Monte Carlo error, and
    clearly positive for an over-confident one: this checks the prior's density in the
    standardised unconstrained space, the shuffling and the signs."""
    from lfi.methods.npe import BalancedNPELoss

    prior, sigma, n = lfi.BoxUniform([-1.0], [1.0]), 0.3, 40_000
    stand, batch = _standardized_batch(prior, sigma, n)
    loss = BalancedNPELoss(prior, stand.theta_mean, stand.theta_std, 1.0)

    def imbalance(shrink):
        flow = _ExactTruncatedNormal(stand, prior, sigma, shrink)
        nll = -float(jnp.mean(flow.log_prob(*batch)))
        return np.sqrt(max(float(loss(flow, batch, jax.random.key(2))) - nll, 0.0))

    # each mean of σ(d) ∈ (0, 1) over n pairs has standard error <= 0.5 / sqrt(n)
    se = np.sqrt(2) * 0.5 / np.sqrt(n)
    assert imbalance(1.0) < 4 * se
    assert imbalance(0.5) > 10 * se


def test_calibration_penalty_vanishes_at_the_exact_posterior():
    """At the exact posterior the HPD levels a_i of the true θ are U(0, 1), so the penalty (the
    mean squared distance of their sorted values to the uniform quantiles) is about W²/n, with
    W² Cramér-von Mises' statistic (mean 1/6, 99.9% quantile about 1.17). An over-confident
    posterior (half the width) puts θ in the tails: a_i = 2Φ(2|Z|) − 1 in the untruncated
    limit, whose integrated squared distance to the uniform law is about 0.04, n·penalty ~ 10².
    The draws come in the z-scored unconstrained space, through the box prior's logit map."""
    from lfi.methods.npe import CalibratedNPELoss

    prior, sigma, n = lfi.BoxUniform([-1.0], [1.0]), 0.5, 4000
    stand, batch = _standardized_batch(prior, sigma, n)
    loss = CalibratedNPELoss(prior, stand.theta_mean, stand.theta_std, 1.0, 32)

    def penalty(shrink, loss=loss):
        flow = _ExactTruncatedNormal(stand, prior, sigma, shrink)
        nll = -float(jnp.mean(flow.log_prob(*batch)))
        return n * (float(loss(flow, batch, jax.random.key(2))) - nll)

    assert penalty(1.0) < 1.17
    assert penalty(0.5) > 50


def test_calibration_levels_rank_by_the_posteriors_density_in_theta():
    """The penalty ranks draws by log q(θ|x), the density that expected_coverage ranks by: on
    a box prior (a logit map) the flow's z-space density plus the loss's log-Jacobian differs
    from DirectPosterior.log_prob by one constant over θ, and the z-space density alone does
    not (a sign error in the Jacobian would fail the first assertion)."""
    from lfi.methods.npe import CalibratedNPELoss

    prior = lfi.BoxUniform([-1.0, 0.0], [1.0, 3.0])
    theta = np.asarray(prior.sample(300, seed=0))
    x = theta + 0.3 * np.random.default_rng(1).standard_normal(theta.shape).astype(np.float32)
    post = lfi.NPE(prior, max_epochs=2, progress=False).fit(theta, x, seed=0)
    stand = post._stand
    loss = CalibratedNPELoss(prior, stand.theta_mean, stand.theta_std, 1.0, 4)
    points = np.asarray(prior.sample(64, seed=1))
    z = stand.z_theta(prior.to_unconstrained(jnp.asarray(points)))
    z_x = jnp.broadcast_to(stand.z_x(jnp.asarray(x[0])), (64, 2))
    log_q_z = post._flow.log_prob(z, z_x)
    log_q = np.asarray(post.log_prob(points, x=x[0]))
    assert np.ptp(log_q - np.asarray(log_q_z + loss.log_jacobian(z))) < 1e-3
    assert np.ptp(log_q - np.asarray(log_q_z)) > 0.5


def test_calibration_penalty_has_a_gradient():
    """The straight-through step passes gradient: the penalty changes the NLL's gradient (with
    a MAF too, whose draws go through its autoregressive inverse)."""
    from jax.flatten_util import ravel_pytree

    from lfi.methods.npe import CalibratedNPELoss, npe_loss
    from lfi.nets.flows import build_flow, flow_config

    prior = lfi.BoxUniform([-1.0, -1.0], [1.0, 1.0])
    stand, batch = _standardized_batch(prior, 0.3, 64)
    loss = CalibratedNPELoss(prior, stand.theta_mean, stand.theta_std, 100.0, 8)
    for kind in ("nsf", "maf"):
        flow = build_flow(flow_config(2, 2, kind=kind), 0)

        def grad(f, flow=flow):
            g = eqx.filter_grad(lambda fl: f(fl, batch, jax.random.key(3)))(flow)
            return ravel_pytree(eqx.filter(g, eqx.is_array))[0]

        g_nll, g_cal = grad(npe_loss), grad(loss)
        assert np.all(np.isfinite(g_cal))
        assert float(jnp.linalg.norm(g_cal - g_nll)) > 1e-3 * float(jnp.linalg.norm(g_nll))


def test_calibrated_npe_trains_and_names_bad_options():
    prior = lfi.BoxUniform([-1.0], [1.0])
    theta = np.asarray(prior.sample(300, seed=0))
    x = theta + 0.3 * np.random.default_rng(1).standard_normal(theta.shape).astype(np.float32)
    est = lfi.NPE(prior, calibration=5.0, calibration_draws=4, max_epochs=3, progress=False)
    post = est.fit(theta, x, seed=0)
    assert post.method == "calnpe" and post.sample(5, x=[0.2], seed=0).shape == (5, 1)
    assert np.all(np.isfinite(est.history.train_loss))
    for bad in (-1.0, float("inf"), True):
        with pytest.raises(ValueError, match="calibration"):
            lfi.NPE(prior, calibration=bad)
    with pytest.raises(ValueError, match="calibration_draws"):
        lfi.NPE(prior, calibration=1.0, calibration_draws=0)
    with pytest.raises(ValueError, match="choose one"):
        lfi.NPE(prior, calibration=1.0, balance=1.0)


def test_balanced_npe_trains_and_names_a_bad_balance():
    prior = lfi.BoxUniform([-1.0], [1.0])
    theta = np.asarray(prior.sample(300, seed=0))
    x = theta + 0.3 * np.random.default_rng(1).standard_normal(theta.shape).astype(np.float32)
    post = lfi.NPE(prior, balance=100.0, max_epochs=3, progress=False).fit(theta, x, seed=0)
    assert post.sample(5, x=[0.2], seed=0).shape == (5, 1)
    with pytest.raises(ValueError, match="balance"):
        lfi.NPE(prior, balance=-1.0)


def test_saved_arrays_are_checked_by_their_path_in_the_module(tmp_path):
    from lfi.posteriors.io import fill_module, module_arrays

    class AB(eqx.Module):
        a: jax.Array
        b: jax.Array

    class BA(eqx.Module):  # the same leaf shapes in another layout: positions would swap them
        b: jax.Array
        a: jax.Array

    arrays = module_arrays(AB(jnp.zeros(2), jnp.ones(2)), "net")
    back = fill_module(AB(jnp.ones(2), jnp.zeros(2)), arrays, "net")
    assert np.all(back.b == 1.0)
    with pytest.raises(ValueError, match="saved as '.a'"):
        fill_module(BA(jnp.zeros(2), jnp.zeros(2)), arrays, "net")
    del arrays["net-paths"]  # a file from before paths were recorded: positions only
    fill_module(BA(jnp.zeros(2), jnp.zeros(2)), arrays, "net")


def test_standardizer_keeps_a_small_real_spread_and_drops_rounding():
    from lfi.posteriors.direct import Standardizer

    rng = np.random.default_rng(0)
    x = np.stack(
        [
            5e-9 * rng.standard_normal(500),  # a real spread in SI units: keeps its scale
            np.full(500, 3.0),  # constant
            1000.0 + 1e-5 * rng.standard_normal(500),  # float32 rounding at 1000 is 6e-5
        ],
        axis=1,
    )
    scale = np.asarray(Standardizer.fit(x[:, :1], x).x_std)
    np.testing.assert_allclose(scale[0], x[:, 0].std(), rtol=1e-6)
    assert scale[1] == 1.0 and scale[2] == 1.0


def test_sample_and_map_name_bad_counts(trained):
    post = trained[1]
    with pytest.raises(ValueError, match="n:"):
        post.sample(2.7)
    with pytest.raises(ValueError, match="num_init"):
        post.map(num_init=0)


def test_a_posterior_with_a_prior_lfi_cannot_rebuild_is_refused_at_save(trained, tmp_path):
    class MyPrior(lfi.Normal):  # a user's own prior class: its config names its own type
        def to_config(self):
            return {**super().to_config(), "type": "MyPrior"}

    post = trained[1]
    mine = MyPrior(jnp.zeros(post.prior.dim), jnp.ones(post.prior.dim))
    post.prior, original = mine, post.prior
    try:
        with pytest.raises(ValueError, match="prior: a model with a prior of type 'MyPrior'"):
            post.save(tmp_path / "p.lfi")
        assert not (tmp_path / "p.lfi").exists()
    finally:
        post.prior = original
