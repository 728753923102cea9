"""The one training loop that every method shares.

A method hands :func:`fit` a model (an equinox module), a loss ``loss(model, batch, key) -> scalar``
and its training arrays; the loop does the rest: Adam with gradient clipping, a validation split,
early stopping that keeps the best weights, a progress bar with the validation loss, a history.

Speed: one jitted call runs a whole epoch as a ``lax.scan`` over mini-batches, and the validation
loss is computed in the same call. Compiled epochs are cached per (model structure, loss, shapes,
optimizer settings), and JAX's persistent compilation cache (see :mod:`lfi._jaxcache`) makes new
processes start fast.

>>> import jax.numpy as jnp, equinox as eqx, numpy as np
>>> model = eqx.nn.Linear(1, 1, key=__import__("jax").random.key(0))
>>> def loss(m, batch, key):
...     x, y = batch
...     return jnp.mean((eqx.filter_vmap(m)(x) - y) ** 2)
>>> x = np.linspace(-1, 1, 256, dtype=np.float32)[:, None]
>>> fitted, history = fit(model, loss, (x, 3 * x), seed=0, batch_size=32, learning_rate=0.05,
...                       max_epochs=200, progress=False)
>>> round(float(fitted.weight[0, 0]), 1)
3.0
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import paramax
from tqdm.auto import tqdm

from lfi._rng import Seed, as_key

__all__ = ["History", "fit"]


@dataclass
class History:
    """Per-epoch losses and wall times, the best epoch, the total time.

    ``seconds_per_epoch`` is the median over epochs after the first, which also compiles.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0
    seconds_per_epoch: float = 0.0
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _is_frozen(leaf: Any) -> bool:
    return isinstance(leaf, paramax.NonTrainable)


def _partition(model: Any) -> tuple[Any, Any]:
    return eqx.partition(model, eqx.is_inexact_array, is_leaf=_is_frozen)


@lru_cache(maxsize=32)
def _optimizer(clip_norm: float | None) -> optax.GradientTransformation:
    """Adam after global-norm clipping; the learning rate lives in the state (see _set_lr)."""
    clip = optax.clip_by_global_norm(clip_norm) if clip_norm else optax.identity()
    return optax.chain(clip, optax.inject_hyperparams(optax.adam)(learning_rate=1e-3))


def _set_lr(opt_state: Any, learning_rate: float) -> Any:
    clip_state, adam_state = opt_state
    hyper = {**adam_state.hyperparams, "learning_rate": jnp.asarray(learning_rate, jnp.float32)}
    return (clip_state, adam_state._replace(hyperparams=hyper))


@eqx.filter_jit
def _epoch(params, static, opt_state, train, val, key, loss, optimizer, batch_size):
    """One epoch: shuffle, scan over mini-batches, then the validation loss (all in one jit)."""
    n = jax.tree_util.tree_leaves(train)[0].shape[0]
    num_batches = n // batch_size
    key_perm, key_steps = jax.random.split(key)
    key_val = jax.random.key(0)  # the same every epoch: a random loss (NRE) stays comparable
    perm = jax.random.permutation(key_perm, n)[: num_batches * batch_size]
    batches = jax.tree_util.tree_map(
        lambda a: a[perm].reshape(num_batches, batch_size, *a.shape[1:]), train
    )

    def step(carry, inputs):
        params, opt_state = carry
        batch, k = inputs
        value, grads = eqx.filter_value_and_grad(lambda p: loss(eqx.combine(p, static), batch, k))(
            params
        )
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (eqx.apply_updates(params, updates), opt_state), value

    keys = jax.random.split(key_steps, num_batches)
    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (batches, keys))
    val_loss = loss(eqx.combine(params, static), val, key_val)
    return params, opt_state, jnp.mean(losses), val_loss


@eqx.filter_jit
def _loss_value(params, static, data, key, loss):
    return loss(eqx.combine(params, static), data, key)


def fit(
    model: Any,
    loss: Callable[[Any, Sequence[jax.Array], jax.Array], jax.Array],
    data: Sequence[Any],
    *,
    seed: Seed = 0,
    batch_size: int = 200,
    learning_rate: float = 5e-4,
    max_epochs: int = 1000,
    patience: int = 20,
    patience_steps: int = 0,
    validation_fraction: float = 0.1,
    clip_norm: float | None = 5.0,
    lr_decays: int = 0,
    lr_factor: float = 0.2,
    progress: bool = True,
) -> tuple[Any, History]:
    """Train ``model`` to minimise ``loss`` on ``data`` (a tuple of arrays sharing axis 0).

    Returns the model with the weights of the best validation epoch, and its :class:`History`.
    After ``patience`` epochs without a better validation loss, training goes back to the best
    weights with the learning rate times ``lr_factor`` (at most ``lr_decays`` times, each with
    half the patience), then stops. ``patience_steps`` makes the patience at least that many
    optimizer steps: with few training rows an epoch is a handful of steps, and 20 of them stop
    training long before it has converged.
    """
    data = tuple(jnp.asarray(a) for a in data)
    n = data[0].shape[0]
    if any(a.shape[0] != n for a in data):
        raise ValueError(f"data: arrays must share their first axis, got {[a.shape for a in data]}")
    if not 0 < validation_fraction < 1:
        raise ValueError(
            f"validation_fraction: expected a value in (0, 1), got {validation_fraction}"
        )
    num_val = max(1, int(round(validation_fraction * n)))
    if n - num_val < 2:
        raise ValueError(f"data: need at least 3 valid training rows, got {n}")
    key_split, key_train = jax.random.split(as_key(seed))
    perm = jax.random.permutation(key_split, n)
    val = tuple(a[perm[:num_val]] for a in data)
    train = tuple(a[perm[num_val:]] for a in data)
    batch_size = int(min(batch_size, n - num_val))

    params, static = _partition(model)
    # strong-typed leaves: a weak-typed one (e.g. from jnp.full with a Python scalar) comes back
    # strong from the first epoch, and the second epoch would compile the whole epoch again
    params = jax.tree_util.tree_map(lambda a: jax.lax.convert_element_type(a, a.dtype), params)
    optimizer = _optimizer(None if clip_norm is None else float(clip_norm))
    opt_state = _set_lr(optimizer.init(params), learning_rate)
    steps_per_epoch = max(1, (n - num_val) // batch_size)
    patience = max(int(patience), math.ceil(int(patience_steps) / steps_per_epoch))
    decays_left, wait = int(lr_decays), patience
    history = History()
    best_params, best_val = params, _loss_value(params, static, val, key_train, loss)
    best_val = float(best_val) if math.isfinite(float(best_val)) else math.inf
    start, since_best = time.perf_counter(), 0
    bar = tqdm(range(max_epochs), desc="training", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        tic = time.perf_counter()
        key_epoch = jax.random.fold_in(key_train, epoch)
        params, opt_state, train_loss, val_loss = _epoch(
            params, static, opt_state, train, val, key_epoch, loss, optimizer, batch_size
        )
        train_loss, val_loss = float(train_loss), float(val_loss)
        history.epoch_seconds.append(time.perf_counter() - tic)
        history.train_loss.append(train_loss)
        history.val_loss.append(val_loss)
        if math.isfinite(val_loss) and val_loss < best_val:
            best_val, best_params, history.best_epoch, since_best = val_loss, params, epoch, 0
        else:
            since_best += 1
        bar.set_postfix(val_loss=f"{val_loss:.4f}", best=f"{best_val:.4f}")
        if since_best >= wait and decays_left > 0:
            decays_left, wait, since_best = decays_left - 1, max(1, patience // 2), 0
            learning_rate *= lr_factor
            params, opt_state = best_params, _set_lr(optimizer.init(best_params), learning_rate)
        elif since_best >= wait:
            history.stopped_early = True
            break
    bar.close()
    history.seconds = time.perf_counter() - start
    steady = history.epoch_seconds[1:] or history.epoch_seconds
    history.seconds_per_epoch = float(np.median(steady))
    return eqx.combine(best_params, static), history
