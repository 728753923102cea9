"""Seeds: one integer (or a JAX key) drives every random draw in lfi."""

from __future__ import annotations

import jax
import numpy as np

Seed = int | jax.Array


def as_key(seed: Seed) -> jax.Array:
    """Turn an integer seed or a JAX PRNG key (typed or raw uint32) into a typed JAX key.

    >>> as_key(0).shape
    ()
    """
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return jax.random.key(int(seed))
    arr = jax.numpy.asarray(seed)
    if jax.dtypes.issubdtype(arr.dtype, jax.dtypes.prng_key):
        return arr
    if arr.shape == (2,) and arr.dtype == jax.numpy.uint32:
        return jax.random.wrap_key_data(arr)
    raise TypeError(
        f"seed: expected an int or a JAX PRNG key, got {type(seed).__name__} {arr.shape}"
    )


def numpy_seed(key: jax.Array) -> int:
    """A 31-bit integer for numpy/torch generators, derived from a JAX key."""
    return int(jax.random.randint(key, (), 0, 2**31 - 1))


def numpy_rng(key: Seed) -> np.random.Generator:
    """A numpy generator seeded by a JAX key's words (no JAX computation, nothing to compile).

    >>> float(numpy_rng(0).random()) == float(numpy_rng(jax.random.key(0)).random())
    True
    """
    words = np.asarray(jax.random.key_data(as_key(key)), np.uint32).ravel()
    return np.random.default_rng([int(w) for w in words])
