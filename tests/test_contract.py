"""Every method through the same contract: shapes, support, seeds, save/load, NaN rows, errors."""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import lfi

PRIOR = lfi.BoxUniform([0.0, 0.0], [2.0, 2.0])
X_O = np.array([1.0, 0.5], np.float32)
FAST = dict(max_epochs=3, progress=False)
SAMPLE = dict(num_warmup=30)  # ignored by direct posteriors


def simulator(theta, rng):
    return theta + 0.1 * rng.standard_normal(theta.shape)


@pytest.fixture(scope="module")
def data():
    return lfi.simulate(simulator, PRIOR, 400, seed=0, progress=False)


@pytest.fixture(scope="module", params=sorted(lfi.METHODS))
def fitted(request, data):
    theta, x = data
    estimator = lfi.METHODS[request.param](PRIOR, **FAST)
    return request.param, estimator, estimator.fit(theta, x, seed=0)


def _sample(post, n, x, seed):
    kwargs = SAMPLE if isinstance(post, lfi.UnnormalizedPosterior) else {}
    return np.asarray(post.sample(n, x=x, seed=seed, **kwargs))


def test_interface_and_shapes(fitted):
    name, estimator, post = fitted
    assert isinstance(post, lfi.Posterior)
    assert len(estimator.history.val_loss) == 3
    s = _sample(post, 64, X_O, 1)
    assert s.shape == (64, 2) and np.all(np.isfinite(s))
    assert np.all(np.asarray(PRIOR.in_support(s)))
    lp = np.asarray(post.log_prob(s, x=X_O))
    assert lp.shape == (64,) and np.all(np.isfinite(lp))
    # outside the prior: -inf, never NaN or an exception
    assert np.asarray(post.log_prob(np.array([[3.0, 1.0]]), x=X_O))[0] == -np.inf
    assert np.asarray(post.map(X_O)).shape == (2,)
    assert getattr(post, "normalized", True) == (name in ("npe", "bnpe", "calnpe", "fmpe", "npse"))


def test_seeds(fitted):
    _, _, post = fitted
    a, b, c = (_sample(post, 64, X_O, s) for s in (5, 5, 6))  # one n: one compile
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_training_is_reproducible(fitted, data):
    name, _, post = fitted
    theta, x = data
    again = lfi.METHODS[name](PRIOR, **FAST).fit(theta, x, seed=0)
    probe = np.asarray(PRIOR.sample(8, seed=3))
    np.testing.assert_allclose(post.log_prob(probe, x=X_O), again.log_prob(probe, x=X_O), 1e-5)


def test_save_load_round_trip(fitted, tmp_path):
    _, _, post = fitted
    path = tmp_path / "post.lfi"
    post.save(str(path))
    back = lfi.load(str(path))
    assert type(back) is type(post)
    probe = np.asarray(PRIOR.sample(8, seed=3))
    np.testing.assert_allclose(back.log_prob(probe, x=X_O), post.log_prob(probe, x=X_O), 1e-6)
    np.testing.assert_array_equal(_sample(back, 64, X_O, 2), _sample(post, 64, X_O, 2))
    # the header names the libraries; a damaged file (a key missing) is a clear error
    from lfi.posteriors.io import read_archive, write_archive

    config, arrays = read_archive(path)
    assert set(config["libraries"]) == {"lfi", "equinox", "flowjax", "jax"}
    config = {k: v for k, v in config.items() if k not in ("format", "version", "prior")}
    write_archive(tmp_path / "damaged.lfi", config, arrays)
    with pytest.raises(ValueError, match="not a valid .* file"):
        lfi.load(str(tmp_path / "damaged.lfi"))
    with pytest.raises(TypeError):  # not JSON: no file is left behind
        write_archive(tmp_path / "bad.lfi", {"n": np.int64(3)}, arrays)
    assert not list(tmp_path.glob("bad.lfi*"))


def test_nan_rows_are_dropped_with_a_count(fitted, data):
    name, _, _ = fitted
    theta, x = (np.array(a) for a in data)
    x[:7] = np.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lfi.METHODS[name](PRIOR, **{**FAST, "max_epochs": 1}).fit(theta, x, seed=0)
    assert any("7" in str(w.message) for w in caught)


def test_bad_arguments(fitted, data):
    name, _, post = fitted
    theta, x = data
    with pytest.raises(ValueError, match="theta"):
        lfi.METHODS[name](PRIOR, **FAST).fit(theta[:, :1], x, seed=0)
    with pytest.raises(ValueError, match="x"):
        lfi.METHODS[name](PRIOR, **FAST).fit(theta, x[:10], seed=0)
    with pytest.raises(ValueError, match="theta"):
        post.log_prob(jnp.zeros((3, 5)), x=X_O)
    with pytest.raises(ValueError, match="x"):
        post.sample(4, x=np.zeros(5))
    with pytest.raises(ValueError, match="theta: .* outside"):
        lfi.METHODS[name](PRIOR, **FAST).fit(theta + 5.0, x, seed=0)


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(ValueError, match="nle.*npe.*nre"):
        lfi.infer(simulator, PRIOR, method="npe2", num_simulations=10)
