"""Seeds: one integer (or a JAX key) drives every random draw in lfi."""

from __future__ import annotations

import jax
import numpy as np

Seed = int | jax.Array


def as_key(seed: Seed) -> jax.Array:
    """Turn an integer seed or an existing PRNG key into a JAX PRNG key.

    >>> as_key(0).shape
    (2,)
    """
    if isinstance(seed, (int, np.integer)):
        return jax.random.PRNGKey(int(seed))
    arr = jax.numpy.asarray(seed)
    if jax.dtypes.issubdtype(arr.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(arr)
    if arr.shape == (2,) and arr.dtype == jax.numpy.uint32:
        return arr
    raise TypeError(f"seed: expected an int or a JAX PRNG key, got {type(seed).__name__} {arr.shape}")


def numpy_seed(key: jax.Array) -> int:
    """A 32-bit integer for numpy/torch RNGs, derived from a JAX key."""
    return int(jax.random.randint(key, (), 0, 2**31 - 1))
