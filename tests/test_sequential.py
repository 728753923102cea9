"""Sequential rounds: proposals from the last posterior, pooled data, the argument checks."""

import jax
import numpy as np
import pytest

import lfi
from lfi.methods.sequential import sequential, truncated_prior_sample

PRIOR = lfi.BoxUniform([0.0, 0.0], [2.0, 2.0])
X_O = np.array([1.2, 0.6], np.float32)
FAST = dict(max_epochs=20, progress=False)


def simulator(theta, rng):
    return theta + 0.05 * rng.standard_normal(theta.shape)


@pytest.mark.parametrize("method", ["snpe", "snle", "snre"])
def test_rounds_concentrate_the_proposal(method):
    # SNPE: trained longer, so that round 1's posterior is narrow enough to truncate the prior
    extra = {"max_epochs": 60} if method == "snpe" else {"num_warmup": 50}
    post = sequential(
        simulator,
        PRIOR,
        method,
        X_O,
        num_rounds=2,
        num_simulations=800,
        seed=0,
        **{**FAST, **extra},
    )
    assert [r["num_simulations"] for r in post.rounds] == [400, 400]
    assert np.allclose(post.default_x, X_O)
    s = np.asarray(post.sample(500, seed=1))
    assert s.shape == (500, 2) and np.all(np.asarray(PRIOR.in_support(s)))
    # the posterior is N(x_o, 0.05^2) inside the box; after 20 epochs on 800 simulations the mean
    # is within a few posterior widths (0.05) of x_o, far tighter than the prior (sd 0.58)
    np.testing.assert_array_less(np.abs(s.mean(0) - X_O), 0.15)
    # and its width: the exact sd is 0.05; short trainings are wider (measured 0.06-0.07 for
    # SNPE/SNLE, 0.13-0.16 for SNRE), a collapse below 0.04 or no concentration (the prior's
    # 0.58) fails
    assert np.all((s.std(0) > 0.04) & (s.std(0) < 0.25)), s.std(0)
    if method == "snpe":
        # the region holding 1 - 1e-4 of a roughly Gaussian round-1 posterior of sd s is a disc
        # of radius 4.3 s (chi-square, 2 dof); the true s is 0.05, a 400-simulation fit is a
        # few times wider (0.15 measured: a third of the box). Any s below 0.2 keeps < 0.6 of
        # the box; the prior (no truncation) would keep all of it
        assert post.rounds[1]["proposal_acceptance"] < 0.6


def test_truncated_prior_draws_lie_in_the_region():
    post = lfi.NPE(PRIOR, **FAST).fit(*lfi.simulate(simulator, PRIOR, 500, seed=0, progress=False))
    theta, rate = truncated_prior_sample(PRIOR, post, X_O, 300, seed=0, truncation=1e-3)
    assert theta.shape == (300, 2) and 0 < rate < 1
    # the function's own reference draws (the first key of split(seed)): its exact threshold
    ref = post.sample(10_000, X_O, seed=jax.random.split(jax.random.key(0))[0])
    threshold = np.quantile(np.asarray(post.log_prob(ref, X_O)), 1e-3)
    assert np.all(np.asarray(post.log_prob(theta, X_O)) >= threshold)
    # the region holds 1 − 1e-3 of the posterior: fresh draws fall outside at rate 1e-3, with
    # sd sqrt(1e-3 / 1e4) from the threshold's quantile and as much from the fresh draws
    fresh = np.asarray(post.log_prob(post.sample(10_000, X_O, seed=7), X_O))
    assert np.mean(fresh < threshold) <= 1e-3 + 4 * np.sqrt(2 * 1e-3 / 1e4)


def test_infer_routes_and_checks_arguments():
    post = lfi.infer(
        simulator, PRIOR, "npe", num_simulations=300, num_rounds=2, x_o=X_O, seed=0, **FAST
    )
    assert len(post.rounds) == 2
    with pytest.raises(ValueError, match="x_o"):
        lfi.infer(simulator, PRIOR, "snpe", num_simulations=300)
    with pytest.raises(ValueError, match="num_rounds"):
        lfi.infer(simulator, PRIOR, "snle", num_simulations=300, num_rounds=0, x_o=X_O)
    with pytest.raises(ValueError, match="num_rounds"):
        lfi.infer(simulator, PRIOR, "nre_c", num_simulations=300, num_rounds=2, x_o=X_O)
    with pytest.raises(ValueError, match="method"):
        sequential(simulator, PRIOR, "sabc", X_O)


def test_bad_arguments_fail_before_any_training():
    args = (simulator, PRIOR, "snpe", X_O)
    kw = dict(num_simulations=100, **FAST)
    for rounds in (True, 2.0, 0):
        with pytest.raises(ValueError, match="num_rounds"):
            sequential(*args, num_rounds=rounds, **kw)
    assert len(sequential(*args, num_rounds=np.int64(1), **kw).rounds) == 1
    for truncation in (0.0, 1.0, -1e-4):
        with pytest.raises(ValueError, match="truncation"):
            sequential(*args, truncation=truncation, **kw)
    # balanced NPE, recalibration and the calibration penalty assume θ from the prior, which
    # later rounds do not draw
    with pytest.raises(ValueError, match="balance"):
        sequential(*args, balance=100.0, **kw)
    with pytest.raises(ValueError, match="recalibrate"):
        sequential(*args, recalibrate="latent", **kw)
    with pytest.raises(ValueError, match="calibration"):
        sequential(*args, calibration=100.0, **kw)
    with pytest.raises(ValueError, match="x_o: expected 2"):  # after round 1's simulations
        sequential(simulator, PRIOR, "snle", [1.0, 0.5, 0.2], num_rounds=2, **kw)


@pytest.mark.parametrize("cls", [lfi.NPE, lfi.NLE, lfi.NRE])
def test_warm_start_trains_on_from_the_earlier_network(cls):
    theta, x = lfi.simulate(simulator, PRIOR, 400, seed=0, progress=False)
    first = cls(PRIOR, **FAST).fit(theta, x, seed=0)
    fresh, warm = cls(PRIOR, **FAST), cls(PRIOR, **FAST)
    fresh.fit(theta, x, seed=1)
    post = warm.fit(theta, x, seed=1, init=first)
    # the warm fit's first epoch starts from a network trained for 20 epochs on the same data:
    # its validation loss is already below a fresh network's after one epoch
    assert warm.history.val_loss[0] < fresh.history.val_loss[0]
    assert post._stand is first._stand  # round 1's z-scoring is kept
    with pytest.raises(ValueError, match="init"):
        cls(PRIOR, **FAST).fit(theta, np.concatenate([x, x], 1), seed=0, init=first)
    other = lfi.NPE if cls is not lfi.NPE else lfi.NLE
    with pytest.raises(ValueError, match="init"):
        other(PRIOR, **FAST).fit(theta, x, seed=0, init=first)
    with pytest.raises(TypeError, match="init"):
        cls(PRIOR, **FAST).fit(theta, x, seed=0, init="posterior.eqx")


def test_rounds_record_epochs_with_and_without_warm_start():
    for warm in (True, False):
        post = sequential(
            simulator, PRIOR, "snle", X_O, num_rounds=2, num_simulations=400, seed=0,
            warm_start=warm, num_warmup=20, **FAST,
        )  # fmt: skip
        assert all(1 <= r["epochs"] <= 20 for r in post.rounds)


def test_warm_rounds_keep_their_held_out_rows(monkeypatch):
    seen = []
    fit = lfi.NLE.fit

    def spy(self, theta, x, seed=0, *, init=None, validation=None):
        seen.append((init, validation))
        return fit(self, theta, x, seed, init=init, validation=validation)

    monkeypatch.setattr(lfi.NLE, "fit", spy)
    sequential(simulator, PRIOR, "snle", X_O, num_rounds=3, num_simulations=600, seed=0,
               warm_start=True, num_warmup=20, **FAST)  # fmt: skip
    (i1, v1), (i2, v2), (i3, v3) = seen
    assert i1 is None and i2 is not None and i3 is not None
    assert [len(v) for v in (v1, v2, v3)] == [200, 400, 600]
    assert [int(v.sum()) for v in (v1, v2, v3)] == [20, 40, 60]  # 10% of each round
    np.testing.assert_array_equal(v3[:400], v2)
    np.testing.assert_array_equal(v2[:200], v1)


@pytest.mark.parametrize("cls", [lfi.NPE, lfi.NLE, lfi.NRE])
def test_fit_passes_the_validation_mask_to_the_training_loop(cls, monkeypatch):
    import lfi.methods.npe as npe_module

    seen = []
    loop = npe_module.fit

    def spy(*args, validation=None, **kwargs):
        seen.append(validation)
        return loop(*args, validation=validation, **kwargs)

    monkeypatch.setattr(npe_module, "fit", spy)
    theta, x = lfi.simulate(simulator, PRIOR, 100, seed=0, progress=False)
    x[3] = np.nan  # dropped from training: the mask loses its row too
    mask = np.arange(100) % 5 == 0
    mask[3] = True
    cls(PRIOR, max_epochs=2, progress=False).fit(theta, x, validation=mask)
    np.testing.assert_array_equal(np.flatnonzero(seen[-1]), [0, *range(4, 99, 5)])
