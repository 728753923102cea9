"""The one-liner ``infer`` and ``load``: thin glue over simulate → method → posterior."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from lfi._rng import Seed, as_key
from lfi.methods.registry import get_method
from lfi.posteriors.direct import DirectPosterior
from lfi.posteriors.io import read_archive
from lfi.priors import Prior
from lfi.simulate import simulate

_LOADERS = {"DirectPosterior": DirectPosterior.load}


def infer(
    simulator: Callable,
    prior: Prior,
    method: str = "npe",
    num_simulations: int = 1000,
    seed: Seed = 0,
    *,
    progress: bool = True,
    **options: Any,
) -> Any:
    """Simulate ``num_simulations`` from the prior, train ``method``, return its posterior.

    ``options`` go to the method's constructor (flow and training settings).

    >>> import lfi, numpy as np
    >>> prior = lfi.BoxUniform([0.0, 0.0], [2.0, 2.0])
    >>> sim = lambda theta, rng: theta + 0.1 * rng.standard_normal(theta.shape)
    >>> post = lfi.infer(sim, prior, "npe", num_simulations=500, seed=0, max_epochs=3,
    ...                  progress=False)
    >>> post.sample(5, x=[1.0, 1.0]).shape
    (5, 2)
    """
    estimator_cls = get_method(method)  # fail on a bad name before simulating
    estimator = estimator_cls(prior, progress=progress, **options)
    key_sim, key_fit = jax.random.split(as_key(seed))
    theta, x = simulate(simulator, prior, num_simulations, seed=key_sim, progress=progress)
    return estimator.fit(theta, x, seed=key_fit)


def load(path: str) -> Any:
    """Load a posterior saved with ``.save(path)`` (JSON config + arrays; never pickle)."""
    config, _ = read_archive(path)
    kind = config.get("class")
    if kind not in _LOADERS:
        raise ValueError(f"path: unknown model class {kind!r}; known: {sorted(_LOADERS)}")
    return _LOADERS[kind](path)
