"""A time-conditioned network v(z, t, x) for flow matching (FMPE) and score matching (NPSE).

The time t ∈ [0, 1] is embedded as ``[t, sin(kπt), cos(kπt)]`` for k = 1…``frequencies`` and
joins the (z-scored) observation x as the context of a :class:`lfi.nets.resnet.ResidualNet`:
the context enters the first layer beside z and gates every residual block, as the gated
residual networks of FMPE (Wildberger, Dax et al. 2023, arXiv:2305.17161) do.

>>> import jax, jax.numpy as jnp
>>> config = vector_field_config(2, 3, width=16, blocks=1)
>>> net = build_vector_field(config, jax.random.key(0))
>>> net(jnp.ones(2), jnp.asarray(0.5), jnp.ones(3)).shape
(2,)
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from lfi.nets.resnet import ACTIVATIONS, ResidualNet

__all__ = ["VectorField", "build_vector_field", "time_embedding", "vector_field_config"]


def time_embedding(t: Array, frequencies: int) -> Array:
    """``[t, sin(kπt), cos(kπt)]`` for k = 1…frequencies: shape (1 + 2·frequencies,)."""
    t = jnp.asarray(t, jnp.float32).reshape(())
    k = jnp.arange(1, frequencies + 1, dtype=jnp.float32) * jnp.pi * t
    return jnp.concatenate([t[None], jnp.sin(k), jnp.cos(k)])


class VectorField(eqx.Module):
    """``(z, t, x) -> (dθ,)``: a gated residual net on z with context ``[x, embed(t)]``."""

    net: ResidualNet
    frequencies: int = eqx.field(static=True)

    def __init__(
        self,
        dim_theta: int,
        dim_x: int,
        *,
        width: int = 128,
        blocks: int = 3,
        frequencies: int = 8,
        activation: str = "silu",
        key: Any,
    ):
        self.frequencies = int(frequencies)
        context = dim_x + 1 + 2 * self.frequencies
        self.net = ResidualNet(
            dim_theta, dim_theta, context_size=context, width=width, blocks=blocks,
            activation=activation, key=key,
        )  # fmt: skip

    def __call__(self, z: Array, t: Array, x: Array) -> Array:
        return self.net(z, jnp.concatenate([x, time_embedding(t, self.frequencies)]))


def vector_field_config(
    dim_theta: int,
    dim_x: int,
    *,
    width: int = 128,
    blocks: int = 3,
    frequencies: int = 8,
    activation: str = "silu",
) -> dict[str, Any]:
    """A JSON-able, validated description of a :class:`VectorField` (what ``save`` stores)."""
    checks = (("width", width, 1), ("blocks", blocks, 1), ("frequencies", frequencies, 0))
    for name, value, low in checks:
        if int(value) != value or value < low:
            raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {ACTIVATIONS}, got {activation!r}")
    return {
        "dim_theta": int(dim_theta),
        "dim_x": int(dim_x),
        "width": int(width),
        "blocks": int(blocks),
        "frequencies": int(frequencies),
        "activation": activation,
    }


def build_vector_field(config: dict[str, Any], key: Any = None) -> VectorField:
    """The network a config describes (random weights; ``key=None`` for a load skeleton)."""
    key = jax.random.key(0) if key is None else key
    c = dict(config)
    return VectorField(c.pop("dim_theta"), c.pop("dim_x"), key=key, **c)
