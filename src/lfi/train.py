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

import dataclasses
import functools
import hashlib
import json
import math
import numbers
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import paramax
from tqdm.auto import tqdm

from lfi import _cores
from lfi._checks import integer
from lfi._rng import Seed, as_key, numpy_rng

__all__ = ["BlockSource", "History", "fit"]


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

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> History | None:
        """The inverse of :meth:`to_dict` (None stays None; unknown keys are ignored)."""
        if d is None:
            return None
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def _is_frozen(leaf: Any) -> bool:
    return isinstance(leaf, paramax.NonTrainable)


def _partition(model: Any) -> tuple[Any, Any]:
    return eqx.partition(model, eqx.is_inexact_array, is_leaf=_is_frozen)


@lru_cache(maxsize=32)
def _optimizer(
    clip_norm: float | None, weight_decay: float = 0.0, ema: float = 0.0
) -> optax.GradientTransformation:
    """Adam (AdamW with ``weight_decay`` > 0; Loshchilov & Hutter 2019, arXiv:1711.05101)
    after global-norm clipping, then (``ema`` > 0) the weights' moving average; the learning
    rate lives in the state (see _set_lr)."""
    clip = optax.clip_by_global_norm(clip_norm) if clip_norm else optax.identity()
    if weight_decay > 0:
        adam = optax.inject_hyperparams(optax.adamw)(learning_rate=1e-3, weight_decay=weight_decay)
    else:
        adam = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)
    return optax.chain(clip, adam, _weight_average(ema)) if ema > 0 else optax.chain(clip, adam)


class _AverageState(NamedTuple):
    total: Any  # per leaf, Σ_k (1 − d) d^(s−k) w_k over the s steps so far
    mass: Any  # per leaf, a scalar Σ_k (1 − d) d^(s−k) = 1 − d^s, in the leaf's dtype


def _weight_average(decay: float) -> optax.GradientTransformation:
    """Keeps an exponential moving average of the weights *after* each update, in the state
    (the updates pass through unchanged), debiased as Adam's moments are: total / mass is the
    average of the weights seen so far, the incoming weights excluded, with weights d^(s−k).
    Total and mass use the same rounded d (the leaf's dtype), so the debiasing is exact."""

    def init(params):
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return _AverageState(
            zeros, jax.tree_util.tree_map(lambda p: jnp.zeros((), p.dtype), params)
        )

    def mix(old, new):  # d · old + (1 − d) · new, with d rounded to old's dtype
        d = jnp.asarray(decay, old.dtype)
        return d * old + (1 - d) * new

    def update(updates, state, params):
        new = jax.tree_util.tree_map(lambda p, u: p + u, params, updates)
        total = jax.tree_util.tree_map(mix, state.total, new)
        mass = jax.tree_util.tree_map(lambda m: mix(m, 1), state.mass)
        return updates, _AverageState(total, mass)

    return optax.GradientTransformation(init, update)


def _evaluated(params: Any, opt_state: Any) -> Any:
    """The weights that validation sees and training returns: the moving average if the
    optimizer keeps one (``ema`` > 0) and has taken a step, else the weights themselves."""
    if len(opt_state) < 3:
        return params
    avg = opt_state[2]
    return jax.tree_util.tree_map(
        lambda t, m, p: jnp.where(m > 0, t / jnp.where(m > 0, m, 1), p),
        avg.total,
        avg.mass,
        params,
    )


def _set_lr(opt_state: Any, learning_rate: float) -> Any:
    clip_state, adam_state, *average = opt_state
    hyper = {**adam_state.hyperparams, "learning_rate": jnp.asarray(learning_rate, jnp.float32)}
    return (clip_state, adam_state._replace(hyperparams=hyper), *average)


def _order(key: jax.Array, n: int, batch_size: int) -> jax.Array:
    """The rows of one epoch's mini-batches: a permutation of ``n`` rows drawn from ``key``,
    cut to whole batches. Drawn by numpy on the host: an in-graph ``jax.random.permutation``
    is a sort that cost ~5% of a small network's epoch on a CPU."""
    num_batches = n // batch_size
    perm = numpy_rng(key).permutation(n)[: num_batches * batch_size]
    return jax.device_put(perm.astype(np.int32))


def _steps(params, static, opt_state, train, order, key, loss, optimizer, batch_size, devices):
    """One optimizer step per mini-batch of ``train`` rows in ``order`` (a ``lax.scan``),
    each batch split over ``devices`` CPU devices (:mod:`lfi._cores`; 1: no split)."""
    num_batches = order.shape[0] // batch_size
    batches = jax.tree_util.tree_map(
        lambda a: a[order].reshape(num_batches, batch_size, *a.shape[1:]), train
    )

    def objective(p, batch, k):
        return loss(eqx.combine(p, static), batch, k)

    def step(carry, inputs):
        params, opt_state = carry
        batch, k = inputs
        value, grads = _cores.value_and_grad(objective, params, batch, k, devices)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (eqx.apply_updates(params, updates), opt_state), value

    keys = jax.random.split(key, num_batches)
    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (batches, keys))
    return params, opt_state, jnp.mean(losses)


_VAL_KEY = 0  # the same key every epoch: a random loss (NRE) stays comparable


@eqx.filter_jit
def _loss_value(params, static, data, key, loss):
    return loss(eqx.combine(params, static), data, key)


@eqx.filter_jit
def _init(optimizer, params):
    return optimizer.init(params)  # one compilation, not one per leaf shape


@eqx.filter_jit
def _epoch(
    params, static, opt_state, train, order, val, key, loss, optimizer, batch_size, before, devices
):
    """One epoch: a scan over mini-batches, then the validation loss (all in one jit). With
    ``before`` true it also returns the validation loss of the incoming weights (the baseline
    of the first epoch; a separate call compiled and traced the loss once more: ~1 s of a
    fresh process), else NaN."""
    dtype = jnp.result_type(float)  # float32, or float64 with jax_enable_x64: any loss fits
    val_before = jax.lax.cond(
        before,
        lambda p: _loss_value(p, static, val, jax.random.key(_VAL_KEY), loss).astype(dtype),
        lambda p: jnp.asarray(jnp.nan, dtype),
        params,
    )
    params, opt_state, train_loss = _steps(
        params, static, opt_state, train, order, key, loss, optimizer, batch_size, devices
    )
    val_loss = _loss_value(
        _evaluated(params, opt_state), static, val, jax.random.key(_VAL_KEY), loss
    )
    return params, opt_state, train_loss, val_loss, val_before


_block_steps = eqx.filter_jit(_steps)


def _streamed_epoch(
    params, static, opt_state, source, val, key, loss, optimizer, batch_size, before, devices
):
    """One epoch over a :class:`BlockSource`: each block in memory in turn, then validation
    (and, with ``before``, first the validation loss of the incoming weights, else NaN)."""
    val_key = jax.random.key(_VAL_KEY)
    val_before = _loss_value(params, static, val, val_key, loss) if before else math.nan
    key_order, key_steps = jax.random.split(key)
    losses, weights = [], []
    for b, block in enumerate(source.blocks(key_order)):
        if block[0].shape[0] < batch_size:
            continue
        block = tuple(_device(a) for a in block)
        key_block = jax.random.fold_in(key_steps, b)
        order = _order(key_block, block[0].shape[0], batch_size)
        params, opt_state, value = _block_steps(params, static, opt_state, block, order,
                                                key_block, loss, optimizer, batch_size,
                                                devices)  # fmt: skip
        losses.append(float(value))
        weights.append(block[0].shape[0] // batch_size)
    train_loss = float(np.average(losses, weights=weights)) if losses else math.nan
    val_loss = _loss_value(_evaluated(params, opt_state), static, val, val_key, loss)
    return params, opt_state, train_loss, val_loss, val_before


class BlockSource:
    """Training data too large for memory: the loop asks for it one block at a time.

    Subclasses define ``blocks(key)`` (an iterator of tuples of arrays, the training rows in an
    order drawn from ``key``, each block small enough for memory), ``validation`` (a tuple of
    arrays, held out) and ``num_train`` (training rows per epoch). See
    :class:`lfi.methods.store_data.StoreBlocks`.
    """

    num_train: int
    validation: tuple

    def blocks(self, key: jax.Array):  # pragma: no cover - interface
        raise NotImplementedError


def fit(
    model: Any,
    loss: Callable[[Any, Sequence[jax.Array], jax.Array], jax.Array],
    data: Sequence[Any] | BlockSource,
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
    weight_decay: float = 0.0,
    ema: float = 0.0,
    progress: bool = True,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_seconds: float = 30.0,
    block_rows: int | None = None,
    validation: Any = None,
) -> tuple[Any, History]:
    """Train ``model`` to minimise ``loss`` on ``data`` (a tuple of arrays sharing axis 0).

    Returns the model with the weights of the best validation epoch, and its :class:`History`.
    After ``patience`` epochs without a better validation loss, training goes back to the best
    weights with the learning rate times ``lr_factor`` (at most ``lr_decays`` times, each with
    half the patience), then stops. ``weight_decay`` > 0 trains with AdamW (decoupled weight
    decay, scaled by the learning rate). ``ema`` in (0, 1) keeps an exponential moving average
    of the weights (debiased: the incoming weights do not count), updated after every
    optimizer step with that decay (Polyak averaging, as
    score-based and flow-matching models are trained: Song & Ermon 2020, arXiv:2006.09011):
    validation, early stopping and the returned weights are then the average's, and a
    learning-rate decay restarts training (and the average) from the best average.
    ``patience_steps`` makes the patience at least that many
    optimizer steps: with few training rows an epoch is a handful of steps, and 20 of them stop
    training long before it has converged.

    ``data`` may instead be a :class:`BlockSource` (training sets larger than memory: an epoch
    visits its blocks in turn; it holds out its own validation rows, and it was built with its
    own ``block_rows``, which this loop only accepts for the methods' sake). With ``checkpoint`` (a
    file path) the loop saves its whole state at most every ``checkpoint_seconds`` and at the
    end (arrays and JSON in one ``.npz``, no pickle); a later call with the same model, data
    and seed (and the same number of CPU devices, :mod:`lfi._cores`) resumes from it and trains
    exactly as if it had never stopped.
    ``validation``: a boolean mask over the rows, True for the rows held out for early stopping,
    instead of a random ``validation_fraction`` of them (e.g. to keep the same held-out rows
    while a warm-started network trains on more data).
    """
    _check_options(batch_size, learning_rate, max_epochs, patience, lr_decays, lr_factor)
    streamed = isinstance(data, BlockSource)
    if streamed:
        needed = min(batch_size, int(data.num_train))  # the batch is clamped to the rows
        if getattr(data, "block_rows", needed) < needed:
            raise ValueError(
                f"block_rows: expected at least batch_size ({needed}) rows per block, got "
                f"{data.block_rows} (smaller blocks hold no whole batch: nothing would train)"
            )
        val = tuple(_device(a) for a in data.validation)
        train, n_train, key_train = data, int(data.num_train), as_key(seed)
        if n_train < 2:
            raise ValueError(f"data: need at least 2 training rows, got {n_train}")
    else:
        data = tuple(_host(a) for a in data)  # split on the host: no compilation
        n = data[0].shape[0]
        if any(a.shape[0] != n for a in data):
            raise ValueError(
                f"data: arrays must share their first axis, got {[a.shape for a in data]}"
            )
        if not 0 < validation_fraction < 1:
            raise ValueError(
                f"validation_fraction: expected a value in (0, 1), got {validation_fraction}"
            )
        num_val = num_validation(n, validation_fraction)
        key_split, key_train = jax.random.split(as_key(seed))
        if validation is None:
            perm = numpy_rng(key_split).permutation(n)
        else:
            mask = np.asarray(validation)
            if mask.dtype != bool or mask.shape != (n,):
                raise ValueError(
                    f"validation: expected a boolean mask of shape ({n},), got "
                    f"{mask.dtype} {mask.shape}"
                )
            num_val = num_validation(n, validation_fraction, mask)
            if num_val < 1:
                raise ValueError("validation: the mask holds out no row")
            perm = np.concatenate([np.flatnonzero(mask), np.flatnonzero(~mask)])
        if n - num_val < 2:
            raise ValueError(f"data: need at least 2 training rows, got {n - num_val} of {n}")
        val = tuple(_device(a[perm[:num_val]]) for a in data)
        train = tuple(_device(a[perm[num_val:]]) for a in data)
        n_train = n - num_val
    batch_size = int(min(batch_size, n_train))

    params, static = _partition(model)
    # strong-typed leaves: a weak-typed one (e.g. from jnp.full with a Python scalar) comes back
    # strong from the first epoch, and the second epoch would compile the whole epoch again (a
    # round trip through numpy drops the weak type without compiling anything)
    params = jax.tree_util.tree_map(lambda a: jax.device_put(np.asarray(a)), params)
    if not (_real(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight_decay: expected a number >= 0, got {weight_decay!r}")
    if clip_norm is not None and not (_real(clip_norm) and clip_norm > 0):
        raise ValueError(
            f"clip_norm: expected a number > 0 or None (no clipping), got {clip_norm!r}"
        )
    if not (_real(ema) and 0 <= ema < 1):
        raise ValueError(f"ema: expected a decay in [0, 1) (0: no averaging), got {ema!r}")
    optimizer = _optimizer(
        None if clip_norm is None else float(clip_norm), float(weight_decay), float(ema)
    )
    opt_state = _set_lr(_init(optimizer, params), learning_rate)
    devices = _cores.width(batch_size, loss)
    if not streamed and devices > 1 and _cores.too_big(devices, train, val):
        devices = 1  # every device would hold a copy of the data: train on one instead
    steps_per_epoch = max(1, n_train // batch_size)
    patience = max(int(patience), math.ceil(int(patience_steps) / steps_per_epoch))
    if patience < 1:  # a wait of 0 epochs would stop (or decay) after the first, improved or not
        raise ValueError("patience: expected at least 1 epoch (or patience_steps > 0), got 0")
    history = History()
    state = {
        "epoch": 0,
        "best_val": math.inf,  # the first epoch sets the incoming weights' validation loss
        "since_best": 0,
        "decays_left": int(lr_decays),
        "wait": patience,
        "learning_rate": float(learning_rate),
        "finished": False,
    }
    arrays = {"params": params, "opt_state": opt_state, "best": params}
    saver = None
    if checkpoint is not None:
        options = (learning_rate, patience, patience_steps, clip_norm, lr_decays, lr_factor,
                   weight_decay, devices) + ((ema,) if ema else ())  # fmt: skip
        fingerprint = _fingerprint(arrays, train, val, key_train, batch_size, loss, options)
        saver = _Checkpoint(Path(checkpoint), fingerprint, float(checkpoint_seconds))
        restored = saver.load(arrays)
        if restored is not None:
            arrays, state, history = restored
    # on several devices, every input of the epoch is placed on all of them once, here
    arrays = _cores.replicate(arrays, devices)
    if not streamed:
        train, val = _cores.replicate((train, val), devices)
    params, opt_state, best_params = arrays["params"], arrays["opt_state"], arrays["best"]
    start = time.perf_counter() - history.seconds
    first = state["epoch"]

    def run(params, opt_state, key, before):
        if streamed:
            return _streamed_epoch(params, static, opt_state, train, val, key, loss, optimizer,
                                   batch_size, before, devices)  # fmt: skip
        order = _order(jax.random.fold_in(key, 1), n_train, batch_size)
        return _epoch(params, static, opt_state, train, order, val, key, loss, optimizer,
                      batch_size, jnp.asarray(before), devices)  # fmt: skip

    bar = tqdm(
        range(first, max_epochs if not state["finished"] else first),
        desc="training",
        unit="epoch",
        disable=not progress,
        leave=False,
    )
    for epoch in bar:
        tic = time.perf_counter()
        key_epoch = jax.random.fold_in(key_train, epoch)
        # the first epoch also returns the incoming weights' validation loss: the baseline
        # (for a warm start) that training must beat
        before = epoch == 0
        params, opt_state, train_loss, val_loss, val_before = run(
            params, opt_state, key_epoch, before
        )
        train_loss, val_loss, val_before = float(train_loss), float(val_loss), float(val_before)
        if before and math.isfinite(val_before):
            state["best_val"] = val_before
        history.epoch_seconds.append(time.perf_counter() - tic)
        history.train_loss.append(train_loss)
        history.val_loss.append(val_loss)
        state["epoch"] = epoch + 1
        if math.isfinite(val_loss) and val_loss < state["best_val"]:
            best_params, history.best_epoch = _evaluated(params, opt_state), epoch
            state["best_val"] = val_loss
            state["since_best"] = 0
        else:
            state["since_best"] += 1
        bar.set_postfix(val_loss=f"{val_loss:.4f}", best=f"{state['best_val']:.4f}")
        if state["since_best"] >= state["wait"] and state["decays_left"] > 0:
            state["decays_left"] -= 1
            state["wait"], state["since_best"] = max(1, patience // 2), 0
            state["learning_rate"] *= lr_factor
            params = best_params
            opt_state = _set_lr(_init(optimizer, best_params), state["learning_rate"])
            opt_state = _cores.replicate(opt_state, devices)
        elif state["since_best"] >= state["wait"]:
            history.stopped_early = state["finished"] = True
        history.seconds = time.perf_counter() - start
        if saver is not None and (state["finished"] or saver.due()):
            saver.save({"params": params, "opt_state": opt_state, "best": best_params}, state,
                       history)  # fmt: skip
        if state["finished"]:
            break
    bar.close()
    history.seconds = time.perf_counter() - start
    steady = history.epoch_seconds[1:] or history.epoch_seconds
    history.seconds_per_epoch = float(np.median(steady)) if steady else 0.0
    if saver is not None:  # "finished" only after early stopping: a larger max_epochs goes on
        saver.save({"params": params, "opt_state": opt_state, "best": best_params}, state, history)
    return eqx.combine(_cores.to_one_device(best_params), static), history


def _device(a: Any) -> jax.Array:
    """``a`` on the device: JAX arrays as they are, others through numpy and ``device_put``
    (``jnp.asarray`` of a numpy array compiles a small program per shape in this JAX)."""
    return a if isinstance(a, jax.Array) else jax.device_put(np.asarray(a))


def _host(a: Any) -> Any:
    """``a`` as a numpy array, except arrays of JAX keys (which numpy cannot hold)."""
    if isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
        return a
    return np.asarray(a)


def num_validation(n: int, validation_fraction: float, validation: Any = None) -> int:
    """How many of ``n`` rows :func:`fit` holds out: the mask's True rows, or a
    ``validation_fraction`` of them (at least one)."""
    if validation is not None:
        return int(np.sum(np.asarray(validation, bool)))
    return max(1, int(round(validation_fraction * n)))


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_options(batch_size, learning_rate, max_epochs, patience, lr_decays, lr_factor):
    for name, value, low in (("batch_size", batch_size, 1), ("max_epochs", max_epochs, 0),
                             ("patience", patience, 0), ("lr_decays", lr_decays, 0)):  # fmt: skip
        integer(value, name, low)
    if not (_real(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate: expected a number > 0, got {learning_rate!r}")
    if not (_real(lr_factor) and 0 < lr_factor < 1):
        raise ValueError(f"lr_factor: expected a number in (0, 1), got {lr_factor!r}")


def _fingerprint(arrays, train, val, key, batch_size, loss, options) -> str:
    """What a checkpoint must match to be resumed: the model (structure and incoming weights:
    a warm start from other weights is another run), data, seed, loss and the training options
    (a resume with another learning rate, patience, clipping or schedule would otherwise
    continue the old run under the new name; ``max_epochs`` may grow)."""
    h = hashlib.sha256()
    leaves, treedef = jax.tree_util.tree_flatten(arrays)
    h.update(str(treedef).encode())
    h.update(str([(a.shape, str(a.dtype)) for a in leaves]).encode())
    for a in jax.tree_util.tree_leaves(arrays["params"]):
        h.update(_bytes(a))
    h.update(np.asarray(jax.random.key_data(key)).tobytes())
    h.update(str((batch_size, _describe(loss))).encode())
    h.update(repr(tuple(None if v is None else float(v) for v in options)).encode())
    for a in val:
        h.update(_bytes(a))
    if not isinstance(train, BlockSource):
        for a in train:
            h.update(_bytes(a))
        h.update(str([a.shape for a in train]).encode())
    else:
        h.update(str(train.num_train).encode())
    return h.hexdigest()


def _bytes(a: Any) -> bytes:
    """An array's contents as bytes; for an array of JAX keys (numpy cannot hold them), the
    keys' data and their implementation."""
    if isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
        return str(a.dtype).encode() + np.asarray(jax.random.key_data(a)).tobytes()
    return np.ascontiguousarray(np.asarray(a)).tobytes()


def _describe(obj: Any, depth: int = 0) -> str:
    """A stable description of a loss for the checkpoint fingerprint: its name and, for a
    closure made by a factory (``gold_loss(method, alpha)``), the values it closes over, so that
    two losses of one factory with other settings do not share checkpoints."""
    if isinstance(obj, (bool, int, float, str, type(None))):
        return repr(obj)
    if depth > 4:
        return type(obj).__name__
    if isinstance(obj, (tuple, list)):
        return "(" + ",".join(_describe(o, depth + 1) for o in obj) + ")"
    if isinstance(obj, dict):
        return "{" + ",".join(f"{k!r}:{_describe(v, depth + 1)}" for k, v in obj.items()) + "}"
    if isinstance(obj, functools.partial):
        parts = (obj.func, obj.args, dict(sorted(obj.keywords.items())))
        return "partial" + _describe(parts, depth + 1)
    if isinstance(obj, (np.ndarray, jax.Array)):
        return f"array{obj.shape}{obj.dtype}:{hashlib.sha256(_bytes(obj)).hexdigest()[:16]}"
    if isinstance(obj, eqx.Module):  # a loss module (BalancedNPELoss): its fields, static too
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return type(obj).__qualname__ + _describe(fields, depth + 1)
    if callable(obj) and hasattr(obj, "__qualname__"):
        values = []
        for cell in getattr(obj, "__closure__", None) or ():
            try:
                values.append(_describe(cell.cell_contents, depth + 1))
            except ValueError:  # an empty cell
                values.append("?")
        return f"{obj.__module__}.{obj.__qualname__}[{','.join(values)}]"
    return type(obj).__name__


class _Checkpoint:
    """The loop's state in one ``.npz``: leaves as arrays, counters and history as JSON."""

    def __init__(self, path: Path, fingerprint: str, every: float):
        self.path, self.fingerprint, self.every = path, fingerprint, every
        self.last = time.perf_counter()

    def due(self) -> bool:
        return time.perf_counter() - self.last >= self.every

    def save(self, arrays: dict, state: dict, history: History) -> None:
        leaves = [np.asarray(a) for a in jax.tree_util.tree_leaves(arrays)]
        meta = {"fingerprint": self.fingerprint, "state": state, "history": history.to_dict()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp.npz")
        blob = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        np.savez(tmp, meta=blob, **{f"leaf{i}": a for i, a in enumerate(leaves)})
        os.replace(tmp, self.path)
        self.last = time.perf_counter()

    def load(self, like: dict) -> tuple[dict, dict, History] | None:
        if not self.path.is_file():
            return None
        with np.load(self.path, allow_pickle=False) as f:
            meta = json.loads(bytes(f["meta"]).decode())
            if meta["fingerprint"] != self.fingerprint:
                raise ValueError(
                    f"checkpoint: {str(self.path)!r} belongs to another training run (model, "
                    "data, seed, number of CPU devices (LFI_CPU_CORES) or the lfi version that "
                    "wrote it differ); delete it or give another path"
                )
            leaves, treedef = jax.tree_util.tree_flatten(like)
            restored = [jnp.asarray(f[f"leaf{i}"], a.dtype) for i, a in enumerate(leaves)]
        history = History.from_dict(meta["history"])
        return jax.tree_util.tree_unflatten(treedef, restored), meta["state"], history
