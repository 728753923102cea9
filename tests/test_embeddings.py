"""Embedding networks: shapes, DeepSets' exact permutation invariance and masking, save/load,
and NPE with a DeepSets embedding learning a Gaussian mean from 10 i.i.d. trials."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lfi
from lfi.nets.embeddings import build_embedding, embed, embedding_config

PRIOR = lfi.Normal(jnp.zeros(1), jnp.ones(1))
TRIALS = 10


def trials_simulator(theta, rng):  # 10 i.i.d. trials x_i ~ N(θ, 1), flattened
    return theta + rng.standard_normal((theta.shape[0], TRIALS))


@pytest.mark.parametrize(
    "spec, dim",
    [("mlp", 7), ({"kind": "deepset", "trial_dim": 3}, 12), ("cnn1d", 16),
     ({"kind": "cnn1d", "channels_in": 2, "kernel": 3, "out": 5}, 30)],
)  # fmt: skip
def test_shapes(spec, dim):
    net = build_embedding(embedding_config(dim, spec), seed=0)
    out = np.asarray(embed(net, jnp.ones((4, 3, dim))))
    assert out.shape[:2] == (4, 3) and np.all(np.isfinite(out))
    with pytest.raises(ValueError, match="embedding"):
        embedding_config(dim, "transformer")


def test_deepset_is_exactly_permutation_invariant_and_masks_padding():
    net = build_embedding(embedding_config(12, {"kind": "deepset", "trial_dim": 2}), seed=0)
    x = jax.random.normal(jax.random.key(1), (6, 2))
    for seed in range(5):
        perm = jax.random.permutation(jax.random.key(seed), 6)
        np.testing.assert_array_equal(net(x[perm].ravel()), net(x.ravel()))  # bitwise
    # four real trials padded with NaN to six, wherever the padding sits: the same features
    padded = jnp.concatenate([x[:4], jnp.full((2, 2), jnp.nan)]).ravel()
    moved = jnp.concatenate([x[:2], jnp.full((2, 2), jnp.nan), x[2:4]]).ravel()
    np.testing.assert_array_equal(net(padded), net(moved))
    assert np.all(np.isfinite(net(padded)))
    assert not np.allclose(net(padded), net(x.ravel()))  # the padding is not a trial of zeros
    zeros = jnp.concatenate([x[:4], jnp.zeros((2, 2))]).ravel()
    assert not np.allclose(net(padded), net(zeros))


def test_nle_refuses_an_embedding():
    with pytest.raises(ValueError, match="NLE"):
        lfi.NLE(PRIOR, embedding="mlp")


@pytest.fixture(scope="module")
def data():
    return lfi.simulate(trials_simulator, PRIOR, 2000, seed=0, progress=False)


@pytest.fixture(scope="module")
def deepset_npe(data):
    theta, x = data
    x = np.array(x)
    x[:500, 6:] = np.nan  # a quarter of the sets have 6 trials, padded to 10 with NaN
    options = dict(flow_layers=2, nn_width=32, batch_size=100, learning_rate=1e-3)
    emb = {"kind": "deepset", "width": 32, "out": 8}
    return lfi.NPE(PRIOR, embedding=emb, max_epochs=40, progress=False, **options).fit(
        theta, x, seed=0
    )


def test_deepset_npe_learns_the_gaussian_mean(deepset_npe):
    # prior N(0, 1), 10 trials of N(θ, 1): posterior N(Σx / 11, 1 / 11)
    x_o = np.asarray(trials_simulator(np.array([[0.5]]), np.random.default_rng(3)), np.float32)[0]
    mean, sd = x_o.sum() / (TRIALS + 1), np.sqrt(1 / (TRIALS + 1))
    s = np.asarray(deepset_npe.sample(4000, x=x_o, seed=1))[:, 0]
    # MC error of 4000 draws is 0.016 sd; the rest is the estimator's at 2000 simulations and
    # 40 epochs (half a posterior sd for the mean, 30% for the sd)
    assert abs(s.mean() - mean) < 0.5 * sd
    assert abs(s.std() / sd - 1) < 0.3
    # the whole estimator (pooled z-scoring + DeepSets) ignores the order of the trials
    probe = s[:5, None]
    np.testing.assert_array_equal(
        deepset_npe.log_prob(probe, x=x_o), deepset_npe.log_prob(probe, x=x_o[::-1].copy())
    )


def test_save_load_keeps_the_embedding(deepset_npe, data, tmp_path):
    theta, x = data
    x_o = np.asarray(x[0])
    probe = np.array([[0.1], [0.4]], np.float32)
    deepset_npe.save(str(tmp_path / "npe.lfi"))
    back = lfi.load(str(tmp_path / "npe.lfi"))
    assert back.flow_config["embedding"]["kind"] == "deepset"
    np.testing.assert_array_equal(back.log_prob(probe, x=x_o), deepset_npe.log_prob(probe, x=x_o))
    nre = lfi.NRE(PRIOR, embedding="cnn1d", max_epochs=1, progress=False).fit(theta, x, seed=0)
    nre.save(str(tmp_path / "nre.lfi"))
    back = lfi.load(str(tmp_path / "nre.lfi"))
    np.testing.assert_array_equal(back.log_prob(probe, x=x_o), nre.log_prob(probe, x=x_o))
