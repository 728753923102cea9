"""Neural likelihood estimation (NLE): a conditional flow q(x | θ); prior × q sampled by MCMC.

Papamakarios, Sterratt & Murray 2019 (arXiv:1805.07226); the amortised form of sbibm
(arXiv:2101.04653). θ enters the flow as a condition in the prior's unconstrained space,
z-scored; x is z-scored. Several i.i.d. trials of one θ multiply their likelihoods, so an
observation may be given as (k, dim_x).

>>> import lfi, numpy as np
>>> prior = lfi.BoxUniform([0.0, 0.0], [2.0, 2.0])
>>> theta = np.asarray(prior.sample(500, seed=0))
>>> x = theta + 0.1 * np.random.default_rng(0).standard_normal(theta.shape)
>>> posterior = lfi.NLE(prior, max_epochs=5, progress=False).fit(theta, x, seed=0)
>>> posterior.sample(200, x=[1.0, 1.0], seed=1, num_warmup=50).shape
(200, 2)
"""

from __future__ import annotations

import warnings
from typing import Any

import jax.numpy as jnp
import numpy as np
import paramax

from lfi._rng import Seed, as_key
from lfi.methods.npe import TRAIN_DEFAULTS, check_training_data
from lfi.nets.flows import build_flow, flow_config
from lfi.posteriors.direct import Standardizer
from lfi.posteriors.unnormalized import UnnormalizedPosterior
from lfi.priors import Prior
from lfi.train import fit

SAMPLER_OPTIONS = ("sampler", "num_chains", "num_warmup", "thin")


def nle_loss(flow: Any, batch: tuple, key: Any) -> Any:
    """Negative mean log q(z_x | z_θ) over a batch of standardised (θ, x) pairs."""
    z_theta, z_x = batch
    return -jnp.mean(paramax.unwrap(flow).log_prob(z_x, z_theta))


def split_options(options: dict[str, Any]) -> tuple[dict, dict, dict]:
    """Split keyword options into (training, sampler, network) settings."""
    train = {k: options.pop(k) for k in list(options) if k in TRAIN_DEFAULTS}
    sampler = {k: options.pop(k) for k in list(options) if k in SAMPLER_OPTIONS}
    return train, sampler, options


class NLE:
    """Neural likelihood estimation; ``NLE(prior).fit(theta, x, seed=0)`` returns a posterior.

    Flow options as :class:`lfi.NPE` (``flow``, ``flow_layers``, ``nn_width``…), training
    options as NPE, and sampler options (``sampler``: "nuts" default, "slice", "hmc", "rwm",
    "importance", "rejection"; ``num_chains``, ``num_warmup``, ``thin``) kept by the posterior.
    """

    method = "nle"

    def __init__(self, prior: Prior, *, flow: str = "nsf", progress: bool = True, **options: Any):
        if not isinstance(prior, Prior):
            raise TypeError(f"prior: expected an lfi prior, got {type(prior).__name__}")
        train, self.sampler_options, net = split_options(dict(options))
        self.prior, self.progress = prior, progress
        self.flow_options = {"kind": flow, **net}
        flow_config(1, 1, **self.flow_options)  # validate names and kind now
        self.train_options = {**TRAIN_DEFAULTS, **train}
        self.history = None

    def fit(self, theta: Any, x: Any, seed: Seed = 0) -> UnnormalizedPosterior:
        theta, x = check_training_data(self.prior, theta, x)
        u = np.asarray(self.prior.to_unconstrained(theta))
        stand = Standardizer.fit(u, x)
        key = as_key(seed)
        config = flow_config(x.shape[1], self.prior.dim, **self.flow_options)
        flow = build_flow(config, key)
        data = (stand.z_theta(jnp.asarray(u)), stand.z_x(jnp.asarray(x)))
        trained, self.history = fit(
            flow, nle_loss, data, seed=key, progress=self.progress, **self.train_options
        )
        if self.history.best_epoch < 0:
            warnings.warn("NLE: validation loss never improved; untrained", stacklevel=2)
        options = dict(self.sampler_options)
        return UnnormalizedPosterior(
            self.prior,
            trained,
            stand,
            config,
            x.shape[1],
            kind="likelihood",
            method=self.method,
            history=self.history,
            sampler=options.pop("sampler", "nuts"),
            sampler_options=options,
        )
