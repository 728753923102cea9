"""Step 7: mining gold on the Galton board — the simulator's own path probabilities as labels.

    python examples/07_mining_gold_galton.py [--ci] [--out DIR]

p(x | θ) is an integral over every unobserved path z, but the probability of one path is a
product of the simulator's own random choices: log p(x, z | θ) is cheap. Brehmer, Louppe,
Pavez & Cranmer ("Mining gold from implicit models to improve likelihood-free inference", PNAS
2020, arXiv:1805.12244) turn it into extra training labels: the joint ratio r(x, z | θ0, θ1),
whose average over the paths that end in x is the true r(x | θ0, θ1), and the joint score
t(x, z | θ) = ∇θ log p(x, z | θ), obtained by differentiating the simulator. Training becomes a
regression instead of a tug of war between classes, and needs 10–100× fewer simulations.

The generalized Galton board (``lfi.tasks.get("galton")``, the paper's example) drops a ball
through 20 rows of nails; at each nail it goes left with a probability that depends on θ, and
x is the nail where it lands. Written with ``lfi.augment`` primitives, lfi gets log p(x, z | θ)
and its gradient by autodiff, and the exact p(x | θ) by dynamic programming to check. With the
same runs, CARL (classification only, step 4), RASCAL (ratio regression + score) and SCANDAL
(density + score) estimate log r(x | θ0 = −0.8, θ1 = −0.6).

The figure: the gold itself (each run's joint log ratio against its landing nail, scattered
around the exact log r, with the log of their per-nail mean on it); the three estimates of
log r(x) against the exact ratio; and q(θ) from 100 events at θ = −0.7 with the 95% sets of
RASCAL and SCANDAL beside the exact likelihood's. Printed: the mean squared error of each log r̂
under p(x | θ1), and the MLE and 95% sets. RASCAL's ratio is trained against θ_ref = θ1 and is
most accurate near it: with few runs or epochs (the CI budget) it can go wrong toward the
prior's edges and put its MLE there, where SCANDAL's density stays close to the exact one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.special import logsumexp  # noqa: E402
from scipy.stats import chi2  # noqa: E402

import lfi  # noqa: E402
from lfi import frequentist as fq  # noqa: E402
from lfi.augment import run_augmented  # noqa: E402

THETA0, THETA1, THETA_TRUE, NUM_EVENTS = -0.8, -0.6, -0.7, 100
BUDGETS = {  # training runs per method, epochs at most, runs for the gold panel
    "full": dict(n=1000, epochs=1000, gold=5000),
    "ci": dict(n=500, epochs=60, gold=1000),
}


def main(budget: str = "full", out: str | Path = "examples-out") -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = BUDGETS[budget]
    task = lfi.tasks.get("galton")
    prior, sim = task.prior, task.simulator
    p0 = np.asarray(task.extras["probabilities"](THETA0), np.float64)
    p1 = np.asarray(task.extras["probabilities"](THETA1), np.float64)
    nails = np.flatnonzero((p0 > 0) & (p1 > 0))
    exact = np.log(p0[nails]) - np.log(p1[nails])
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))

    # the gold: paths run at θ1, each re-evaluated at θ0 and θ1 along the same z
    n = cfg["gold"]
    at = np.broadcast_to(np.array([[THETA0], [THETA1]]), (n, 2, 1))
    x, log_p, _ = run_augmented(sim, np.full((n, 1), THETA1), at, seed=5, progress=False)
    joint = log_p[:, 0] - log_p[:, 1]
    landing = x[:, 0].astype(int)
    ax = axes[0]
    jitter = np.random.default_rng(0).uniform(-0.25, 0.25, n)
    ax.scatter(
        landing + jitter, joint, s=3, alpha=0.25, color="C1", label="joint log r(x, z) of one run"
    )
    ax.plot(nails, exact, "k-", lw=2, label="exact log r(x)")
    seen = np.array([j for j in nails if np.sum(landing == j) >= 5])
    mean = np.array([logsumexp(joint[landing == j]) - np.log(np.sum(landing == j)) for j in seen])
    # standard error of each log-mean (delta method): sd(r) / (mean(r) sqrt(count))
    r = np.exp(joint)
    se = np.array(
        [
            r[landing == j].std() / r[landing == j].mean() / np.sqrt(np.sum(landing == j))
            for j in seen
        ]
    )
    gold_z = (mean - exact[np.searchsorted(nails, seen)]) / np.maximum(
        se, 1e-3
    )  # floor on se: a nail of 5 similar paths can have a tiny spread
    print(
        f"gold: per-nail log mean of the joint ratio vs exact log r on {len(seen)} nails: "
        f"max |z| {np.max(np.abs(gold_z)):.2f}"
    )
    ax.plot(seen, mean, "C0o", ms=4, label="log mean of exp(joint) per nail")
    ax.set_ylim(np.quantile(joint, 0.002) - 0.2, np.quantile(joint, 0.998) + 0.2)
    ax.set_xlabel("landing nail x")
    ax.set_ylabel("log p(· | θ0 = −0.8) / p(· | θ1 = −0.6)")
    ax.set_title(f"The gold: {n} runs' joint ratios average to r(x)", fontsize=10)
    ax.legend(fontsize=8, loc="lower center")

    common = dict(seed=0, progress=False, max_epochs=cfg["epochs"])
    estimators = {
        "CARL": lfi.infer(sim, prior, "carl", cfg["n"], theta_ref=[THETA1], **common),
        "RASCAL": lfi.infer(sim, prior, "rascal", cfg["n"], theta_ref=[THETA1], **common),
        "SCANDAL": lfi.infer(sim, prior, "scandal", cfg["n"], bins=31, **common),
    }
    ax = axes[1]
    ax.plot(nails, exact, "k-", lw=2, label="exact")
    errors = {}
    for name, est in estimators.items():
        ll = np.array([np.asarray(est.log_ratio([float(j)], [[THETA0], [THETA1]])) for j in nails])
        log_r = ll[:, 0] - ll[:, 1]
        mse = float(np.sum(p1[nails] * (log_r - exact) ** 2) / p1[nails].sum())
        errors[name] = mse
        print(f"{name:<8} E_θ1[(log r̂ − log r)²] = {mse:.4f}  ({cfg['n']} runs)")
        ax.plot(nails, log_r, "o--", ms=3, label=f"{name} (error {mse:.4f})")
    ax.set_xlabel("landing nail x")
    ax.set_ylabel("log r(x | θ0 = −0.8, θ1 = −0.6)")
    ax.set_title(f"Ratio estimates from the same {cfg['n']} runs", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes[2]
    events = task.simulate(np.full((NUM_EVENTS, 1), THETA_TRUE), seed=1)
    grid = fq.grid(-1.0, -0.4, 120, interior=True)
    sets = {}
    for name, est, style in (
        ("exact", fq.ExactLikelihood(task), "k-"),
        ("RASCAL", estimators["RASCAL"], "C1--"),
        ("SCANDAL", estimators["SCANDAL"], "C2-."),
    ):
        cs = fq.confidence_set(est, events, grid, level=0.95)
        lo, hi = cs.interval()
        theta_hat = float(fq.mle(est, events, grid)[0])
        sets[name] = dict(mle=theta_hat, interval=(lo, hi))
        print(f"{name:<8} MLE {theta_hat:+.3f}, 95% set [{lo:.3f}, {hi:.3f}]")
        ax.plot(grid[:, 0], cs.q, style, label=f"{name}: θ̂ {theta_hat:.3f}, [{lo:.3f}, {hi:.3f}]")
    ax.axhline(chi2.ppf(0.95, 1), color="0.5", lw=0.8, label="Wilks 95%")
    ax.axvline(THETA_TRUE, color="0.3", lw=0.8, ls=":", label="true θ")
    ax.set_ylim(0, 12)
    ax.set_xlabel("θ")
    ax.set_ylabel("q(θ) = −2 log r̂")
    ax.set_title(f"{NUM_EVENTS} events at θ = {THETA_TRUE}: q(θ) and 95% sets", fontsize=10)
    ax.legend(fontsize=8, loc="upper center")
    fig.suptitle(
        f"Mining gold on the Galton board, the same {cfg['n']} runs for each: error of log r̂ "
        + ", ".join(f"{name} {mse:.4f}" for name, mse in errors.items())
        + "\n(CARL learns from classification alone; RASCAL and SCANDAL also from the gold: the "
        "joint ratio and score of every run)"
    )
    fig.tight_layout()
    path = out / "07_mining_gold_galton.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")
    return {
        "errors": errors,
        "sets": sets,
        "gold_max_z": float(np.max(np.abs(gold_z))),
        "theta_true": THETA_TRUE,
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
