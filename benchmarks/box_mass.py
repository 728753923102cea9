"""How much posterior mass lies outside the training box of amortised NLE/NRE (10^4 simulations).

    python benchmarks/box_mass.py --tasks two_moons slcp --methods nle nre --out results/box_mass

Since ca605e7 an NLE/NRE posterior evaluates its network at θ clamped (per coordinate, in the
prior's unconstrained space) into the box of the θ it was trained on. Inside the box the clamped
and the unclamped unnormalised densities are equal, so the two posteriors differ only through the
mass each puts outside the box: a total-variation distance of at most about the larger of the two
fractions. This script trains each estimator as ``lfi bench`` does (seed 0: the same simulations
and training as benchmarks/methods_c2st.py), draws 10 000 samples at observations 1-10 with the
box and without it, and reports the fraction of draws outside the box. Where both are small the
C2ST of runs made before the box stands for the code after it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", nargs="+", default=["two_moons", "gaussian_mixture", "slcp"])
    p.add_argument("--methods", nargs="+", default=["nle", "nre"])
    p.add_argument("--observations", nargs="+", type=int, default=list(range(1, 11)))
    p.add_argument("--num-samples", type=int, default=10_000)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    import lfi
    from lfi._rng import as_key
    from lfi.methods.registry import get_method

    rows = []
    for task_name in args.tasks:
        task = lfi.tasks.get(task_name)
        key_sim, key_fit, key_sample = jax.random.split(as_key(0), 3)
        theta, x = lfi.simulate(task.simulator, task.prior, 10_000, seed=key_sim, progress=False)
        for method in args.methods:
            t0 = time.perf_counter()
            post = get_method(method)(task.prior, progress=False).fit(theta, x, seed=key_fit)
            low, high = (np.asarray(b) for b in post.theta_box)
            for k in args.observations:
                x_o = task.observation(k)
                out = {}
                for label, box in (("box", post.theta_box), ("no box", None)):
                    post.theta_box = box if box is not None else (
                        jnp.full_like(post.theta_box[0], -jnp.inf),
                        jnp.full_like(post.theta_box[1], jnp.inf),
                    )  # fmt: skip
                    draws = post.sample(args.num_samples, x=x_o, seed=k)
                    u = np.asarray(task.prior.to_unconstrained(draws))
                    outside = np.any((u < low) | (u > high), axis=1)
                    out[label] = (float(outside.mean()), float(np.max(post.diagnostics.rhat)))
                post.theta_box = (jnp.asarray(low), jnp.asarray(high))
                rows.append(dict(task=task_name, method=method, observation=k,
                                 outside_box=out["box"][0], outside_no_box=out["no box"][0],
                                 rhat_box=out["box"][1], rhat_no_box=out["no box"][1]))  # fmt: skip
                print(rows[-1], flush=True)
            print(f"{task_name} {method}: {time.perf_counter() - t0:.0f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "runs.json").write_text(json.dumps(rows, indent=1))
    lines = [
        "# Posterior mass outside the training box: amortised NLE/NRE at 10^4 simulations",
        "",
        f"Command: `python {' '.join(sys.argv)}`",
        "",
        "| task | method | observations | max fraction outside, with box | without box "
        "| max R-hat with / without |",
        "|---|---|---|---|---|---|",
    ]
    for task_name in args.tasks:
        for method in args.methods:
            rs = [r for r in rows if r["task"] == task_name and r["method"] == method]
            lines.append(
                f"| {task_name} | {method} | {len(rs)} "
                f"| {max(r['outside_box'] for r in rs):.4f} "
                f"| {max(r['outside_no_box'] for r in rs):.4f} "
                f"| {max(r['rhat_box'] for r in rs):.3f} / "
                f"{max(r['rhat_no_box'] for r in rs):.3f} |"
            )
    (args.out / "README.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
