"""Step 3: the likelihood-ratio trick — a classifier between θ0 and θ1 learns p(x|θ1) / p(x|θ0).

    python examples/03_likelihood_ratio_trick.py [--ci] [--out DIR]

By the Neyman–Pearson lemma the best statistic to tell two hypotheses apart is the likelihood
ratio r(x) = p(x | θ1) / p(x | θ0). A simulator cannot evaluate it, but it can produce examples
of both classes, and a classifier trained by binary cross-entropy on equally many x ~ p(x | θ0)
(label 0) and x ~ p(x | θ1) (label 1) converges to s(x) = p(θ1 | x) = σ(log r(x)): its logit
is the log likelihood ratio (Cranmer, Pavez & Louppe 2015, arXiv:1506.02169;
``lfi.ClassifierRatio``).

The simulator is the lecture's chain (``lfi.tasks.get("particle_chain")``): a particle of energy
z_p ~ N(θ, 0.5²) showers into z_h ~ Poisson(2 exp(z_p / 2)) secondaries, and the detector reads
x = (energy, multiplicity) with noise. p(x | θ) sums over z_h and integrates over z_p, which lfi
does by quadrature only to check the classifier: θ0 = 1, θ1 = 1.5.

The figure: the two classes in the detector plane with the exact log r contours (solid) and the
learned ones (dashed); learned against exact log r on fresh simulations; and the ROC curves of
the test "reject θ0 when the statistic is large" for the exact ratio, the learned ratio and
each measured quantity alone. Printed: R² and RMSE of the learned log r, and the ROC AUCs: the
learned ratio matches the exact one, the most powerful test; a single hand-picked quantity is
no better (here the energy is nearly as good, the multiplicity much worse).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import rankdata  # noqa: E402

import lfi  # noqa: E402

THETA0, THETA1 = 1.0, 1.5
BUDGETS = {  # simulations per class, training epochs at most, test simulations per class
    "full": dict(n=20_000, epochs=200, test=5_000),
    "ci": dict(n=2_000, epochs=30, test=1_000),
}


def auc(score0: np.ndarray, score1: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a θ1 event > score of a θ0 event), ties halved."""
    ranks = rankdata(np.concatenate([score0, score1]))  # Mann–Whitney U, ties averaged
    n0, n1 = len(score0), len(score1)
    return float((ranks[n0:].sum() - n1 * (n1 + 1) / 2) / (n0 * n1))


def roc(score0: np.ndarray, score1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rate, true-positive rate) over all thresholds."""
    cuts = np.quantile(np.concatenate([score0, score1]), np.linspace(0, 1, 201))
    return np.mean(score0[:, None] > cuts, 0), np.mean(score1[:, None] > cuts, 0)


def main(budget: str = "full", out: str | Path = "examples-out") -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = BUDGETS[budget]
    task = lfi.tasks.get("particle_chain")

    def simulate(theta: float, n: int, seed: int) -> np.ndarray:
        return np.asarray(task.simulate(np.full((n, 1), theta), seed=seed))

    def exact_log_r(x: np.ndarray) -> np.ndarray:  # by quadrature; the classifier never sees it
        def ll(theta):
            return np.asarray(task.log_likelihood(np.full((len(x), 1), theta), x))

        return ll(THETA1) - ll(THETA0)

    x0, x1 = simulate(THETA0, cfg["n"], 0), simulate(THETA1, cfg["n"], 1)
    ratio = lfi.ClassifierRatio(max_epochs=cfg["epochs"], progress=False).fit(x0, x1, seed=0)

    t0, t1 = simulate(THETA0, cfg["test"], 2), simulate(THETA1, cfg["test"], 3)
    test = np.concatenate([t0, t1])
    exact, learned = exact_log_r(test), np.asarray(ratio.log_ratio(test))
    rmse = float(np.sqrt(np.mean((learned - exact) ** 2)))
    r2 = float(1 - np.mean((learned - exact) ** 2) / np.var(exact))
    n = cfg["test"]
    aucs = {
        "exact ratio": auc(exact[:n], exact[n:]),
        "learned ratio": auc(learned[:n], learned[n:]),
        "energy alone": auc(t0[:, 0], t1[:, 0]),
        "multiplicity alone": auc(t0[:, 1], t1[:, 1]),
    }
    epochs = len(ratio.history.train_loss)
    print(f"θ0 = {THETA0}, θ1 = {THETA1}: {cfg['n']} simulations per class, {epochs} epochs")
    print(
        f"learned log r on {2 * n} fresh simulations: R² {r2:.3f}, RMSE {rmse:.3f} "
        f"(exact log r has sd {np.std(exact):.3f})"
    )
    for name, value in aucs.items():
        print(f"ROC AUC, {name:<18} {value:.4f}")

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    ax = axes[0]
    show = slice(0, 1500)
    ax.scatter(*x0[show].T, s=3, alpha=0.35, color="C0", label="x ~ p(x | θ0 = 1)")
    ax.scatter(*x1[show].T, s=3, alpha=0.35, color="C1", label="x ~ p(x | θ1 = 1.5)")
    e = np.linspace(*np.quantile(np.r_[x0[:, 0], x1[:, 0]], [0.002, 0.998]), 70)
    m = np.linspace(*np.quantile(np.r_[x0[:, 1], x1[:, 1]], [0.002, 0.998]), 70)
    grid = np.stack(np.meshgrid(e, m, indexing="ij"), -1).reshape(-1, 2)
    levels = [-1.0, 0.0, 1.0]
    for values, style in ((exact_log_r(grid), "solid"), (np.asarray(ratio.log_ratio(grid)), "--")):
        cs = ax.contour(
            e,
            m,
            values.reshape(len(e), len(m)).T,
            levels=levels,
            colors="k",
            linestyles=style,
            linewidths=1.2,
        )
        if style == "solid":
            ax.clabel(cs, fmt="log r = %g", fontsize=7)
    ax.plot([], [], "k-", label="exact log r")
    ax.plot([], [], "k--", label="learned log r")
    ax.set_xlim(e[0], e[-1])
    ax.set_ylim(m[0], m[-1])
    ax.set_xlabel("measured energy x₁")
    ax.set_ylabel("measured multiplicity x₂")
    ax.set_title("The two classes and the contours of log r(x)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", markerscale=3)

    ax = axes[1]
    ax.scatter(exact, learned, s=3, alpha=0.3, color="C2")
    lim = np.quantile(exact, [0.001, 0.999])
    ax.plot(lim, lim, "k-", lw=1, label="learned = exact")
    ax.set_xlabel("exact log p(x | θ1) / p(x | θ0)  (quadrature)")
    ax.set_ylabel("classifier logit  log r̂(x)")
    ax.set_title(
        f"Logit vs exact log ratio on fresh simulations\nR² {r2:.3f}, RMSE {rmse:.3f}", fontsize=10
    )
    ax.legend(fontsize=8, loc="upper left")

    ax = axes[2]
    for (name, value), (s0, s1), style in zip(
        aucs.items(),
        (
            (exact[:n], exact[n:]),
            (learned[:n], learned[n:]),
            (t0[:, 0], t1[:, 0]),
            (t0[:, 1], t1[:, 1]),
        ),
        ("k-", "C3--", "C0:", "C2-."),
    ):
        ax.plot(*roc(s0, s1), style, lw=1.5, label=f"{name} (AUC {value:.3f})")
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8)
    ax.set_xlabel("false-positive rate (θ0 events called θ1)")
    ax.set_ylabel("true-positive rate")
    ax.set_title("Neyman–Pearson: the ratio is the most powerful test", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(
        "The likelihood-ratio trick: a classifier of θ0 = 1 vs θ1 = 1.5 simulations "
        "learns the exact log likelihood ratio as its logit"
    )
    fig.tight_layout()
    path = out / "03_likelihood_ratio_trick.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")
    return {
        "r2": r2,
        "rmse": rmse,
        "sd_exact": float(np.std(exact)),
        "auc": aucs,
        "num_test": 2 * n,
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
