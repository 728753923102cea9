"""Step 5: neural posterior estimation with a normalizing flow.

    python examples/05_npe_flows.py [--ci] [--out DIR]

Learning p(θ | x) is supervised learning: minimising E_{θ,x}[−log q_φ(θ | x)] over pairs
(θ ~ p(θ), x ~ p(x | θ)) drives q_φ to the true posterior for every x at once — the lecture's
"power of amortization", which needs only simulations. The catch is the family q_φ: a network
that outputs a mean and a variance can only give Gaussians. A conditional normalizing flow, a
learnable bijection of a simple density whose parameters depend on x, can take any shape
(Papamakarios & Murray 2016, arXiv:1605.06376; Greenberg, Nonnenmacher & Macke 2019,
arXiv:1905.07488; neural spline flows, Durkan et al. 2019, arXiv:1906.04032). ``lfi.NPE`` trains
one with lfi's shared loop, in the prior's unconstrained space so no mass leaks outside it.

The task is two moons (``lfi.tasks.get("two_moons")``, Greenberg et al. 2019; as in sbibm,
Lueckmann et al. 2021, arXiv:2101.04653): its posterior is two crescents, and the task has
reference posterior samples.

The figure: at observation 1, the best any Gaussian family could do (the reference's own mean
and covariance) against the reference's two crescents; then the one trained flow at
observations 1, 2 and 3, with no retraining between them, zoomed on one crescent with the
reference's 50% and 95% regions (kernel density estimate) underneath. Titles and printout: C2ST
against the reference (0.5: indistinguishable, 1: disjoint; Lopez-Paz & Oquab,
arXiv:1610.06545; at the CI budget on 300 draws and 2 folds instead of 5).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import gaussian_kde  # noqa: E402

import lfi  # noqa: E402
from lfi.diagnostics import c2st  # noqa: E402

BUDGETS = {  # training simulations, epochs at most, draws per posterior, C2ST folds
    "full": dict(n=10_000, epochs=1000, draws=2000, folds=5),
    "ci": dict(n=1_000, epochs=30, draws=300, folds=2),
}
OBSERVATIONS = (1, 2, 3)


def main(budget: str = "full", out: str | Path = "examples-out") -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = BUDGETS[budget]
    task = lfi.tasks.get("two_moons")
    theta, x = lfi.simulate(task.simulator, task.prior, cfg["n"], seed=0, progress=False)
    posterior = lfi.NPE(task.prior, max_epochs=cfg["epochs"], progress=False).fit(theta, x, seed=0)
    history = posterior.history
    print(
        f"NPE (neural spline flow) on {cfg['n']} simulations: {len(history.train_loss)} epochs, "
        f"{history.seconds:.1f} s"
    )

    fig, axes = plt.subplots(1, 1 + len(OBSERVATIONS), figsize=(4 * (1 + len(OBSERVATIONS)), 4.3))
    results = {}
    for k, obs in enumerate(OBSERVATIONS):
        x_o = task.observation(obs)
        reference = np.asarray(task.reference_posterior(obs, cfg["draws"], seed=0))
        draws = np.asarray(posterior.sample(cfg["draws"], x=x_o, seed=k))
        score = float(c2st(reference, draws, n_folds=cfg["folds"]))
        results[obs] = dict(c2st=score, reference=reference, draws=draws)
        print(f"observation {obs}: C2ST {score:.3f} (NPE vs reference, {cfg['draws']} draws each)")
        if k == 0:  # the best Gaussian: the reference's own mean and covariance
            rng = np.random.default_rng(0)
            gauss = rng.multivariate_normal(reference.mean(0), np.cov(reference.T), cfg["draws"])
            results["gaussian"] = dict(c2st=float(c2st(reference, gauss, n_folds=cfg["folds"])))
            print(
                f"observation {obs}: C2ST {results['gaussian']['c2st']:.3f} for the best Gaussian"
            )
            ax = axes[0]
            ax.scatter(*gauss.T, s=2, alpha=0.3, color="C1", label="best Gaussian q")
            ax.scatter(*reference.T, s=2, alpha=0.5, color="k", label="reference (2 crescents)")
            ax.set_xlim(-1, 1)
            ax.set_ylim(-1, 1)
            ax.set_title(
                f"Best Gaussian, observation {obs}: C2ST {results['gaussian']['c2st']:.2f}",
                fontsize=10,
            )
            ax.legend(fontsize=8, markerscale=4, loc="upper left")
            ax.set_ylabel("θ₂")
        # zoom on one of the two mirror-image crescents: reference as density contours
        ax = axes[1 + k]
        one = reference[reference.sum(1) > 0]
        lo, hi = one.min(0), one.max(0)
        pad = 0.25 * (hi - lo).max()
        g1 = np.linspace(lo[0] - pad, hi[0] + pad, 120)
        g2 = np.linspace(lo[1] - pad, hi[1] + pad, 120)
        kde = gaussian_kde(one.T, bw_method=0.15)  # narrower than Scott: a thin crescent
        dens = kde(np.stack(np.meshgrid(g1, g2, indexing="ij")).reshape(2, -1)).reshape(120, 120)
        at_ref = np.sort(kde(one.T))
        levels = [at_ref[int(0.05 * len(at_ref))], at_ref[int(0.5 * len(at_ref))]]
        ax.contourf(g1, g2, dens.T, levels=[levels[0], levels[1], np.inf], colors=["0.85", "0.6"])
        ax.scatter(*draws.T, s=2, alpha=0.5, color="C0", label="NPE flow draws")
        ax.fill_between([], [], color="0.6", label="reference 50%")
        ax.fill_between([], [], color="0.85", label="reference 95%")
        ax.set_xlim(g1[0], g1[-1])
        ax.set_ylim(g2[0], g2[-1])
        ax.set_title(
            f"NPE flow, observation {obs}: C2ST {score:.2f}\n(zoom on one of the two crescents)",
            fontsize=10,
        )
        ax.legend(fontsize=8, markerscale=4, loc="upper left")
    for ax in axes:
        ax.set_xlabel("θ₁")
    fig.suptitle(
        f"Neural posterior estimation on two moons ({cfg['n']} simulations): one "
        "trained flow for every observation (C2ST in each title: 0.5 = the reference)"
    )
    fig.tight_layout()
    path = out / "05_npe_flows.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")
    return {"results": results, "num_epochs": len(history.train_loss), "figures": [path]}


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ci", action="store_true", help="tiny budget, as run in CI")
    parser.add_argument("--out", default="examples-out", help="folder for the PNG")
    args = parser.parse_args(argv)
    main("ci" if args.ci else "full", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
