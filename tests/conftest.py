"""Test-session hygiene shared by every test module."""

import gc
import os

# pytest-xdist runs one test process per core (addopts -n auto): BLAS thread pools of their own
# would only oversubscribe the cores. Set here, before the worker processes start.
# For the same reason one JAX CPU device per process (lfi would otherwise make one per core and
# split every training batch over them; tests/test_cores.py starts its own processes for that).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "LFI_CPU_CORES"):
    os.environ.setdefault(_var, "1")

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drop JAX's compiled executables after each test module.

    Every XLA:CPU executable keeps memory mappings (two for a small op, a few thousand for a
    training run), and one process that compiles the whole suite would pass Linux's default
    limit of 65 530 mappings (vm.max_map_count) and abort inside XLA. Clearing the caches unmaps
    them; the persistent compilation cache makes the recompiles cheap.
    """
    yield
    jax.clear_caches()
    gc.collect()
