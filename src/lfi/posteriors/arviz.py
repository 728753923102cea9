"""Posterior draws as an ArviZ ``InferenceData`` (arviz is optional: ``pip install 'lfi[arviz]'``).

The ``posterior`` group holds ``theta`` with dims (chain, draw, theta_dim). An MCMC-sampled
posterior (NLE, NRE, :class:`lfi.LikelihoodPosterior`) keeps its chains, mapped back from the
prior's unconstrained space, so ArviZ's R-hat and ESS (Vehtari et al. 2021, arXiv:1903.08008)
judge the sampler; all draws of every chain are kept, a few more than ``num_samples`` when it
does not divide evenly. A posterior with independent draws (NPE flows, ABC particles,
importance or rejection sampling) has its draws split into ``num_chains`` pseudo-chains, on
which R-hat is ≈ 1 and the ESS ≈ the number of draws. ``sample_stats.lp`` is ``log_prob`` of
each draw (unnormalised for NLE/NRE: see the group's ``lp_normalized`` attribute);
``observed_data.x`` the observation.

>>> import numpy as np, lfi
>>> prior = lfi.BoxUniform([0.0], [1.0])
>>> post = lfi.ParticlePosterior(prior, np.full((50, 1), 0.5), x_o=[0.0])
>>> idata = to_inference_data(post, 400, num_chains=4)
>>> idata.posterior["theta"].shape
(4, 100, 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lfi._rng import Seed

__all__ = ["to_inference_data"]

INSTALL = "pip install 'lfi[arviz]'"
MCMC_SAMPLERS = ("imh", "nuts", "hmc", "slice", "rwm")  # UnnormalizedPosterior's chain samplers


def _arviz() -> Any:
    try:
        import arviz
    except ImportError as err:
        raise ImportError(f"to_arviz needs the optional dependency arviz: {INSTALL}") from err
    return arviz


def _chains(posterior: Any, draws: np.ndarray, num_chains: int) -> tuple[np.ndarray, dict]:
    """(chains, draws, dθ) and the sampler's attributes: MCMC chains if the last run had them."""
    from lfi.samplers import MCMCResult

    result = getattr(posterior, "diagnostics", None)
    if isinstance(result, MCMCResult):
        u = np.asarray(result.samples)
        theta = np.asarray(posterior.prior.from_unconstrained(u.reshape(-1, u.shape[-1])))
        attrs = {
            "sampler": result.kernel,
            "acceptance": float(result.acceptance),
            "divergences": int(result.divergences),
            "num_warmup": int(result.num_warmup),
        }
        return theta.reshape(u.shape), attrs
    num_chains = int(num_chains)
    if num_chains < 1 or len(draws) < num_chains:
        raise ValueError(f"num_chains: expected 1..{len(draws)}, got {num_chains}")
    per = len(draws) // num_chains
    return draws[: per * num_chains].reshape(num_chains, per, -1), {"sampler": "independent"}


def to_inference_data(
    posterior: Any,
    num_samples: int = 1000,
    x: Any = None,
    seed: Seed = 0,
    *,
    num_chains: int | None = None,
    labels: Sequence[str] | None = None,
    log_prob: bool = True,
    **options: Any,
) -> Any:
    """Draw ``num_samples`` from ``posterior`` at ``x`` and return an ``arviz.InferenceData``.

    Any object with ``sample(n, x=..., seed=...)`` works (``options`` go to ``sample``, e.g.
    ``sampler="nuts"``). ``num_chains``: the chains of an MCMC sampler (passed to ``sample``;
    by default the sampler's own number), or the pseudo-chains independent draws are split
    into (default 4). ``labels``: names of θ's dimensions (coordinates of ``theta_dim``).
    ``log_prob``: also store each draw's ``log_prob`` as ``sample_stats.lp``.

    Raises:
        ImportError: arviz is not installed (``pip install 'lfi[arviz]'``).
    """
    az = _arviz()
    mcmc = options.get("sampler", getattr(posterior, "sampler", None)) in MCMC_SAMPLERS
    if mcmc and num_chains is not None:
        options["num_chains"] = int(num_chains)
    draws = np.asarray(posterior.sample(int(num_samples), x=x, seed=seed, **options), np.float64)
    theta, attrs = _chains(posterior, draws, 4 if num_chains is None else num_chains)
    chains, per, dim = theta.shape
    labels = list(range(dim)) if labels is None else [str(v) for v in labels]
    if len(labels) != dim:
        raise ValueError(f"labels: expected {dim}, got {len(labels)}")
    attrs = {
        **attrs,
        "inference_library": "lfi",
        "posterior_class": type(posterior).__name__,
        "method": str(getattr(posterior, "method", getattr(posterior, "info", {}).get("method"))),
    }
    groups: dict[str, Any] = {"posterior": {"theta": theta}}
    dims: dict[str, list[str]] = {"theta": ["theta_dim"]}
    if log_prob:
        lp = np.asarray(posterior.log_prob(theta.reshape(-1, dim), x=x), np.float64)
        groups["sample_stats"] = {"lp": lp.reshape(chains, per)}
        attrs["lp_normalized"] = int(bool(getattr(posterior, "normalized", True)))
    if x is None:
        x = getattr(posterior, "default_x", None)
        x = getattr(posterior, "x_o", None) if x is None else x
    if x is not None:
        obs = np.asarray(x, np.float64)
        groups["observed_data"] = {"x": obs}
        dims["x"] = ["x_dim"] if obs.ndim == 1 else ["trial", "x_dim"][-obs.ndim :]
    idata = az.from_dict(**groups, coords={"theta_dim": labels}, dims=dims, attrs=attrs)
    idata.posterior.attrs.update(attrs)
    if log_prob:
        idata.sample_stats.attrs["lp_normalized"] = attrs["lp_normalized"]
    return idata
