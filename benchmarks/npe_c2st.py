"""NPE on the benchmark tasks at 10^3 and 10^4 simulations: mean C2ST over observations 1-10,
written as a markdown table beside sbibm's published NPE/SNPE figures.

Run by hand (not in CI); about an hour on 2 cores, most of it in C2ST's classifier:

    python benchmarks/npe_c2st.py --out benchmarks/results/npe_c2st.json
    python benchmarks/npe_c2st.py --tasks two_moons --budgets 10000 --seeds 0 1 --flow-layers 8

One amortised posterior is trained per (task, budget, seed) and evaluated at all 10 observations
(sbibm trains one per observation; an amortised NPE is the same estimator for every x_o).
Results are appended per run to the JSON file, so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

from lfi.bench import run_task

# sbibm main_paper.csv (github.com/sbi-benchmark/results), mean C2ST over 10 observations
SBIBM = {
    ("gaussian_linear", 1000): (0.694, 0.652),
    ("gaussian_linear", 10000): (0.552, 0.544),
    ("gaussian_linear_uniform", 1000): (0.696, 0.631),
    ("gaussian_linear_uniform", 10000): (0.553, 0.527),
    ("gaussian_mixture", 1000): (0.731, 0.697),
    ("gaussian_mixture", 10000): (0.661, 0.583),
    ("slcp", 1000): (0.975, 0.965),
    ("slcp", 10000): (0.901, 0.845),
    ("two_moons", 1000): (0.725, 0.643),
    ("two_moons", 10000): (0.606, 0.554),
}
TASKS = ["two_moons", "gaussian_linear", "gaussian_linear_uniform", "slcp", "gaussian_mixture"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=TASKS)
    p.add_argument("--budgets", nargs="+", type=int, default=[1000, 10000])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--observations", nargs="+", type=int, default=list(range(1, 11)))
    p.add_argument("--out", default="benchmarks/results/npe_c2st.json")
    p.add_argument("--table", default=None, help="markdown table path (default: beside --out)")
    p.add_argument("--label", default="lfi NPE (defaults)")
    for name in ("flow_layers", "nn_width", "nn_depth", "knots", "batch_size", "patience"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=None)
    p.add_argument("--flow", default=None)
    p.add_argument("--interval", type=float, default=None)
    p.add_argument("--learning-rate", type=float, default=None)
    args = p.parse_args(argv)
    keys = (
        "flow_layers",
        "nn_width",
        "nn_depth",
        "knots",
        "batch_size",
        "patience",
        "flow",
        "interval",
        "learning_rate",
    )
    options = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(out.read_text()) if out.exists() else []
    for task in args.tasks:
        for budget in args.budgets:
            for seed in args.seeds:
                t0 = time.perf_counter()
                result = run_task(
                    task,
                    "npe",
                    num_simulations=budget,
                    observations=args.observations,
                    seed=seed,
                    progress=False,
                    **options,
                )
                m = result.metrics
                m.update(label=args.label, wall_seconds=time.perf_counter() - t0)
                runs.append(m)
                jax.clear_caches()  # unmap compiled code (vm.max_map_count)
                out.write_text(json.dumps(runs, indent=1))
                print(
                    f"{task:<24} {budget:>6} seed {seed}: C2ST {m['c2st_mean']:.3f} "
                    f"(train {m['seconds_train']:.0f} s, {m['epochs']} epochs)",
                    flush=True,
                )
    table = Path(args.table) if args.table else out.with_suffix(".md")
    table.write_text(render(runs, " ".join(["python", *sys.argv])))
    return 0


def render(runs: list[dict], command: str) -> str:
    """Markdown: per label, task and budget, mean C2ST over observations (and over seeds)."""
    lines = [
        "# NPE: mean C2ST over observations 1-10 (0.5 is best)",
        "",
        f"Command: `{command}`",
        "",
        "sbibm columns: published NPE / SNPE figures (sbibm main_paper.csv). lfi: one amortised",
        "posterior per (task, budget, seed), evaluated at all 10 observations; ± is the spread",
        "(sd) of the per-seed means where there are several seeds.",
        "",
        "| label | task | simulations | lfi C2ST | seeds | sbibm NPE | sbibm SNPE | ≤ NPE? |"
        " train s | epochs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple, list[dict]] = {}
    for m in runs:
        groups.setdefault((m["label"], m["task"], m["num_simulations"]), []).append(m)
    for (label, task, budget), ms in sorted(groups.items()):
        means = np.array([m["c2st_mean"] for m in ms])
        npe, snpe = SBIBM.get((task, budget), (None, None))
        cell = f"{means.mean():.3f}" + (f" ± {means.std(ddof=1):.3f}" if len(ms) > 1 else "")
        ok = "" if npe is None else ("yes" if means.mean() <= npe else "**no**")
        train = np.mean([m["seconds_train"] for m in ms])
        epochs = np.mean([m["epochs"] for m in ms])
        lines.append(
            f"| {label} | {task} | {budget} | {cell} | {len(ms)} | {npe or '-'} | {snpe or '-'} "
            f"| {ok} | {train:.0f} | {epochs:.0f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
