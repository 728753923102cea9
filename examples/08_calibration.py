"""Step 8: calibration checks — does the posterior put the true θ where it says it does?

    python examples/08_calibration.py [--ci] [--out DIR]

A posterior can look plausible at one observation and still be wrong on average. Calibration
checks draw test pairs θ* ~ p(θ), x* ~ p(x | θ*) and ask, without retraining anything, whether
θ* falls inside the posterior at x* as often as its credibility levels claim:

- simulation-based calibration (SBC; Talts et al. 2018, arXiv:1804.06788): the rank of θ*_d
  among posterior draws is uniform; its ECDF minus the uniform CDF should stay inside a
  simultaneous band (Säilynoja, Bürkner & Vehtari 2022, arXiv:2103.10522);
- expected coverage of highest-density regions (Hermans et al. 2022, "A trust crisis in
  simulation-based inference?", arXiv:2110.06581): the α-region holds θ* a fraction α of the
  time; below the diagonal is over-confident, above is conservative;
- TARP (Lemos et al. 2023, arXiv:2302.03026): coverage of balls around random points, from
  samples alone, testing the joint posterior rather than its marginals.

The model has an exact answer to calibrate against: θ ~ N(0, I₂), x ~ N(θ, 0.5² I₂), whose
posterior is Normal–Normal conjugate in each coordinate (``lfi.conjugate.NormalNormal``, step
1). Four posteriors go through the same checks (``lfi.diagnostics.sbc``, ``expected_coverage``,
``tarp``): the exact one, NPE trained on this simulator (step 5), and the exact one made
over-confident (standard deviations × 0.6) and under-confident (× 1.6), to show what failing
looks like. A posterior predictive check of NPE at one observation
(``lfi.diagnostics.posterior_predictive``, drawn by ``lfi.plot.predictive``) is written beside.

The figure: one row per posterior; SBC rank ECDF − uniform with its 95% band, HPD coverage
against the credibility level with the simultaneous 95% KS band of a calibrated posterior's
levels (and the KS p-value), and TARP's coverage curve with its KS band; the caption names the
posteriors that pass all three checks. Printed: coverage at 50/80/95%, the SBC and TARP
verdicts, and TARP's ATC.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import kstest, kstwo  # noqa: E402

import lfi  # noqa: E402
from lfi.calibration import ecdf_band  # noqa: E402

PRIOR_SD, NOISE_SD = 1.0, 0.5
BUDGETS = {  # NPE training simulations, epochs at most, test pairs, draws per test pair
    "full": dict(n=5_000, epochs=1000, tests=500, draws=200),
    "ci": dict(n=1_000, epochs=40, tests=150, draws=100),
}


def simulator(theta, rng):
    """x ~ N(θ, 0.5²) in each coordinate (a batched numpy simulator)."""
    return theta + NOISE_SD * rng.standard_normal(theta.shape)


class Exact:
    """The exact posterior at any x, from ``lfi.conjugate.NormalNormal`` per coordinate, with
    its standard deviations multiplied by ``scale`` (1: exact; < 1 over-, > 1 under-confident).
    The interface the calibration checks use: ``sample(n, x, seed)`` and ``log_prob(θ, x)``."""

    def __init__(self, scale: float = 1.0):
        self.scale, self.model = scale, lfi.conjugate.NormalNormal(0.0, PRIOR_SD, NOISE_SD)

    def _moments(self, x) -> tuple[np.ndarray, np.ndarray]:
        updated = [self.model.update([float(v)]) for v in np.ravel(x)]  # posterior hyperparameters
        mean = np.array([m.mean for m in updated])
        return mean, np.array([m.std for m in updated]) * self.scale

    def sample(self, n: int, x, seed: int = 0) -> np.ndarray:
        mean, sd = self._moments(x)
        return mean + sd * np.random.default_rng(seed).standard_normal((int(n), len(mean)))

    def log_prob(self, theta, x) -> np.ndarray:
        mean, sd = self._moments(x)
        z = (np.asarray(theta) - mean) / sd
        return np.sum(-0.5 * z**2 - np.log(sd) - 0.5 * np.log(2 * np.pi), axis=-1)


def main(budget: str = "full", out: str | Path = "examples-out") -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = BUDGETS[budget]
    prior = lfi.Normal([0.0, 0.0], [PRIOR_SD, PRIOR_SD])
    theta, x = lfi.simulate(simulator, prior, cfg["n"], seed=0, progress=False)
    npe = lfi.NPE(prior, max_epochs=cfg["epochs"], progress=False).fit(theta, x, seed=0)
    theta_t, x_t = lfi.simulate(simulator, prior, cfg["tests"], seed=1, progress=False)
    posteriors = {
        "exact": Exact(1.0),
        f"NPE ({cfg['n']} simulations)": npe,
        "over-confident (sd × 0.6)": Exact(0.6),
        "under-confident (sd × 1.6)": Exact(1.6),
    }
    n_tests, draws = len(theta_t), cfg["draws"]
    z, lo, hi = ecdf_band(n_tests, draws, 0.95)
    alpha = np.linspace(0, 1, 201)
    half = float(kstwo.ppf(0.95, n_tests))
    fig, axes = plt.subplots(len(posteriors), 3, figsize=(12, 2.9 * len(posteriors)))
    results = {}
    for row, (name, post) in zip(axes, posteriors.items()):
        sbc = lfi.diagnostics.sbc(post, theta_t, x_t, num_samples=draws, seed=2)
        cov = lfi.diagnostics.expected_coverage(post, theta_t, x_t, num_samples=draws, seed=3)
        tarp = lfi.diagnostics.tarp(post, theta_t, x_t, num_samples=draws, seed=4)
        results[name] = dict(
            coverage=cov.coverage,
            coverage_se=cov.stderr(),
            sbc=sbc.passed(),
            sbc_pvalues=sbc.pvalues,
            tarp=tarp.passed(),
            atc=tarp.atc,
            atc_se=tarp.atc_stderr,
        )
        c50, c80, c95 = cov.coverage
        # the HPD levels are U(0, 1) for a calibrated posterior: a KS test of all of them
        ks_p = float(kstest(cov.alphas, "uniform").pvalue)
        results[name]["coverage_ks_p"] = ks_p
        print(
            f"{name:<28} coverage 50/80/95%: {c50:.2f}/{c80:.2f}/{c95:.2f} "
            f"(95%: ± {cov.stderr()[2]:.2f})"
            f"  SBC {'passed' if sbc.passed() else 'failed'}"
            f"  TARP {'passed' if tarp.passed() else 'failed'} (ATC {tarp.atc:+.3f})"
        )

        ax = row[0]  # SBC: ECDF of the ranks minus the uniform CDF
        j = np.round(z * (draws + 1)).astype(int)
        ax.fill_between(z, lo - z, hi - z, color="0.85", step="mid", label="95% band")
        for d in range(2):
            diff = np.mean(sbc.ranks[:, d][:, None] < j[None], 0) - z
            ax.plot(z, diff, drawstyle="steps-mid", color=f"C{d}", label=f"θ{d + 1}")
        ax.axhline(0, color="k", lw=0.6)
        ax.set_ylabel(name, fontsize=9)
        ax.set_ylim(-0.2, 0.2)  # one scale for all rows
        ax.set_title(f"SBC ranks: {'passed' if sbc.passed() else 'failed'}", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")

        ax = row[1]  # expected coverage of HPD regions
        a = np.sort(cov.alphas)
        covered = np.searchsorted(a, alpha, side="right") / len(a)
        ax.fill_between(  # simultaneous 95% band (KS), as TARP's: a pointwise one is left
            alpha, np.clip(alpha - half, 0, 1), np.clip(alpha + half, 0, 1), color="0.85"
        )  # somewhere by a calibrated curve more often than not
        ax.plot([0, 1], [0, 1], "k-", lw=0.6)
        ax.plot(alpha, covered, color="C3")
        ax.set_title(
            f"HPD coverage at 95%: {c95:.2f}; KS p {ks_p:.2g} "
            f"({'passed' if ks_p > 0.05 else 'failed'})",
            fontsize=9,
        )

        ax = row[2]  # TARP expected coverage probability
        f = np.sort(tarp.f)
        ecp = np.searchsorted(f, alpha, side="left") / len(f)
        ax.fill_between(
            alpha, np.clip(alpha - half, 0, 1), np.clip(alpha + half, 0, 1), color="0.85"
        )
        ax.plot([0, 1], [0, 1], "k-", lw=0.6)
        ax.plot(alpha, ecp, color="C2")
        ax.set_title(
            f"TARP: ATC {tarp.atc:+.3f} ± {tarp.atc_stderr:.3f}, "
            f"{'passed' if tarp.passed() else 'failed'}",
            fontsize=9,
        )
    axes[-1, 0].set_xlabel("fractional rank")
    axes[-1, 1].set_xlabel("credibility level of the HPD region")
    axes[-1, 2].set_xlabel("credibility level α")
    ok = lambda r: r["sbc"] and r["tarp"] and r["coverage_ks_p"] > 0.05  # noqa: E731
    passing = [n for n, r in results.items() if ok(r)]
    fig.suptitle(
        f"Calibration on {n_tests} test simulations (grey: 95% bands of a calibrated posterior); "
        f"passing all three checks: {', '.join(passing) or 'none'}.\nOver-confident posteriors "
        "cover too little (below the diagonal), under-confident ones too much (above)",
        fontsize=11,
    )
    fig.tight_layout()
    path = out / "08_calibration.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)

    x_o = np.array([1.0, -0.5])
    ppc = lfi.diagnostics.posterior_predictive(npe, simulator, x_o, num_samples=1000, seed=5)
    ppc_path = out / "08_calibration_predictive.png"
    ppc_fig = lfi.plot.predictive(ppc, labels=["x₁", "x₂"])
    verdict = "typical of" if ppc.passed() else "atypical of"
    ppc_fig.suptitle(
        f"Posterior predictive check of NPE at x_o = {x_o.tolist()}:\n"
        f"x_o (red) is {verdict} the simulations from its posterior draws",
        fontsize=10,
    )
    ppc_fig.savefig(ppc_path, dpi=100)
    print(
        f"posterior predictive of NPE at x_o = {x_o.tolist()}: quantiles "
        f"{np.round(ppc.quantiles, 2).tolist()}, {'passed' if ppc.passed() else 'failed'}"
    )
    print(f"wrote {path}, {ppc_path}")
    return {
        "results": results,
        "ppc_passed": ppc.passed(),
        "num_tests": n_tests,
        "figures": [path, ppc_path],
    }


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ci", action="store_true", help="tiny budget, as run in CI")
    parser.add_argument("--out", default="examples-out", help="folder for the PNGs")
    args = parser.parse_args(argv)
    main("ci" if args.ci else "full", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
