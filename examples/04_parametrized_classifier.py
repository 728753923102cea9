"""Step 4: the parametrized classifier — one network A(x, θ) for the ratio at every θ.

    python examples/04_parametrized_classifier.py [--ci] [--out DIR]

Step 3 learned one ratio between two fixed hypotheses. Giving the classifier θ as an extra input
turns it into A(x, θ) ≈ log p(x | θ) / p(x | θ_ref) for all θ at once (Cranmer, Pavez & Louppe
2015, arXiv:1506.02169; parametrized networks, Baldi et al. 2016, arXiv:1601.07913): draw θ from
the prior, simulate x ~ p(x | θ) (class 1) and x ~ p(x | θ_ref) (class 0), show the network θ
with both, and repeat. θ_ref's term does not depend on θ, so for n i.i.d. events Σ_i A(x_i, θ) is
the log likelihood up to a constant: maximum likelihood, likelihood-ratio tests and confidence
intervals follow, without ever writing p(x | θ) down (``lfi.CARL``, ``lfi.frequentist``).

The simulator is step 3's particle chain (``lfi.tasks.get("particle_chain")``), θ ~ U[0, 3],
θ_ref = 1.5; its exact likelihood (by quadrature) is used only to check.

The figure: A(x, θ) across θ for three single events, learned (dashed) against exact (solid);
and q(θ) = −2 [ℓ(θ) − ℓ(θ̂)] for 50 events simulated at θ = 1.2, learned against exact, with the
95% threshold of Wilks' theorem. Printed: the MLE and 95% interval from both.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import chi2  # noqa: E402

import lfi  # noqa: E402
from lfi import frequentist as fq  # noqa: E402

THETA_REF, THETA_TRUE, NUM_EVENTS = 1.5, 1.2, 50
BUDGETS = {  # prior draws θ (each with one x at θ and one at θ_ref), training epochs at most
    "full": dict(n=30_000, epochs=200),
    "ci": dict(n=3_000, epochs=30),
}


def main(budget: str = "full", out: str | Path = "examples-out") -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = BUDGETS[budget]
    task = lfi.tasks.get("particle_chain")
    data = lfi.simulate_carl_data(
        task.simulator, task.prior, [THETA_REF], cfg["n"], seed=0, progress=False
    )
    carl = lfi.CARL(task.prior, [THETA_REF], max_epochs=cfg["epochs"], progress=False)
    carl = carl.fit(*data, seed=0)
    exact = fq.ExactLikelihood(task)  # log p(x | θ) by quadrature, only to compare

    grid = fq.grid(0.0, 3.0, 150, interior=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    examples = np.asarray(task.simulate(np.array([[0.5], [1.5], [2.5]]), seed=7))
    for k, x in enumerate(examples):
        learned = np.asarray(carl.log_ratio(x, grid))
        true = exact.log_ratio(x[None], grid) - exact.log_ratio(x[None], [[THETA_REF]])[0]
        label = f"x = ({x[0]:.2f}, {x[1]:.1f})"
        left.plot(grid[:, 0], true, "-", color=f"C{k}", label=f"{label} exact")
        left.plot(grid[:, 0], learned, "--", color=f"C{k}", label=f"{label} learned")
    left.axvline(THETA_REF, color="0.6", lw=0.8)
    left.axhline(0.0, color="0.6", lw=0.8)
    left.set_ylim(-8, 4)
    left.set_xlabel("θ")
    left.set_ylabel("log p(x | θ) / p(x | θ_ref = 1.5)")
    left.set_title("One network, every θ: A(x, θ) for three single events", fontsize=10)
    left.legend(fontsize=7, ncol=1, loc="lower center")

    events = np.asarray(task.simulate(np.full((NUM_EVENTS, 1), THETA_TRUE), seed=11))
    results = {}
    for name, est, style in (("exact", exact, "k-"), ("parametrized classifier", carl, "C3--")):
        cs = fq.confidence_set(est, events, grid, level=0.95)
        lo, hi = cs.interval()
        theta_hat = float(fq.mle(est, events, grid)[0])
        results[name] = dict(mle=theta_hat, interval=(lo, hi))
        print(f"{name:<24} MLE {theta_hat:.3f}, 95% interval [{lo:.3f}, {hi:.3f}]")
        right.plot(
            grid[:, 0], cs.q, style, label=f"{name}: θ̂ {theta_hat:.2f}, [{lo:.2f}, {hi:.2f}]"
        )
    right.axhline(chi2.ppf(0.95, 1), color="0.5", lw=0.8, label="Wilks 95% threshold")
    right.axvline(THETA_TRUE, color="0.3", lw=0.8, ls=":", label=f"true θ = {THETA_TRUE}")
    right.set_ylim(0, 12)
    right.set_xlim(0.6, 2.2)
    right.set_xlabel("θ")
    right.set_ylabel("q(θ) = −2 [ℓ(θ) − ℓ(θ̂)]")
    right.set_title(
        f"q(θ) and 95% intervals from {NUM_EVENTS} events at θ = {THETA_TRUE}", fontsize=10
    )
    right.legend(fontsize=8, loc="upper right")
    fig.suptitle(
        f"Parametrized classifier (CARL) trained on {cfg['n']} prior draws: its "
        "A(x, θ) follows the exact log likelihood ratio across θ"
    )
    fig.tight_layout()
    path = out / "04_parametrized_classifier.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")
    return {
        "exact": results["exact"],
        "learned": results["parametrized classifier"],
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
