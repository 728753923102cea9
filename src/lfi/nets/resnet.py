"""A residual network whose blocks are gated by a context vector.

The conditioner of sbi's and nflows' neural spline flow (Durkan et al. 2019, arXiv:1906.04032):
``h = W_in [u, c]``, then per block ``h += glu(W1 relu(W0 relu(h)), W_c c)``, then ``W_out h``.
The last layer of each block starts near zero, so every block starts close to the identity.
Also a plain classifier/regressor trunk for later estimators (ratio classifiers).

>>> import jax, jax.numpy as jnp
>>> net = ResidualNet(3, 4, context_size=2, width=16, blocks=2, key=jax.random.key(0))
>>> net(jnp.ones(3), jnp.ones(2)).shape
(4,)
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from lfi._rng import Seed, numpy_rng

ACTIVATIONS = ("relu", "tanh", "silu", "elu")


def activation(name: str):
    """The ``jax.nn`` function of an activation name in :data:`ACTIVATIONS` (names come from
    users and from saved configs: only these are looked up)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {ACTIVATIONS}, got {name!r}")
    return getattr(jax.nn, name)


def generator(key: Seed | np.random.Generator) -> np.random.Generator:
    """A numpy generator: ``key`` itself, or one seeded by an integer or JAX key."""
    return key if isinstance(key, np.random.Generator) else numpy_rng(key)


class Dense(eqx.Module):
    """``y = W x + b``, with the fields (and so the saved arrays) of ``eqx.nn.Linear``.

    Initialised by numpy: uniform on ±1/sqrt(in_size) (the default of PyTorch and equinox), or
    on ±``bound``. A JAX initialiser compiles a program per shape in every new process (about a
    second for a flow's layers); numpy compiles nothing.

    >>> Dense(3, 2, np.random.default_rng(0))(jnp.ones(3)).shape
    (2,)
    """

    weight: Array
    bias: Array

    def __init__(
        self,
        in_size: int,
        out_size: int,
        rng: np.random.Generator,
        bound: float | None = None,
        zero_bias: bool = False,
    ):
        lim = 1.0 / math.sqrt(in_size) if bound is None else float(bound)
        weight = rng.uniform(-lim, lim, (out_size, in_size))
        bias = np.zeros(out_size) if zero_bias else rng.uniform(-lim, lim, out_size)
        dtype = jnp.result_type(float)  # float32, or float64 with jax_enable_x64
        # device_put: jnp.asarray of a numpy array compiles a small program per shape
        self.weight = jax.device_put(weight.astype(dtype))
        self.bias = jax.device_put(bias.astype(dtype))

    def __call__(self, x: Array) -> Array:
        return self.weight @ x + self.bias


class _Block(eqx.Module):
    linear0: Dense
    linear1: Dense
    context: Dense | None
    activation: str = eqx.field(static=True, default="relu")

    def __init__(
        self, width: int, context_size: int, rng: np.random.Generator, activation: str = "relu"
    ):
        self.activation = activation
        self.linear0 = Dense(width, width, rng)
        self.linear1 = Dense(width, width, rng, bound=1e-3, zero_bias=True)  # near identity
        self.context = Dense(context_size, width, rng) if context_size else None

    def __call__(self, h: Array, c: Array | None) -> Array:
        act = activation(self.activation)
        t = self.linear1(act(self.linear0(act(h))))
        if self.context is not None:
            t = t * jax.nn.sigmoid(self.context(c))
        return h + t


class ResidualNet(eqx.Module):
    """``(u, c) -> out``: input layer on ``[u, c]``, ``blocks`` context-gated residual blocks."""

    first: Dense
    blocks: tuple[_Block, ...]
    last: Dense

    def __init__(
        self,
        in_size: int,
        out_size: int,
        *,
        context_size: int = 0,
        width: int = 50,
        blocks: int = 2,
        activation: str = "relu",
        key: Seed | np.random.Generator,
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {ACTIVATIONS}, got {activation!r}")
        rng = generator(key)
        self.first = Dense(in_size + context_size, width, rng)
        self.blocks = tuple(_Block(width, context_size, rng, activation) for _ in range(blocks))
        self.last = Dense(width, out_size, rng)

    def __call__(self, u: Array, c: Array | None = None) -> Array:
        h = self.first(u if c is None else jnp.concatenate([u, c]))
        for block in self.blocks:
            h = block(h, c)
        return self.last(h)
