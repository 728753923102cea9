"""Embedding networks for x, trained jointly with the estimator: x → a short feature vector.

Selected by name through the ``embedding`` option of :class:`lfi.NPE` and :class:`lfi.NRE`
(a name, or a dict ``{"kind": name, **sizes}``); the network then conditions on (NPE) or
classifies with (NRE) the embedding instead of the raw, z-scored x. NLE takes none: it models
the density of x itself, and its condition is θ. The full config (sizes, ``dim_in``) is part of
the saved network's JSON and the weights part of its arrays, so ``lfi.load`` rebuilds it.

- ``"mlp"``: a multilayer perceptron (``width``, ``depth``, ``out``).
- ``"deepset"``: permutation-invariant DeepSets (Zaheer et al. 2017, arXiv:1703.06114) for a set
  of i.i.d. trials, given flattened as x = (n_trials · ``trial_dim``): φ (an MLP of ``depth``
  layers of ``width``) per trial, mean-pooled, then ρ on [mean, n/n_max] → ``out`` features.
  Pooling sorts each feature over trials before summing, so the output is *exactly* (bitwise)
  invariant to the order of the trials. A trial holding NaN is padding and is masked out
  (varying set sizes: pad to n_max trials with NaN); a set of padding only embeds as zero
  features plus the count 0. NPE/NRE then z-score x with statistics pooled over trials, so the
  whole estimator stays invariant. Used by Radev et al. 2020 (BayesFlow, arXiv:2003.06281).
  Training data may hold NaN-padded sets; the posteriors' observation check
  (:mod:`lfi.posteriors.base`) still refuses NaN in x_o, so a padded *observation* is not yet
  accepted by ``sample``/``log_prob`` (the network itself masks it).
- ``"cnn1d"``: a 1-D convolutional net for time series, x = (``channels_in`` · length) as
  (channels_in, length): ``layers`` × [Conv1d(``channels``, ``kernel``), ReLU, max-pool 2],
  then a linear map to ``out``.

>>> import jax, jax.numpy as jnp
>>> net = build_embedding(embedding_config(12, {"kind": "deepset", "trial_dim": 2}), seed=0)
>>> net(jnp.arange(12.0)).shape
(20,)
>>> perm = jnp.arange(12.0).reshape(6, 2)[::-1].ravel()
>>> bool(jnp.all(net(perm) == net(jnp.arange(12.0))))
True
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from lfi._rng import Seed, as_key

DEFAULTS: dict[str, dict[str, int]] = {
    "mlp": {"width": 64, "depth": 2, "out": 20},
    "deepset": {"trial_dim": 1, "width": 64, "depth": 2, "out": 20},
    "cnn1d": {"channels_in": 1, "channels": 16, "kernel": 5, "layers": 2, "out": 20},
}
EMBEDDINGS = tuple(DEFAULTS)


def normalize_embedding(spec: Any) -> dict[str, Any] | None:
    """A name or dict → ``{"kind": name, **sizes}`` with defaults filled; ``None`` stays None."""
    if spec is None:
        return None
    spec = {"kind": spec} if isinstance(spec, str) else dict(spec)
    kind = spec.pop("kind", None)
    if kind not in DEFAULTS:
        raise ValueError(f"embedding: expected one of {EMBEDDINGS}, got {kind!r}")
    spec.pop("dim_in", None)
    unknown = set(spec) - set(DEFAULTS[kind])
    if unknown:
        raise ValueError(
            f"embedding {kind!r}: unknown options {sorted(unknown)}; valid are "
            f"{sorted(DEFAULTS[kind])}"
        )
    sizes = {**DEFAULTS[kind], **spec}
    for name, value in sizes.items():
        if int(value) != value or int(value) < 1:
            raise ValueError(f"embedding {kind!r}: {name} must be a positive integer, got {value}")
    return {"kind": kind, **{k: int(v) for k, v in sizes.items()}}


def embedding_config(dim_in: int, spec: Any) -> dict[str, Any] | None:
    """The full config of an embedding of an input of size ``dim_in`` (checked to fit)."""
    config = normalize_embedding(spec)
    if config is None:
        return None
    dim_in = int(dim_in)
    unit = {"deepset": "trial_dim", "cnn1d": "channels_in"}.get(config["kind"])
    if unit and dim_in % config[unit]:
        raise ValueError(
            f"embedding {config['kind']!r}: x has {dim_in} values, not a multiple of "
            f"{unit}={config[unit]}"
        )
    return {**config, "dim_in": dim_in}


def trial_dim(spec: Any) -> int | None:
    """The per-trial size of a set embedding (``"deepset"``), else None."""
    config = normalize_embedding(spec)
    return config["trial_dim"] if config and config["kind"] == "deepset" else None


class MLPEmbedding(eqx.Module):
    mlp: eqx.nn.MLP

    def __call__(self, x: Array) -> Array:
        return self.mlp(x)


class DeepSetEmbedding(eqx.Module):
    """ρ([mean_i φ(x_i), n / n_max]) over the non-padding trials x_i (see module docstring)."""

    phi: eqx.nn.MLP
    rho: eqx.nn.MLP
    trial_dim: int = eqx.field(static=True)

    def __call__(self, x: Array) -> Array:
        trials = x.reshape(-1, self.trial_dim)
        keep = jnp.all(jnp.isfinite(trials), axis=1)
        h = jax.vmap(self.phi)(jnp.where(keep[:, None], trials, 0.0))
        h = jnp.where(keep[:, None], h, 0.0)
        count = jnp.sum(keep)
        pooled = jnp.sum(jnp.sort(h, axis=0), axis=0) / jnp.maximum(count, 1)  # order-free
        return self.rho(jnp.concatenate([pooled, (count / trials.shape[0])[None]]))


class CNN1DEmbedding(eqx.Module):
    convs: tuple
    linear: eqx.nn.Linear
    channels_in: int = eqx.field(static=True)

    def __call__(self, x: Array) -> Array:
        h = x.reshape(self.channels_in, -1)
        for conv in self.convs:
            h = jax.nn.relu(conv(h))
            if h.shape[1] >= 2:
                h = eqx.nn.MaxPool1d(2, 2)(h)
        return self.linear(h.ravel())


def build_embedding(config: dict[str, Any], seed: Seed = 0) -> eqx.Module:
    """A freshly initialised embedding from a config (see :func:`embedding_config`)."""
    config = embedding_config(config["dim_in"], config)
    key, kind, out = as_key(seed), config["kind"], config["out"]
    if kind == "mlp":
        mlp = eqx.nn.MLP(config["dim_in"], out, config["width"], config["depth"], jax.nn.relu,
                         key=key)  # fmt: skip
        return MLPEmbedding(mlp)
    if kind == "deepset":
        k_phi, k_rho = jax.random.split(key)
        width, depth = config["width"], config["depth"]
        phi = eqx.nn.MLP(config["trial_dim"], width, width, depth, jax.nn.relu, key=k_phi)
        rho = eqx.nn.MLP(width + 1, out, width, depth, jax.nn.relu, key=k_rho)
        return DeepSetEmbedding(phi, rho, config["trial_dim"])
    keys = jax.random.split(key, config["layers"] + 1)
    c_in, length, convs = config["channels_in"], config["dim_in"] // config["channels_in"], []
    for k in keys[:-1]:
        convs.append(eqx.nn.Conv1d(c_in, config["channels"], config["kernel"],
                                   padding=config["kernel"] // 2, key=k))  # fmt: skip
        c_in = config["channels"]
        length = length + 2 * (config["kernel"] // 2) - config["kernel"] + 1
        length = length // 2 if length >= 2 else length
    linear = eqx.nn.Linear(c_in * length, out, key=keys[-1])
    return CNN1DEmbedding(tuple(convs), linear, config["channels_in"])


def embed(net: Any, x: Array) -> Array:
    """Apply an embedding to x of shape (..., dim_in): (..., out)."""
    flat = x.reshape(-1, x.shape[-1])
    return jax.vmap(net)(flat).reshape(*x.shape[:-1], -1)
