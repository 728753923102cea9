"""A proposal fitted to the target, and independence Metropolis–Hastings from it.

Local MCMC (NUTS, slice) on a multimodal posterior keeps each chain in the mode it started in:
the draws may still have the right mode weights, but R-hat cannot say so and a user cannot trust
them. Here the proposal is global. :func:`fit_proposal` runs adaptive importance sampling
(population Monte Carlo, Cappé et al. 2004, doi:10.1198/106186004X12803): draw from a base
density (the prior pushed to unconstrained space), weight by target / proposal, resample, fit a
Student-t mixture to the resampled draws (EM for a Gaussian mixture, in numpy, then
covariances inflated, heavier tails and a broad defensive component, so that q covers the
target's tails), and repeat until the importance ESS is a good fraction of the draws.
:func:`independence_mh` then runs Metropolis–Hastings with that fixed proposal (Tierney 1994,
Ann. Statist. 22:1701): every step may jump between modes, the chain is exact for any q whose
support covers the target's, and fast (no gradients, one target evaluation per step).

>>> import jax.numpy as jnp, numpy as np, jax
>>> def log_density(params, u):  # two well separated modes, weights 0.25 / 0.75
...     a = -0.5 * jnp.sum((u - params) ** 2) + jnp.log(0.25)
...     b = -0.5 * jnp.sum((u + params) ** 2) + jnp.log(0.75)
...     return jnp.logaddexp(a, b)
>>> base = StudentTMixture.wide(jnp.zeros(2), 10.0 * jnp.eye(2))
>>> q, info = fit_proposal(log_density, jnp.array([6.0, 6.0]), base, seed=0)
>>> result = independence_mh(log_density, jnp.array([6.0, 6.0]), q, info.starts(20), 4000)
>>> round(float(np.mean(result.flat[:, 0] > 0)), 1), bool(result.rhat.max() < 1.01)
(0.2, True)
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, logsumexp

from lfi._rng import Seed, as_key, numpy_rng
from lfi.samplers import LogDensity, MCMCResult, _batch_log_density, convergence

__all__ = [
    "PriorProposal",
    "ProposalFit",
    "StudentTMixture",
    "fit_proposal",
    "independence_mh",
    "repeat_fraction",
]


class StudentTMixture(eqx.Module):
    """Σ_k w_k t_ν(u; μ_k, L_k L_kᵀ): a mixture of multivariate Student-t densities.

    Its random draws (:meth:`noise`, seeded from a JAX key), their placement (:meth:`place`)
    and the batched density (:meth:`log_probs`) are numpy: JAX would compile each for every new
    shape, seconds of XLA that a sampler's first call would pay. :meth:`log_prob` (one point,
    JAX) is for use inside jitted code.
    """

    logits: np.ndarray  # (K,) log weights, normalised
    means: np.ndarray  # (K, d)
    chols: np.ndarray  # (K, d, d) lower Cholesky factors of the scale matrices
    inv_chols: np.ndarray  # (K, d, d) their inverses (a matmul compiles faster than a solve)
    df: float = eqx.field(static=True)

    def __init__(self, logits: Any, means: Any, chols: Any, df: float = 5.0):
        # numpy float32 fields: a cast or transfer of a JAX array compiles a small XLA
        # program per shape, which a sampler's first call would pay for
        f32 = lambda a: np.asarray(a).astype(np.float32)
        self.logits, self.means, self.chols = f32(logits), f32(means), f32(chols)
        self.inv_chols = f32(np.linalg.inv(np.asarray(chols).astype(np.float64)))
        self.df = float(df)

    @classmethod
    def wide(cls, mean: Any, cov: Any, df: float = 5.0) -> StudentTMixture:
        """One component: a t density with this location and scale matrix."""
        mean, cov = np.asarray(mean, np.float64), np.asarray(cov, np.float64)
        return cls(np.zeros(1), mean[None], np.linalg.cholesky(cov)[None], df)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def log_prob(self, u: jax.Array) -> jax.Array:
        """log q(u) for one point u (d,)."""
        d, nu = self.dim, self.df
        z = jnp.einsum("kij,kj->ki", self.inv_chols, u - self.means)
        maha = jnp.sum(z**2, axis=1)
        log_det = jnp.sum(jnp.log(jnp.abs(jnp.diagonal(self.chols, axis1=1, axis2=2))), axis=1)
        const = gammaln((nu + d) / 2) - gammaln(nu / 2) - d / 2 * jnp.log(nu * jnp.pi)
        comp = const - log_det - (nu + d) / 2 * jnp.log1p(maha / nu)
        return logsumexp(self.logits + comp)

    def noise(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
        """The randomness of ``n`` draws: components (n,), standard normals (n, d), χ²_ν (n,)."""
        p = np.exp(np.asarray(self.logits, np.float64))
        comp = rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int32)
        z = rng.standard_normal((n, self.dim), dtype=np.float32)
        g = rng.chisquare(self.df, n).astype(np.float32)
        return comp, z, g

    def place(self, comp: np.ndarray, z: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Draws (n, d) float32 from their :meth:`noise`: μ_k + L_k z √(ν/g), in numpy."""
        z = np.asarray(z, np.float32) * np.sqrt(self.df / np.asarray(g, np.float32))[:, None]
        out = np.empty_like(z)
        for k in np.unique(comp):  # one matmul per component
            rows = comp == k
            out[rows] = z[rows] @ self.chols[k].T + self.means[k]
        return out

    def log_probs(self, u: Any) -> np.ndarray:
        """log q at each row of ``u`` (n, d), float64, computed by numpy in float32 (as the JAX
        :meth:`log_prob`): nothing to compile, where JAX would compile for each new shape."""
        u = np.ascontiguousarray(np.asarray(u, np.float32).T)  # (d, n)
        (k, d), nu = self.means.shape, self.df
        # z_k = L_k⁻¹ (u − μ_k) for all k in one matmul, laid out (k, d, n): the reductions
        # over k then run along contiguous rows
        shift = np.einsum("kij,kj->ki", self.inv_chols, self.means).reshape(k * d, 1)
        z = (self.inv_chols.reshape(k * d, d) @ u - shift).reshape(k, d, -1)
        maha = np.einsum("kin,kin->kn", z, z)
        log_det = np.sum(np.log(np.abs(np.diagonal(self.chols, axis1=1, axis2=2))), axis=1)
        const = math.lgamma((nu + d) / 2) - math.lgamma(nu / 2) - d / 2 * math.log(nu * math.pi)
        comp = (self.logits + np.float32(const) - log_det)[:, None]
        comp = comp - np.float32((nu + d) / 2) * np.log1p(maha / np.float32(nu))
        top = np.max(comp, axis=0)
        return (top + np.log(np.sum(np.exp(comp - top), axis=0))).astype(np.float64)

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """``n`` draws (n, d) (numpy noise seeded from ``key``, placed by numpy)."""
        return jnp.asarray(self.place(*self.noise(numpy_rng(key), int(n))))


@eqx.filter_jit
def _sample(q, key, n):
    """n draws of q and log q at each (for a base that draws with JAX's random functions)."""
    u = q.sample(key, n)
    return u, jax.vmap(q.log_prob)(u)


@eqx.filter_jit
def _jit_log_probs(q, u):
    return jax.vmap(q.log_prob)(u)


def _log_probs(q, u) -> np.ndarray:
    """log q at each row of ``u``, float64 (numpy for a t mixture, one jitted call otherwise)."""
    if isinstance(q, StudentTMixture):
        return q.log_probs(u)
    return np.asarray(_jit_log_probs(q, u), np.float64)


@eqx.filter_jit
def _unconstrain(q, theta):
    return q.prior.to_unconstrained(theta)


def _draw(log_target, params, base, q, key, n):
    """n draws of q with log target, log base and log q at each (−inf where not finite).

    The target (a network, costly to compile) is one jitted call, compiled once for all rounds
    whatever the proposal's type; a t mixture's draws and density are numpy's."""
    theta = q.numpy_draws(key, n) if isinstance(q, PriorProposal) else None
    if isinstance(q, StudentTMixture):
        u = q.place(*q.noise(numpy_rng(key), int(n)))
        lq = _log_probs(q, u)
    elif theta is not None:  # the prior drawn by numpy: its log density compiles once, for all
        u = _unconstrain(q, theta)  # rounds (the later ones weigh the base at the mixture's draws)
        lq = _log_probs(q, u)
    else:
        u, lq = _sample(q, key, n)
    clean = lambda v: np.where(np.isfinite(v), v, -np.inf)
    lt = np.asarray(_batch_log_density(log_target, params, u), np.float64)
    lb = lq if base is q else _log_probs(base, u)
    lb, lq = (np.asarray(a, np.float64) for a in (lb, lq))
    return np.asarray(u), clean(lt), clean(lb), clean(lq)


def _tempered_log_weights(beta: float, lt, lb, lq) -> np.ndarray:
    """log π_β − log q with π_β ∝ base^(1−β) target^β; −inf where the target is."""
    return np.where(np.isfinite(lt), (1 - beta) * lb + beta * lt - lq, -np.inf)


def _ess_fraction(log_w: np.ndarray) -> float:
    if not np.isfinite(log_w).any():
        return 0.0
    w = np.exp(log_w - np.max(log_w))
    return float(w.sum() ** 2 / (w**2).sum()) / len(w)


@dataclass(frozen=True)
class ProposalFit:
    """What :func:`fit_proposal` saw: its last weighted draws and the ESS fraction per round."""

    draws: np.ndarray  # (n, d), from the returned proposal
    log_weights: np.ndarray  # (n,)
    ess_fractions: tuple[float, ...]  # importance ESS / n of the β = 1 rounds
    seed: int
    betas: tuple[float, ...] = ()  # the tempering β of each round

    def starts(self, num: int) -> np.ndarray:
        """``num`` chain starts, resampled from the draws by weight (all with finite target)."""
        w = np.exp(self.log_weights - self.log_weights.max())
        rng = np.random.default_rng(self.seed)
        return self.draws[rng.choice(len(w), size=num, p=w / w.sum())]

    def thin_for(self, max_repeats: float, most: int = 64) -> int:
        """The least thinning (<= ``most``) at which independence MH from this proposal is
        expected to keep at most ``max_repeats`` of its draws equal to the previous kept one.

        From a state u with importance weight w(u) = target/proposal, a step moves with
        probability α(u) = E_q[min(1, w(v)/w(u))], so a kept draw repeats after ``thin`` steps
        with probability E_target[(1 − α(u))^thin]. Both expectations are estimated from the
        fit's weighted draws (α at each draw in O(n log n) from the sorted weights).
        """
        lw = np.asarray(self.log_weights, np.float64)
        lw = lw[np.isfinite(lw)]
        if lw.size == 0:
            return most
        w = np.exp(lw - lw.max())
        ws = np.sort(w)
        below = np.concatenate([[0.0], np.cumsum(ws)])  # below[i]: the sum of the i smallest
        idx = np.searchsorted(ws, w, side="left")  # how many weights are below each w
        ratio = np.divide(below[idx], w, out=np.zeros_like(w), where=w > 0)
        alpha = np.where(w > 0, (ratio + (len(w) - idx)) / len(w), 1.0)
        stay, p = 1.0 - alpha, w / w.sum()
        for thin in range(1, most + 1):
            if float(np.sum(p * stay**thin)) <= max_repeats:
                return thin
        return most


def _gaussian_mixture(
    z: np.ndarray, k: int, seed: int, reg: float = 1e-4, tol: float = 1e-3, max_iter: int = 100
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """EM for a k-component full-covariance Gaussian mixture on the rows of ``z`` (n, d), from
    k-means++ seeds (Arthur & Vassilvitskii 2007); ``reg`` is added to each covariance's
    diagonal. Stops when the mean log-likelihood gains less than ``tol``. Returns weights (k,),
    means (k, d), covariances (k, d, d). Vectorised over components: the same EM as
    scikit-learn's GaussianMixture at a fraction of its per-call overhead (several fits per
    sampler call)."""
    rng = np.random.default_rng(seed)
    n, d = z.shape
    centres = [z[rng.integers(n)]]
    for _ in range(1, k):  # k-means++: the next seed with probability ∝ squared distance
        d2 = np.min(((z[:, None] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
        centres.append(z[rng.choice(n, p=d2 / d2.sum())] if d2.sum() > 0 else z[rng.integers(n)])
    d2 = ((z[:, None] - np.asarray(centres)[None]) ** 2).sum(-1)
    resp = np.eye(k)[np.argmin(d2, axis=1)]  # (n, k) hard assignment to the nearest seed
    last = -np.inf
    for _ in range(max_iter):
        nk = resp.sum(0) + 10 * np.finfo(float).eps
        means = resp.T @ z / nk[:, None]
        diff = z[None] - means[:, None]  # (k, n, d)
        covs = (resp.T[:, :, None] * diff).transpose(0, 2, 1) @ diff / nk[:, None, None]
        covs += reg * np.eye(d)
        weights = nk / n
        inv = np.linalg.inv(np.linalg.cholesky(covs))  # (k, d, d)
        maha = ((diff @ inv.transpose(0, 2, 1)) ** 2).sum(-1)  # (k, n)
        log_det = np.log(np.diagonal(inv, axis1=1, axis2=2)).sum(-1)  # −½ log|Σ_k|
        log_p = (
            np.log(weights)[:, None] + log_det[:, None] - 0.5 * maha - 0.5 * d * np.log(2 * np.pi)
        )
        top = log_p.max(0)
        log_norm = top + np.log(np.exp(log_p - top).sum(0))
        resp = np.exp(log_p - log_norm).T
        mean_ll = float(log_norm.mean())
        if mean_ll - last < tol:
            break
        last = mean_ll
    return weights, means, covs


def _fit_mixture(u: np.ndarray, components: int, seed: int, df: float) -> StudentTMixture:
    """A t mixture over the (unweighted, resampled) rows of ``u``: EM for a Gaussian mixture
    on standardised rows (the t tails widen each component), plus a defensive component
    (weight 0.1) with twice the rows' spread."""
    d = u.shape[1]
    mean, std = u.mean(0), u.std(0) + 1e-6
    z = (u - mean) / std
    distinct = len(np.unique(np.round(z, 6), axis=0))
    k = int(max(1, min(components, distinct // max(2, d))))
    gm_weights, gm_means, gm_covs = _gaussian_mixture(z, k, seed)
    covs = gm_covs * std[None, :, None] * std[None, None, :]
    means = gm_means * std + mean
    broad = 4.0 * (np.cov(u.T).reshape(d, d) + 1e-6 * np.eye(d))
    pad = components - k  # unused components (weight 0) keep the shapes, and the compiled code
    means = np.concatenate([means, np.repeat(mean[None], pad, 0), mean[None]])
    covs = np.concatenate([covs, np.repeat(broad[None], pad, 0), broad[None]])
    weights = np.concatenate([0.9 * gm_weights, np.zeros(pad), [0.1]])
    chols = np.linalg.cholesky(covs)
    with np.errstate(divide="ignore"):
        log_weights = np.log(weights)
    return StudentTMixture(log_weights, means, chols, df)


def fit_proposal(
    log_target: LogDensity,
    params: Any,
    base: Any,
    *,
    seed: Seed = 0,
    num_draws: int = 10_000,
    components: int = 10,
    max_rounds: int = 40,
    target_ess: float = 0.5,
    df: float = 5.0,
    patience: int = 2,
) -> tuple[StudentTMixture, ProposalFit]:
    """A t mixture close to ``exp(log_target(params, u))`` by tempered adaptive importance
    sampling.

    ``base``: a normalised density to start from, any equinox module with ``sample(key, n)``
    and per-point ``log_prob(u)`` (e.g. :class:`PriorProposal`, or a wide
    :class:`StudentTMixture`). The targets bridge base and target, π_β ∝ base^(1−β) target^β
    (for the prior as base: prior × likelihood^β). Each round draws ``num_draws`` from the
    current proposal, raises β as far as the importance ESS stays at least half the draws
    (bisection, as adaptive SMC samplers do), and fits a mixture of up to ``components`` to
    2 000 draws resampled by weight. It stops at β = 1 once the ESS fraction reaches
    ``target_ess``, or after ``max_rounds`` rounds. Returns the β = 1 proposal with the best ESS
    and a :class:`ProposalFit`. Raises when the target is −inf at every draw, or when β has not
    reached 1 within ``max_rounds``.
    """
    rng = numpy_rng(seed)  # round seeds from numpy: no JAX key arithmetic to compile
    q, beta, best, fractions, betas = base, 0.0, None, [], []
    for round_ in range(max_rounds):
        k_draw, fit_seed = (int(v) for v in rng.integers(2**31 - 1, size=2))
        u, lt, lb, lq = _draw(log_target, params, base, q, as_key(k_draw), int(num_draws))
        if not np.isfinite(lt).any():
            raise RuntimeError(
                f"fit_proposal: the target is -inf (or NaN) at all {num_draws} draws of round "
                f"{round_}; check the observation and the prior"
            )
        log_w = functools.partial(_tempered_log_weights, lt=lt, lb=lb, lq=lq)
        if beta == 1.0:
            frac = _ess_fraction(log_w(1.0))
            fractions.append(frac)
            if best is None or frac > best[0]:
                best = (frac, q, ProposalFit(u, log_w(1.0), (), fit_seed))
            if frac >= target_ess or len(fractions) - 1 - int(np.argmax(fractions)) >= patience:
                break
        else:  # the largest β' whose ESS is at least half that at β (adaptive SMC's rule)
            floor = 0.5 * _ess_fraction(log_w(beta))
            if _ess_fraction(log_w(1.0)) >= floor:
                beta = 1.0
            else:
                lo, hi = beta, 1.0
                for _ in range(30):
                    mid = (lo + hi) / 2
                    lo, hi = (mid, hi) if _ess_fraction(log_w(mid)) >= floor else (lo, mid)
                beta = lo
        betas.append(beta)
        lw = log_w(beta)
        w = np.exp(lw - lw.max())
        rng = np.random.default_rng(fit_seed)
        picks = rng.choice(len(w), size=min(2000, len(w)), p=w / w.sum())
        q = _fit_mixture(u[picks], components, fit_seed, df)
    if best is None:
        raise RuntimeError(
            f"fit_proposal: the tempering reached beta={beta:.3g} < 1 in max_rounds="
            f"{max_rounds}; raise max_rounds or num_draws, or use an MCMC sampler"
        )
    _, q, fit = best
    return q, ProposalFit(fit.draws, fit.log_weights, tuple(fractions), fit.seed, tuple(betas))


CHUNK = 10_000  # proposals per batched target call: fit_proposal's default num_draws, so that
# independence_mh reuses the fit's compiled code


def _weights(log_density, params, q, u) -> np.ndarray:
    """log target − log q at the rows of ``u``, in batches of CHUNK (the last one padded)."""
    n = len(u)
    full = np.concatenate([np.asarray(u, np.float32), np.zeros((-n % CHUNK, u.shape[1]), "f4")])
    out = []
    for i in range(0, len(full), CHUNK):
        batch = jax.device_put(full[i : i + CHUNK])  # no XLA "stage" call
        lt = np.asarray(_batch_log_density(log_density, params, batch), np.float64)
        out.append(lt - np.asarray(_log_probs(q, batch), np.float64))
    lw = np.concatenate(out)[:n]
    return np.where(np.isnan(lw), -np.inf, lw)


class _Stream:
    """Independence MH's proposals, drawn and weighed CHUNK at a time on demand, and kept.

    Chunk i's draws and uniforms come from a numpy generator seeded by (seed, i), so the first n
    proposals do not depend on how many are asked for: a longer run (more thinning) reuses a
    shorter one's proposals as its first steps instead of evaluating the target again.
    """

    def __init__(self, log_density: LogDensity, params: Any, q: StudentTMixture, seed: Seed):
        self.args = (log_density, params, q)
        self.words = [int(w) for w in np.asarray(jax.random.key_data(as_key(seed))).ravel()]
        self.chunks: list[tuple[np.ndarray, ...]] = []
        self.starts: dict[bytes, np.ndarray] = {}

    def take(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The first ``n`` proposals (n, d), their log target − log q (n,), log uniforms (n,)."""
        q = self.args[2]
        while len(self.chunks) * CHUNK < n:
            rng = np.random.default_rng([*self.words, len(self.chunks)])
            v = q.place(*q.noise(rng, CHUNK))
            self.chunks.append((v, _weights(*self.args, v), np.log(rng.random(CHUNK))))
        return tuple(np.concatenate(parts)[:n] for parts in zip(*self.chunks))

    def start_weights(self, init: np.ndarray) -> np.ndarray:
        key = init.tobytes()
        if key not in self.starts:
            self.starts[key] = _weights(*self.args, init)
        return self.starts[key]


def _imh_chain(log_w: np.ndarray, log_w0: np.ndarray, log_u: np.ndarray):
    """Independence MH over precomputed weights: ``log_w`` (steps, chains) of the proposals,
    ``log_w0`` (chains,) of the starts, ``log_u`` (steps, chains) log uniforms. Returns the
    index of each chain's state after each step (a step's proposal row, −1 for the start) and
    the mean acceptance probability of each step."""
    steps, chains = log_w.shape
    idx = np.full((steps, chains), -1, np.int64)
    accept = np.empty(steps)
    cur_i, cur_w = np.full(chains, -1, np.int64), log_w0.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        for s in range(steps):
            log_ratio = log_w[s] - cur_w  # nan (−inf − −inf): never taken
            accept[s] = np.mean(
                np.where(np.isnan(log_ratio), 0.0, np.exp(np.minimum(log_ratio, 0)))
            )
            take = log_u[s] < log_ratio
            cur_i = np.where(take, s, cur_i)
            cur_w = np.where(take, log_w[s], cur_w)
            idx[s] = cur_i
    return idx, accept


def repeat_fraction(samples: Any) -> float:
    """The fraction of kept draws equal to their chain's previous kept draw (no accepted move
    in between); ``samples`` (chains, draws, d). An independence sampler's rejections repeat a
    state: as draws these are duplicates, which a two-sample test (C2ST's classifier sees the
    same point in its training and test folds) and a user counting draws both misread."""
    x = np.asarray(samples)
    if x.ndim != 3 or x.shape[1] < 2:
        return 0.0
    return float(np.mean(np.all(x[:, 1:] == x[:, :-1], axis=-1)))


def independence_mh(
    log_density: LogDensity,
    params: Any,
    proposal: StudentTMixture,
    init: Any,
    num_samples: int,
    *,
    seed: Seed = 0,
    num_warmup: int = 50,
    thin: int = 1,
) -> MCMCResult:
    """Independence Metropolis–Hastings: chains (one per row of ``init``) proposing from
    ``proposal`` (fixed); ``num_warmup`` burn-in steps, then ``ceil(num_samples / chains) *
    thin`` steps keeping every ``thin``-th. Returns an :class:`lfi.samplers.MCMCResult`
    (kernel "imh") with R-hat, ESS and the mean acceptance probability."""
    init = jnp.asarray(init, jnp.float32)
    if init.ndim != 2 or init.shape[1] != proposal.dim:
        raise ValueError(f"init: expected shape (chains, {proposal.dim}), got {init.shape}")
    if min(num_samples, thin) < 1 or num_warmup < 0:
        raise ValueError(f"num_samples, thin, num_warmup: got {num_samples}, {thin}, {num_warmup}")
    return _run(_Stream(log_density, params, proposal, seed), np.asarray(init), num_samples,
                num_warmup, thin)  # fmt: skip


def _run(stream: _Stream, init: np.ndarray, num_samples: int, num_warmup: int, thin: int):
    """:func:`independence_mh` on a stream's proposals (the target's batched code, compiled
    once, evaluates them: they do not depend on the chains' states), then the accept/reject
    steps on numbers."""
    tic = time.perf_counter()
    chains, draws = init.shape[0], -(-int(num_samples) // init.shape[0])
    steps = int(num_warmup) + draws * int(thin)
    log_w0 = stream.start_weights(init)
    bad = ~np.isfinite(log_w0)
    if bad.any():
        raise ValueError(f"init: the log density is not finite at {int(bad.sum())} starting points")
    v, log_w, log_u = stream.take(steps * chains)
    idx, accept = _imh_chain(log_w.reshape(steps, chains), log_w0, log_u.reshape(steps, chains))
    keep = int(num_warmup) + int(thin) * np.arange(1, draws + 1) - 1
    rows, cols = idx[keep], np.arange(chains)[None, :]  # (draws, chains)
    v = v.reshape(steps, chains, -1)
    x = np.where((rows < 0)[..., None], init[cols], v[np.maximum(rows, 0), cols])
    x = np.swapaxes(x, 0, 1)
    r, e = convergence(x)
    acceptance = float(np.mean(accept[int(num_warmup) :]))
    seconds = time.perf_counter() - tic
    return MCMCResult(
        x, r, e, acceptance, 0, "imh", seconds, float("nan"), int(num_warmup), int(num_samples)
    )


class PriorProposal(eqx.Module):
    """A prior pushed to its unconstrained space, as a base for :func:`fit_proposal`."""

    prior: Any = eqx.field(static=True)

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        return self.prior.to_unconstrained(self.prior.sample(n, seed=key))

    def numpy_draws(self, key: jax.Array, n: int) -> np.ndarray | None:
        """``n`` prior draws (θ, not u) from numpy, seeded by ``key``: no threefry to compile
        (about half a second on a CPU); None where the prior has no numpy path."""
        draw = getattr(self.prior, "numpy_sample", None)
        return None if draw is None else draw(numpy_rng(key), int(n))

    def log_prob(self, u: jax.Array) -> jax.Array:
        theta = self.prior.from_unconstrained(u)
        return self.prior.log_prob(theta) + self.prior.log_det_from_unconstrained(u)
