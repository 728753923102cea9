"""lfi: simulation-based inference on JAX."""

from lfi.priors import BoxUniform, Independent, LogNormal, MultivariateNormal, Normal

__all__ = ["BoxUniform", "Independent", "LogNormal", "MultivariateNormal", "Normal"]
__version__ = "0.1.0"
