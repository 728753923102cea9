"""Benchmark tasks with reference posteriors computed by lfi itself.

The ten tasks of sbibm 1.1.0 — defined identically, so C2ST scores compare with Lueckmann et al.
(2021), "Benchmarking Simulation-Based Inference", arXiv:2101.04653 — and six of lfi's own
(galton, madminer_toy, particle_chain and lotka_volterra_gillespie have augmented simulators,
see lfi.augment):

========================== ====== ===== ===============================================
task                        dim θ  dim x reference posterior
========================== ====== ===== ===============================================
``gaussian_linear``           10     10  analytic Gaussian
``gaussian_linear_uniform``   10     10  exact truncated-normal inversion
``two_moons``                  2      2  exact simulator inversion + rejection
``slcp``                       5      8  tempered SMC (4 mirror modes via explicit signs)
``gaussian_mixture``           2      2  exact mixture sampling + rejection
``slcp_distractors``           5    100  slcp's SMC on the 8 informative entries
``bernoulli_glm``             10     10  NUTS on the logistic likelihood
``bernoulli_glm_raw``         10    100  NUTS on the logistic likelihood
``sir``                        2     10  tempered SMC (ODE by diffrax)
``lotka_volterra``             4     20  tempered SMC (ODE by diffrax)
``gaussian_2d``                2      2  exact truncated-normal inversion
``ballistic``                  2      5  tempered SMC on a quadrature likelihood
``galton``                     1      1  exact (dynamic programming) on a θ grid
``madminer_toy``               1      1  exact truncated-normal inversion
``particle_chain``             1      2  quadrature likelihood on a θ grid
``lotka_volterra_gillespie``   4      9  none (p(x|θ) intractable; joint score/ratio)
========================== ====== ===== ===============================================

>>> import lfi.tasks
>>> lfi.tasks.names()[:2]
['gaussian_linear', 'gaussian_linear_uniform']
>>> task = lfi.tasks.get("two_moons")
>>> task.reference_posterior(1, n=100).shape
(100, 2)
>>> lfi.tasks.get("nope")
Traceback (most recent call last):
...
ValueError: task: expected one of ['gaussian_linear', ...], got 'nope'
"""

from __future__ import annotations

from collections.abc import Callable

from lfi.tasks import (
    gold,
    lotka_volterra,
    physics,
    sbibm,
    sbibm_distractors,
    sbibm_glm,
    sbibm_ode,
)
from lfi.tasks.base import Task

__all__ = ["NAMES", "Task", "get", "names"]

_FACTORIES: dict[str, Callable[[], Task]] = {
    "gaussian_linear": sbibm.gaussian_linear,
    "gaussian_linear_uniform": sbibm.gaussian_linear_uniform,
    "two_moons": sbibm.two_moons,
    "slcp": sbibm.slcp,
    "gaussian_mixture": sbibm.gaussian_mixture,
    "slcp_distractors": sbibm_distractors.slcp_distractors,
    "bernoulli_glm": sbibm_glm.bernoulli_glm,
    "bernoulli_glm_raw": sbibm_glm.bernoulli_glm_raw,
    "sir": sbibm_ode.sir,
    "lotka_volterra": sbibm_ode.lotka_volterra,
    "gaussian_2d": physics.gaussian_2d,
    "ballistic": physics.ballistic,
    "galton": gold.galton,
    "madminer_toy": gold.madminer_toy,
    "particle_chain": gold.particle_chain,
    "lotka_volterra_gillespie": lotka_volterra.lotka_volterra_gillespie,
}
NAMES: tuple[str, ...] = tuple(_FACTORIES)
_INSTANCES: dict[str, Task] = {}


def names() -> list[str]:
    """The task names, in a fixed order."""
    return list(NAMES)


def get(name: str) -> Task:
    """The task called ``name`` (one shared instance per name, so reference samples stay cached)."""
    if name not in _FACTORIES:
        raise ValueError(f"task: expected one of {list(NAMES)}, got {name!r}")
    if name not in _INSTANCES:
        _INSTANCES[name] = _FACTORIES[name]()
    return _INSTANCES[name]
