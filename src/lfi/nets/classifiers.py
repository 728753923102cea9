"""Classifiers ``f(a, b) -> logit`` for ratio estimation, built from a JSON-able config.

A residual net on the concatenated inputs (as sbi's default NRE classifier, ``resnet`` with
2 blocks of width 50) or a plain MLP. Inputs are expected standardised by the caller. With an
``embedding`` (see :mod:`lfi.nets.embeddings`) ``b`` (x) goes through it first.

>>> import jax.numpy as jnp
>>> net = build_classifier(classifier_config(2, 3), seed=0)
>>> net(jnp.zeros(2), jnp.zeros(3)).shape
()
>>> jax_batch = jax.vmap(net)(jnp.zeros((4, 2)), jnp.zeros((4, 3)))
>>> jax_batch.shape
(4,)
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from lfi._rng import Seed, as_key
from lfi.nets.embeddings import build_embedding, embedding_config
from lfi.nets.resnet import ACTIVATIONS, ResidualNet, activation

KINDS = ("resnet", "mlp")
DEFAULTS: dict[str, Any] = {
    "kind": "resnet",
    "width": 50,
    "depth": 2,
    "activation": "relu",
    "anchor": None,
    "embedding": None,
}


def classifier_config(dim_a: int, dim_b: int, **overrides: Any) -> dict[str, Any]:
    """The full config of a classifier on inputs of sizes ``dim_a`` and ``dim_b``."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(
            f"classifier options: unknown {sorted(unknown)}; valid are {sorted(DEFAULTS)}"
        )
    config = {**DEFAULTS, **{k: v for k, v in overrides.items() if v is not None}}
    if config["kind"] not in KINDS:
        raise ValueError(f"classifier: expected one of {KINDS}, got {config['kind']!r}")
    if config["activation"] not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {ACTIVATIONS}, got {config['activation']!r}")
    if config["anchor"] is not None:
        config["anchor"] = [float(v) for v in config["anchor"]]
        if len(config["anchor"]) != int(dim_a):
            raise ValueError(f"anchor: expected {dim_a} values, got {len(config['anchor'])}")
    config["embedding"] = embedding_config(dim_b, config["embedding"])
    return {**config, "dim_a": int(dim_a), "dim_b": int(dim_b)}


class Classifier(eqx.Module):
    """One logit for one pair ``(a, b)``; ``jax.vmap`` it for batches.

    With an ``anchor`` a₀ the output is g(a, b) − g(a₀, b): exactly 0 at a = a₀ for every b,
    the identity log r(x | θ_ref, θ_ref) = 0 of a ratio against a reference θ_ref built in.
    """

    net: eqx.Module
    anchor: tuple[float, ...] | None = eqx.field(static=True, default=None)
    embedding: eqx.Module | None = None

    def __call__(self, a: Array, b: Array) -> Array:
        if self.embedding is not None:
            b = self.embedding(b)
        out = self.net(jnp.concatenate([a, b]))[0]
        if self.anchor is None:
            return out
        a0 = jnp.asarray(self.anchor, a.dtype)
        return out - self.net(jnp.concatenate([a0, b]))[0]


def build_classifier(config: dict[str, Any], seed: Seed = 0) -> Classifier:
    """A freshly initialised classifier from a config (see :func:`classifier_config`)."""
    config = classifier_config(**config)
    emb, key = config["embedding"], as_key(seed)
    size = config["dim_a"] + (config["dim_b"] if emb is None else emb["out"])
    embedding = None
    if emb is not None:
        key, k_emb = jax.random.split(key)
        embedding = build_embedding(emb, k_emb)
    if config["kind"] == "resnet":
        net = ResidualNet(
            size,
            1,
            width=config["width"],
            blocks=config["depth"],
            activation=config["activation"],
            key=key,
        )
    else:
        act = activation(config["activation"])
        net = eqx.nn.MLP(size, 1, config["width"], config["depth"], act, key=key)
    anchor = None if config["anchor"] is None else tuple(config["anchor"])
    return Classifier(net, anchor, embedding)
