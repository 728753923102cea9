"""Saving and loading models without pickle: a zip of ``config.json`` and ``arrays.npz``.

A model is rebuilt from its JSON config, then its array leaves are filled in from the ``.npz``
(read with ``allow_pickle=False``), so a file from a stranger cannot run code.

>>> import equinox as eqx, jax, numpy as np, tempfile, os
>>> lin = eqx.nn.Linear(2, 1, key=jax.random.key(0))
>>> path = os.path.join(tempfile.mkdtemp(), "m.lfi")
>>> write_archive(path, {"kind": "linear"}, module_arrays(lin))
>>> config, arrays = read_archive(path)
>>> back = fill_module(eqx.nn.Linear(2, 1, key=jax.random.key(1)), arrays)
>>> bool(np.all(back.weight == lin.weight))
True
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

FORMAT = "lfi-model"
VERSION = 1


def _paths(module: Any) -> list[str]:
    """Where each array leaf sits in the module (``.layers[0].weight``…), in tree order."""
    flat, _ = jax.tree_util.tree_flatten_with_path(eqx.filter(module, eqx.is_array))
    return [jax.tree_util.keystr(path) for path, _ in flat]


def module_arrays(module: Any, prefix: str = "leaf") -> dict[str, np.ndarray]:
    """The array leaves of an equinox module, in tree order, named ``prefix_0000`` …, and
    their paths in the module (``prefix-paths``, a string array), checked on loading."""
    leaves = jax.tree_util.tree_leaves(eqx.filter(module, eqx.is_array))
    out = {f"{prefix}_{i:04d}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
    out[f"{prefix}-paths"] = np.array(_paths(module), dtype=str)
    return out


def fill_module(skeleton: Any, arrays: dict[str, np.ndarray], prefix: str = "leaf") -> Any:
    """Put saved leaves into a freshly built module of the same structure (checked: count,
    shapes, and, for files that record them, each leaf's path in the module, so that a library
    that reorders fields of equal shape cannot load weights into the wrong places)."""
    params, static = eqx.partition(skeleton, eqx.is_array)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    names = sorted(k for k in arrays if k.startswith(prefix + "_"))
    if len(names) != len(leaves):
        raise ValueError(
            f"file: holds {len(names)} arrays for '{prefix}' but the model needs {len(leaves)}"
        )
    saved = arrays.get(f"{prefix}-paths")
    if saved is not None:  # files written before 2026-11-27 have no paths
        here = _paths(skeleton)
        wrong = [(i, a, b) for i, (a, b) in enumerate(zip(saved.tolist(), here)) if a != b]
        if len(saved) != len(here) or wrong:
            i, a, b = wrong[0] if wrong else (len(here), "?", "?")
            raise ValueError(
                f"file: array {i} of '{prefix}' was saved as {a!r}, but this lfi's model has "
                f"{b!r} there (the file was written by other library versions: see its config's "
                "'libraries')"
            )
    new = []
    for name, leaf in zip(names, leaves):
        value = arrays[name]
        if value.shape != leaf.shape:
            raise ValueError(f"file: array {name} has shape {value.shape}, expected {leaf.shape}")
        new.append(jnp.asarray(value, dtype=leaf.dtype))
    return eqx.combine(jax.tree_util.tree_unflatten(treedef, new), static)


def write_archive(path: str | Path, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write ``config`` (JSON-able) and named arrays to one zip file."""
    from lfi.priors import check_config

    if "prior" in config:  # checked before any file exists
        check_config(config["prior"])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    header = {"format": FORMAT, "version": VERSION, "libraries": _versions(), **config}
    text = json.dumps(header, indent=1)  # before any file exists: a bad config leaves none
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", text)
        zf.writestr("arrays.npz", buffer.getvalue())
    tmp.replace(path)


def _versions() -> dict[str, str]:
    """The versions of the libraries whose modules define a saved model's array layout."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("lfi", "equinox", "flowjax", "jax"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - a source checkout without metadata
            out[name] = "unknown"
    return out


def read_archive(
    path: str | Path, expect: str | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a file written by :func:`write_archive`; never unpickles. ``expect``: the model
    class the file must hold (its config's ``"class"``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no such file {str(path)!r}")
    try:
        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json"))
            raw = zf.read("arrays.npz")
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"path: {str(path)!r} is not an lfi model file ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"path: {str(path)!r} is not an lfi model file")
    if not isinstance(config.get("version", 0), int):
        raise ValueError(f"path: {str(path)!r} has a damaged header")
    if config.get("version", 0) > VERSION:
        raise ValueError(f"path: file version {config['version']} is newer than this lfi")
    if expect is not None and config.get("class") != expect:
        raise ValueError(f"path: holds a {config.get('class')}, not a {expect}")
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return config, arrays
