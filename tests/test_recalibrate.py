"""Latent recalibration: the radial base is a normalised density with the stated radius law,
and recalibrating an over-confident flow posterior restores its coverage."""

import jax
import numpy as np
import pytest
from flowjax.distributions import Normal
from scipy import stats

import lfi
from lfi.calibration import expected_coverage
from lfi.methods.recalibrate import latent_radii, recalibrate
from lfi.nets.radial import RadialNormal, chi_quantile, radial_base, with_base

BASE = RadialNormal([0.0, 0.5, 1.5, 3.0], [0.0, 0.3, 1.2, 2.5], 2)


def test_the_radial_base_integrates_to_one():
    # a 2-d grid out to radius 12 (beyond the last knot the tail is a scaled Gaussian's)
    g = np.linspace(-12, 12, 1201)
    zz = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    total = float(np.exp(BASE.log_prob(zz)).sum()) * (g[1] - g[0]) ** 2
    assert abs(total - 1.0) < 2e-3


def test_the_radius_has_the_stated_law():
    z = np.asarray(BASE.sample(jax.random.key(0), (4000,)))
    h, _ = BASE._h(np.sqrt((z**2).sum(1)))
    # h(radius) is χ with 2 degrees of freedom: Kolmogorov–Smirnov at 4000 draws
    assert stats.kstest(np.asarray(h), stats.chi(2).cdf).pvalue > 0.01
    assert np.allclose(chi_quantile([0.5], 2), stats.chi(2).ppf(0.5))


def test_radial_base_matches_the_given_radii():
    radii = stats.chi(3).rvs(size=2000, random_state=1) * 1.7  # over-dispersed by 1.7
    base = radial_base(radii, 3)
    z = np.asarray(base.sample(jax.random.key(1), (4000,)))
    r = np.sqrt((z**2).sum(1))
    assert stats.ks_2samp(r, radii).pvalue > 0.01
    with pytest.raises(ValueError, match="at least"):
        radial_base(radii[:10], 3)


PRIOR = lfi.BoxUniform([-3.0, -3.0], [3.0, 3.0])


def simulator(theta, rng):
    return theta + 0.3 * rng.standard_normal(theta.shape)


def test_recalibration_restores_an_over_confident_posterior(tmp_path):
    theta, x = lfi.simulate(simulator, PRIOR, 3000, seed=0, progress=False)
    post = lfi.NPE(PRIOR, max_epochs=40, progress=False).fit(theta[:2000], x[:2000], seed=0)
    # shrink the latent by half: a posterior half as wide as it should be (over-confident)
    flow = with_base(post._trained, Normal(np.zeros(2), 0.5 * np.ones(2)))
    shrunk = type(post)(post.prior, flow, post._stand, post.flow_config, post.dim_x)
    cal = recalibrate(shrunk, theta[2000:2800], x[2000:2800])
    hpd = recalibrate(shrunk, theta[2000:2800], x[2000:2800], kind="hpd")
    test_theta, test_x = theta[2800:], x[2800:]  # 200 pairs used by neither
    before = expected_coverage(shrunk, test_theta, test_x, num_samples=200).coverage
    after = expected_coverage(cal, test_theta, test_x, num_samples=200).coverage
    # at 200 test pairs the binomial sd of a calibrated coverage is <= 0.035; 3 sd
    assert np.all(before < np.array([0.5, 0.8, 0.95]) - 0.15)
    np.testing.assert_allclose(after, [0.5, 0.8, 0.95], atol=0.105)
    # the base N(0, 0.5² I) is replaced by N(0, s² I): s near 1 restores the trained flow,
    # which covered 0.47 / 0.83 / 0.95 (grid step 1.08; the noise of 800 pairs)
    assert 0.8 <= hpd.recalibration["scale"] <= 1.25
    after = expected_coverage(hpd, test_theta, test_x, num_samples=200).coverage
    np.testing.assert_allclose(after, [0.5, 0.8, 0.95], atol=0.105)
    # the recalibrated latent radii of the test pairs follow the base's radius law
    path = tmp_path / "cal.lfi"
    cal.save(str(path))
    back = lfi.load(str(path))
    t = np.asarray(test_theta[:5])
    np.testing.assert_allclose(back.log_prob(t, x=test_x[0]), cal.log_prob(t, x=test_x[0]))
    assert latent_radii(back, test_theta, test_x).shape == (200,)
    with pytest.raises(TypeError, match="posterior"):
        recalibrate(object(), theta, x)


def test_npe_recalibrate_option_uses_the_held_out_rows():
    theta, x = lfi.simulate(simulator, PRIOR, 600, seed=0, progress=False)
    post = lfi.NPE(PRIOR, recalibrate="latent", max_epochs=5, progress=False).fit(theta, x)
    assert isinstance(post._flow.base_dist, RadialNormal)
    assert post.sample(10, x=x[0], seed=0).shape == (10, 2)
    with pytest.raises(ValueError, match="recalibrate"):
        lfi.NPE(PRIOR, recalibrate=True)
    # 300 rows hold out 30, fewer than the 40 latent recalibration needs: said before training
    # (max_epochs=10**6 would train for a long time if the check came after it)
    with pytest.raises(ValueError, match="40 held-out"):
        lfi.NPE(PRIOR, recalibrate="latent", max_epochs=10**6, progress=False).fit(
            theta[:300], x[:300]
        )
