"""Data-parallel training over JAX CPU devices (lfi._cores): the split gradient is the batch's
gradient, and a fit on several devices returns a model on one device.

The test processes run with LFI_CPU_CORES=1 (tests/conftest.py): these tests start their own
interpreter with two devices."""

import os
import subprocess
import sys
import textwrap

import pytest

SPLIT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np, equinox as eqx
    import lfi
    from lfi import _cores
    from lfi.methods.npe import npe_loss
    assert jax.local_device_count() == 2, jax.devices()
    assert _cores.width(200, npe_loss) == 2 and _cores.width(50, npe_loss) == 2
    assert _cores.width(201, npe_loss) == 1 and _cores.width(40, npe_loss) == 1
    assert _cores.width(200, lambda m, b, k: 0.0) == 1  # a loss not marked row-wise
    for method in (lfi.FMPE, lfi.NPSE):  # their losses are methods of equinox modules
        assert _cores.width(200, method(lfi.tasks.get("two_moons").prior).path.loss) == 2
    # every epoch (and the one after a learning-rate decay) runs the program compiled first
    import logging
    compiles = []
    class Count(logging.Handler):
        def emit(self, record):
            msg = record.getMessage()
            if msg.startswith("Compiling") and "_epoch" in msg.split()[1]:
                compiles.append(msg.split()[1])
    logging.getLogger("jax").addHandler(Count())
    jax.config.update("jax_log_compiles", True)
    task = lfi.tasks.get("two_moons")
    theta, x = lfi.simulate(task.simulator, task.prior, 200, seed=0, progress=False)
    npe = lfi.NPE(task.prior, progress=False, max_epochs=6, batch_size=100, patience=1,
                  lr_decays=2)
    post = npe.fit(theta, x, seed=0)
    jax.config.update("jax_log_compiles", False)
    assert len(npe.history.val_loss) >= 3 and compiles == ["jit(_epoch)"], compiles
    # losses that are not a mean of per-row terms train on one device: NRE-B contrasts 49
    # other rows, more than half a batch of 64
    theta1k, x1k = lfi.simulate(task.simulator, task.prior, 1000, seed=0, progress=False)
    lfi.NRE(task.prior, num_atoms=50, batch_size=64, max_epochs=1, progress=False).fit(
        theta1k, x1k, seed=0)
    assert _cores.width(64, lfi.NRE(task.prior, num_atoms=50).loss) == 1
    flow = post._trained
    params, static = eqx.partition(flow, eqx.is_inexact_array)
    batch = (jnp.asarray(np.asarray(theta, np.float32)),
             jnp.asarray(np.asarray(x, np.float32)))
    def fn(p, b, k):
        return npe_loss(eqx.combine(p, static), b, k)
    key = jax.random.key(0)
    assert batch[0].shape == (200, 2)
    v1, g1 = jax.jit(lambda p, b, k: _cores.value_and_grad(fn, p, b, k, 2))(params, batch, key)
    v0, g0 = eqx.filter_value_and_grad(fn)(params, batch, key)
    np.testing.assert_allclose(v1, v0, rtol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(g1), jax.tree_util.tree_leaves(g0)):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6)
    leaves = jax.tree_util.tree_leaves(eqx.filter(flow, eqx.is_array))
    assert all(len(a.sharding.device_set) == 1 for a in leaves)
    s = post.sample(7, x[0], seed=1)
    assert s.shape == (7, 2) and np.all(np.isfinite(s))
    # data whose copies on every device would pass the cap train on one device
    big = np.broadcast_to(np.float32(0), (2**29,))  # 2 GiB by nbytes, no memory
    assert not _cores.too_big(2, batch) and _cores.too_big(2, big)
    _cores.MAX_COPIES_BYTES = 1
    one = lfi.NPE(task.prior, progress=False, max_epochs=2, batch_size=100).fit(theta, x, seed=0)
    print("ok")
    """
)


def _run(code, **env):
    full = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # the test's own flags only
    full.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=600
    )


def test_split_gradient_is_the_batch_gradient_and_the_fit_returns_one_device():
    out = _run(SPLIT, LFI_CPU_CORES="2")
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


@pytest.mark.parametrize(
    "env, devices",
    [
        ({"LFI_CPU_CORES": "3"}, 3),
        ({"LFI_CPU_CORES": "1"}, 1),
        # the user's own choice wins
        ({"LFI_CPU_CORES": "3", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}, 2),
    ],
)
def test_device_count_follows_the_environment(env, devices):
    out = _run("import jax, lfi; print(jax.local_device_count())", **env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == str(devices)


def test_one_core_asked_for_means_no_split_even_with_more_devices():
    code = (
        "import jax, lfi; from lfi import _cores; from lfi.methods.npe import npe_loss; "
        "print(jax.local_device_count(), _cores.width(200, npe_loss))"
    )
    out = _run(code, LFI_CPU_CORES="1", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["2", "1"]


def test_jax_started_before_lfi_is_left_alone():
    code = (
        "import jax, jax.numpy as jnp; jnp.ones(1).block_until_ready(); import lfi; "
        "print(jax.local_device_count())"
    )
    out = _run(code, LFI_CPU_CORES="3")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == "1"


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_bad_core_count_is_named(value):
    out = _run("import lfi", LFI_CPU_CORES=value)
    assert out.returncode != 0
    assert "LFI_CPU_CORES: expected a whole number >= 1" in out.stderr
