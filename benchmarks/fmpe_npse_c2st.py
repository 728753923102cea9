"""FMPE and NPSE on two_moons at 10^4 simulations: C2ST per observation, training seconds/epoch.

Run by hand (not in CI), with the methods' default settings (width 128, 3 gated residual
blocks, batch 200, Adam 1e-3, early stopping with patience 30, adaptive Tsit5 ODE):

    python benchmarks/fmpe_npse_c2st.py --out benchmarks/results/fmpe_npse_c2st

writes ``<out>.json`` (every metric of :func:`lfi.bench.run_task`) and ``<out>.md`` (the
table, with the command and the machine). sbibm's figures at 10^4 on two_moons, for reference:
NPE 0.606, SNPE 0.554, NLE 0.713, NRE 0.761 (sbibm main_paper.csv).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from lfi.bench import run_task


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", default=["fmpe", "npse"])
    p.add_argument("--task", default="two_moons")
    p.add_argument("--budget", type=int, default=10_000)
    p.add_argument("--observations", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/fmpe_npse_c2st")
    args = p.parse_args(argv)
    rows = []
    for method in args.methods:
        t0 = time.perf_counter()
        result = run_task(
            args.task,
            method,
            num_simulations=args.budget,
            observations=args.observations,
            seed=args.seed,
            progress=False,
        )
        m = dict(result.metrics, seconds_total=time.perf_counter() - t0)
        m.pop("options", None)
        rows.append(m)
        print(json.dumps(m), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    obs = args.observations
    lines = [
        f"# FMPE / NPSE on {args.task}, {args.budget} simulations, seed {args.seed}",
        "",
        f"Command: `python {' '.join(sys.argv)}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs (shared), "
        f"{platform.python_version()}; C2ST: lfi.bench (10^4 samples vs the reference).",
        "",
        "| method | " + " | ".join(f"C2ST obs {k}" for k in obs)
        + " | mean | epochs | s/epoch | train s | sample s |",
        "|---|" + "---|" * (len(obs) + 5),
    ]  # fmt: skip
    for m in rows:
        c2st = " | ".join(f"{m['c2st'][str(k)]:.3f}" for k in obs)
        lines.append(
            f"| {m['method']} | {c2st} | {m['c2st_mean']:.3f} | {m['epochs']} | "
            f"{m['seconds_per_epoch']:.3f} | {m['seconds_train']:.0f} | "
            f"{m['seconds_sample']:.0f} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
