"""lfi: simulation-based (likelihood-free) inference on JAX.

>>> import lfi
>>> sorted(lfi.__all__)[:3]
['BoxUniform', 'DirectPosterior', 'History']
"""

from lfi import _jaxcache  # noqa: F401  (persistent compilation cache; must come before jit use)
from lfi.api import infer, load
from lfi.methods.npe import NPE
from lfi.methods.registry import METHODS
from lfi.posteriors.base import Posterior
from lfi.posteriors.direct import DirectPosterior
from lfi.priors import BoxUniform, Independent, LogNormal, MultivariateNormal, Normal, Prior
from lfi.simulate import SimulationReport, jax_simulator, per_sample, run_simulator, simulate
from lfi.train import History

__all__ = [
    "BoxUniform",
    "DirectPosterior",
    "History",
    "Independent",
    "LogNormal",
    "METHODS",
    "MultivariateNormal",
    "NPE",
    "Normal",
    "Posterior",
    "Prior",
    "SimulationReport",
    "infer",
    "jax_simulator",
    "load",
    "per_sample",
    "run_simulator",
    "simulate",
]
__version__ = "0.1.0"

_SUBMODULES = ("bench", "diagnostics", "plot", "tasks")


def __getattr__(name: str):
    """Import ``lfi.tasks``, ``lfi.diagnostics``, ``lfi.plot`` on first use (keeps import fast)."""
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"lfi.{name}")
    raise AttributeError(f"module 'lfi' has no attribute {name!r}")
