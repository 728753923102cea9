"""NRE's early stopping on two_moons (10^4 simulations): how long training runs, and how good the
posterior gets, for several ``patience`` values and seeds.

    python benchmarks/nre_patience.py --out benchmarks/results/nre_patience.md

Quality without C2ST (fast enough to screen settings): two_moons' parameter space is 2-d, so the
learned posterior prior × r(x_o, θ) is normalised on a 401 × 401 grid over the prior's box and
scored by its cross-entropy -E[log q(θ | x_o)] under 5000 reference-posterior draws, for each of
observations 1-10 (lower is better; it differs from KL(p_ref || q) by the reference's entropy,
the same for every row).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

import lfi
from lfi._rng import as_key


def cross_entropies(posterior, task, observations=range(1, 11)) -> list[float]:
    grid = np.linspace(-1.0, 1.0, 401)
    cell = (grid[1] - grid[0]) ** 2
    points = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    out = []
    for k in observations:
        x_o = task.observation(k)
        log_z = jax.nn.logsumexp(np.asarray(posterior.log_prob(points, x=x_o))) + np.log(cell)
        ref = task.reference_posterior(k, 5000, seed=k)
        out.append(float(log_z - np.mean(np.asarray(posterior.log_prob(ref, x=x_o)))))
    return out


def probe(variant: str, patience: int, seed: int) -> dict:
    task = lfi.tasks.get("two_moons")
    key_sim, key_fit, _ = jax.random.split(as_key(seed), 3)
    theta, x = lfi.simulate(task.simulator, task.prior, 10_000, seed=key_sim, progress=False)
    t0 = time.perf_counter()
    estimator = lfi.NRE(task.prior, variant=variant, patience=patience, progress=False)
    posterior = estimator.fit(theta, x, seed=key_fit)
    seconds = time.perf_counter() - t0
    ce = cross_entropies(posterior, task)
    return {
        "variant": variant,
        "patience": patience,
        "seed": seed,
        "epochs": len(estimator.history.val_loss),
        "seconds": seconds,
        "cross_entropy": ce,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", nargs="+", default=["b"])
    p.add_argument("--patience", nargs="+", type=int, default=[20, 50])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--out", default="benchmarks/results/nre_patience.md")
    args = p.parse_args(argv)
    rows = []
    for variant in args.variants:
        for patience in args.patience:
            for seed in args.seeds:
                r = probe(variant, patience, seed)
                rows.append(r)
                print(json.dumps(r), flush=True)
    lines = [
        "# NRE on two_moons (10^4): patience vs training length and posterior quality",
        "",
        f"Command: `python {' '.join(sys.argv)}`",
        "",
        "Cross-entropy -E_ref[log q(θ|x_o)], q normalised on a grid (lower is better), over",
        "observations 1-10: mean, and the worst observation.",
        "",
        "| variant | patience | seed | epochs | train s | cross-entropy mean | worst |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ce = r["cross_entropy"]
        lines.append(
            f"| {r['variant']} | {r['patience']} | {r['seed']} | {r['epochs']} | "
            f"{r['seconds']:.0f} | {np.mean(ce):.3f} | {max(ce):.3f} |"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
