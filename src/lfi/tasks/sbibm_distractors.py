"""sbibm 1.1.0's ``slcp_distractors``: SLCP's 8 outputs hidden among 92 distractors, in JAX.

x is 100-dimensional: the 8 outputs of ``slcp`` (4 draws of a 2-d Gaussian, see
:func:`lfi.tasks.sbibm.slcp`) concatenated with 92 distractors that do not depend on θ, then
shuffled by a fixed permutation. The distractors are drawn from a uniform mixture of 20
92-dimensional Student-t distributions with 2 degrees of freedom. As in sbibm's
``_generate_noise_dist_parameters``, everything comes from ``numpy.random.seed(42)`` in this
order: the 20 locations 15·N(0, I₉₂); for each component, its scale factor
3·(tril(N(0, 1)^{92×92}) + diag(exp N(0, 1)⁹²)); then the permutation of the 100 outputs.
(sbibm stores these as ``gmm.torch`` / ``permutation_idx.torch``, which are binary and were not
read: lfi regenerates them from the seed. The stored observations confirm the permutation bit for
bit — their 8 informative entries are exactly slcp's observations — and the tests check that
their distractors are typical draws of the regenerated mixture.)

Because the distractors are independent of θ, p(θ | x) = p(θ | x_informative): the reference
posterior is slcp's (tempered SMC on the folded posterior), run on the 8 informative entries. The
log-likelihood is exact: slcp's on the informative entries plus the mixture's log density of the
distractors (constant in θ). See Lueckmann et al. (2021), arXiv:2101.04653.

>>> from lfi.tasks import get
>>> task = get("slcp_distractors")
>>> x = task.observation(1)
>>> bool(np.array_equal(x[task.extras["informative"]], get("slcp").observation(1)))
True
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from lfi.priors import BoxUniform
from lfi.tasks.base import Task, load_data
from lfi.tasks.sbibm import _slcp_loglik, _slcp_simulator

__all__ = ["distractor_mixture", "slcp_distractors"]

NOISE_DIM, NUM_COMPONENTS, DF = 92, 20, 2.0


def distractor_mixture() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """sbibm's (locations (20, 92), scale factors (20, 92, 92), permutation (100,)), float64."""
    rng = np.random.RandomState(42)  # the stream of sbibm's np.random.seed(42)
    loc = np.array([15 * rng.normal(size=NOISE_DIM) for _ in range(NUM_COMPONENTS)])
    scale_tril = 3 * np.array(
        [
            np.tril(rng.normal(size=(NOISE_DIM, NOISE_DIM)))
            + np.diag(np.exp(rng.normal(size=NOISE_DIM)))
            for _ in range(NUM_COMPONENTS)
        ]
    )
    permutation = rng.permutation(NOISE_DIM + 8)
    return loc, scale_tril, permutation


_LOC, _TRIL, _PERM = distractor_mixture()
_INV = np.argsort(_PERM)  # x[_INV] = (slcp outputs, distractors)
INFORMATIVE = _INV[:8]
_DISTRACTORS = _INV[8:]
_LOC_J, _TRIL_J = jnp.asarray(_LOC, jnp.float32), jnp.asarray(_TRIL, jnp.float32)
_LOG_ABS_DET = jnp.asarray(np.log(np.abs(np.diagonal(_TRIL, axis1=1, axis2=2))).sum(1), jnp.float32)


def _sample_distractors(key):
    """One draw of the mixture: x = loc_c + L_c z · sqrt(ν / w), z ~ N(0, I), w ~ χ²(ν)."""
    kc, kz, kw = jax.random.split(key, 3)
    c = jax.random.randint(kc, (), 0, NUM_COMPONENTS)
    z = jax.random.normal(kz, (NOISE_DIM,))
    w = 2.0 * jax.random.gamma(kw, DF / 2)  # χ²(ν) = 2 Gamma(ν / 2)
    return _LOC_J[c] + (_TRIL_J[c] @ z) * jnp.sqrt(DF / w)


def distractor_log_prob(noise: jax.Array) -> jax.Array:
    """Log density of the 92 distractors (in sbibm's order) under the Student-t mixture."""

    def one(loc, tril, log_det):
        u = jax.scipy.linalg.solve_triangular(tril, noise - loc, lower=True)
        p = NOISE_DIM
        return (
            math.lgamma((DF + p) / 2)
            - math.lgamma(DF / 2)
            - 0.5 * p * math.log(DF * math.pi)
            - log_det
            - 0.5 * (DF + p) * jnp.log1p(jnp.sum(u**2) / DF)
        )

    comps = jax.vmap(one)(_LOC_J, _TRIL_J, _LOG_ABS_DET)
    return jax.scipy.special.logsumexp(comps) - math.log(NUM_COMPONENTS)


def _simulator(key, theta):
    k1, k2 = jax.random.split(key)
    full = jnp.concatenate([_slcp_simulator(k1, theta), _sample_distractors(k2)])
    return full[_PERM]


def _loglik(theta, x):
    return _slcp_loglik(theta, x[INFORMATIVE]) + distractor_log_prob(x[_DISTRACTORS])


def slcp_distractors() -> Task:
    """sbibm's ``slcp_distractors``: 5 parameters, 100 outputs (8 informative, 92 distractors).

    The reference sampler is the shared ``slcp`` task's, applied to the informative entries, so
    with the same observation number, n and seed it returns exactly slcp's reference samples.
    """
    from lfi import tasks  # the shared slcp instance (its compiled SMC), imported lazily

    slcp = tasks.get("slcp")
    data = load_data("slcp_distractors")

    def reference(x, n, key):
        return slcp._reference(np.asarray(x)[INFORMATIVE], n, key)

    return Task(
        "slcp_distractors",
        prior=BoxUniform(low=-3.0, high=3.0, dim=5),
        simulator=_simulator,
        dim_x=NOISE_DIM + 8,
        observations=data["observations"],
        true_parameters=data["true_parameters"],
        reference=reference,
        log_likelihood=_loglik,
        description=(
            "SLCP with 92 Student-t-mixture distractors, permuted (sbibm). Reference: slcp's "
            "tempered SMC on the 8 informative entries."
        ),
        source=data["source"],
        extras={
            "informative": INFORMATIVE,
            "distractors": _DISTRACTORS,
            "permutation": _PERM,
            "distractor_log_prob": distractor_log_prob,
        },
    )
