"""Choosing NPE's default flow and batch size on lfi's own reference posteriors.

Score: the mean over observations 1-10 of E_ref[log q(θ | x_o)], the expected log density of
reference-posterior samples under the trained NPE. It equals -KL(p || q) - H(p), so on a given
task a higher score means a smaller KL to the true posterior; it is a proper score and, unlike
C2ST, cheap enough to sweep with (C2ST of the chosen default is in npe_c2st.md).

    python benchmarks/npe_defaults.py --out benchmarks/results/npe_defaults.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import lfi

CONFIGS = {
    "nsf L5 d2 bs200": dict(flow_layers=5, nn_depth=2, batch_size=200, conditioner="mlp"),
    "nsf L5 d2 bs50": dict(flow_layers=5, nn_depth=2, batch_size=50, conditioner="mlp"),
    "nsf L8 d2 bs50": dict(flow_layers=8, nn_depth=2, batch_size=50, conditioner="mlp"),
    "nsf L8 d2 bs100": dict(flow_layers=8, nn_depth=2, batch_size=100, conditioner="mlp"),
    "nsf L5 d1 w128 bs50": dict(
        flow_layers=5, nn_depth=1, nn_width=128, batch_size=50, conditioner="mlp"
    ),
    "maf L5 d2 bs50": dict(flow="maf", flow_layers=5, nn_depth=2, batch_size=50),
    # sbi's nsf architecture: residual-net conditioner (2 blocks x 50) and LU layers
    "nsf-res L5 b2 bs50": dict(flow_layers=5, nn_depth=2, batch_size=50, conditioner="resnet"),
    "nsf-res L5 b2 bs200": dict(flow_layers=5, nn_depth=2, batch_size=200, conditioner="resnet"),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument(
        "--tasks", nargs="+", default=["two_moons", "slcp", "gaussian_mixture", "gaussian_linear"]
    )
    p.add_argument("--configs", nargs="+", default=list(CONFIGS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--budget", type=int, default=10_000)
    p.add_argument("--num-reference", type=int, default=2000)
    p.add_argument("--out", default="benchmarks/results/npe_defaults.json")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = json.loads(out.read_text()) if out.exists() else []
    for task_name in args.tasks:
        task = lfi.tasks.get(task_name)
        refs = {k: task.reference_posterior(k, args.num_reference, seed=k) for k in range(1, 11)}
        for seed in args.seeds:
            theta, x = lfi.simulate(
                task.simulator, task.prior, args.budget, seed=seed, progress=False
            )
            for name in args.configs:
                npe = lfi.NPE(task.prior, progress=False, **CONFIGS[name])
                t0 = time.perf_counter()
                post = npe.fit(theta, x, seed=seed)
                seconds = time.perf_counter() - t0
                scores = [
                    float(np.mean(post.log_prob(refs[k], x=task.observation(k)))) for k in refs
                ]
                row = dict(
                    task=task_name,
                    config=name,
                    seed=seed,
                    budget=args.budget,
                    score=float(np.mean(scores)),
                    seconds=seconds,
                    epochs=len(npe.history.val_loss),
                    seconds_per_epoch=npe.history.seconds_per_epoch,
                )
                rows.append(row)
                out.write_text(json.dumps(rows, indent=1))
                print(
                    f"{task_name:<18} seed {seed} {name:<22} score {row['score']:8.3f} "
                    f"({seconds:.0f} s, {row['epochs']} epochs)",
                    flush=True,
                )
    out.with_suffix(".md").write_text(render(rows, " ".join(["python", *sys.argv])))
    return 0


def render(rows: list[dict], command: str) -> str:
    tasks = sorted({r["task"] for r in rows})
    configs = list(dict.fromkeys(r["config"] for r in rows))
    lines = [
        "# NPE defaults: mean E_ref[log q(θ|x_o)] over observations 1-10 (higher is better)",
        "",
        f"Command: `{command}`",
        "",
        "Mean over seeds (± sd over seeds); training seconds in brackets.",
        "",
        "| config | " + " | ".join(tasks) + " |",
        "|---|" + "---|" * len(tasks),
    ]
    for c in configs:
        cells = []
        for t in tasks:
            rs = [r for r in rows if r["task"] == t and r["config"] == c]
            if not rs:
                cells.append("-")
                continue
            s = np.array([r["score"] for r in rs])
            sd = f" ± {s.std(ddof=1):.3f}" if len(s) > 1 else ""
            cells.append(f"{s.mean():.3f}{sd} ({np.mean([r['seconds'] for r in rs]):.0f} s)")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
