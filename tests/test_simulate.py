"""Simulators: the three forms, seeds, invalid outputs counted (never silently dropped)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lfi
from lfi.simulate import finite_rows

PRIOR = lfi.BoxUniform([0.0, 0.0], [2.0, 2.0])


def batched(theta):  # global numpy generator, seeded by lfi
    return theta + 0.1 * np.random.standard_normal(theta.shape)


def batched_rng(theta, rng):
    return theta + 0.1 * rng.standard_normal(theta.shape)


def one(theta):
    return np.array([theta.sum(), theta[0] * theta[1]]) + np.random.standard_normal(2)


def jax_sim(key, theta):
    return theta + 0.1 * jax.random.normal(key, theta.shape)


FORMS = {
    "batched": batched,
    "batched_rng": batched_rng,
    "per_sample": lfi.per_sample(one),
    "jax": jax_sim,
    "jax_wrapped": lfi.jax_simulator(lambda key, theta: jax_sim(key, theta)),
}


@pytest.mark.parametrize("form", FORMS)
def test_forms_shapes_and_reproducibility(form):
    sim = FORMS[form]
    theta, x = lfi.simulate(sim, PRIOR, 250, seed=7, progress=False, chunk_size=100)
    assert theta.shape == (250, 2) and x.shape == (250, 2)
    assert np.all(np.isfinite(x))
    theta2, x2 = lfi.simulate(sim, PRIOR, 250, seed=7, progress=False, chunk_size=100)
    np.testing.assert_array_equal(theta, theta2)
    np.testing.assert_array_equal(x, x2)
    _, x3 = lfi.simulate(sim, PRIOR, 250, seed=8, progress=False, chunk_size=100)
    assert not np.allclose(x, x3)


def test_noise_is_not_repeated_across_chunks():
    theta = np.ones((200, 2), np.float32)
    x, _ = lfi.run_simulator(batched_rng, theta, seed=0, chunk_size=100, progress=False)
    assert not np.allclose(x[:100], x[100:])


def test_jax_simulator_statistics():
    theta = np.full((4000, 2), 1.0, np.float32)
    x, report = lfi.run_simulator(jax_sim, theta, seed=0, progress=False)
    # the mean of 4000 N(1, 0.01) draws is within 5 standard errors (0.1/sqrt(4000)) of 1
    assert np.all(np.abs(x.mean(0) - 1.0) < 5 * 0.1 / np.sqrt(4000))
    assert report.num_invalid == 0


def flaky_batched(theta):
    x = theta.copy()
    x[theta[:, 0] < 0.2] = np.nan
    if np.any(theta[:, 1] > 1.8):
        raise RuntimeError("solver diverged")
    return x


def test_nan_and_raising_rows_are_counted_and_kept():
    theta = np.asarray(PRIOR.sample(500, seed=1))
    expected_nan = (theta[:, 0] < 0.2) & ~(theta[:, 1] > 1.8)
    expected_raise = theta[:, 1] > 1.8
    with pytest.warns(UserWarning, match=r"invalid") as record:
        x, report = lfi.run_simulator(flaky_batched, theta, seed=0, progress=False)
    assert report.num_nonfinite == expected_nan.sum()
    assert report.num_raised == expected_raise.sum()
    assert "solver diverged" in report.first_error
    assert str(report.num_invalid) in str(record[0].message)
    assert x.shape == (500, 2)  # nothing dropped: invalid rows are NaN
    np.testing.assert_array_equal(np.isnan(x[:, 0]), expected_nan | expected_raise)
    with pytest.warns(UserWarning, match=f"excluded {report.num_invalid} of 500"):
        t, xv = finite_rows(theta, x)
    assert t.shape[0] == 500 - report.num_invalid


def test_per_sample_exceptions_counted():
    def sometimes(theta):
        if theta[0] > 1.0:
            raise ValueError("bad")
        return theta

    with pytest.warns(UserWarning, match="invalid"):
        theta, x = lfi.simulate(lfi.per_sample(sometimes), PRIOR, 100, seed=0, progress=False)
    np.testing.assert_array_equal(np.isnan(x[:, 0]), theta[:, 0] > 1.0)


def test_a_chunk_where_every_row_raised_keeps_the_width_of_the_others():
    def fails_first(theta):  # rows of the first chunk (theta[0] < 0 here) all raise
        if theta[0] < 0:
            raise RuntimeError("no")
        return np.concatenate([theta, theta])

    theta = np.array([[-1.0, 0.0], [-2.0, 0.0], [1.0, 2.0], [3.0, 4.0]], np.float32)
    with pytest.warns(UserWarning, match="2 of 4 simulations were invalid"):
        x, report = lfi.run_simulator(lfi.per_sample(fails_first), theta, chunk_size=2,
                                      progress=False)  # fmt: skip
    assert x.shape == (4, 4) and report.num_raised == 2 and np.isnan(x[:2]).all()
    np.testing.assert_array_equal(x[2:], np.concatenate([theta[2:], theta[2:]], 1))


def test_per_sample_simulators_may_return_any_shape():
    sim = lfi.per_sample(lambda theta: np.outer(theta, [1.0, 2.0, 3.0]))  # (2, 3) per row
    x, report = lfi.run_simulator(sim, np.ones((5, 2), np.float32), progress=False)
    assert x.shape == (5, 6) and report.num_invalid == 0
    np.testing.assert_array_equal(x[0], [1, 2, 3, 1, 2, 3])


def test_bad_simulators_and_arguments():
    with pytest.raises(TypeError, match="simulator"):
        lfi.simulate(42, PRIOR, 10, progress=False)
    with pytest.raises(ValueError, match="num_simulations"):
        lfi.simulate(batched, PRIOR, 0, progress=False)
    with pytest.raises(TypeError, match="prior"):
        lfi.simulate(batched, "uniform", 10, progress=False)
    with pytest.raises(ValueError, match="simulator: returned"):
        lfi.simulate(lambda theta: theta[:3], PRIOR, 10, progress=False)
    with pytest.raises(RuntimeError, match="JAX simulator"):
        lfi.simulate(lambda key, theta: jnp.zeros(3) + "a", PRIOR, 10, progress=False)


def test_missing_returns_overflow_and_ragged_outputs_are_reported_with_their_reason():
    theta = np.array([[0.2], [0.6], [0.8]], np.float32)

    def no_return(theta):
        theta * 2

    with pytest.raises(TypeError, match="returned None"):
        lfi.run_simulator(no_return, theta, progress=False)

    def sometimes(theta_i):  # per-sample, forgets to return for θ <= 0.5
        if theta_i[0] > 0.5:
            return theta_i * 2

    with pytest.warns(UserWarning, match="1 of 3"):
        x, report = lfi.run_simulator(lfi.per_sample(sometimes), theta, progress=False)
    assert report.num_raised == 1 and "returned None" in report.first_error

    def big(theta):  # valid float64 values beyond float32's range: not "returned NaN/inf"
        return np.where(theta > 0.7, 1e39, theta.astype(np.float64))

    with pytest.warns(UserWarning, match="1 of 3"):
        x, report = lfi.run_simulator(big, theta, progress=False)
    assert report.num_raised == 1 and "float32" in report.first_error
    np.testing.assert_allclose(x[:2, 0], [0.2, 0.6])

    def ragged(theta_i):  # one row gives 3 values, the others 2: that row, not the run, fails
        return np.zeros(3 if theta_i[0] > 0.7 else 2)

    with pytest.warns(UserWarning, match="1 of 3"):
        x, report = lfi.run_simulator(lfi.per_sample(ragged), theta, progress=False)
    assert x.shape == (3, 2) and "returned 3 values, expected 2" in report.first_error
    with pytest.raises(ValueError, match="chunk_size"):
        lfi.run_simulator(big, theta, chunk_size=0, progress=False)


def test_a_jax_simulator_may_name_its_key_rng():
    def f(rng, theta):  # a JAX key named rng: not a batched numpy simulator given rng=...
        return theta + 0.1 * jax.random.normal(rng, theta.shape)

    x, report = lfi.run_simulator(f, np.ones((4, 2), np.float32), seed=0, progress=False)
    assert report.num_invalid == 0 and x.shape == (4, 2)


def test_outputs_without_known_rows_or_real_values_are_refused_naming_the_simulator():
    theta = np.array([[0.2], [0.6], [0.8]], np.float32)
    # a flat (2n,) vector was silently cut into (n, 2) rows, whatever its layout
    with pytest.raises(ValueError, match=r"simulator: returned shape \(6,\) for 3"):
        lfi.run_simulator(lambda t: np.concatenate([t[:, 0], t[:, 0]]), theta, progress=False)
    with pytest.raises(ValueError, match="simulator: returned one number for 3"):
        lfi.run_simulator(lambda t: np.float32(1.0), theta, progress=False)
    # complex values lost their imaginary part in the float32 cast
    with pytest.raises(TypeError, match="simulator: returned complex"):
        lfi.run_simulator(lambda t: t * (1 + 2j), theta, progress=False)
    with pytest.raises(TypeError, match="simulator: returned a ragged"):
        lfi.run_simulator(lambda t: [[1.0], [1.0, 2.0], [3.0]], theta, progress=False)
    x, _ = lfi.run_simulator(lambda t: t[:, 0] * 2, theta, progress=False)  # (n,): one column
    assert x.shape == (3, 1)
