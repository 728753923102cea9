"""``lfi bench``: tasks × methods × budgets × observations → a CSV, a table beside sbibm, a plot.

Each (task, method, budget) is trained once (amortised methods; sequential and ABC methods run
anew at each observation, as in sbibm) and scored by C2ST against the task's reference
posterior at each observation (:func:`lfi.bench.run_task`). Every finished observation is
appended to ``OUT/results.csv`` at once (flushed to disk), and a rerun skips what the CSV
already holds (same seed, options and lfi code), so an interrupted grid resumes; a cell with some
observations missing is retrained with the same seed (the same network) and scores only those.
A row's ``code`` is a hash of lfi's own source (:func:`code_id`), with ``+Ncpu`` when training
split its batches over N > 1 CPU devices (:mod:`lfi._cores`: another run of the same code, so
not the same row); a default changed in a later
lfi (a network, a sampler, a schedule) changes what the same options mean, so rows of another
code are kept in the CSV but never taken as done, nor summarised with this run's.
``OUT/summary.md`` puts the mean C2ST of each cell (this run's seed, options and code) beside
sbibm's published figure (Lueckmann et al. 2021, arXiv:2101.04653;
``lfi/data/sbibm_c2st.json``) and ``OUT/c2st.png`` draws C2ST against the budget per task.

>>> sbibm_c2st("two_moons", "npe", 10_000)
0.606
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from lfi import tasks as task_registry
from lfi.bench import run_task

__all__ = ["FIELDS", "bench", "code_id", "sbibm_c2st", "summarize"]

_SBIBM_NAMES = {
    "npe": "NPE",
    "nle": "NLE",
    "nre": "NRE",
    "snpe": "SNPE",
    "snle": "SNLE",
    "snre": "SNRE",
    "rejection_abc": "REJ-ABC",
    "smc_abc": "SMC-ABC",
}
FIELDS = [
    "task", "method", "budget", "observation", "seed", "options", "code", "num_samples", "c2st",
    "seconds_simulate", "seconds_train", "seconds_sample", "seconds_score", "epochs",
]  # fmt: skip


_METRICS = FIELDS[FIELDS.index("c2st") + 1 :]


def _sbibm() -> dict:
    text = resources.files("lfi").joinpath("data/sbibm_c2st.json").read_text()
    return json.loads(text)["c2st"]


def sbibm_c2st(task: str, method: str, budget: int) -> float | None:
    """sbibm's published mean C2ST (observations 1-10) for a task, method and budget, if any."""
    name = _SBIBM_NAMES.get(str(method).lower())
    return _sbibm().get(str(int(budget)), {}).get(task, {}).get(name) if name else None


@functools.cache
def code_id() -> str:
    """A short hash of the installed lfi's source files (``.py`` and packaged data): two runs
    share it only if they ran the same code, defaults included."""
    digest = hashlib.sha256()
    root = resources.files("lfi")
    stack, files = [root], []
    while stack:
        for entry in stack.pop().iterdir():
            if entry.is_dir():
                stack.append(entry)
            elif entry.name.endswith((".py", ".json")):
                files.append(entry)
    for entry in sorted(files, key=lambda e: str(e)):
        digest.update(os.path.relpath(str(entry), str(root)).encode())
        digest.update(entry.read_bytes())
    return digest.hexdigest()[:12]


def run_id() -> str:
    """The ``code`` of this process's rows: :func:`code_id`, plus ``+Ncpu`` when this process
    has N > 1 JAX CPU devices to split training batches over (the same seed then trains another
    network; methods whose loss is not split carry the label too, and rerun)."""
    from lfi import _cores

    n = _cores.available()
    return code_id() + (f"+{n}cpu" if n > 1 else "")


def _key(row: dict) -> tuple:
    return (row["task"], row["method"], int(row["budget"]), int(row["observation"]),
            int(row["seed"]), row["options"], row.get("code") or "",
            str(row.get("num_samples") or ""))  # fmt: skip


def _read(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _upgrade(path: Path) -> None:
    """Rewrite a CSV written with other columns (an older lfi) under :data:`FIELDS`, keeping
    every row (absent columns blank), atomically: a crash leaves the old file or the new one."""
    with open(path, newline="") as f:
        header = next(csv.reader(f), None)
    if header is None or header == FIELDS:
        return
    if header[:1] != ["task"]:
        raise ValueError(
            f"out: {str(path)!r} has no header row (a run of an older lfi killed before its "
            "first row, then resumed); add the header line of the columns it was written with "
            "or start a new --out"
        )
    rows = _read(path)
    if "num_samples" not in header:  # older rows: every lfi bench run used its default then
        for r in rows:
            r["num_samples"] = "10000"
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def bench(
    tasks: list[str],
    methods: list[str],
    budgets: list[int],
    observations: list[int],
    out: str | os.PathLike[str],
    *,
    seed: int = 0,
    num_samples: int = 10_000,
    progress: bool = True,
    **options: Any,
) -> list[dict]:
    """Run (or resume) the grid; returns all rows of ``OUT/results.csv``. ``options`` go to
    every method (e.g. ``max_epochs``); they and ``num_samples`` are part of a row's identity.
    "npe", "nle" or "nre" with ``num_rounds`` > 1 are their sequential forms ("snpe"…) and are
    recorded (and compared with sbibm) under those names."""
    for name in tasks:
        task_registry.get(name)  # a bad task name fails before any work
    rounds = int(options.get("num_rounds", 1))
    methods = list(dict.fromkeys(
        ("s" + str(m).lower()) if str(m).lower() in ("npe", "nle", "nre") and rounds > 1
        else str(m).lower() for m in methods
    ))  # fmt: skip
    budgets = list(dict.fromkeys(int(b) for b in budgets))
    observations = list(dict.fromkeys(int(k) for k in observations))
    from lfi.methods.abc import ABC_METHODS
    from lfi.methods.mining import GOLD_METHODS
    from lfi.methods.registry import METHODS
    from lfi.methods.sequential import SEQUENTIAL

    valid = {*METHODS, *SEQUENTIAL, *ABC_METHODS, *GOLD_METHODS}
    for m in methods:  # and so do bad methods, budgets and observations
        if str(m).lower() not in valid:
            raise ValueError(f"methods: unknown {m!r}; valid are {sorted(valid)}")
    for name, values, low, high in (("budgets", budgets, 1, None), ("observations", observations,
                                     1, 10)):  # fmt: skip
        bad = [v for v in values if int(v) < low or (high is not None and int(v) > high)]
        if not values or bad:
            raise ValueError(f"{name}: expected integers in [{low}, {high or '∞'}], got {values}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path, opts, code = out / "results.csv", json.dumps(options, sort_keys=True), run_id()
    if path.is_file():
        _upgrade(path)
    previous = _read(path)
    done = {_key(r) for r in previous}
    same = lambda r: (
        (r["seed"], r["options"], r["num_samples"])
        == (  # noqa: E731
            str(seed),
            opts,
            str(num_samples),
        )
    )
    stale = sum(1 for r in previous if same(r) and (r.get("code") or "") != code)
    if stale and progress:
        tqdm.write(f"{path}: {stale} rows of another lfi code (not {code}) are kept, not reused")
    cells = [(t, m, int(b)) for t in tasks for m in methods for b in budgets]
    bar = tqdm(total=len(cells) * len(observations), desc="bench", unit="obs",
               disable=not progress)  # fmt: skip
    new_file = not path.is_file() or path.stat().st_size == 0
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new_file:
            writer.writeheader()
            f.flush()
            os.fsync(f.fileno())
        for t, m, b in cells:
            row0 = {"task": t, "method": m, "budget": b, "seed": seed, "options": opts,
                    "code": code, "num_samples": int(num_samples)}  # fmt: skip
            todo = [k for k in observations if _key({**row0, "observation": k}) not in done]
            bar.update(len(observations) - len(todo))
            if not todo:
                continue
            bar.set_postfix_str(f"{t} {m} {b}")

            def write(k: int, metrics: dict, row0: dict = row0) -> None:
                row = {**row0, "observation": k, "c2st": metrics.get("c2st")}
                row.update({name: metrics.get(name) for name in _METRICS})
                writer.writerow(row)  # at once: an interrupted cell keeps what it finished
                f.flush()
                os.fsync(f.fileno())
                done.add(_key(row))
                bar.update(1)

            result = run_task(t, m, num_simulations=b, observations=todo, seed=seed,
                              num_samples=num_samples, progress=False, on_observation=write,
                              **options)  # fmt: skip
            c2st = result.c2st
            scores = [c2st[k] for k in todo if c2st.get(k) is not None]
            if scores and progress:
                tqdm.write(f"{t} · {m} · {b}: C2ST {np.mean(scores):.3f} over {len(scores)} obs")
    bar.close()
    rows = _read(path)
    summarize([r for r in rows if same(r) and r["code"] == code], out)
    return rows


def summarize(rows: list[dict], out: str | os.PathLike[str]) -> str:
    """Write ``summary.md`` (mean C2ST per cell beside sbibm's) and ``c2st.png``; return the
    markdown."""
    out = Path(out)
    cells: dict[tuple, list[float]] = defaultdict(list)
    base: dict[str, str | None] = {}  # column label -> the method whose sbibm figure applies
    unique = {_key(r): r for r in rows if r.get("c2st") not in (None, "")}  # the last of repeats
    for r in unique.values():
        options = r.get("options") or "{}"
        label = r["method"] if options == "{}" else f"{r['method']} {options}"
        # sbibm's sequential figures are of 10 rounds: another number has no published figure
        other_rounds = r["method"].startswith("s") and json.loads(options).get("num_rounds", 10)
        base[label] = None if other_rounds not in (False, 10) else r["method"]
        cells[(r["task"], label, int(r["budget"]))].append(float(r["c2st"]))
    tasks = sorted({c[0] for c in cells})
    methods = sorted({c[1] for c in cells})
    budgets = sorted({c[2] for c in cells})
    lines = ["# lfi bench: mean C2ST (observations scored) beside sbibm's published mean", ""]
    for b in budgets:
        lines += [f"## {b} simulations", ""]
        head = " | ".join(f"{m} lfi | {m} sbibm" for m in methods)
        lines += [f"| task | {head} |", "|---" * (1 + 2 * len(methods)) + "|"]
        for t in tasks:
            cols = []
            for m in methods:
                vals = cells.get((t, m, b))
                ref = sbibm_c2st(t, base[m], b) if base[m] else None
                cols.append(f"{np.mean(vals):.3f} ({len(vals)})" if vals else "–")
                cols.append(f"{ref:.3f}" if ref is not None else "–")
            lines.append(f"| {t} | " + " | ".join(cols) + " |")
        lines.append("")
    if any(str(m).startswith("snpe") for m in methods):
        lines += ["lfi's snpe is TSNPE (truncated proposals, Deistler et al. 2022); sbibm's SNPE "
                  "is SNPE-C (APT).", ""]  # fmt: skip
    text = "\n".join(lines)
    (out / "summary.md").write_text(text)
    if cells:
        _plot(cells, tasks, methods, budgets, out / "c2st.png", base)
    return text


def _plot(cells, tasks, methods, budgets, path, base) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(5, len(tasks))
    rows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, t in zip(axes.flat, tasks):
        for i, m in enumerate(methods):
            c = colors[i % len(colors)]
            pts = [(b, np.mean(cells[(t, m, b)])) for b in budgets if (t, m, b) in cells]
            if pts:
                ax.plot(*zip(*pts), "o-", color=c, label=f"{m} (lfi)")
            figures = {b: sbibm_c2st(t, base[m], b) if base[m] else None for b in budgets}
            ref = [(b, v) for b, v in figures.items() if v is not None]
            if ref:
                ax.plot(*zip(*ref), "s--", color=c, alpha=0.5, label=f"{m} (sbibm)")
        ax.set(xscale="log", ylim=(0.45, 1.02), title=t, xlabel="simulations")
        ax.axhline(0.5, color="0.7", lw=0.8)
    for ax in list(axes.flat)[len(tasks) :]:
        ax.axis("off")
    axes[0, 0].set_ylabel("C2ST (0.5 = reference)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("C2ST vs simulation budget: lfi (solid) and sbibm's published means (dashed)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
