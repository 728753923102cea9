"""Train on every CPU core: one JAX CPU device per core, and data-parallel optimizer steps.

XLA runs the small programs of a training step on one core, so by default JAX on a CPU leaves
the other cores idle (PyTorch spreads the same work over its threads). At import, lfi asks JAX
for one CPU device per core this process may use; :func:`value_and_grad` then splits each
mini-batch over those devices (``shard_map``), each computes the gradient of its rows, and one
all-reduce averages them. Two cores train the default NPE 1.45x faster per epoch
(benchmarks/speed_vs_sbi.py).

``LFI_CPU_CORES=n`` in the environment sets the number of devices (1: the old single-device
training). lfi leaves the setting alone when JAX has already started (some JAX work ran before
``import lfi``) or when the user chose it (``jax_num_cpu_devices`` or
``--xla_force_host_platform_device_count`` in ``XLA_FLAGS``).

Only losses marked with :func:`rowwise` are split: a mean over the batch's rows of terms that
each depend on one row (NPE, NLE, FMPE, NPSE, the gold losses), so that the mean of the devices'
losses is the batch's loss. Losses that pair rows within the batch (NRE's contrasts) or penalise
a batch statistic (balanced NPE/NRE) train on one device, as does any loss of a user's.

The rows of a batch are split in order and each device draws its randomness from the step's key
folded with its index, so training is reproducible for one seed and one number of devices; with
another number of devices the same seed gives another (equally valid) run.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

ENV = "LFI_CPU_CORES"
MIN_ROWS = 25  # fewer rows per device: the all-reduce costs more than the split saves
MAX_COPIES_BYTES = 2 * 1024**3  # in-memory data copied to every device: at most this in all


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the OS tells it, capped by a
    Linux cgroup CPU quota (a container limited to 2 CPUs on a 64-core host gets 2)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        n = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return n


def requested() -> int:
    """The number of CPU devices lfi asks for: ``$LFI_CPU_CORES`` or every usable core."""
    value = os.environ.get(ENV)
    if value is None:
        return usable_cores()
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(
            f"{ENV}: expected a whole number >= 1 (CPU cores to train on), got {value!r}"
        )
    return n


def configure() -> None:
    """Give JAX one CPU device per core, unless JAX has started or the user chose already."""
    from jax._src import xla_bridge  # no public way to ask whether the backends have started

    n = requested()
    if n <= 1 or xla_bridge.backends_are_initialized():
        return
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    if getattr(jax.config, "jax_num_cpu_devices", -1) not in (-1, None):
        return
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except (AttributeError, KeyError):  # pragma: no cover - a JAX without the option
        pass


def rowwise(loss):
    """Mark ``loss(model, batch, key)`` as a mean over the batch's rows of terms that each depend
    on one row only: the training loop may then split its batches over CPU devices."""
    loss.lfi_rowwise = True
    return loss


def available() -> int:
    """CPU devices training may split a batch over: JAX's, at most ``$LFI_CPU_CORES``; 1 off
    the CPU backend or in a JAX without ``shard_map``."""
    if jax.default_backend() != "cpu" or not hasattr(jax, "shard_map"):
        return 1
    return min(jax.local_device_count(), requested())


def width(batch_size: int, loss=None) -> int:
    """Devices one mini-batch of ``batch_size`` rows is split over (1: no split): the most of
    :func:`available` that divide the batch evenly with at least ``MIN_ROWS`` rows each, and
    only for a :func:`rowwise` loss (a method's mark is on its function: ``__func__``)."""
    if not getattr(getattr(loss, "__func__", loss), "lfi_rowwise", False):
        return 1
    most = min(available(), batch_size // MIN_ROWS)
    for d in range(most, 1, -1):
        if batch_size % d == 0:
            return d
    return 1


def too_big(d: int, *trees) -> bool:
    """Whether ``d`` copies of the arrays in ``trees`` (each device holds the whole in-memory
    training set) would pass ``MAX_COPIES_BYTES``; a larger set trains on one device (or
    streamed from a simulation store, whose blocks are split)."""
    leaves = jax.tree_util.tree_leaves(trees)
    return d * sum(getattr(a, "nbytes", 0) for a in leaves) > MAX_COPIES_BYTES


def mesh(d: int):
    """The one-axis mesh ("rows") over the first ``d`` CPU devices."""
    from jax.sharding import Mesh

    return Mesh(np.array(jax.devices()[:d]), ("rows",))


def replicate(tree, d: int):
    """``tree``'s arrays copied to each of the ``d`` devices (d > 1), once: the epoch's inputs
    then keep one sharding from the first epoch on (an input that arrives committed to the
    devices after arriving uncommitted compiles the whole epoch again)."""
    if d == 1:
        return tree
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    where = NamedSharding(mesh(d), P())
    return jax.tree_util.tree_map(
        lambda a: jax.device_put(a, where) if isinstance(a, (jax.Array, np.ndarray)) else a, tree
    )


def value_and_grad(fn, params, batch, key, d: int):
    """``fn(params, batch, key)``'s value and gradient in ``params``, the batch's rows split
    over ``d`` devices (:func:`width`; the gradients averaged by one all-reduce)."""
    if d == 1:
        return eqx.filter_value_and_grad(fn)(params, batch, key)
    from jax.flatten_util import ravel_pytree
    from jax.sharding import PartitionSpec as P

    def local(params, batch, key):
        key = jax.random.fold_in(key, jax.lax.axis_index("rows"))
        value, grads = eqx.filter_value_and_grad(fn)(params, batch, key)
        flat, unravel = ravel_pytree(grads)
        both = jnp.concatenate([flat, value.astype(flat.dtype)[None]])
        both = jax.lax.pmean(both, "rows")  # one all-reduce for the value and every gradient
        return both[-1].astype(value.dtype), unravel(both[:-1])

    split = jax.shard_map(
        local, mesh=mesh(d), in_specs=(P(), P("rows"), P()), out_specs=(P(), P()), check_vma=False
    )
    return split(params, batch, key)


def to_one_device(tree):
    """Arrays that training left replicated over several devices, back on the default one
    (uncommitted, as any new array), so that later computations run once, not per device."""

    def back(a):
        if isinstance(a, jax.Array) and len(a.sharding.device_set) > 1:
            return jax.device_put(np.asarray(a))
        return a

    return jax.tree_util.tree_map(back, tree)


configure()  # at import: lfi/__init__ imports this module before anything starts JAX
