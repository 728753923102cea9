"""Ensembles of posteriors: the mixture's sample and log_prob agree, seeds, save/load, infer."""

import jax
import numpy as np
import pytest

import lfi

PRIOR1 = lfi.BoxUniform([0.0], [2.0])
PRIOR2 = lfi.BoxUniform([0.0, 0.0], [2.0, 2.0])
SMALL = dict(flow_layers=2, nn_width=16, max_epochs=4, progress=False)


def simulator(theta, rng):
    return theta + 0.3 * rng.standard_normal(theta.shape)


@pytest.fixture(scope="module")
def data1():
    return lfi.simulate(simulator, PRIOR1, 300, seed=0, progress=False)


@pytest.fixture(scope="module")
def data2():
    return lfi.simulate(simulator, PRIOR2, 300, seed=0, progress=False)


@pytest.fixture(scope="module")
def npe1(data1):
    return lfi.Ensemble(lfi.NPE(PRIOR1, **SMALL), 2).fit(*data1, seed=0)


@pytest.fixture(scope="module")
def nle2(data2):
    return lfi.Ensemble(lfi.NLE(PRIOR2, **SMALL), 2).fit(*data2, seed=0)


def test_log_prob_is_the_mixture_of_the_members(npe1, nle2):
    theta = np.asarray(PRIOR1.sample(16, seed=3))
    members = np.stack([np.asarray(m.log_prob(theta, x=[1.0])) for m in npe1.members])
    expected = np.log(np.mean(np.exp(members.astype(np.float64)), 0))
    np.testing.assert_allclose(npe1.log_prob(theta, x=[1.0]), expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(members[0], members[1])  # the members differ (seeds fold_in(seed, k))
    # unnormalised members (NLE): the same formula, prior × the average likelihood
    theta2 = np.asarray(PRIOR2.sample(8, seed=3))
    lp = np.stack([np.asarray(m.log_prob(theta2, x=[1.0, 0.5])) for m in nle2.members])
    expected = np.log(np.mean(np.exp(lp.astype(np.float64)), 0))
    np.testing.assert_allclose(nle2.log_prob(theta2, x=[1.0, 0.5]), expected, rtol=1e-4)
    assert npe1.normalized and not nle2.normalized


def test_samples_follow_exp_log_prob(npe1):
    # 1-d: the histogram of 40 000 mixture draws against exp(log_prob) integrated on a grid
    n, edges = 40_000, np.linspace(0.0, 2.0, 11)
    draws = np.asarray(npe1.sample(n, x=[0.7], seed=1))[:, 0]
    grid = np.linspace(0.0, 2.0, 4001)[1:-1]
    dens = np.exp(np.asarray(npe1.log_prob(grid[:, None], x=[0.7]), np.float64))
    step = grid[1] - grid[0]
    assert abs(dens.sum() * step - 1) < 0.01  # normalised, as its NPE members
    probs = np.array(
        [dens[(grid >= a) & (grid < b)].sum() * step for a, b in zip(edges, edges[1:])]
    )
    counts = np.histogram(draws, edges)[0] / n
    se = np.sqrt(probs * (1 - probs) / n)
    np.testing.assert_array_less(np.abs(counts - probs), 4 * se + 0.003)  # + grid error


def test_sample_batched_map_and_seeds(npe1):
    xs = np.array([[0.5], [1.5]], np.float32)
    batched = np.asarray(npe1.sample_batched(50, xs, seed=4))
    assert batched.shape == (2, 50, 1)
    assert abs(batched[1].mean() - batched[0].mean()) > 0.3  # each row at its own x
    a, b, c = (np.asarray(npe1.sample(64, x=[1.0], seed=s)) for s in (5, 5, 6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    mode = np.asarray(npe1.map([1.0]))
    assert mode.shape == (1,) and 0.0 < mode[0] < 2.0


def test_training_is_reproducible(npe1, data1):
    again = lfi.Ensemble(lfi.NPE(PRIOR1, **SMALL), 2).fit(*data1, seed=0)
    probe = np.asarray(PRIOR1.sample(8, seed=3))
    np.testing.assert_allclose(npe1.log_prob(probe, x=[1.0]), again.log_prob(probe, x=[1.0]), 1e-5)
    # member k is the estimator trained alone with seed fold_in(seed, k)
    alone = lfi.NPE(PRIOR1, **SMALL).fit(*data1, seed=jax.random.fold_in(jax.random.key(0), 1))
    np.testing.assert_allclose(
        npe1.members[1].log_prob(probe, x=[1.0]), alone.log_prob(probe, x=[1.0]), 1e-5
    )


def test_members_checkpoint_to_their_own_files(data1, tmp_path):
    """One checkpoint path for the ensemble: member k trains into ``stem.m{k}.npz`` (a shared
    file was refused by the second member, whose seed differs), and a rerun resumes them."""
    ck = tmp_path / "run.npz"
    est = lfi.NPE(PRIOR1, **SMALL, checkpoint=str(ck), checkpoint_seconds=0)
    first = lfi.Ensemble(est, 2).fit(*data1, seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.m0.npz", "run.m1.npz"]
    assert est.train_options["checkpoint"] == str(ck)
    again = lfi.Ensemble(est, 2).fit(*data1, seed=0)  # resumed: finished members stay as they are
    probe = np.asarray(PRIOR1.sample(8, seed=3))
    np.testing.assert_array_equal(first.log_prob(probe, x=[1.0]), again.log_prob(probe, x=[1.0]))


def test_save_load_round_trip(npe1, nle2, tmp_path):
    for post, x in ((npe1, [1.0]), (nle2, [1.0, 0.5])):
        path = tmp_path / "ens.lfi"
        post.save(str(path))
        back = lfi.load(str(path))
        assert isinstance(back, lfi.EnsemblePosterior) and len(back.members) == len(post.members)
        probe = np.asarray(post.prior.sample(8, seed=3))
        np.testing.assert_allclose(back.log_prob(probe, x=x), post.log_prob(probe, x=x), 1e-6)
    # NLE members: the average-likelihood density, sampled by MCMC inside the prior
    draws = np.asarray(back.sample(100, x=[1.0, 0.5], seed=2))
    assert draws.shape == (100, 2) and np.all(np.asarray(PRIOR2.in_support(draws)))


def test_ensemble_through_infer():
    post = lfi.infer(simulator, PRIOR1, "npe", 200, seed=0, ensemble=2, **SMALL)
    assert isinstance(post, lfi.EnsemblePosterior) and len(post.members) == 2
    assert post.sample(5, x=[1.0]).shape == (5, 1)
    with pytest.raises(ValueError, match="ensemble"):
        lfi.infer(simulator, PRIOR1, "snpe", 200, x_o=[1.0], ensemble=2)
    with pytest.raises(ValueError, match="num_members"):
        lfi.Ensemble(lfi.NPE(PRIOR1), 0)
