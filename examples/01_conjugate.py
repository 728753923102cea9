"""Step 1: a posterior you can write down, and a simulator that finds it without the formula.

    python examples/01_conjugate.py [--ci] [--out DIR]

Bayes' theorem, p(θ | x) ∝ p(x | θ) p(θ), is solvable by hand for conjugate pairs (the lecture's
table; Fink 1997, "A compendium of conjugate priors"; Gelman et al., *Bayesian Data Analysis*,
ch. 2). A coin with unknown bias θ, prior Beta(2, 2), lands heads k = 14 times in n = 20 flips:
the posterior is Beta(2 + 14, 2 + 6), and ``lfi.conjugate.BetaBernoulli`` gives it with its
predictive.

The same posterior comes from a simulator alone: draw θ from the prior, flip 20 coins, keep θ
when the simulated number of heads equals the observed 14 (``lfi.RejectionABC`` with ε = 0 on
the summary "number of heads", which is sufficient: it loses nothing about θ). For discrete
data this rejection sampler is exact — approximate Bayesian computation (Pritchard et al. 1999;
Sisson, Fan & Beaumont 2018, arXiv:1802.09720) with no approximation — and the accepted fraction
is the evidence p(k = 14). Continuous data never match exactly: that is where step 2 begins.

The figure: the posterior sharpening as the flips come in (closed form); the closed form against
the histogram of exact-match rejection draws; and the posterior predictive of the next 20 flips,
the beta-binomial against simulations from the accepted θ. Printed: posterior mean and 95%
interval from both, a Kolmogorov–Smirnov test of the draws against Beta(16, 8), and the
acceptance rate against the exact evidence.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

import lfi  # noqa: E402

FLIPS, HEADS, ALPHA, BETA = 20, 14, 2.0, 2.0
BUDGETS = {"full": 200_000, "ci": 20_000}  # prior simulations for the rejection sampler


def main(budget: str = "full", out: str | Path = "examples-out") -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n_sims = BUDGETS[budget]
    rng = np.random.default_rng(0)
    flips = rng.permutation(np.r_[np.ones(HEADS), np.zeros(FLIPS - HEADS)])  # the data, in order

    # closed form: Beta(α + heads, β + tails)
    model = lfi.conjugate.BetaBernoulli(ALPHA, BETA)
    exact = model.posterior(flips)
    dist = exact.model.distribution()
    lo, hi = dist.ppf([0.025, 0.975])

    # simulation only: θ ~ prior, 20 flips each, keep θ whose number of heads is exactly 14
    prior = lfi.BoxUniform([0.0], [1.0])  # only its support matters: θ comes from Beta(2, 2)
    theta = rng.beta(ALPHA, BETA, (n_sims, 1))
    x_sim = (rng.random((n_sims, FLIPS)) < theta).astype(np.float32)  # the simulator
    heads = lambda x: x.sum(axis=1, keepdims=True)  # noqa: E731  (the sufficient summary)
    abc = lfi.RejectionABC(prior, summary=heads, eps=0.0, scale=None)
    abc = abc.fit(theta, x_sim, x_o=flips)
    draws = np.asarray(abc.particles)[:, 0]
    a_lo, a_hi = np.quantile(draws, [0.025, 0.975])
    ks = stats.kstest(draws, dist.cdf)
    evidence = float(stats.betabinom(FLIPS, ALPHA, BETA).pmf(HEADS))
    accept = len(draws) / n_sims
    se = float(dist.std() / np.sqrt(len(draws)))

    print(
        f"closed form   Beta({exact.model.alpha:g}, {exact.model.beta:g}): mean "
        f"{dist.mean():.4f}, 95% [{lo:.4f}, {hi:.4f}]"
    )
    print(
        f"exact-match   {len(draws)} of {n_sims} θ kept: mean {draws.mean():.4f} "
        f"(± {se:.4f}), 95% [{a_lo:.4f}, {a_hi:.4f}]"
    )
    print(f"KS test of the draws against Beta(16, 8): p = {ks.pvalue:.3f}")
    print(f"acceptance {accept:.4f} vs the evidence p(k = {HEADS}) = {evidence:.4f}")

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    grid = np.linspace(0, 1, 401)
    ax = axes[0]
    for i, n in enumerate((0, 1, 5, 20)):
        d = model.update(flips[:n]).distribution() if n else model.distribution()
        flipped = f"after {n} flip{'s' * (n > 1)}, {int(flips[:n].sum())} heads"
        label = flipped if n else "prior Beta(2, 2)"
        ax.plot(grid, d.pdf(grid), color=f"C{i}" if n else "0.5", label=label)
    ax.set_xlabel("θ = P(heads)")
    ax.set_ylabel("density")
    ax.set_title("Closed-form posterior as the flips come in", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes[1]
    ax.hist(draws, bins=40, density=True, color="C0", alpha=0.5, label="exact-match rejection")
    ax.plot(grid, dist.pdf(grid), "k-", lw=2, label="closed form Beta(16, 8)")
    ax.axvspan(lo, hi, color="0.85", zorder=0, label="95% interval (closed form)")
    ax.set_xlabel("θ = P(heads)")
    ax.set_title(
        f"Simulation alone recovers it: {len(draws)} of {n_sims} θ kept\n"
        f"mean {draws.mean():.3f} vs {dist.mean():.3f}, KS p = {ks.pvalue:.2f}",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="upper left")

    ax = axes[2]
    counts = np.arange(FLIPS + 1)
    predictive = stats.betabinom(FLIPS, exact.model.alpha, exact.model.beta).pmf(counts)
    k_new = rng.binomial(FLIPS, draws)
    sim_pmf = np.bincount(k_new, minlength=FLIPS + 1) / len(k_new)
    ax.bar(counts, sim_pmf, color="C0", alpha=0.5, label="simulated from the kept θ")
    ax.plot(counts, predictive, "ko-", ms=3, label="beta-binomial (closed form)")
    ax.set_xlabel("heads in the next 20 flips")
    ax.set_ylabel("probability")
    ax.set_title("Posterior predictive of the next 20 flips", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(
        f"Coin with a Beta(2, 2) prior, {HEADS} heads in {FLIPS} flips: "
        "the conjugate posterior and exact-match rejection agree"
    )
    fig.tight_layout()
    path = out / "01_conjugate.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")
    return {
        "exact_mean": float(dist.mean()),
        "exact_interval": (float(lo), float(hi)),
        "mean": float(draws.mean()),
        "mean_se": se,
        "interval": (float(a_lo), float(a_hi)),
        "ks_pvalue": float(ks.pvalue),
        "num_accepted": len(draws),
        "acceptance": accept,
        "evidence": evidence,
        "num_simulations": n_sims,
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
