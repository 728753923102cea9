"""Test-session hygiene shared by every test module."""

import gc

import jax
import pytest


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
