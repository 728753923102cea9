"""Neural posterior estimation (NPE): fit a conditional flow q(θ | x) by maximum likelihood.

Papamakarios & Murray 2016 (arXiv:1605.06376); the amortised single-round form as in sbi and
sbibm (arXiv:2101.04653), i.e. Greenberg et al. 2019 (arXiv:1905.07488) Eq. 1 with the prior as
the proposal: θ must be prior draws (θ from another proposal p̃ gives the proposal posterior
∝ p(θ|x) p̃(θ)/p(θ); for rounds at one observation use ``sequential(..., "snpe")``, TSNPE, whose
truncated proposals keep this loss valid). θ is mapped to the prior's
unconstrained space and z-scored, x is z-scored, so bounded priors never leak posterior mass.

>>> import lfi, numpy as np
>>> prior = lfi.BoxUniform([0.0, 0.0], [2.0, 2.0])
>>> theta = np.asarray(prior.sample(500, seed=0))
>>> x = theta + 0.1 * np.random.default_rng(0).standard_normal(theta.shape)
>>> posterior = lfi.NPE(prior, max_epochs=5, progress=False).fit(theta, x, seed=0)
>>> posterior.sample(10, x=[1.0, 1.0], seed=1).shape
(10, 2)
"""

from __future__ import annotations

import warnings
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import paramax

from lfi._checks import integer
from lfi._cores import rowwise
from lfi._rng import Seed, as_key, numpy_rng
from lfi.methods.store_data import StoreBlocks, is_store
from lfi.nets.embeddings import normalize_embedding, trial_dim
from lfi.nets.flows import build_flow, flow_config
from lfi.posteriors.direct import DirectPosterior, Standardizer
from lfi.priors import Prior
from lfi.simulate import finite_rows
from lfi.train import fit

TRAIN_DEFAULTS: dict[str, Any] = {
    "batch_size": 50,
    "learning_rate": 5e-4,
    "max_epochs": 1000,
    "patience": 20,
    "patience_steps": 0,
    "validation_fraction": 0.1,
    "clip_norm": 5.0,
    "lr_decays": 2,
    "lr_factor": 0.2,
    "weight_decay": 0.0,
    "ema": 0.0,
    "checkpoint": None,
    "checkpoint_seconds": 30.0,
    "block_rows": 100_000,
}


@rowwise
def npe_loss(flow: Any, batch: tuple, key: Any) -> Any:
    """Negative mean log q(z_θ | z_x) over a batch of standardised (θ, x) pairs."""
    z_theta, z_x = batch
    return -jnp.mean(paramax.unwrap(flow).log_prob(z_theta, z_x))


class BalancedNPELoss(eqx.Module):
    """Balanced NPE (BNPE; Delaunoy et al. 2023, arXiv:2304.10978): the NPE loss plus
    ``balance`` × (E_joint σ(d) + E_marginal σ(d) − 1)², with d = log q(θ|x) − log p(θ) read as
    the logit of a classifier of joint (θ, x) pairs against pairs with θ shuffled in the batch.
    The penalty pushes q towards conservative (under- rather than over-confident) posteriors
    on the data it is trained on.

    Both densities are over the standardised unconstrained z_θ, so the log-ratio d equals the
    one in θ itself (the Jacobians cancel).
    """

    prior: Prior = eqx.field(static=True)
    theta_mean: jax.Array
    theta_std: jax.Array
    balance: float = eqx.field(static=True)

    def log_prior_z(self, z_theta: jax.Array) -> jax.Array:
        u = self.theta_mean + self.theta_std * z_theta
        lp = self.prior.log_prob(self.prior.from_unconstrained(u))
        return lp + self.prior.log_det_from_unconstrained(u) + jnp.sum(jnp.log(self.theta_std))

    def __call__(self, flow: Any, batch: tuple, key: Any) -> Any:
        z_theta, z_x = batch
        f = paramax.unwrap(flow)
        log_q = f.log_prob(z_theta, z_x)
        perm = jax.random.permutation(key, z_theta.shape[0])
        log_q_marginal = f.log_prob(z_theta[perm], z_x)
        log_p = jax.lax.stop_gradient(self.log_prior_z(z_theta))
        joint = jax.nn.sigmoid(log_q - log_p)
        marginal = jax.nn.sigmoid(log_q_marginal - log_p[perm])
        penalty = (jnp.mean(joint) + jnp.mean(marginal) - 1.0) ** 2
        return -jnp.mean(log_q) + self.balance * penalty


def _step(d: jax.Array) -> jax.Array:
    """1[d > 0] in the forward pass, the logistic's slope in the backward one (a
    straight-through estimator)."""
    soft = jax.nn.sigmoid(d)
    return soft + jax.lax.stop_gradient((d > 0).astype(d.dtype) - soft)


class CalibratedNPELoss(eqx.Module):
    """NPE's loss plus ``calibration`` × a differentiable calibration error of the
    highest-density regions over the batch (after Falkiewicz et al. 2023, arXiv:2310.13402).

    For each row (θ_i, x_i), ``draws`` samples θ_ij ~ q(·|x_i) (reparametrised) give the HPD
    level of θ_i, a_i = (Σ_j 1[q(θ_ij|x_i) > q(θ_i|x_i)] + U_i) / (draws + 1), with U_i ~ U(0, 1):
    exactly U(0, 1) for a calibrated q, as in :func:`lfi.diagnostics.expected_coverage`. The
    indicator is a straight-through step (logistic slope backward); the penalty is the mean
    squared distance between the sorted a_i and the uniform quantiles (i − 1/2)/B. Densities are
    those of θ itself (the unconstrained map's Jacobian added), the ones the diagnostics rank.
    """

    prior: Prior = eqx.field(static=True)
    theta_mean: jax.Array
    theta_std: jax.Array
    calibration: float = eqx.field(static=True)
    draws: int = eqx.field(static=True)

    def log_jacobian(self, z_theta: jax.Array) -> jax.Array:
        """log |dz/dθ| up to a constant: log q(θ|x) = log q(z|x) + this."""
        u = self.theta_mean + self.theta_std * z_theta
        return -self.prior.log_det_from_unconstrained(u)

    def __call__(self, flow: Any, batch: tuple, key: Any) -> Any:
        z_theta, z_x = batch
        f = paramax.unwrap(flow)
        k_draws, k_ties = jax.random.split(key)
        log_q = f.log_prob(z_theta, z_x)
        draws, log_q_draws = f.sample_and_log_prob(k_draws, (self.draws,), condition=z_x)
        higher = _step(
            log_q_draws + self.log_jacobian(draws) - (log_q + self.log_jacobian(z_theta))
        )
        ties = jax.random.uniform(k_ties, log_q.shape)
        level = (jnp.sum(higher, 0) + ties) / (self.draws + 1)
        quantiles = (jnp.arange(level.shape[0]) + 0.5) / level.shape[0]
        penalty = jnp.mean((jnp.sort(level) - quantiles) ** 2)
        return -jnp.mean(log_q) + self.calibration * penalty


def check_training_data(
    prior: Prior, theta: Any, x: Any, padded: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Validate shapes, drop non-finite rows with a warning, reject θ outside the prior.
    ``padded``: NaN in x is set padding (a DeepSets embedding masks it); only rows with inf,
    or with x all NaN, are dropped."""
    theta, x = np.asarray(theta, np.float32), np.asarray(x, np.float32)
    if theta.ndim == 1 and prior.dim == 1:
        theta = theta[:, None]
    if x.ndim == 1:
        x = x[:, None]
    if theta.ndim != 2 or theta.shape[1] != prior.dim:
        raise ValueError(f"theta: expected shape (n, {prior.dim}), got {theta.shape}")
    if x.ndim != 2 or x.shape[0] != theta.shape[0]:
        raise ValueError(f"x: expected shape ({theta.shape[0]}, dim_x), got {x.shape}")
    if padded:  # NaN in x is padding: drop rows with non-finite θ, inf in x, or x all NaN
        ok = usable_rows(theta, x, padded)
        if not ok.all():
            warnings.warn(
                f"excluded {int((~ok).sum())} of {ok.size} simulations with NaN/inf values "
                "from training",
                stacklevel=3,
            )
        theta, x = theta[ok], x[ok]
    else:
        theta, x = finite_rows(theta, x)
    outside = ~np.asarray(prior.in_support(theta))
    if outside.any():
        raise ValueError(
            f"theta: {int(outside.sum())} rows lie outside the prior's support "
            f"(first: {theta[outside][0].tolist()})"
        )
    if theta.shape[0] < 10:
        raise ValueError(f"theta: need at least 10 valid simulations, got {theta.shape[0]}")
    return theta, x


def usable_rows(theta: Any, x: Any, padded: bool = False) -> np.ndarray:
    """The rows :func:`check_training_data` keeps (before its support check), as a mask."""
    theta, x = np.asarray(theta, np.float32), np.asarray(x, np.float32)
    theta = theta.reshape(len(theta), -1)
    x = x.reshape(len(x), -1)
    if padded:
        return np.all(np.isfinite(theta), 1) & ~np.any(np.isinf(x), 1) & ~np.all(np.isnan(x), 1)
    return np.all(np.isfinite(theta), 1) & np.all(np.isfinite(x), 1)


def _kept_validation(validation: Any, theta: Any, x: Any, padded: bool) -> np.ndarray | None:
    """``validation`` (a boolean mask over the given rows) restricted to the rows trained on."""
    if validation is None:
        return None
    mask = np.asarray(validation)
    if len(np.asarray(x)) != len(np.asarray(theta)):
        return mask  # check_training_data names the shape error
    if mask.dtype != bool or mask.shape != (len(np.asarray(theta)),):
        raise ValueError(
            f"validation: expected a boolean mask of shape ({len(np.asarray(theta))},), got "
            f"{mask.dtype} {mask.shape}"
        )
    return mask[usable_rows(theta, x, padded)]


def train_standardized(
    estimator: Any,
    theta: Any,
    x: Any,
    seed: Seed,
    build: Any,
    loss: Any,
    trials: int | None = None,
    make_loss: Any = None,
    init: Any = None,
    validation: Any = None,
):
    """The fit shared by NPE, NLE and NRE: check the data, z-score θ (in the prior's
    unconstrained space) and x, ``build(dim_x, key) -> (config, net)``, train with the one loop.
    ``trials``: x is a set of trials of this size each (a DeepSets embedding), NaN-padded; x is
    then z-scored with statistics pooled over trials, keeping the estimator order-invariant.
    The z-scoring statistics are those of all valid rows, the held-out ones included (as sbi
    does; a store streamed in blocks uses its training chunks only): the held-out loss is
    exposed to them only through two moments per coordinate.
    ``theta`` may be a simulation store (``x=None``): it is streamed in blocks of
    ``block_rows`` rows (:class:`lfi.methods.store_data.StoreBlocks`).
    ``make_loss(standardizer)``, if given, builds the loss instead (for losses that need the
    z-scoring, such as balanced NPE).
    ``init``: a posterior fitted before by an estimator of the same kind and options (a warm
    start): its network is trained on from its weights, and its z-scoring and configuration are
    kept (as sbi's sequential rounds do).
    ``validation``: a boolean mask over the rows, True for the rows held out for early stopping
    (see :func:`lfi.train.fit`).
    Sets ``estimator.history``; returns ``(trained, standardizer, config, dim_x)``."""
    prior, key = estimator.prior, as_key(seed)
    options = dict(estimator.train_options)
    if is_store(theta) and (init is not None or validation is not None):
        raise ValueError("init, validation: not with a simulation store (arrays only)")
    if not is_store(theta):
        options["validation"] = _kept_validation(validation, theta, x, trials is not None)
    if init is not None:
        return _train_on(estimator, theta, x, key, loss, trials, make_loss, init, options)
    if is_store(theta):  # a simulation store, streamed from disk a block at a time
        if x is not None:
            raise ValueError("x: give None when theta is a simulation store")
        data = StoreBlocks(
            theta,
            prior,
            seed=key,
            validation_fraction=options["validation_fraction"],
            block_rows=options["block_rows"],
        )
        stand, dim_x = data.standardizer, data.dim_x
    else:
        theta, x = check_training_data(prior, theta, x, padded=trials is not None)
        u = np.asarray(prior.to_unconstrained(theta))
        stand, dim_x = Standardizer.fit(u, np.nan_to_num(x)), x.shape[1]
        if trials is not None:
            stand = _pooled(stand, x, trials)
        data = (stand.z_theta(jnp.asarray(u)), stand.z_x(jnp.asarray(x)))
    if make_loss is not None:
        loss = make_loss(stand)
    config, net = build(dim_x, key)
    trained, estimator.history = fit(
        net, loss, data, seed=key, progress=estimator.progress, **options
    )
    if estimator.history.best_epoch < 0:
        name = type(estimator).__name__
        warnings.warn(
            f"{name}: validation loss never improved; the posterior is untrained", stacklevel=3
        )
    return trained, stand, config, dim_x


def _warm(init: Any) -> tuple[Any, Standardizer, dict, int]:
    """(network, standardizer, config, dim_x) of a fitted posterior, to train on from."""
    net = getattr(init, "_trained", None)
    config = getattr(init, "flow_config", getattr(init, "net_config", None))
    if net is None or not config:
        raise TypeError(
            f"init: expected a posterior fitted by NPE, NLE or NRE, got {type(init).__name__}"
        )
    return net, init._stand, config, init.dim_x


def _train_on(estimator, theta, x, key, loss, trials, make_loss, init, options):
    """:func:`train_standardized` from ``init``'s network and z-scoring (a warm start)."""
    net, stand, config, dim_x = _warm(init)
    if getattr(init, "method", None) != estimator.method:
        raise ValueError(
            f"init: a {getattr(init, 'method', '?')!r} posterior cannot start a "
            f"{estimator.method!r} fit"
        )
    if init.prior.dim != estimator.prior.dim:
        raise ValueError(f"init: fitted for {init.prior.dim} parameters, not {estimator.prior.dim}")
    theta, x = check_training_data(estimator.prior, theta, x, padded=trials is not None)
    if x.shape[1] != dim_x:
        raise ValueError(f"init: fitted on x of {dim_x} values per row, got {x.shape[1]}")
    u = jnp.asarray(estimator.prior.to_unconstrained(theta))
    data = (stand.z_theta(u), stand.z_x(jnp.asarray(x)))
    if make_loss is not None:
        loss = make_loss(stand)
    trained, estimator.history = fit(
        net, loss, data, seed=key, progress=estimator.progress, **options
    )
    return trained, stand, config, dim_x


def _pooled(stand: Standardizer, x: np.ndarray, trials: int) -> Standardizer:
    """``stand`` with x's mean and sd per trial feature, pooled over trials and tiled."""
    if x.shape[1] % trials:
        raise ValueError(f"x: {x.shape[1]} values per row, not a multiple of trial_dim={trials}")
    sets = x.reshape(len(x), -1, trials).astype(np.float64)
    mean, std = np.nanmean(sets, (0, 1)), np.nanstd(sets, (0, 1))
    std = Standardizer.scale(mean, std)
    reps = x.shape[1] // trials
    tile = lambda a: jnp.asarray(np.tile(a, reps), jnp.float32)  # noqa: E731
    return Standardizer(stand.theta_mean, stand.theta_std, tile(mean), tile(std))


class NPE:
    """Neural posterior estimation; ``NPE(prior).fit(theta, x, seed=0)`` returns a posterior.

    Flow options: ``flow`` ("nsf" or "maf"), ``flow_layers``, ``nn_width``, ``nn_depth``,
    ``knots``, ``interval``; ``embedding`` ("mlp", "deepset", "cnn1d" or a dict with sizes, see
    :mod:`lfi.nets.embeddings`) trained jointly with the flow. Training options:
    ``batch_size``, ``learning_rate``, ``max_epochs``, ``patience``, ``validation_fraction``,
    ``clip_norm``, ``weight_decay`` (AdamW, decoupled weight decay; 0 by default), ``ema``
    (a moving average of the weights, :func:`lfi.train.fit`; 0, off, by default), ``progress``.
    Calibrated at 10^4 simulations: ``lfi.Ensemble(NPE(prior, ema=0.999), 5)`` was within ±0.05
    of nominal HPD coverage at 50/80/95% on two_moons, gaussian_linear and slcp (two seeds
    each) and sir, where one network is over-confident on two_moons and slcp
    (benchmarks/results/npe_ensemble_ema_coverage/).
    ``weight_decay=1.0`` made NPE's coverage at 10^4 simulations within ±0.05 of nominal on
    two_moons, gaussian_linear and slcp (the default: gaussian_linear only; slcp 0.30 at 50%),
    with a lower C2ST on slcp (0.874 -> 0.860) and gaussian_linear (0.551 -> 0.513) but a
    blurred two_moons (0.548 -> 0.744; benchmarks/results/npe_weight_decay_calibration/).

    ``balance=λ > 0`` trains balanced NPE (BNPE, Delaunoy et al. 2023, arXiv:2304.10978; the
    paper uses λ = 100): the maximum-likelihood loss plus a penalty that makes the implied
    classifier balanced, meant to trade a little sharpness for conservative posteriors. The
    balance is enforced on the training data only: at 10^4 simulations on slcp it did not carry
    over to fresh data and the posterior stayed over-confident (benchmarks/results/
    bnpe_coverage.md). Check with :func:`lfi.diagnostics.expected_coverage`.

    ``calibration=λ > 0`` adds a differentiable calibration error of the highest-density
    regions to the loss (:class:`CalibratedNPELoss`, after Falkiewicz et al. 2023,
    arXiv:2310.13402), estimated per batch from ``calibration_draws`` reparametrised draws per
    row (each draw through the flow's inverse: dθ passes for a MAF), on one device: an epoch
    took 11-24× as long as plain NPE's on one device, where measured. At 10^4 simulations
    ``calibration=100`` (the "calnpe" method) made NPE less over-confident on two_moons and slcp
    (50% level: 0.37 → 0.46 and 0.31 → 0.47 with training seed 0, within ±0.05; 0.38 → 0.43
    and 0.31 → 0.38 with seed 7, not within), for a C2ST 0.025 higher than plain NPE's. At
    ``calibration=1000`` the HPD coverage reached nominal but the posterior was distorted
    (two_moons C2ST 0.88, marginal SBC failing): check with both expected_coverage and sbc
    (benchmarks/results/npe_calibration_penalty/).

    ``recalibrate="latent"`` recalibrates the trained flow in latent space on the held-out
    validation rows (:func:`lfi.methods.recalibrate.recalibrate`, after Dheur & Ben Taieb
    2025, arXiv:2505.16636): the flow's base becomes a spherically symmetric law whose radius
    matches the held-out latent radii. ``recalibrate="hpd"`` scales the flow's base by the one
    factor that makes the highest-density regions cover the held-out θ at their nominal levels.
    The validation rows are then used twice, for early stopping and for the recalibration.
    """

    def __init__(
        self,
        prior: Prior,
        *,
        flow: str = "nsf",
        progress: bool = True,
        balance: float = 0.0,
        calibration: float = 0.0,
        calibration_draws: int = 16,
        recalibrate: bool | str = False,
        **options: Any,
    ):
        if not isinstance(prior, Prior):
            raise TypeError(f"prior: expected an lfi prior, got {type(prior).__name__}")
        for name, value in (("balance", balance), ("calibration", calibration)):
            if isinstance(value, bool) or not (
                isinstance(value, (int, float, np.number)) and 0 <= value < np.inf
            ):
                raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
        if balance > 0 and calibration > 0:
            raise ValueError("balance, calibration: choose one penalty, not both")
        self.balance, self.calibration = float(balance), float(calibration)
        self.calibration_draws = integer(calibration_draws, "calibration_draws")
        if recalibrate not in (False, "latent", "hpd"):
            raise ValueError(f"recalibrate: expected False, 'latent' or 'hpd', got {recalibrate!r}")
        self.recalibrate = recalibrate
        train = {k: options.pop(k) for k in list(options) if k in TRAIN_DEFAULTS}
        self.prior, self.progress = prior, progress
        self.embedding = normalize_embedding(options.pop("embedding", None))
        self.flow_options = {"kind": flow, **options}
        flow_config(1, 1, **self.flow_options)  # validate names and kind now
        self.flow_options["embedding"] = self.embedding
        self.train_options = {**TRAIN_DEFAULTS, **train}
        self.history = None

    def fit(
        self, theta: Any, x: Any, seed: Seed = 0, *, init: Any = None, validation: Any = None
    ) -> DirectPosterior:
        """Train on ``theta`` (n, dθ) and ``x`` (n, dx) (or a simulation store as ``theta``).
        ``init``: a posterior of an earlier fit to train on from (a warm start);
        ``validation``: a boolean mask of the rows held out for early stopping."""

        def build(dim_x: int, key: Any) -> tuple[dict, Any]:
            config = flow_config(self.prior.dim, dim_x, **self.flow_options)
            return config, build_flow(config, key)

        trials = trial_dim(self.embedding)
        make_loss = None
        if self.balance > 0:
            prior, balance = self.prior, self.balance
            make_loss = lambda st: BalancedNPELoss(prior, st.theta_mean, st.theta_std, balance)  # noqa: E731
        if self.calibration > 0:
            prior, weight, draws = self.prior, self.calibration, self.calibration_draws
            make_loss = lambda st: CalibratedNPELoss(  # noqa: E731
                prior, st.theta_mean, st.theta_std, weight, draws
            )
        if self.recalibrate:
            if is_store(theta) or trials is not None:
                raise ValueError("recalibrate: needs arrays of single-trial x, not a store/sets")
            if validation is None:  # hold out rows for both early stopping and recalibration
                n = len(np.asarray(theta))
                fraction = self.train_options["validation_fraction"]
                validation = np.zeros(n, bool)
                validation[numpy_rng(seed).permutation(n)[: max(1, round(fraction * n))]] = True
            held = int(np.sum(validation))
            if self.recalibrate == "latent" and held < 40:  # radial_base's 2 × 20 knots
                raise ValueError(
                    f"recalibrate: 'latent' needs at least 40 held-out pairs, {held} of "
                    f"{len(validation)} are held out; raise validation_fraction or simulate more"
                )
        fitted = train_standardized(
            self, theta, x, seed, build, npe_loss, trials, make_loss, init, validation
        )
        trained, stand, config, dim_x = fitted
        post = DirectPosterior(self.prior, trained, stand, config, dim_x, self.history, self.method)
        if self.recalibrate:
            from lfi.methods.recalibrate import recalibrate

            held = np.asarray(validation, bool)
            post = recalibrate(
                post, np.asarray(theta)[held], np.asarray(x)[held], kind=self.recalibrate
            )
        return post

    @property
    def method(self) -> str:
        return "bnpe" if self.balance > 0 else "calnpe" if self.calibration > 0 else "npe"
