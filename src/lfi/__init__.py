"""lfi: simulation-based (likelihood-free) inference on JAX.

>>> import lfi
>>> sorted(lfi.__all__)[:3]
['AugmentedSimulator', 'BoxUniform', 'CARL']
"""

# first, before any import starts JAX (blackjax does): the persistent compilation cache, and
# one JAX CPU device per core for data-parallel training
from lfi import _cores, _jaxcache  # noqa: F401
from lfi.api import infer, load
from lfi.augment import AugmentedSimulator, GoldData, augmented, simulate_gold
from lfi.campaign import SimulatorRef, run_campaign
from lfi.methods.abc import RejectionABC, smc_abc
from lfi.methods.fmpe import FMPE
from lfi.methods.gold import SALLY, GoldRatio
from lfi.methods.nle import NLE
from lfi.methods.npe import NPE
from lfi.methods.npse import NPSE
from lfi.methods.nre import NRE
from lfi.methods.ratio import CARL, ClassifierRatio, simulate_carl_data
from lfi.methods.recalibrate import recalibrate
from lfi.methods.registry import METHODS
from lfi.methods.scandal import SCANDAL
from lfi.methods.sequential import sequential
from lfi.posteriors.base import Posterior
from lfi.posteriors.direct import DirectPosterior
from lfi.posteriors.ensemble import Ensemble, EnsemblePosterior
from lfi.posteriors.ode import ODEPosterior
from lfi.posteriors.samples import ParticlePosterior
from lfi.posteriors.tractable import LikelihoodPosterior
from lfi.posteriors.unnormalized import UnnormalizedPosterior
from lfi.priors import BoxUniform, Independent, LogNormal, MultivariateNormal, Normal, Prior
from lfi.simulate import SimulationReport, jax_simulator, per_sample, run_simulator, simulate
from lfi.store import SimulationStore, open_store
from lfi.train import History

__all__ = [
    "AugmentedSimulator",
    "BoxUniform",
    "CARL",
    "ClassifierRatio",
    "DirectPosterior",
    "Ensemble",
    "EnsemblePosterior",
    "FMPE",
    "GoldData",
    "GoldRatio",
    "History",
    "Independent",
    "LikelihoodPosterior",
    "LogNormal",
    "METHODS",
    "MultivariateNormal",
    "NLE",
    "NPE",
    "NPSE",
    "NRE",
    "Normal",
    "ODEPosterior",
    "ParticlePosterior",
    "Posterior",
    "Prior",
    "RejectionABC",
    "SALLY",
    "SCANDAL",
    "SimulationReport",
    "SimulationStore",
    "SimulatorRef",
    "UnnormalizedPosterior",
    "augmented",
    "infer",
    "jax_simulator",
    "load",
    "open_store",
    "per_sample",
    "recalibrate",
    "run_campaign",
    "run_simulator",
    "sequential",
    "simulate",
    "simulate_carl_data",
    "simulate_gold",
    "smc_abc",
]
__version__ = "0.1.0"

_SUBMODULES = {
    "augment": "lfi.augment",
    "bench": "lfi.bench",
    "calibration": "lfi.calibration",
    "conjugate": "lfi.methods.conjugate",
    "diagnostics": "lfi.diagnostics",
    "executors": "lfi.executors",
    "frequentist": "lfi.frequentist",
    "plot": "lfi.plot",
    "proposals": "lfi.proposals",
    "samplers": "lfi.samplers",
    "tasks": "lfi.tasks",
}


def __getattr__(name: str):
    """Import ``lfi.tasks``, ``lfi.calibration``, ``lfi.plot``… on first use (fast import)."""
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(_SUBMODULES[name])
    raise AttributeError(f"module 'lfi' has no attribute {name!r}")
