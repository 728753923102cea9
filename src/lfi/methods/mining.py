"""The mining-gold methods by name, for ``lfi.infer`` and ``lfi run``: simulate, then train.

========================================== ======================= ===========================
method                                     simulations             returns
========================================== ======================= ===========================
carl, rolr, rascal, cascal, alice, alices  lfi.simulate_gold       :class:`lfi.GoldRatio`
nde, scandal                               θ ~ prior, + score      :class:`lfi.SCANDAL`
sally, sallino                             at θ_ref, + score       :class:`lfi.SALLY`
========================================== ======================= ===========================

All but ``nde`` and ``carl`` need an augmented simulator (:func:`lfi.augmented`); the ratio and
SALLY methods need ``theta_ref``. ``sally`` and ``sallino`` train the same summary t̂(x); their
inference steps differ: ``SALLY.grid_posterior(simulator, x_o, projected=False | True)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from lfi._rng import Seed, as_key
from lfi.augment import (
    AugmentedSimulator,
    GoldData,
    check_theta_ref,
    run_augmented,
    simulate_augmented,
    simulate_gold,
)
from lfi.methods.gold import GOLD_RATIO_METHODS, SALLY, GoldRatio
from lfi.methods.scandal import SCANDAL
from lfi.priors import Prior

__all__ = ["GOLD_METHODS", "mine"]

GOLD_METHODS = (*GOLD_RATIO_METHODS, "nde", "scandal", "sally", "sallino")


def mine(
    simulator: Callable,
    prior: Prior,
    method: str,
    num_simulations: int,
    seed: Seed = 0,
    *,
    theta_ref: Any = None,
    alpha: float = 1.0,
    progress: bool = True,
    **options: Any,
) -> Any:
    """Simulate what ``method`` needs (``num_simulations`` runs) and return it trained."""
    if method not in GOLD_METHODS:
        raise ValueError(f"method: expected one of {GOLD_METHODS}, got {method!r}")
    key_sim, key_fit = jax.random.split(as_key(seed))
    needs_ref = method in GOLD_RATIO_METHODS or method in ("sally", "sallino")
    if needs_ref and theta_ref is None:
        raise ValueError(f"theta_ref: method {method!r} estimates against a reference θ; give it")
    if method == "carl" and not isinstance(simulator, AugmentedSimulator):
        data = _plain_ratio_data(simulator, prior, num_simulations, theta_ref, key_sim, progress)
        estimator = GoldRatio(prior, theta_ref, method, alpha, progress=progress, **options)
        return estimator.fit(data, seed=key_fit)
    if method in GOLD_RATIO_METHODS:
        data = simulate_gold(
            simulator, prior, num_simulations, theta_ref, key_sim, progress=progress
        )
        estimator = GoldRatio(prior, theta_ref, method, alpha, progress=progress, **options)
        return estimator.fit(data, seed=key_fit)
    if method in ("nde", "scandal"):
        if method == "nde":
            from lfi.simulate import simulate

            theta, x = simulate(simulator, prior, num_simulations, key_sim, progress=progress)
            data = GoldData(theta, x, None)
        else:
            data = simulate_augmented(simulator, prior, num_simulations, key_sim, progress=progress)
        a = 0.0 if method == "nde" else alpha
        return SCANDAL(prior, a, progress=progress, **options).fit(data, seed=key_fit)
    ref = check_theta_ref(prior, theta_ref)
    n = int(num_simulations)
    at = np.broadcast_to(ref, (n, prior.dim))
    x, _, score = run_augmented(simulator, at, at[:, None], key_sim, progress=progress)
    data = GoldData(np.array(at), x, score[:, 0])
    return SALLY(prior, ref, progress=progress, **options).fit(data, seed=key_fit)


def _plain_ratio_data(simulator, prior, n, theta_ref, key, progress) -> GoldData:
    """CARL's rows from any simulator: θ ~ prior; the first half drawn at θ (y = 0), the rest
    at θ_ref (y = 1), as :func:`lfi.simulate_gold` lays them out, without r and t."""
    from lfi.simulate import run_simulator

    ref = check_theta_ref(prior, theta_ref)
    n = int(n)
    key_theta, key_x = jax.random.split(key)
    theta = np.asarray(prior.sample(n, key_theta), np.float32)
    y = (np.arange(n) >= (n + 1) // 2).astype(np.float32)
    at = np.where(y[:, None] > 0, ref, theta).astype(np.float32)
    x, _ = run_simulator(simulator, at, key_x, progress=progress)
    return GoldData(theta, x, None, None, y, ref)
