"""A posterior known up to a constant: prior × learned likelihood (NLE) or × learned ratio (NRE).

log p̃(θ | x_1..k) = log p(θ) + Σ_i f(θ, x_i), where f is log q(x | θ) from a conditional flow
(NLE) or the logit log r(x, θ) of a ratio classifier (NRE, and the parametrised classifier of
the likelihood-ratio trick). Several i.i.d. trials of one θ add their terms. ``log_prob`` is
unnormalised (``normalized = False``): it differs from log p(θ | x) by a constant in θ.

f is not extrapolated beyond the θ it was trained on: it is evaluated at θ clamped, coordinate
by coordinate in the prior's unconstrained space, into the box of the training θ
(``theta_box``), so that beyond the data p̃ falls off as the prior does. A network extrapolates
about linearly in its inputs, and in unconstrained coordinates a slope steeper than the prior's
tail makes p̃ grow without bound toward the edge of a bounded prior (seen: an SNRE posterior on
slcp whose log ratio rose ~2.3 nats per unit of u toward a box edge, where its MCMC draws piled).

Sampling runs MCMC in the prior's unconstrained space u, on log p̃(T(u)) + log |dT/du|, so
draws never leave the prior's support. By default ("imh") a Student-t mixture is fitted to the
posterior by tempered importance sampling from the prior and up to 50 independence
Metropolis–Hastings chains (n // 50 for fewer than 2 500 draws) propose from it
(:mod:`lfi.proposals`): they jump between modes, so R-hat checks the mode weights too, and need
no gradients. NUTS, HMC, slice and random-walk kernels
(:func:`lfi.samplers.mcmc`) start from sampling-importance-resampling of prior draws. Every
run's diagnostics (R-hat, ESS, acceptance) are kept in ``.diagnostics`` and warned on when
poor.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import paramax

from lfi import proposals, samplers
from lfi._rng import Seed, as_key, numpy_rng
from lfi.nets.classifiers import build_classifier
from lfi.nets.flows import build_flow
from lfi.posteriors.base import ObservationMixin, check_theta
from lfi.posteriors.direct import Standardizer
from lfi.posteriors.io import fill_module, module_arrays, read_archive, write_archive
from lfi.priors import prior_from_config
from lfi.train import History

SAMPLERS = ("imh", "nuts", "hmc", "slice", "rwm", "importance", "rejection")
_FIT_OPTIONS = ("num_draws", "components", "max_rounds", "target_ess")
MAX_REPEATS = 0.01  # imh with thin="auto": at most this fraction of draws repeat the last one


class LikelihoodTerm(eqx.Module):
    """f(z_θ, z_x) = log q(z_x | z_θ), a conditional flow over standardised x."""

    flow: Any

    def __call__(self, z_theta: jax.Array, z_x: jax.Array) -> jax.Array:
        return self.flow.log_prob(z_x, z_theta)


class RatioTerm(eqx.Module):
    """f(z_θ, z_x) = the classifier's logit, log r(x, θ) up to a constant in θ."""

    classifier: Any

    def __call__(self, z_theta: jax.Array, z_x: jax.Array) -> jax.Array:
        return self.classifier(z_theta, z_x)


def _terms(params: tuple, u: jax.Array) -> jax.Array:
    term, stand, _, xs, (low, high) = params
    z_theta = stand.z_theta(jnp.clip(u, low, high))  # no extrapolation beyond the training θ
    per_trial = jax.vmap(lambda x: term(z_theta, stand.z_x(x)))(xs)
    return jnp.sum(per_trial)


def _log_density(params: tuple, u: jax.Array) -> jax.Array:
    """log p̃ in unconstrained space; ``params = (term, standardizer, prior, trials, box)``."""
    prior = params[2]
    theta = prior.from_unconstrained(u)
    lp = prior.log_prob(theta) + prior.log_det_from_unconstrained(u) + _terms(params, u)
    return jnp.where(jnp.isfinite(lp), lp, -jnp.inf)


def _log_density_theta(params: tuple, u: jax.Array) -> jax.Array:
    """log p̃ of θ = T(u) in θ-space (no Jacobian): the objective of ``map``. The u-space
    density's mode is another point wherever the prior is bounded or transformed."""
    prior = params[2]
    lp = prior.log_prob(prior.from_unconstrained(u)) + _terms(params, u)
    return jnp.where(jnp.isfinite(lp), lp, -jnp.inf)


@eqx.filter_jit
def _log_prob(params: tuple, theta: jax.Array) -> jax.Array:
    prior = params[2]
    u = prior.to_unconstrained(theta)
    lp = prior.log_prob(theta) + jax.vmap(lambda ui: _terms(params, ui))(u)
    return jnp.where(prior.in_support(theta), lp, -jnp.inf)


class UnnormalizedPosterior(ObservationMixin):
    """prior × exp(f(θ, x)); see the module docstring. ``kind`` is "likelihood" or "ratio".
    ``theta_box``: ``(low, high)``, the training θ's least and greatest values per coordinate in
    the prior's unconstrained space (f is evaluated at θ clamped into it); None: no clamping."""

    normalized = False

    def __init__(
        self,
        prior,
        net,
        standardizer,
        net_config,
        dim_x,
        *,
        kind,
        method,
        history=None,
        sampler="imh",
        sampler_options=None,
        theta_box=None,
    ):
        if kind not in ("likelihood", "ratio"):
            raise ValueError(f"kind: expected 'likelihood' or 'ratio', got {kind!r}")
        self.prior, self.dim_x, self.kind, self.method = prior, int(dim_x), kind, method
        self.net_config, self.history = dict(net_config), history
        self._trained = net
        plain = paramax.unwrap(net)
        self._term = LikelihoodTerm(plain) if kind == "likelihood" else RatioTerm(plain)
        self._stand = standardizer
        self.sampler = _check_sampler(sampler)
        self.sampler_options = dict(sampler_options or {})
        self.default_x = None
        self.diagnostics = None
        self.theta_box = _box(theta_box, prior.dim)

    def __repr__(self) -> str:
        return f"UnnormalizedPosterior(method={self.method!r}, prior={self.prior!r})"

    @property
    def dim_theta(self) -> int:
        return self.prior.dim

    def _trials(self, x: Any) -> np.ndarray:
        """One observation as (k, dim_x): k i.i.d. trials of the same θ (k = 1 for a vector)."""
        if x is None:
            if self.default_x is None:
                raise ValueError("x: no observation given and no default set (set_default_x)")
            return self.default_x
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] != self.dim_x or arr.shape[0] == 0:
            raise ValueError(
                f"x: expected one observation ({self.dim_x},) or k i.i.d. trials "
                f"(k, {self.dim_x}), got {arr.shape}"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError("x: the observation contains NaN or inf")
        return arr

    def set_default_x(self, x: Any) -> UnnormalizedPosterior:
        self.default_x = self._trials(x)
        return self

    def _params(self, x: Any) -> tuple:
        return (
            self._term,
            self._stand,
            self.prior,
            jax.device_put(np.asarray(self._trials(x), np.float32)),
            self.theta_box,
        )

    def log_prob(self, theta: Any, x: Any = None) -> jax.Array:
        """UNNORMALISED log p(θ) + Σ_i f(θ, x_i): -inf outside the prior's support."""
        theta = check_theta(theta, self.dim_theta)
        flat = theta.reshape(-1, self.dim_theta)
        return _log_prob(self._params(x), flat).reshape(theta.shape[:-1])

    def potential(self, x: Any = None) -> tuple[Any, tuple]:
        """``(log_density, params)``: the unconstrained log density and its arguments."""
        return _log_density, self._params(x)

    def sample(self, n: int, x: Any = None, seed: Seed = 0, **options: Any) -> jax.Array:
        """``n`` draws for one observation (or k i.i.d. trials), shape (n, dθ).

        ``sampler``: "imh" (default: independence Metropolis–Hastings from a Student-t mixture
        fitted by tempered importance sampling, :mod:`lfi.proposals`; its chains jump between
        modes), "nuts", "hmc", "slice", "rwm", "importance" or "rejection". Options (here or at
        construction): ``num_chains``, ``num_warmup``, ``thin`` (for "imh" by default "auto":
        chosen from the proposal's fit so that at most 1% of the draws repeat their chain's
        previous draw (:meth:`lfi.proposals.ProposalFit.thin_for`), then doubled while R-hat >
        :func:`lfi.samplers.rhat_threshold` (1.01 unless the chains are short) and raised while
        the measured repeats exceed 1%, up to 64), and for "imh" the fit's ``num_draws``,
        ``components``, ``max_rounds``, ``target_ess``.
        """
        opts = {**self.sampler_options, **options}
        kind = _check_sampler(opts.pop("sampler", self.sampler))
        params = self._params(x)
        if kind in ("importance", "rejection"):
            u = self._proposal_draws(kind, params, int(n), jax.random.split(as_key(seed))[1], opts)
        else:
            # chains: 50 for imh, 20 for the others, fewer for small n (>= 50 draws per chain)
            most = 50 if kind == "imh" else 20
            chains = int(opts.pop("num_chains", max(1, min(most, int(n) // 50))))
            if kind == "imh":  # seeds from numpy: no JAX key arithmetic to compile
                seeds = [int(s) for s in numpy_rng(seed).integers(2**31 - 1, size=2)]
                result = self._imh(params, int(n), chains, *seeds, opts)
            else:
                key_init, key_run = jax.random.split(as_key(seed))
                init = self.initial_points(params, chains, key_init)
                result = samplers.mcmc(
                    _log_density, params, init, int(n), seed=key_run, kernel=kind, **opts
                )
            samplers.check(result)
            self.diagnostics = result
            u = result.flat
        return _from_unconstrained(self.prior, u)

    def _imh(self, params, n, chains, key_init, key_run, opts) -> samplers.MCMCResult:
        fit_opts = {k: opts.pop(k) for k in _FIT_OPTIONS if k in opts}
        q, fit = proposals.fit_proposal(
            _log_density, params, proposals.PriorProposal(self.prior), seed=key_init, **fit_opts
        )
        thin = opts.pop("thin", "auto")
        auto = thin == "auto"
        if auto:  # IMH draws are correlated only through repeats (rejected moves): thin them
            thin = fit.thin_for(MAX_REPEATS / 2)  # half the allowance: a margin for the estimate
        num_warmup = int(opts.pop("num_warmup", 50))
        if opts or num_warmup < 0 or int(thin) < 1:
            raise ValueError(
                f"imh options: unknown {sorted(opts)} or num_warmup={num_warmup} < 0 or "
                f"thin={thin} < 1 (expected num_warmup, thin, {', '.join(_FIT_OPTIONS)})"
            )
        # one stream of proposals: a rerun with more thinning extends the previous run's
        stream = proposals._Stream(_log_density, params, q, key_run)
        starts = np.asarray(fit.starts(chains), np.float32)
        while True:
            result = proposals._run(stream, starts, n, num_warmup, thin)
            if not auto or thin >= 64:
                return result
            if np.nanmax(result.rhat) > samplers.rhat_threshold(*result.samples.shape):
                thin = min(64, 2 * thin)
                continue
            # A kept draw repeats the previous one with probability ≈ (1 - acceptance)^thin:
            # thin until at most MAX_REPEATS of the draws are repeats (see repeat_fraction).
            repeats = proposals.repeat_fraction(result.samples)
            if repeats <= MAX_REPEATS:
                return result
            grow = np.log(MAX_REPEATS) / np.log(min(repeats, 0.99))
            thin = int(min(64, max(thin + 1, np.ceil(thin * grow))))

    def sample_batched(self, n: int, x: Any, seed: Seed = 0, **options: Any) -> jax.Array:
        """``n`` draws for each of m observations: shape (m, n, dθ); diagnostics per run."""
        xs = self._many_x(x)
        keys = jax.random.split(as_key(seed), xs.shape[0])
        runs, diagnostics = [], []
        for xi, key in zip(xs, keys):
            runs.append(self.sample(n, xi, key, **options))
            diagnostics.append(self.diagnostics)
        self.diagnostics = diagnostics
        return jnp.stack(runs)

    def initial_points(self, params: tuple, num: int, key: Any, pool: int = 20) -> jax.Array:
        """``num`` distinct chain starts: sampling-importance-resampling of ``pool * num`` prior
        draws, without replacement (Gumbel top-k). With replacement, a narrow posterior (weights
        of effective size ~1) put every chain at one point, and R-hat could not see a missed
        mode. With fewer than ``num`` finite weights, the draws are taken with replacement."""
        k_prior, k_pick = jax.random.split(key)
        theta = self.prior.sample(pool * num, seed=k_prior)
        u = self.prior.to_unconstrained(theta)
        logw = jax.vmap(lambda ui: _terms(params, ui))(u)
        logw = jnp.where(jnp.isfinite(logw), logw, -jnp.inf)
        if int(jnp.sum(jnp.isfinite(logw))) < num:
            return u[jax.random.categorical(k_pick, logw, shape=(num,))]
        return u[jax.lax.top_k(logw + jax.random.gumbel(k_pick, logw.shape), num)[1]]

    def _proposal_draws(self, kind: str, params: tuple, n: int, key: Any, opts: dict) -> Any:
        prior = self.prior

        def propose(k: Any, m: int) -> jax.Array:
            return prior.to_unconstrained(prior.sample(m, seed=k))

        def proposal_log_prob(u: jax.Array) -> jax.Array:  # the prior's density in u-space
            return prior.log_prob(prior.from_unconstrained(u)) + prior.log_det_from_unconstrained(u)

        run = samplers.rejection_sample if kind == "rejection" else samplers.importance_sample
        u, info = run(_log_density, params, propose, proposal_log_prob, n, seed=key, **opts)
        self.diagnostics = info
        return u

    def map(self, x: Any = None, seed: Seed = 0, num_init: int = 1000, steps: int = 300):
        """The posterior mode in θ-space: best of ``num_init`` SIR starts, refined by Adam on
        θ's density, stepping in u-space."""
        params = self._params(x)
        starts = self.initial_points(params, 20, as_key(seed), pool=max(1, num_init // 20))
        u = _ascend(params, starts, steps)
        lp = jax.vmap(lambda ui: _log_density_theta(params, ui))(u)
        return self.prior.from_unconstrained(u[jnp.argmax(lp)])

    def save(self, path: str) -> None:
        """Write config JSON + arrays (no pickle); read back with ``lfi.load``."""
        config = {
            "class": "UnnormalizedPosterior",
            "kind": self.kind,
            "method": self.method,
            "prior": self.prior.to_config(),
            "net": self.net_config,
            "dim_x": self.dim_x,
            "sampler": self.sampler,
            "sampler_options": self.sampler_options,
            "default_x": None if self.default_x is None else self.default_x.tolist(),
            "history": None if self.history is None else self.history.to_dict(),
        }
        arrays = {**module_arrays(self._trained, "net"), **module_arrays(self._stand, "stand")}
        arrays["box_low"], arrays["box_high"] = (np.asarray(b) for b in self.theta_box)
        write_archive(path, config, arrays)

    @classmethod
    def load(cls, path: str) -> UnnormalizedPosterior:
        config, arrays = read_archive(path, expect="UnnormalizedPosterior")
        prior = prior_from_config(config["prior"])
        build = build_flow if config["kind"] == "likelihood" else build_classifier
        net = fill_module(build(config["net"]), arrays, "net")
        stand = fill_module(Standardizer.zeros(prior.dim, config["dim_x"]), arrays, "stand")
        post = cls(
            prior,
            net,
            stand,
            config["net"],
            config["dim_x"],
            history=History.from_dict(config.get("history")),
            kind=config["kind"],
            method=config["method"],
            sampler=config.get("sampler", "imh"),
            sampler_options=config.get("sampler_options"),
            theta_box=(arrays["box_low"], arrays["box_high"]) if "box_low" in arrays else None,
        )
        if config.get("default_x") is not None:
            post.set_default_x(config["default_x"])
        return post


def _box(box: Any, dim: int) -> tuple[jax.Array, jax.Array]:
    """``(low, high)`` in unconstrained space, each (dim,); None: unbounded (no clamping)."""
    if box is None:
        return jnp.full(dim, -jnp.inf), jnp.full(dim, jnp.inf)
    low, high = (np.asarray(b, np.float32) for b in box)
    if low.shape != (dim,) or high.shape != (dim,) or np.any(np.isnan(low) | np.isnan(high)):
        raise ValueError(
            f"theta_box: expected (low, high), each ({dim},) without NaN, got shapes "
            f"{low.shape}, {high.shape}"
        )
    if np.any(low > high):
        raise ValueError("theta_box: low must not exceed high in any coordinate")
    return jnp.asarray(low), jnp.asarray(high)


def _check_sampler(name: str) -> str:
    if name not in SAMPLERS:
        raise ValueError(f"sampler: expected one of {SAMPLERS}, got {name!r}")
    return name


@eqx.filter_jit
def _from_unconstrained(prior, u):  # one compiled call, not one per eager operation
    return prior.from_unconstrained(u)


@eqx.filter_jit
def _ascend(params: tuple, u0: jax.Array, steps: int) -> jax.Array:
    opt = optax.adam(0.01)
    grad = jax.vmap(jax.grad(lambda u: -_log_density_theta(params, u)))

    def step(carry, _):
        u, state = carry
        updates, state = opt.update(grad(u), state)
        return (optax.apply_updates(u, updates), state), None

    (u, _), _ = jax.lax.scan(step, (u0, opt.init(u0)), None, length=steps)
    return u
