"""Step 2: approximate Bayesian computation on the ballistic example.

    python examples/02_abc_ballistic.py [--ci] [--out DIR]

A ball is thrown 5 times; each throw's speed and angle scatter around θ = (mean speed, mean
angle) and only the landing distances are measured, with noise (``lfi.tasks.get("ballistic")``,
the lecture's example). p(x | θ) integrates over the unobserved speed and angle of every throw:
lfi can evaluate it here by quadrature, which gives the exact posterior on a grid to compare
with, but ABC never uses it.

ABC (Pritchard et al. 1999; Beaumont, Zhang & Balding 2002; review: Sisson, Fan & Beaumont
2018, arXiv:1802.09720) keeps the θ whose simulations land within ε of the observation,
p_ε(θ | x_o) ∝ ∫ 1[d(s(x), s(x_o)) < ε] p(x | θ) p(θ) dx. The summary s is the sorted distances:
the throws are i.i.d., so their order carries nothing about θ and sorting loses no information.
Rejection ABC from one set of prior simulations shows the trade-off of the lecture, "very
inefficient or very approximate": keeping the closest 10% gives many draws from a wide ε that
spill outside the exact posterior, keeping the closest 0.1% is closer but rests on a handful of
draws. SMC-ABC (ABC population Monte Carlo, Beaumont et al. 2009, arXiv:0805.2256) shrinks ε
over rounds and spends the simulations near the posterior.

The figure: one panel per run, the exact posterior's 68% and 95% regions (grey) under the ABC
draws, each titled with ε, the simulations spent, the share of draws inside the exact 95%
region and the C2ST against exact draws (full budget only, it is slow; 0.5:
indistinguishable, 1: disjoint; Lopez-Paz & Oquab, arXiv:1610.06545). Printed: the same, and
each run's posterior mean ± sd beside the exact one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import lfi  # noqa: E402
from lfi.diagnostics import c2st  # noqa: E402

BUDGETS = {  # prior simulations, rejection fractions kept, SMC-ABC budget, draws, grid, C2ST
    "full": dict(sims=100_000, keep=(0.1, 0.01, 0.001), smc=20_000, draws=1000, grid=150, c2st=1),
    "ci": dict(sims=10_000, keep=(0.1, 0.01), smc=3_000, draws=500, grid=80, c2st=0),
}


def sorted_throws(x: np.ndarray) -> np.ndarray:
    """The summary: the 5 landing distances in increasing order (i.i.d. throws)."""
    return np.sort(np.asarray(x), axis=1)


def exact_posterior(task, x_o, points: int):
    """The exact posterior on a points × points grid over the prior box (uniform prior ×
    quadrature likelihood), normalised to sum 1, and the grid axes."""
    low, high = np.asarray(task.prior.low), np.asarray(task.prior.high)
    a = np.linspace(low[0], high[0], points)
    b = np.linspace(low[1], high[1], points)
    grid = np.stack(np.meshgrid(a, b, indexing="ij"), -1).reshape(-1, 2)
    ll = np.asarray(task.log_likelihood(grid, np.broadcast_to(x_o, (len(grid), len(x_o)))))
    p = np.exp(ll - ll.max())
    return a, b, (p / p.sum()).reshape(points, points)


def grid_draws(a, b, p, n: int, seed: int) -> np.ndarray:
    """n draws from the grid posterior: a cell by its mass, then uniform within the cell."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(p.size, n, p=p.ravel())
    i, j = np.unravel_index(idx, p.shape)
    da, db = a[1] - a[0], b[1] - b[0]
    return np.stack([a[i] + da * (rng.random(n) - 0.5), b[j] + db * (rng.random(n) - 0.5)], 1)


def density_at(a, b, p, theta: np.ndarray) -> np.ndarray:
    """The grid posterior's value in the cell nearest each θ."""
    i = np.clip(np.round((theta[:, 0] - a[0]) / (a[1] - a[0])).astype(int), 0, len(a) - 1)
    j = np.clip(np.round((theta[:, 1] - b[0]) / (b[1] - b[0])).astype(int), 0, len(b) - 1)
    return p[i, j]


def hpd_levels(p: np.ndarray, masses=(0.95, 0.68)) -> list[float]:
    """Density thresholds whose superlevel sets hold the given posterior masses."""
    flat = np.sort(p.ravel())[::-1]
    cum = np.cumsum(flat)
    return [float(flat[np.searchsorted(cum, m)]) for m in masses]


def main(budget: str = "full", out: str | Path = "examples-out") -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = BUDGETS[budget]
    task = lfi.tasks.get("ballistic")
    x_o = np.asarray(task.observation(1))
    a, b, p = exact_posterior(task, x_o, cfg["grid"])
    reference = grid_draws(a, b, p, cfg["draws"], seed=0)
    ref_mean, ref_sd = reference.mean(0), reference.std(0)
    print("observation 1: distances " + ", ".join(f"{v:.2f}" for v in x_o) + " m")
    print(
        f"{'exact (quadrature, grid)':<28} mean ({ref_mean[0]:6.2f}, {ref_mean[1]:.3f}) "
        f"sd ({ref_sd[0]:.2f}, {ref_sd[1]:.3f})"
    )

    theta, x = lfi.simulate(task.simulator, task.prior, cfg["sims"], seed=0, progress=False)
    runs = {}
    for frac in cfg["keep"]:
        abc = lfi.RejectionABC(task.prior, summary=sorted_throws, quantile=frac)
        runs[f"rejection ABC, closest {frac:.1%}"] = abc.fit(theta, x, x_o=x_o)
    runs["SMC-ABC"] = lfi.smc_abc(
        task.simulator, task.prior, x_o, cfg["smc"], seed=1, summary=sorted_throws, progress=False
    )

    results = {}
    fig, axes = plt.subplots(1, len(runs), figsize=(3.8 * len(runs), 4.4), sharex=True, sharey=True)
    level95, level68 = hpd_levels(p)
    prior_in95 = float(np.mean(p >= level95))  # the 95% region's share of the (uniform) prior
    print(f"{'prior':<28} {prior_in95:.0%} of its mass in the exact 95% region")
    for k, (ax, (name, post)) in enumerate(zip(axes, runs.items())):
        draws = np.asarray(post.sample(cfg["draws"], seed=2 + k))
        in95 = float(np.mean(density_at(a, b, p, draws) >= level95))
        score = float(c2st(reference, draws)) if cfg["c2st"] else float("nan")
        info = post.info
        lo, hi = np.quantile(draws, [0.025, 0.975], axis=0)
        m, s = draws.mean(0), draws.std(0)
        print(
            f"{name:<28} mean ({m[0]:6.2f}, {m[1]:.3f}) sd ({s[0]:.2f}, {s[1]:.3f})  "
            f"ε {info['eps']:.3f}  simulations {info['num_simulations']:>6}  "
            f"kept {post.num_particles:>5}  in exact 95% {in95:.0%}"
            + (f"  C2ST {score:.3f}" if cfg["c2st"] else "")
        )
        results[name] = dict(
            c2st=score,
            in95=in95,
            mean=m,
            sd=s,
            interval=(lo, hi),
            eps=info["eps"],
            num_simulations=info["num_simulations"],
        )
        ax.contourf(a, b, p.T, levels=[level95, level68, p.max() * 1.01], colors=["0.85", "0.65"])
        ax.scatter(*draws.T, s=4, alpha=0.5, color="C0", label="ABC draws")
        ax.plot(*task.true_parameters(1), "r*", ms=10, label="true θ")
        c2st_text = f", C2ST {score:.2f}" if cfg["c2st"] else ""
        ax.set_title(
            f"{name}\nε {info['eps']:.2f}: {info['num_simulations']} simulations, "
            f"{post.num_particles} kept\n{in95:.0%} of draws in exact 95%{c2st_text}",
            fontsize=9,
        )
        ax.set_xlabel("mean launch speed [m/s]")
    axes[0].set_ylabel("mean launch angle [rad]")
    axes[0].set_xlim(8.5, task.prior.high[0])  # the prior is 5–15 m/s: nothing below 9 survives
    axes[0].fill_between([], [], color="0.65", label="exact 68% region")
    axes[0].fill_between([], [], color="0.85", label="exact 95% region")
    axes[0].legend(loc="upper right", fontsize=7, markerscale=2)
    fig.suptitle(
        "ABC on the ballistic throw (observation 1): a smaller ε moves the draws into "
        "the exact posterior (grey) but keeps fewer of them"
    )
    fig.tight_layout()
    path = out / "02_abc_ballistic.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")
    return {
        "exact_mean": ref_mean,
        "exact_sd": ref_sd,
        "runs": results,
        "prior_sd": np.asarray(task.prior.high - task.prior.low) / np.sqrt(12),
        "figures": [path],
    }


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ci", action="store_true", help="tiny budget, as run in CI")
    parser.add_argument("--out", default="examples-out", help="folder for the PNG")
    args = parser.parse_args(argv)
    main("ci" if args.ci else "full", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
