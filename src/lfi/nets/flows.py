"""Conditional normalizing flows q(y | c) from flowjax, built from a JSON-able config.

A flow is rebuilt from its config and its array leaves, so saved models load without pickle.

- ``"nsf"``: neural spline flow (Durkan et al. 2019, arXiv:1906.04032): coupling layers with
  rational-quadratic splines on [-interval, interval] (identity outside). With the default
  ``conditioner="resnet"`` each layer is the one of sbi's ``nsf``: a spline coupling whose
  parameters come from a context-gated residual net (``nn_depth`` blocks of width ``nn_width``)
  and an LU linear layer (see :mod:`lfi.nets.coupling`); ``conditioner="mlp"`` gives flowjax's
  ``coupling_flow`` (an MLP of depth ``nn_depth``, and permutations); ``conditioner="made"``
  makes every layer autoregressive (flowjax's ``masked_autoregressive_flow`` with the spline
  as its transformer, sbi's ``maf_rqs``): one pass to evaluate a density, ``dim`` passes to
  sample, so it suits estimators that evaluate densities (NLE).
- ``"maf"``: masked autoregressive flow (Papamakarios et al. 2017, arXiv:1705.07057), affine.

``embedding`` (a name or dict, see :mod:`lfi.nets.embeddings`) puts an embedding network in
front of the condition: the flow is an :class:`EmbeddedFlow` conditioned on its features.

>>> import jax, jax.numpy as jnp
>>> flow = build_flow({"kind": "nsf", "dim": 2, "cond_dim": 3}, seed=0)
>>> flow.log_prob(jnp.zeros((4, 2)), jnp.zeros((4, 3))).shape
(4,)
"""

from __future__ import annotations

import functools
import json
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from flowjax.bijections import Chain, Flip, Invert, RationalQuadraticSpline, Scan
from flowjax.distributions import Normal, Transformed
from flowjax.flows import coupling_flow, masked_autoregressive_flow

from lfi._rng import Seed, as_key, numpy_rng
from lfi.nets.coupling import LULinear, ResidualCoupling
from lfi.nets.embeddings import build_embedding, embed, embedding_config
from lfi.nets.resnet import ACTIVATIONS, activation

FLOW_KINDS = ("nsf", "maf")
CONDITIONERS = ("resnet", "mlp", "made")

DEFAULTS: dict[str, Any] = {
    "kind": "nsf",
    "flow_layers": 5,
    "nn_width": 50,
    "nn_depth": 2,
    "knots": 10,
    "interval": 5.0,
    "conditioner": "resnet",
    "activation": "relu",
    "embedding": None,
}


def flow_config(dim: int, cond_dim: int, **overrides: Any) -> dict[str, Any]:
    """The full config for a flow over ``dim`` variables conditioned on ``cond_dim`` inputs."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"flow options: unknown {sorted(unknown)}; valid are {sorted(DEFAULTS)}")
    config = {**DEFAULTS, **{k: v for k, v in overrides.items() if v is not None}}
    if config["kind"] not in FLOW_KINDS:
        raise ValueError(f"flow: expected one of {FLOW_KINDS}, got {config['kind']!r}")
    if config["activation"] not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {ACTIVATIONS}, got {config['activation']!r}")
    if config["conditioner"] not in CONDITIONERS:
        raise ValueError(
            f"conditioner: expected one of {CONDITIONERS}, got {config['conditioner']!r}"
        )
    config["embedding"] = embedding_config(cond_dim, config["embedding"])
    return {**config, "dim": int(dim), "cond_dim": int(cond_dim)}


class EmbeddedFlow(eqx.Module):
    """A conditional flow whose condition first goes through an embedding network."""

    flow: Transformed
    embedding: eqx.Module

    def log_prob(self, x: jax.Array, condition: jax.Array) -> jax.Array:
        return self.flow.log_prob(x, embed(self.embedding, condition))

    def sample(self, key: Any, sample_shape: tuple = (), condition: Any = None) -> jax.Array:
        return self.flow.sample(key, sample_shape, condition=embed(self.embedding, condition))

    def sample_and_log_prob(
        self, key: Any, sample_shape: tuple = (), condition: Any = None
    ) -> tuple[jax.Array, jax.Array]:
        cond = embed(self.embedding, condition)
        return self.flow.sample_and_log_prob(key, sample_shape, condition=cond)


_SKELETONS: dict[str, Any] = {}


def build_flow(config: dict[str, Any], seed: Seed = 0) -> Transformed | EmbeddedFlow:
    """Build a freshly initialised conditional flow from a config (see :func:`flow_config`).

    Flows built from equal configs share one non-array skeleton: flowjax's coupling layers hold
    a closure made per instance, and without sharing it every new flow would recompile every
    jitted function that takes it (seconds each).
    """
    config = flow_config(**config)
    emb = config["embedding"]
    if emb is not None:  # the flow conditions on the embedding's features
        k_flow, k_emb = jax.random.split(as_key(seed))
        inner = build_flow({**config, "embedding": None, "cond_dim": emb["out"]}, k_flow)
        return EmbeddedFlow(inner, build_embedding(emb, k_emb))
    fresh = _build(config, seed)
    name = json.dumps(config, sort_keys=True)
    skeleton = _SKELETONS.setdefault(name, fresh)
    return eqx.combine(
        eqx.filter(fresh, eqx.is_array), eqx.filter(skeleton, eqx.is_array, inverse=True)
    )


def _base(dim: int) -> Normal:
    """The standard normal base over ``dim`` variables (its loc and scale are trained: flows
    share the initial one, whose arrays are immutable)."""
    return _cached_base(dim, jnp.result_type(float))


def _spline(knots: int, interval: float | tuple[float, float]) -> RationalQuadraticSpline:
    """The identity spline that the coupling layers start from."""
    return _cached_spline(knots, interval, jnp.result_type(float))


# Built once per process and float dtype (x64 may be switched on later), each by one compiled
# call: eagerly, flowjax's constructors compiled about six small programs each. The base's
# program holds a host callback (flowjax checks its scale), so JAX does not cache it on disk:
# 25 ms in every new process.
@functools.cache
def _cached_base(dim: int, dtype: Any) -> Normal:
    return eqx.filter_jit(lambda: Normal(jnp.zeros(dim, dtype)))()


@functools.cache
def _cached_spline(knots: int, interval: Any, dtype: Any) -> RationalQuadraticSpline:
    return eqx.filter_jit(lambda: RationalQuadraticSpline(knots=knots, interval=interval))()


def _interval(value: Any) -> float | tuple[float, float]:
    """A spline interval as flowjax takes it: a number, or a (low, high) pair (JSON gives a
    list)."""
    if isinstance(value, (list, tuple)):
        return tuple(float(v) for v in value)  # type: ignore[return-value]
    return float(value)


def _build(config: dict[str, Any], seed: Seed) -> Transformed:
    dim = config["dim"]
    base = _base(dim)
    common = dict(
        base_dist=base,
        cond_dim=config["cond_dim"],
        flow_layers=config["flow_layers"],
        nn_width=config["nn_width"],
        nn_depth=config["nn_depth"],
        nn_activation=activation(config["activation"]),
    )
    if config["kind"] == "nsf" and dim > 1 and config["conditioner"] == "resnet":
        return _residual_spline_flow(config, seed, base)
    key = as_key(seed)
    if config["kind"] == "maf":
        return masked_autoregressive_flow(key, **common)
    spline = RationalQuadraticSpline(knots=config["knots"], interval=_interval(config["interval"]))
    if dim > 1 and config["conditioner"] == "mlp":
        return coupling_flow(key, transformer=spline, **common)
    # "made", or one variable (no coupling split): autoregressive splines
    return masked_autoregressive_flow(key, transformer=spline, **common)


def _residual_spline_flow(config: dict[str, Any], seed: Seed, base: Normal) -> Transformed:
    # initial weights drawn by numpy (lfi.nets.resnet.Dense): JAX's initialisers compiled about
    # a second of small programs (or one jitted builder) in every new process
    dim, cond_dim = config["dim"], config["cond_dim"]
    rng = numpy_rng(seed)
    spline = _spline(config["knots"], _interval(config["interval"]))  # the couplings keep it

    def layer() -> Chain:
        coupling = ResidualCoupling(
            rng,
            transformer=spline,
            untransformed_dim=dim // 2,
            dim=dim,
            cond_dim=cond_dim,
            width=config["nn_width"],
            blocks=config["nn_depth"],
            activation=config["activation"],
        )  # Flip: the next layer transforms the variables this one conditioned on
        return Chain([coupling, Flip((dim,)), LULinear(dim)]).merge_chains()

    layers = [layer() for _ in range(config["flow_layers"])]
    arrays = [eqx.filter(a, eqx.is_array) for a in layers]
    stacked = jax.tree_util.tree_map(
        lambda *leaves: jax.device_put(np.stack([np.asarray(a) for a in leaves])), *arrays
    )  # the layers' weights along a leading axis, for flowjax's Scan
    layers = eqx.combine(stacked, eqx.filter(layers[0], eqx.is_array, inverse=True))
    return Transformed(base, Invert(Scan(layers)))
