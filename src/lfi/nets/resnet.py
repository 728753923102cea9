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

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

ACTIVATIONS = ("relu", "tanh", "silu", "elu")


def activation(name: str):
    """The ``jax.nn`` function of an activation name in :data:`ACTIVATIONS` (names come from
    users and from saved configs: only these are looked up)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {ACTIVATIONS}, got {name!r}")
    return getattr(jax.nn, name)


class _Block(eqx.Module):
    linear0: eqx.nn.Linear
    linear1: eqx.nn.Linear
    context: eqx.nn.Linear | None
    activation: str = eqx.field(static=True, default="relu")

    def __init__(self, width: int, context_size: int, key: PRNGKeyArray, activation: str = "relu"):
        self.activation = activation
        k0, k1, kc = jax.random.split(key, 3)
        self.linear0 = eqx.nn.Linear(width, width, key=k0)
        last = eqx.nn.Linear(width, width, key=k1)
        small = jax.random.uniform(k1, (width, width), minval=-1e-3, maxval=1e-3)
        last = eqx.tree_at(lambda m: (m.weight, m.bias), last, (small, jnp.zeros(width)))
        self.linear1 = last
        self.context = eqx.nn.Linear(context_size, width, key=kc) if context_size else None

    def __call__(self, h: Array, c: Array | None) -> Array:
        act = activation(self.activation)
        t = self.linear1(act(self.linear0(act(h))))
        if self.context is not None:
            t = t * jax.nn.sigmoid(self.context(c))
        return h + t


class ResidualNet(eqx.Module):
    """``(u, c) -> out``: input layer on ``[u, c]``, ``blocks`` context-gated residual blocks."""

    first: eqx.nn.Linear
    blocks: tuple[_Block, ...]
    last: eqx.nn.Linear

    def __init__(
        self,
        in_size: int,
        out_size: int,
        *,
        context_size: int = 0,
        width: int = 50,
        blocks: int = 2,
        activation: str = "relu",
        key: PRNGKeyArray,
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {ACTIVATIONS}, got {activation!r}")
        keys = jax.random.split(key, blocks + 2)
        self.first = eqx.nn.Linear(in_size + context_size, width, key=keys[0])
        self.blocks = tuple(_Block(width, context_size, k, activation) for k in keys[1:-1])
        self.last = eqx.nn.Linear(width, out_size, key=keys[-1])

    def __call__(self, u: Array, c: Array | None = None) -> Array:
        h = self.first(u if c is None else jnp.concatenate([u, c]))
        for block in self.blocks:
            h = block(h, c)
        return self.last(h)
