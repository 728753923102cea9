"""The one-liner ``infer`` and ``load``: thin glue over simulate → method → posterior."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from lfi._rng import Seed, as_key
from lfi.methods.abc import ABC_METHODS, abc
from lfi.methods.gold import GoldRatio
from lfi.methods.mining import GOLD_METHODS, mine
from lfi.methods.ratio import CARL, ClassifierRatio
from lfi.methods.registry import get_method
from lfi.methods.scandal import SCANDAL
from lfi.methods.sequential import SEQUENTIAL, sequential
from lfi.posteriors.direct import DirectPosterior
from lfi.posteriors.io import read_archive
from lfi.posteriors.samples import ParticlePosterior
from lfi.posteriors.unnormalized import UnnormalizedPosterior
from lfi.priors import Prior
from lfi.simulate import simulate

_LOADERS = {
    "DirectPosterior": DirectPosterior.load,
    "UnnormalizedPosterior": UnnormalizedPosterior.load,
    "ClassifierRatio": ClassifierRatio.load,
    "CARL": CARL.load,
    "GoldRatio": GoldRatio.load,
    "SCANDAL": SCANDAL.load,
    "ParticlePosterior": ParticlePosterior.load,
}


def infer(
    simulator: Callable,
    prior: Prior,
    method: str = "npe",
    num_simulations: int = 1000,
    seed: Seed = 0,
    *,
    num_rounds: int = 1,
    x_o: Any = None,
    progress: bool = True,
    **options: Any,
) -> Any:
    """Simulate ``num_simulations`` from the prior, train ``method``, return its posterior.

    ``options`` go to the method's constructor (network, training and sampler settings).
    Methods: see ``lfi.METHODS`` ("npe", "nle", "nre_a", "nre_b" = "nre", "nre_c", "bnre") and
    the sequential ones, "snpe", "snle", "snre", which need ``x_o`` and run ``num_rounds``
    rounds (see :func:`lfi.methods.sequential.sequential`); ``num_rounds > 1`` with "npe",
    "nle" or "nre" runs their sequential form. "rejection_abc" and "smc_abc" (see
    :mod:`lfi.methods.abc`) also need ``x_o`` and return a posterior for it alone. The
    mining-gold methods ("carl", "rolr", "rascal", "cascal", "alice", "alices", "nde",
    "scandal", "sally", "sallino"; see :mod:`lfi.methods.mining`) return the trained ratio,
    likelihood or summary estimator; most need an augmented simulator and ``theta_ref``.

    >>> import lfi, numpy as np
    >>> prior = lfi.BoxUniform([0.0, 0.0], [2.0, 2.0])
    >>> sim = lambda theta, rng: theta + 0.1 * rng.standard_normal(theta.shape)
    >>> post = lfi.infer(sim, prior, "npe", num_simulations=500, seed=0, max_epochs=3,
    ...                  progress=False)
    >>> post.sample(5, x=[1.0, 1.0]).shape
    (5, 2)
    """
    name = str(method).lower()
    if name in ("npe", "nle", "nre") and num_rounds > 1:
        name = "s" + name
    if name in SEQUENTIAL:
        if x_o is None:
            raise ValueError(f"x_o: method {name!r} runs rounds at one observation; give x_o")
        return sequential(
            simulator,
            prior,
            name,
            x_o,
            num_rounds=num_rounds,
            num_simulations=num_simulations,
            seed=seed,
            progress=progress,
            **options,
        )
    if num_rounds != 1:
        raise ValueError(f"num_rounds: method {name!r} has no sequential form; use 1")
    if name in ABC_METHODS:
        return abc(simulator, prior, name, x_o, num_simulations, seed, progress=progress, **options)
    if name in GOLD_METHODS:
        return mine(simulator, prior, name, num_simulations, seed, progress=progress, **options)
    estimator_cls = get_method(name)  # fail on a bad name before simulating
    estimator = estimator_cls(prior, progress=progress, **options)
    key_sim, key_fit = jax.random.split(as_key(seed))
    theta, x = simulate(simulator, prior, num_simulations, seed=key_sim, progress=progress)
    return estimator.fit(theta, x, seed=key_fit)


def load(path: str) -> Any:
    """Load a posterior or ratio saved with ``.save(path)`` (JSON config + arrays; no pickle)."""
    config, _ = read_archive(path)
    kind = config.get("class")
    if kind not in _LOADERS:
        raise ValueError(f"path: unknown model class {kind!r}; known: {sorted(_LOADERS)}")
    return _LOADERS[kind](path)
