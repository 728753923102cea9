"""Step 6: neural ratio estimation — the posterior from classifying joint against marginal pairs.

    python examples/06_nre.py [--ci] [--out DIR]

Bayes' theorem rewritten, p(θ | x) = p(θ) · p(x, θ) / (p(x) p(θ)), puts a density ratio between
prior and posterior: the joint density over the product of the marginals. Both can be sampled —
pairs (θ, x ~ p(x | θ)) from the joint, and the same θ's shuffled against other x's from the
marginals — so the likelihood-ratio trick of step 3 applies: a classifier d(θ, x) of joint
against marginal pairs has the logit log r(x, θ) = log p(θ | x) / p(θ) (Hermans, Begy & Louppe
2020, "Likelihood-free MCMC with amortized approximate ratio estimators", arXiv:1903.04057;
``lfi.NRE(prior, variant="a")``; the contrastive variants B and C: Durkan et al. 2020,
arXiv:2002.03712, Miller et al. 2022, arXiv:2210.06170). The posterior prior × r̂ is known up
to a constant and sampled by MCMC; like NPE, one classifier serves every observation.

The task is step 2's ballistic throw (``lfi.tasks.get("ballistic")``), whose exact posterior
lfi computes on a grid by quadrature; NRE never sees the likelihood.

The figure: the classifier's posterior prior × r̂(x_o, θ) on a θ grid (colour) under the exact
posterior's 68% and 95% contours (white), at two observations with the same network; then MCMC
draws at observation 1 over the exact regions. Printed: per observation, the share of draws in
the exact 95% region, the C2ST against exact draws (not at the CI budget: it is slow), and the
sampler's R-hat.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import lfi  # noqa: E402
from lfi.diagnostics import c2st  # noqa: E402

BUDGETS = {  # training simulations, epochs at most, draws, grid points per axis, C2ST or not
    "full": dict(n=10_000, epochs=1000, draws=1000, grid=120, c2st=True),
    "ci": dict(n=2_000, epochs=30, draws=500, grid=60, c2st=False),
}
OBSERVATIONS = (1, 6)


def _step2():
    """examples/02_abc_ballistic.py, for its exact grid posterior and helpers."""
    path = Path(__file__).with_name("02_abc_ballistic.py")
    spec = importlib.util.spec_from_file_location("abc_ballistic", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(budget: str = "full", out: str | Path = "examples-out") -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = BUDGETS[budget]
    step2 = _step2()
    task = lfi.tasks.get("ballistic")
    theta, x = lfi.simulate(task.simulator, task.prior, cfg["n"], seed=0, progress=False)
    nre = lfi.NRE(task.prior, variant="a", max_epochs=cfg["epochs"], progress=False)
    posterior = nre.fit(theta, x, seed=0)
    print(f"NRE-A on {cfg['n']} simulations: {len(posterior.history.train_loss)} epochs")

    fig, axes = plt.subplots(1, len(OBSERVATIONS) + 1, figsize=(13, 4.3), sharey=True)
    results = {}
    for k, obs in enumerate(OBSERVATIONS):
        x_o = np.asarray(task.observation(obs))
        a, b, p = step2.exact_posterior(task, x_o, cfg["grid"])
        level95, level68 = step2.hpd_levels(p)
        # the learned map on cell centres: the exact grid's outer rows lie on the prior's
        # edges, where the network extrapolates (unconstrained u = ±16 against training's ±9)
        a_in, b_in = ((v[0] + (np.arange(len(v)) + 0.5) * (v[-1] - v[0]) / len(v)) for v in (a, b))
        grid = np.stack(np.meshgrid(a_in, b_in, indexing="ij"), -1).reshape(-1, 2)
        log_post = np.asarray(posterior.log_prob(grid, x=x_o)).reshape(p.shape)  # log prior + logit
        learned = np.exp(log_post - log_post.max())
        draws = np.asarray(posterior.sample(cfg["draws"], x=x_o, seed=1 + k))
        rhat = float(np.max(posterior.diagnostics.rhat))
        reference = step2.grid_draws(a, b, p, cfg["draws"], seed=0)
        score = float(c2st(reference, draws)) if cfg["c2st"] else float("nan")
        in95 = float(np.mean(step2.density_at(a, b, p, draws) >= level95))
        prior_in95 = float(np.mean(p >= level95))  # the region's share of the uniform prior
        results[obs] = dict(c2st=score, in95=in95, prior_in95=prior_in95, rhat=rhat)
        c2st_text = f", C2ST {score:.3f}" if cfg["c2st"] else ""
        print(
            f"observation {obs}: {in95:.0%} of draws in the exact 95% region{c2st_text}, "
            f"max R-hat {rhat:.3f}"
        )
        ax = axes[k]
        ax.pcolormesh(a_in, b_in, learned.T, cmap="viridis", shading="auto")
        ax.contour(a, b, p.T, levels=[level95, level68], colors="w", linewidths=1.0)
        ax.plot(*task.true_parameters(obs), "r*", ms=10)
        ax.set_title(
            f"observation {obs}: prior × r̂(x_o, θ) (colour)\nexact 68% / 95% contours (white)",
            fontsize=10,
        )
        ax.set_xlabel("mean launch speed [m/s]")
        if k == 0:  # kept for the last panel
            first = dict(a=a, b=b, p=p, levels=(level95, level68), draws=draws)
    a, b, p, draws = first["a"], first["b"], first["p"], first["draws"]
    level95, level68 = first["levels"]
    score, in95 = results[OBSERVATIONS[0]]["c2st"], results[OBSERVATIONS[0]]["in95"]
    ax = axes[-1]
    ax.contourf(a, b, p.T, levels=[level95, level68, p.max() * 1.01], colors=["0.85", "0.6"])
    ax.scatter(*draws.T, s=4, alpha=0.5, color="C0", label="MCMC draws")
    ax.fill_between([], [], color="0.6", label="exact 68% region")
    ax.fill_between([], [], color="0.85", label="exact 95% region")
    ax.set_title(
        f"observation {OBSERVATIONS[0]}: MCMC draws from prior × r̂\n{in95:.0%} in exact 95%"
        + (f", C2ST {score:.2f}" if cfg["c2st"] else ""),
        fontsize=10,
    )
    ax.set_xlabel("mean launch speed [m/s]")
    ax.legend(fontsize=7, loc="upper right", markerscale=2)
    axes[0].set_ylabel("mean launch angle [rad]")
    fig.suptitle(
        f"Neural ratio estimation on the ballistic throw ({cfg['n']} simulations): one "
        "classifier of joint vs marginal pairs gives the posterior at every observation"
    )
    fig.tight_layout()
    path = out / "06_nre.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")
    return {"results": results, "figures": [path]}


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ci", action="store_true", help="tiny budget, as run in CI")
    parser.add_argument("--out", default="examples-out", help="folder for the PNG")
    args = parser.parse_args(argv)
    main("ci" if args.ci else "full", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
