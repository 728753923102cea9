"""Network construction: numpy initialisation (nothing to compile), dtypes, independence."""

import os
import subprocess
import sys
import tempfile

import equinox as eqx
import jax
import numpy as np

from lfi.nets.flows import build_flow
from lfi.nets.resnet import ResidualNet

CONFIG = {"kind": "nsf", "dim": 2, "cond_dim": 2, "knots": 10}

_COUNT_COMPILES = """
import jax
from lfi.nets.flows import build_flow
events = []
jax.monitoring.register_event_duration_secs_listener(
    lambda name, secs, **kw: events.append(name) if name.endswith("backend_compile_duration")
    else None)
build_flow({"kind": "nsf", "dim": 2, "cond_dim": 2, "knots": 10}, seed=0)
print(len(events))
"""


def test_default_flow_builds_with_few_compilations_in_a_fresh_process():
    # JAX's initialisers compile one program per shape (21 compilations, ~1.4 s, in every new
    # process before the weights were drawn by numpy); 3 remain: the seed's key, and the base
    # distribution and identity spline (one compiled call each)
    env = {**os.environ, "LFI_CACHE_DIR": tempfile.mkdtemp()}  # an empty compilation cache
    out = subprocess.run(
        [sys.executable, "-c", _COUNT_COMPILES], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[-1]) <= 5


def test_flow_weights_follow_the_float_dtype_after_x64_is_switched_on():
    build_flow(CONFIG, seed=0)  # float32, cached pieces built
    with jax.enable_x64(True):
        flow = build_flow(CONFIG, seed=0)
        dtypes = {leaf.dtype for leaf in jax.tree_util.tree_leaves(eqx.filter(flow, eqx.is_array))}
        assert flow.base_dist.bijection.loc.dtype == np.float64
    assert np.dtype(np.float64) in dtypes


def test_same_seed_same_weights_and_layers_draw_independently():
    a, b, c = build_flow(CONFIG, seed=3), build_flow(CONFIG, seed=3), build_flow(CONFIG, seed=4)
    leaves = [jax.tree_util.tree_leaves(eqx.filter(f, eqx.is_array)) for f in (a, b, c)]
    assert all(np.array_equal(x, y) for x, y in zip(leaves[0], leaves[1], strict=True))
    assert not np.array_equal(leaves[0][2], leaves[2][2])
    first = a.bijection.bijection.bijection.bijections[0].conditioner.first.weight  # (layers, ...)
    assert not np.allclose(first[0], first[1])


def test_dense_initial_weights_have_the_default_scale():
    net = ResidualNet(100, 3, width=400, blocks=1, key=0)
    w = np.asarray(net.first.weight)
    bound = 1 / np.sqrt(100)
    assert np.abs(w).max() <= bound
    # uniform on ±bound: standard deviation bound / sqrt(3), 40 000 draws (relative s.e. 0.4%)
    assert abs(w.std() / (bound / np.sqrt(3)) - 1) < 0.02
    last = np.asarray(net.blocks[0].linear1.weight)
    assert np.abs(last).max() <= 1e-3 and not np.asarray(net.blocks[0].linear1.bias).any()
