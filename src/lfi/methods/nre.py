"""Neural ratio estimation (NRE): a classifier of (θ, x) pairs whose logit is log r(x, θ).

r(x, θ) = p(x | θ) / p(x) = p(θ | x) / p(θ), so the posterior is prior × r (sampled by MCMC).
Pairs drawn together (from the joint) are contrasted with θ's taken from other rows of the
batch (the product of marginals). The variants differ only in the loss:

- ``"a"``: NRE-A / AALR, binary cross-entropy joint vs marginal (Hermans et al. 2020,
  arXiv:1903.04057); the optimal logit is exactly log r.
- ``"b"``: NRE-B / SNRE-B, 1-out-of-``num_atoms`` contrastive classification (Durkan et al. 2020,
  arXiv:2002.03712); the logit is log r up to a function of x, which the posterior ignores.
- ``"c"``: NRE-C, contrastive with an extra "all marginal" class weighted by ``gamma``
  (Miller et al. 2022, arXiv:2210.06170); the optimal logit is exactly log r.
- ``"bnre"``: balanced NRE, NRE-A plus ``regularization`` × (E_joint σ + E_marginal σ − 1)²,
  which pushes toward conservative posteriors (Delaunoy et al. 2022, arXiv:2208.13624).

>>> import lfi, numpy as np
>>> prior = lfi.BoxUniform([0.0, 0.0], [2.0, 2.0])
>>> theta = np.asarray(prior.sample(500, seed=0))
>>> x = theta + 0.1 * np.random.default_rng(0).standard_normal(theta.shape)
>>> posterior = lfi.NRE(prior, variant="b", max_epochs=5, progress=False).fit(theta, x, seed=0)
>>> posterior.sample(200, x=[1.0, 1.0], seed=1, num_warmup=50).shape
(200, 2)
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import paramax

from lfi._rng import Seed
from lfi.methods.nle import split_options, training_box, unnormalized_posterior
from lfi.methods.npe import TRAIN_DEFAULTS, train_standardized
from lfi.nets.classifiers import build_classifier, classifier_config
from lfi.nets.embeddings import normalize_embedding, trial_dim
from lfi.posteriors.unnormalized import UnnormalizedPosterior
from lfi.priors import Prior
from lfi.train import num_validation

VARIANTS = ("a", "b", "c", "bnre")

# The classification loss of NRE keeps falling slowly long after its validation value starts to
# jump by ±30% from epoch to epoch (two_moons, 10^4: NRE-B loss 0.15 at epoch 10, 0.05 at 400), so
# 20 epochs of patience stopped training at ~120 epochs, far from converged: C2ST 0.787 vs 0.602
# with 50 (benchmarks/results/nre_patience.md).
NRE_TRAIN_DEFAULTS = {"patience": 50}

# A smooth activation: the classifier's logit must fit log r(x, θ), which for a Gaussian
# likelihood is quadratic in (θ, x); a ReLU net fits it piece by piece. On gaussian_linear at
# 10^4 simulations, SiLU cut the total variation between the learned and the analytic posterior
# by ~40% and took SNRE's mean C2ST over observations 1-10 from 0.551 (ReLU) to 0.514; at 10^4
# amortised NRE-B scored two_moons 0.601 (ReLU 0.601), gaussian_mixture 0.676 (0.725), slcp 0.929
# (0.925, within the run-to-run noise) (benchmarks/results/nre_activation.md).
NRE_NET_DEFAULTS = {"activation": "silu"}


def contrast_logits(classifier: Any, z_theta: Any, z_x: Any, num: int, key: Any) -> Any:
    """Logits (B, 1 + num): column 0 for each row's own θ, then ``num`` θ's of other rows.

    Row i is paired with rows (i + s_j) mod B for ``num`` distinct shifts s_j in 1..B-1, so no
    contrasting θ is the row's own; batches are reshuffled every epoch.
    """
    size = z_theta.shape[0]
    shifts = 1 + jax.random.choice(key, size - 1, (num,), replace=False)
    idx = (jnp.arange(size)[:, None] + jnp.concatenate([jnp.zeros(1, int), shifts])) % size
    pair = jax.vmap(jax.vmap(classifier, in_axes=(0, None)), in_axes=(0, 0))
    return pair(z_theta[idx], z_x)


def nre_loss(classifier, batch, key, *, variant="b", num_atoms=10, gamma=1.0, regularization=100.0):
    """The loss of one NRE variant on a batch of standardised (θ, x) pairs (see module doc)."""
    net = paramax.unwrap(classifier)
    z_theta, z_x = batch
    if variant in ("a", "bnre"):
        logits = contrast_logits(net, z_theta, z_x, 1, key)
        joint, marginal = logits[:, 0], logits[:, 1]
        loss = 0.5 * jnp.mean(jax.nn.softplus(-joint) + jax.nn.softplus(marginal))
        if variant == "bnre":
            balance = jnp.mean(jax.nn.sigmoid(joint)) + jnp.mean(jax.nn.sigmoid(marginal)) - 1
            loss = loss + regularization * balance**2
        return loss
    if variant == "b":
        logits = contrast_logits(net, z_theta, z_x, num_atoms - 1, key)
        return -jnp.mean(jax.nn.log_softmax(logits, axis=1)[:, 0])
    # "c": K = num_atoms - 1 dependent classes plus one class where every pair is marginal
    k = num_atoms - 1
    k_joint, k_marg = jax.random.split(key)
    joint = contrast_logits(net, z_theta, z_x, k - 1, k_joint)
    marginal = contrast_logits(net, z_theta, z_x, k, k_marg)[:, 1:]
    log_gamma, log_k = math.log(gamma), math.log(k)

    def log_norm(logits):
        pad = jnp.full((logits.shape[0], 1), log_k)
        return jax.nn.logsumexp(jnp.concatenate([log_gamma + logits, pad], axis=1), axis=1)

    log_p_marginal = log_k - log_norm(marginal)
    log_p_joint = log_gamma + joint[:, 0] - log_norm(joint)
    p_joint = gamma / (1 + gamma)
    return -jnp.mean((1 - p_joint) * log_p_marginal + p_joint * log_p_joint)


@functools.lru_cache(maxsize=32)
def _loss_for(variant: str, num_atoms: int, gamma: float, regularization: float) -> Any:
    # one function object per setting, so the training loop's compiled epoch is reused
    return functools.partial(
        nre_loss, variant=variant, num_atoms=num_atoms, gamma=gamma, regularization=regularization
    )


class NRE:
    """Neural ratio estimation; ``NRE(prior, variant="b").fit(theta, x, seed=0)`` → posterior.

    ``variant``: "a", "b" (default, as sbi's ``NRE``), "c" or "bnre"; ``num_atoms`` (b, c),
    ``gamma`` (c), ``regularization`` (bnre). Classifier options: ``classifier`` ("resnet" or
    "mlp"), ``width``, ``depth``, ``activation`` ("silu" by default, :data:`NRE_NET_DEFAULTS`;
    "relu" is sbi's); ``embedding`` of x ("mlp", "deepset", "cnn1d" or a dict with
    sizes, see :mod:`lfi.nets.embeddings`), trained jointly. Training and sampler options as
    :class:`lfi.NLE`, except ``patience`` 50 by default (:data:`NRE_TRAIN_DEFAULTS`).
    """

    def __init__(
        self,
        prior: Prior,
        *,
        variant: str = "b",
        num_atoms: int = 10,
        gamma: float = 1.0,
        regularization: float = 100.0,
        classifier: str = "resnet",
        progress: bool = True,
        **options: Any,
    ):
        if not isinstance(prior, Prior):
            raise TypeError(f"prior: expected an lfi prior, got {type(prior).__name__}")
        if variant not in VARIANTS:
            raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")
        if int(num_atoms) < 2:
            raise ValueError(f"num_atoms: expected at least 2, got {num_atoms}")
        if not gamma > 0:
            raise ValueError(f"gamma: expected a positive number, got {gamma}")
        train, self.sampler_options, net = split_options(dict(options))
        self.prior, self.progress, self.variant = prior, progress, variant
        self.embedding = normalize_embedding(net.pop("embedding", None))
        self.classifier_options = {"kind": classifier, **NRE_NET_DEFAULTS, **net}
        classifier_config(1, 1, **self.classifier_options)  # validate names now
        self.classifier_options["embedding"] = self.embedding
        self.train_options = {**TRAIN_DEFAULTS, **NRE_TRAIN_DEFAULTS, **train}
        if self.train_options["batch_size"] < int(num_atoms):
            raise ValueError(
                f"batch_size: must be at least num_atoms ({num_atoms}), "
                f"got {self.train_options['batch_size']}"
            )
        self.loss = _loss_for(variant, int(num_atoms), float(gamma), float(regularization))
        self.num_atoms, self.history = int(num_atoms), None

    def _check_rows(self, theta: Any, validation: Any) -> None:
        """Each contrast set takes its atoms from the rows of one batch, and the validation loss
        is one batch of all held-out rows: both sets need enough rows (a clear error now, not
        jax's "cannot take a larger sample" at the first epoch)."""
        if not hasattr(theta, "__len__") or hasattr(theta, "finished_chunks"):
            return  # a simulation store: it holds out whole chunks
        n = len(theta)
        held = num_validation(n, self.train_options["validation_fraction"], validation)
        need = self.num_atoms if self.variant in ("b", "c") else 2
        if min(held, n - held) < need:
            raise ValueError(
                f"theta: {n} simulations leave {held} held-out and {n - held} training rows; "
                f"NRE-{self.variant} needs at least {need} of each (num_atoms, "
                "validation_fraction): simulate more, or lower num_atoms"
            )

    @property
    def method(self) -> str:
        return "bnre" if self.variant == "bnre" else f"nre_{self.variant}"

    def fit(
        self, theta: Any, x: Any, seed: Seed = 0, *, init: Any = None, validation: Any = None
    ) -> UnnormalizedPosterior:
        """Train on ``theta`` (n, dθ) and ``x`` (n, dx) (or a simulation store as ``theta``).
        ``init``: a posterior of an earlier fit to train on from (a warm start);
        ``validation``: a boolean mask of the rows held out for early stopping."""

        def build(dim_x: int, key: Any) -> tuple[dict, Any]:
            config = classifier_config(self.prior.dim, dim_x, **self.classifier_options)
            return config, build_classifier(config, key)

        self._check_rows(theta, validation)
        fitted = train_standardized(
            self,
            theta,
            x,
            seed,
            build,
            self.loss,
            trial_dim(self.embedding),
            init=init,
            validation=validation,
        )
        box = training_box(self.prior, theta, x, padded=trial_dim(self.embedding) is not None)
        return unnormalized_posterior(self, *fitted, kind="ratio", theta_box=box)
