"""Classifiers ``f(a, b) -> logit`` for ratio estimation, built from a JSON-able config.

A residual net on the concatenated inputs (as sbi's default NRE classifier, ``resnet`` with
2 blocks of width 50) or a plain MLP. Inputs are expected standardised by the caller.

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
from lfi.nets.resnet import ResidualNet

KINDS = ("resnet", "mlp")
DEFAULTS: dict[str, Any] = {"kind": "resnet", "width": 50, "depth": 2}


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
    return {**config, "dim_a": int(dim_a), "dim_b": int(dim_b)}


class Classifier(eqx.Module):
    """One logit for one pair ``(a, b)``; ``jax.vmap`` it for batches."""

    net: eqx.Module

    def __call__(self, a: Array, b: Array) -> Array:
        return self.net(jnp.concatenate([a, b]))[0]


def build_classifier(config: dict[str, Any], seed: Seed = 0) -> Classifier:
    """A freshly initialised classifier from a config (see :func:`classifier_config`)."""
    config = classifier_config(**config)
    size, key = config["dim_a"] + config["dim_b"], as_key(seed)
    if config["kind"] == "resnet":
        net = ResidualNet(size, 1, width=config["width"], blocks=config["depth"], key=key)
    else:
        net = eqx.nn.MLP(size, 1, config["width"], config["depth"], jax.nn.relu, key=key)
    return Classifier(net)
