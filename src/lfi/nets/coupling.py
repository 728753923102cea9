"""Bijections for lfi's spline flow: a residual-net coupling layer and an LU linear layer.

These complete flowjax's building blocks so that lfi's default flow has the architecture of
sbi's ``nsf`` (Durkan et al. 2019, arXiv:1906.04032): each layer is a rational-quadratic spline
coupling whose parameters come from a context-gated :class:`~lfi.nets.resnet.ResidualNet`,
followed by a learned invertible linear map ``y = L U x + b`` (Kingma & Dhariwal 2018,
arXiv:1807.03039) that mixes the two halves.

>>> import jax, jax.numpy as jnp
>>> from flowjax.bijections import RationalQuadraticSpline
>>> layer = ResidualCoupling(jax.random.key(0), transformer=RationalQuadraticSpline(
...     knots=4, interval=3.0), untransformed_dim=1, dim=3, cond_dim=2, width=8, blocks=1)
>>> y, log_det = layer.transform_and_log_det(jnp.ones(3), jnp.ones(2))
>>> x, inv_log_det = layer.inverse_and_log_det(y, jnp.ones(2))
>>> bool(jnp.allclose(x, 1.0, atol=1e-5)), bool(jnp.allclose(log_det, -inv_log_det))
(True, True)
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import paramax
from flowjax.bijections import AbstractBijection
from flowjax.bijections.jax_transforms import Vmap
from flowjax.utils import get_ravelled_pytree_constructor
from jax.scipy.linalg import solve_triangular
from jaxtyping import Array

from lfi._rng import Seed
from lfi.nets.resnet import ResidualNet


class ResidualCoupling(AbstractBijection):
    """Coupling layer: the last ``dim - untransformed_dim`` variables pass through ``transformer``
    parameterised by a residual net of the first ``untransformed_dim`` variables and the
    condition. A zero net output gives the transformer's initial (identity) parameters."""

    shape: tuple[int, ...]
    cond_shape: tuple[int, ...] | None
    untransformed_dim: int
    dim: int
    transformer_constructor: Callable
    conditioner: ResidualNet

    def __init__(
        self,
        key: Seed | np.random.Generator,
        *,
        transformer: AbstractBijection,
        untransformed_dim: int,
        dim: int,
        cond_dim: int | None = None,
        width: int = 50,
        blocks: int = 2,
        activation: str = "relu",
    ):
        if transformer.shape != () or transformer.cond_shape is not None:
            raise ValueError("transformer: expected an unconditional scalar bijection")
        with jax.ensure_compile_time_eval():  # the constructor keeps concrete initial values
            constructor, num_params = get_ravelled_pytree_constructor(
                transformer,
                filter_spec=eqx.is_inexact_array,
                is_leaf=lambda leaf: isinstance(leaf, paramax.NonTrainable),
            )
        self.transformer_constructor = constructor
        self.untransformed_dim, self.dim = untransformed_dim, dim
        self.shape = (dim,)
        self.cond_shape = (cond_dim,) if cond_dim else None
        self.conditioner = ResidualNet(
            untransformed_dim,
            num_params * (dim - untransformed_dim),
            context_size=cond_dim or 0,
            width=width,
            blocks=blocks,
            activation=activation,
            key=key,
        )

    def _transformer(self, x_cond: Array, condition: Array | None):
        params = self.conditioner(x_cond, condition).reshape(self.dim - self.untransformed_dim, -1)
        return Vmap(eqx.filter_vmap(self.transformer_constructor)(params), in_axes=eqx.if_array(0))

    def transform_and_log_det(self, x, condition=None):
        x_cond, x_trans = x[: self.untransformed_dim], x[self.untransformed_dim :]
        y_trans, log_det = self._transformer(x_cond, condition).transform_and_log_det(x_trans)
        return jnp.concatenate([x_cond, y_trans]), log_det

    def inverse_and_log_det(self, y, condition=None):
        y_cond, y_trans = y[: self.untransformed_dim], y[self.untransformed_dim :]
        x_trans, log_det = self._transformer(y_cond, condition).inverse_and_log_det(y_trans)
        return jnp.concatenate([y_cond, x_trans]), log_det


class LULinear(AbstractBijection):
    """``y = L U x + b`` with L unit lower triangular and U upper triangular with a positive
    (softplus) diagonal; starts at the identity."""

    shape: tuple[int, ...]
    cond_shape: tuple[int, ...] | None
    lower: Array
    upper: Array
    raw_diag: Array
    bias: Array

    def __init__(self, dim: int, cond_dim: int | None = None):
        self.shape = (dim,)
        self.cond_shape = (cond_dim,) if cond_dim else None
        zeros = np.zeros(dim, jnp.result_type(float))  # numpy: nothing to compile
        self.lower = jax.device_put(np.zeros((dim, dim), zeros.dtype))
        self.upper = jax.device_put(np.zeros((dim, dim), zeros.dtype))
        self.raw_diag = jax.device_put(np.full(dim, np.log(np.expm1(1.0)), np.float32))  # sp=1
        self.bias = jax.device_put(zeros)

    def _factors(self) -> tuple[Array, Array, Array]:
        diag = jax.nn.softplus(self.raw_diag) + 1e-3
        lower = jnp.tril(self.lower, -1) + jnp.eye(self.shape[0])
        upper = jnp.triu(self.upper, 1) + jnp.diag(diag)
        return lower, upper, diag

    def transform_and_log_det(self, x, condition=None):
        lower, upper, diag = self._factors()
        return lower @ (upper @ x) + self.bias, jnp.sum(jnp.log(diag))

    def inverse_and_log_det(self, y, condition=None):
        lower, upper, diag = self._factors()
        z = solve_triangular(lower, y - self.bias, lower=True, unit_diagonal=True)
        return solve_triangular(upper, z, lower=False), -jnp.sum(jnp.log(diag))
