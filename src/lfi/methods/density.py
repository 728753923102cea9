"""Summary statistics and density estimation: the simplest simulation-based inference.

Simulate many times at each θ of a grid, estimate the density of the summaries p̂(s(x) | θ) by a
Gaussian kernel density estimate (Scott's bandwidth, the summaries' covariance at that θ; Diggle
& Gratton 1984, JRSS B 46:193), and do standard statistics with it: the maximum-likelihood
estimate (the grid point that maximises p̂(s_o | θ)) and the posterior on the grid (prior × p̂,
normalised over the cells). Grids cost ``grid_size ** dθ`` points, so θ has at most 3
dimensions here.

With θ as input instead of a grid of simulations: any density estimator with
``log_ratio(x, θ)`` (``lfi.SCANDAL(prior, alpha=0)`` is NDE, a conditional flow or, for discrete
x, a categorical p̂(x | θ); NLE's flow; the exact likelihood) goes on the same grid with
:func:`estimator_grid_posterior`: MLE and grid posterior from one model of p̂(s | θ).

Summaries can be learned (Fearnhead & Prangle 2012, arXiv:1004.1112): :func:`learn_summary`
trains a network to regress θ on x; its output E[θ | x] is a summary for ABC or for the grid.

>>> import numpy as np, lfi
>>> prior = lfi.BoxUniform([0.0], [2.0])
>>> sim = lambda theta, rng: theta + 0.1 * rng.standard_normal(theta.shape)
>>> post = grid_posterior(sim, prior, [1.2], grid_size=41, per_point=200, seed=0, progress=False)
>>> round(float(post.mle()[0]), 2), post.info["num_simulations"]
(1.2, 8200)
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import logsumexp

from lfi._cores import rowwise
from lfi._rng import Seed, as_key
from lfi.posteriors.base import check_same_x, check_theta
from lfi.posteriors.io import read_archive, write_archive
from lfi.priors import Prior, prior_from_config
from lfi.simulate import run_simulator
from lfi.train import fit

__all__ = [
    "GridPosterior",
    "LearnedSummary",
    "estimator_grid_posterior",
    "grid_posterior",
    "learn_summary",
]


def _grid_axes(prior: Prior, grid_size: int, seed: Seed) -> list[np.ndarray]:
    """Cell edges per dimension: the prior's box, or its 0.1%–99.9% range from 20 000 draws."""
    cfg = prior.to_config()
    if cfg.get("type") == "BoxUniform":
        low, high = np.atleast_1d(cfg["low"]), np.atleast_1d(cfg["high"])
    else:
        draws = np.asarray(prior.sample(20_000, seed=seed))
        low, high = np.quantile(draws, 0.001, axis=0), np.quantile(draws, 0.999, axis=0)
    return [np.linspace(lo, hi, grid_size + 1) for lo, hi in zip(low, high)]


def _centres(edges: list[np.ndarray]) -> np.ndarray:
    """The cell centres of a grid with these edges per axis, (cells, d), first axis slowest."""
    mesh = np.meshgrid(*[(e[1:] + e[:-1]) / 2 for e in edges], indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], -1)


def _cells(prior: Prior, grid_size: int, seed: Seed) -> tuple[list[np.ndarray], np.ndarray]:
    if prior.dim > 3:
        raise ValueError(
            f"prior: grid methods need dθ <= 3 (grid_size ** dθ points), got {prior.dim}"
        )
    edges = _grid_axes(prior, grid_size, seed)
    return edges, _centres(edges)


def _kde_log_density(s: np.ndarray, s_o: np.ndarray) -> np.ndarray:
    """log p̂(s_o) per grid point from its simulated summaries s (G, m, ds); ``s_o``: (ds,), or
    (G, ds) for a summary that differs per grid point. An invalid (NaN) simulation is an
    outcome other than s_o, as ABC counts it (a rejection): the kernels of the valid rows are
    averaged over all m, so p̂ = P(valid | θ) · p̂(s_o | θ, valid); the bandwidth and
    covariance come from the valid rows."""
    g, m, ds = s.shape
    s_o = np.broadcast_to(s_o, (g, ds))
    ok = np.all(np.isfinite(s), axis=2)  # (G, m)
    cnt = ok.sum(1)
    z = np.where(ok[..., None], s, 0.0)
    mean = z.sum(1) / np.maximum(cnt, 1)[:, None]
    c = np.where(ok[..., None], s - mean[:, None], 0.0)
    cov = np.einsum("gmi,gmj->gij", c, c) / np.maximum(cnt - 1, 1)[:, None, None]
    h2 = np.maximum(cnt, 2) ** (-2.0 / (ds + 4))  # Scott's rule, squared
    scale = np.mean(np.diagonal(cov, axis1=1, axis2=2), axis=1)
    cov = h2[:, None, None] * cov + 1e-9 * np.maximum(scale, 1e-12)[:, None, None] * np.eye(ds)
    chol = np.linalg.cholesky(cov)
    diff = np.where(ok[..., None], s_o[:, None] - s, 0.0)
    w = np.linalg.solve(chol[:, None], diff[..., None])[..., 0]  # (G, m, ds)
    log_k = (
        -0.5 * np.sum(w**2, -1) - np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2)), 1)[:, None]
    )
    log_k = np.where(ok, log_k, -np.inf)
    out = logsumexp(log_k, axis=1) - math.log(m) - 0.5 * ds * math.log(2 * math.pi)
    return np.where(cnt >= 2, out, -np.inf)


class GridPosterior:
    """The posterior on a grid of cells, piecewise constant; see the module docstring.

    ``log_likelihood`` (G^d,) holds log p̂(s_o | θ) at the cell centres; ``mle()`` and ``map()``
    the best centres; ``sample`` picks cells by posterior mass and a uniform point inside.
    """

    normalized = True

    def __init__(self, prior, edges, log_likelihood, *, x_o, info=None):
        self.prior, self.edges = prior, [np.asarray(e, np.float64) for e in edges]
        self.x_o, self.info = np.asarray(x_o, np.float32), dict(info or {})
        self.centres = _centres(self.edges)
        self.log_likelihood = np.asarray(log_likelihood, np.float64).reshape(-1)
        lp = np.asarray(prior.log_prob(self.centres.astype(np.float32)), np.float64)
        self._cell_volume = float(np.prod([e[1] - e[0] for e in self.edges]))
        log_mass = lp + self.log_likelihood
        if not np.isfinite(log_mass).any():
            raise ValueError("x_o: the estimated likelihood is 0 at every grid point")
        self.log_mass = log_mass - logsumexp(log_mass)
        if prior.to_config().get("type") != "BoxUniform":  # the grid cuts the prior's tails
            shape = [len(e) - 1 for e in self.edges]
            index = np.stack(np.unravel_index(np.arange(len(self.centres)), shape), -1)
            outer = np.any((index == 0) | (index == np.asarray(shape) - 1), axis=1)
            edge_mass = float(np.exp(self.log_mass[outer]).sum())
            if edge_mass > 0.01:
                warnings.warn(
                    f"GridPosterior: {edge_mass:.1%} of the posterior mass lies in the grid's "
                    "outermost cells; the grid spans the prior's 0.1%-99.9% range, so mass "
                    "beyond it is cut off (a posterior far in the prior's tails is truncated)",
                    stacklevel=2,
                )

    def __repr__(self) -> str:
        return f"GridPosterior({len(self.centres)} cells, {self.info.get('num_simulations')} sims)"

    def mle(self) -> np.ndarray:
        return self.centres[int(np.argmax(self.log_likelihood))]

    def save(self, path: str) -> None:
        """JSON config (prior, x_o, info) and arrays (edges, log-likelihood); no pickle."""
        as_json = lambda o: o.tolist() if hasattr(o, "tolist") else str(o)  # noqa: E731
        info = json.loads(json.dumps(self.info, default=as_json))  # numpy numbers as numbers
        config = {"class": "GridPosterior", "prior": self.prior.to_config(),
                  "x_o": self.x_o.tolist(), "info": info}  # fmt: skip
        arrays = {f"edges_{d}": e for d, e in enumerate(self.edges)}
        write_archive(path, config, {**arrays, "log_likelihood": self.log_likelihood})

    @classmethod
    def load(cls, path: str) -> GridPosterior:
        config, arrays = read_archive(path, expect="GridPosterior")
        prior = prior_from_config(config["prior"])
        edges = [arrays[f"edges_{d}"] for d in range(prior.dim)]
        return cls(prior, edges, arrays["log_likelihood"], x_o=config["x_o"], info=config["info"])

    def map(self, x: Any = None, seed: Seed = 0) -> np.ndarray:
        check_same_x(x, self.x_o)
        return self.centres[int(np.argmax(self.log_mass))]

    def sample(self, n: int, x: Any = None, seed: Seed = 0) -> np.ndarray:
        check_same_x(x, self.x_o)
        rng = np.random.default_rng(int(jax.random.randint(as_key(seed), (), 0, 2**31 - 1)))
        idx = rng.choice(len(self.centres), size=int(n), p=np.exp(self.log_mass))
        widths = np.array([e[1] - e[0] for e in self.edges])
        return self.centres[idx] + (rng.random((int(n), len(widths))) - 0.5) * widths

    def log_prob(self, theta: Any, x: Any = None) -> np.ndarray:
        check_same_x(x, self.x_o)
        theta = np.asarray(check_theta(theta, self.prior.dim), np.float64)
        flat = theta.reshape(-1, self.prior.dim)
        idx, inside = np.zeros(len(flat), int), np.ones(len(flat), bool)
        for d, e in enumerate(self.edges):
            k = np.searchsorted(e, flat[:, d], side="right") - 1
            inside &= (flat[:, d] >= e[0]) & (flat[:, d] <= e[-1])  # the upper edge is inside
            idx = idx * (len(e) - 1) + np.clip(k, 0, len(e) - 2)
        out = np.where(inside, self.log_mass[idx] - math.log(self._cell_volume), -np.inf)
        return out.reshape(theta.shape[:-1])


def grid_posterior(
    simulator: Callable,
    prior: Prior,
    x_o: Any,
    *,
    grid_size: int = 25,
    per_point: int = 200,
    summary: Callable | None = None,
    seed: Seed = 0,
    progress: bool = True,
) -> GridPosterior:
    """Simulate ``per_point`` times at each of ``grid_size ** dθ`` cell centres, estimate
    p̂(s(x_o) | θ) by a kernel density estimate at each, and return the :class:`GridPosterior`
    (``info``: simulations spent, invalid ones)."""
    if grid_size < 2 or per_point < 3:
        raise ValueError(f"grid_size >= 2 and per_point >= 3: got {grid_size}, {per_point}")
    key_grid, key_sim = jax.random.split(as_key(seed))
    edges, centres = _cells(prior, int(grid_size), key_grid)
    theta = np.repeat(centres, per_point, axis=0).astype(np.float32)
    x, _ = run_simulator(simulator, theta, seed=key_sim, progress=progress)
    summarise = summary or (lambda a: a.reshape(len(a), -1))
    s = np.asarray(summarise(x), np.float64)
    s_o = np.asarray(summarise(np.asarray(x_o, np.float64)[None]), np.float64)
    if s.ndim != 2 or s.shape[0] != len(x) or s_o.shape != (1, s.shape[1]):
        raise ValueError(f"summary: expected (n, ds) summaries, got {s.shape} and {s_o.shape}")
    invalid = int((~np.all(np.isfinite(s), axis=1)).sum())
    if invalid:
        warnings.warn(f"grid_posterior: {invalid} of {len(s)} simulations invalid", stacklevel=2)
    log_lik = _kde_log_density(s.reshape(len(centres), per_point, -1), s_o[0])
    info = {
        "method": "grid_kde",
        "num_simulations": int(len(theta)),
        "num_invalid": invalid,
        "grid_size": int(grid_size),
        "per_point": int(per_point),
    }
    return GridPosterior(prior, edges, log_lik, x_o=x_o, info=info)


def estimator_grid_posterior(
    estimator: Any, prior: Prior, x_o: Any, *, grid_size: int = 25, seed: Seed = 0
) -> GridPosterior:
    """The :class:`GridPosterior` (MLE, grid posterior) of a density estimator with θ as input:
    ``estimator.log_ratio(x_o, θ)`` = log p̂(x_o | θ) up to a θ-independent constant (i.i.d.
    trials summed), at the ``grid_size ** dθ`` cell centres.

    >>> import lfi
    >>> from lfi.frequentist import ExactLikelihood
    >>> task = lfi.tasks.get("madminer_toy")
    >>> post = estimator_grid_posterior(ExactLikelihood(task), task.prior, [0.53], grid_size=60)
    >>> round(float(post.mle()[0]), 2)  # the cell centre nearest x_o (p(x|θ) = N(x; θ, 5))
    0.55
    """
    if grid_size < 2:
        raise ValueError(f"grid_size: expected >= 2, got {grid_size}")
    edges, centres = _cells(prior, int(grid_size), seed)
    centres = centres.astype(np.float32)
    log_lik = np.asarray(estimator.log_ratio(x_o, centres), np.float64).reshape(-1)
    if log_lik.shape != (len(centres),):
        raise ValueError(f"estimator: log_ratio gave {log_lik.shape}, expected ({len(centres)},)")
    info = {
        "method": "grid_estimator",
        "estimator": type(estimator).__name__,
        "grid_size": int(grid_size),
    }
    return GridPosterior(prior, edges, log_lik, x_o=x_o, info=info)


class LearnedSummary(eqx.Module):
    """s(x) = E[θ | x] as regressed by an MLP (θ in the prior's unconstrained space, both sides
    z-scored); call it on a batch x (n, dx) -> (n, dθ) numpy array."""

    net: eqx.nn.MLP
    x_mean: jax.Array
    x_std: jax.Array

    def __call__(self, x: Any) -> np.ndarray:
        z = (jnp.asarray(x, jnp.float32) - self.x_mean) / self.x_std
        return np.asarray(_apply(self.net, z))


@eqx.filter_jit
def _apply(net, z):
    return jax.vmap(net)(z)


def learn_summary(
    prior: Prior,
    theta: Any,
    x: Any,
    *,
    seed: Seed = 0,
    width: int = 64,
    depth: int = 2,
    progress: bool = False,
    **train_options: Any,
) -> LearnedSummary:
    """Train s(x) ≈ E[θ | x] (mean squared error, the shared training loop) on simulations;
    rows with non-finite x are dropped with a warning giving their count."""
    theta, x = np.asarray(theta, np.float32), np.asarray(x, np.float32).reshape(len(theta), -1)
    ok = np.all(np.isfinite(x), axis=1)
    if not ok.all():
        warnings.warn(
            f"learn_summary: {int((~ok).sum())} rows with NaN/inf x dropped", stacklevel=2
        )
    theta, x = theta[ok], x[ok]
    u = np.asarray(prior.to_unconstrained(theta))
    u = (u - u.mean(0)) / (u.std(0) + 1e-8)
    x_mean, x_std = x.mean(0), x.std(0) + 1e-8
    k_net, k_fit = jax.random.split(as_key(seed))
    net = eqx.nn.MLP(x.shape[1], u.shape[1], width, depth, jax.nn.gelu, key=k_net)

    @rowwise
    def loss(model, batch, key):
        zx, zu = batch
        return jnp.mean((jax.vmap(model)(zx) - zu) ** 2)

    net, _ = fit(net, loss, ((x - x_mean) / x_std, u), seed=k_fit, progress=progress,
                 **train_options)  # fmt: skip
    return LearnedSummary(net, jnp.asarray(x_mean), jnp.asarray(x_std))
