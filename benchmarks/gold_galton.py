"""Mining gold on the generalized Galton board: error of log r̂(x | θ0, θ1) against the exact ratio.

Brehmer, Louppe, Pavez & Cranmer (PNAS 2020, arXiv:1805.12244), Fig. 3: θ0 = −0.8, θ1 = −0.6,
the expected squared error E_{x ~ p(x | θ1)} [(log r̂(x | θ0, θ1) − log r(x | θ0, θ1))²], exact
over the 31 nails (p(x | θ) by dynamic programming), against the number N of training samples.

Protocol (every method gets N simulations, θ ~ U[−1, −0.4]):
- ratio methods (carl rolr rascal cascal alice alices): lfi.simulate_gold with θ_ref = θ1, half
  of the rows drawn at θ, half at θ1; the estimate is the parametrised A(x, θ0).
- nde, scandal: N pairs θ ~ prior, x ~ p(x | θ) with the joint score; categorical density over
  the 31 nails; the estimate is log p̂(x | θ0) − log p̂(x | θ1).
- sally: t̂(x) regressed on N/2 runs at θ1; then histograms of t̂ (10 quantile bins, +0.5 per
  bin) filled with N/4 runs at θ0 and N/4 at θ1 (the same budget N in total).

    python benchmarks/gold_galton.py --out benchmarks/results/gold_galton.json
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
from lfi.augment import run_augmented, simulate_gold
from lfi.methods.gold import GOLD_RATIO_METHODS, SALLY, GoldRatio
from lfi.methods.scandal import SCANDAL
from lfi.tasks import get

THETA0, THETA1 = -0.8, -0.6
NAILS = np.arange(31.0)[:, None]


def exact() -> tuple[np.ndarray, np.ndarray]:
    task = get("galton")
    p0 = np.asarray(task.extras["probabilities"](THETA0), np.float64)
    p1 = np.asarray(task.extras["probabilities"](THETA1), np.float64)
    ok = (p0 > 0) & (p1 > 0)
    log_r = np.where(ok, np.log(np.where(ok, p0, 1)) - np.log(np.where(ok, p1, 1)), 0.0)
    return log_r, np.where(ok, p1, 0.0)


def estimate(method: str, n: int, seed: int, alpha: float, options: dict) -> np.ndarray:
    """log r̂(x | θ0, θ1) at the 31 nails."""
    task = get("galton")
    prior, sim = task.prior, task.simulator
    if method in GOLD_RATIO_METHODS:
        data = simulate_gold(sim, prior, n, [THETA1], seed=seed, progress=False)
        est = GoldRatio(prior, [THETA1], method, alpha, progress=False, **options)
        est = est.fit(data, seed=seed)
        return np.array([float(est.log_ratio(x, [THETA0])) for x in NAILS])
    if method in ("nde", "scandal"):
        data = lfi.simulate(sim, prior, n, seed=seed, augmented=True, progress=False)
        a = 0.0 if method == "nde" else alpha
        est = SCANDAL(prior, a, bins=31, progress=False, **options).fit(data, seed=seed)
        ll = np.array([np.asarray(est.log_likelihood(x, [[THETA0], [THETA1]])) for x in NAILS])
        return ll[:, 0] - ll[:, 1]
    if method == "sally":
        k_train, k0, k1 = jax.random.split(jax.random.key(seed), 3)
        m = max(n // 2, 10)
        x, _, score = run_augmented(
            sim, np.full((m, 1), THETA1), np.full((m, 1, 1), THETA1), k_train, progress=False
        )
        data = lfi.GoldData(np.full((m, 1), THETA1, np.float32), x, score[:, 0])
        sally = SALLY(prior, [THETA1], progress=False, **options).fit(data, seed=seed)
        q = max(n // 4, 5)
        x0 = task.simulate(np.full((q, 1), THETA0), seed=k0)
        x1 = task.simulate(np.full((q, 1), THETA1), seed=k1)
        s0, s1 = (np.asarray(sally.summary(v))[:, 0] for v in (x0, x1))
        edges = np.unique(np.quantile(np.concatenate([s0, s1]), np.linspace(0, 1, 11)))
        edges[0], edges[-1] = -np.inf, np.inf
        h0 = np.histogram(s0, edges)[0] + 0.5
        h1 = np.histogram(s1, edges)[0] + 0.5
        log_ratio_bins = np.log(h0 / h0.sum()) - np.log(h1 / h1.sum())
        s = np.asarray(sally.summary(NAILS))[:, 0]
        return log_ratio_bins[np.clip(np.searchsorted(edges, s, side="right") - 1, 0, len(h0) - 1)]
    raise ValueError(f"method: unknown {method!r}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", default=[*GOLD_RATIO_METHODS, "nde", "scandal", "sally"])
    p.add_argument("--sizes", nargs="+", type=int, default=[200, 1000, 5000, 10000, 100000])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--out", default="benchmarks/results/gold_galton.json")
    args = p.parse_args(argv)
    log_r, w = exact()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(out.read_text()) if out.exists() else []
    for n in args.sizes:
        for method in args.methods:
            for seed in args.seeds:
                t0 = time.perf_counter()
                est = estimate(method, n, seed, args.alpha, {})
                mse = float(np.sum(w * (est - log_r) ** 2))
                runs.append(
                    dict(
                        method=method,
                        n=n,
                        seed=seed,
                        alpha=args.alpha,
                        mse=mse,
                        seconds=time.perf_counter() - t0,
                    )
                )
                print(
                    f"{method:<8} N={n:<7} seed {seed}: {mse:.5f} ({runs[-1]['seconds']:.1f} s)",
                    flush=True,
                )
                out.write_text(json.dumps(runs, indent=1))
                jax.clear_caches()
    out.with_suffix(".md").write_text(render(runs, " ".join(["python", *sys.argv])))
    plot(runs, out.with_suffix(".png"))
    return 0


def _means(runs: list[dict]) -> dict:
    table: dict = {}
    for r in runs:
        table.setdefault(r["method"], {}).setdefault(r["n"], []).append(r["mse"])
    return {m: {n: float(np.mean(v)) for n, v in d.items()} for m, d in table.items()}


# read off Brehmer et al. (PNAS 2020) Fig. 3 (../shared/anchors/mining_gold.md), approximate
PAPER = {
    "carl": {200: 0.133, 1000: 0.115, 5000: 0.048, 10000: 0.020},
    "nde": {200: 0.082, 1000: 0.069, 5000: 0.018, 10000: 0.004},
    "rolr": {200: 0.058, 1000: 0.013, 5000: 0.003, 10000: 0.003},
    "rascal": {200: 0.019, 1000: 0.007, 5000: 0.002, 10000: 0.002},
    "scandal": {200: 0.018, 1000: 0.0035, 5000: 0.002, 10000: 0.002},
}


def plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    means = _means(runs)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for m, d in means.items():
        ns = sorted(d)
        style = "-o" if m in ("carl", "rascal", "scandal", "nde") else "--."
        ax.plot(ns, [d[n] for n in ns], style, label=m)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training samples N")
    ax.set_ylabel("E_{x~p(x|θ1)} [(log r̂ − log r)²]")
    ax.set_title("Galton board, θ0 = −0.8, θ1 = −0.6 (mean over seeds)")
    ax.legend(ncol=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _crossing(ns: list[int], carl: dict, n: int, err: float) -> str:
    if carl[ns[0]] <= err:
        return f"CARL is as good already at N' = {ns[0]} ({ns[0] / n:g}×)"
    for lo, hi in zip(ns, ns[1:]):
        if carl[hi] <= err:
            a, b = np.log(carl[lo]), np.log(carl[hi])
            frac = (a - np.log(err)) / (a - b) if a > b else 1.0
            n_prime = float(np.exp(np.log(lo) + frac * (np.log(hi) - np.log(lo))))
            return f"N' ≈ {n_prime:,.0f} ({n_prime / n:.0f}×)"
    return f"better than CARL at every N' ≤ {ns[-1]} (> {ns[-1] / n:g}×)"


def render(runs: list[dict], command: str) -> str:
    methods = list(dict.fromkeys(r["method"] for r in runs))
    sizes = sorted({r["n"] for r in runs})
    lines = [
        "# Galton board: E_{x~p(x|θ1)}[(log r̂ − log r)²], θ0 = −0.8, θ1 = −0.6 (mean over seeds)",
        "",
        f"Command: `{command}`",
        "",
        "| method | " + " | ".join(f"N={n}" for n in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for m in methods:
        cells = []
        for n in sizes:
            v = [r["mse"] for r in runs if r["method"] == m and r["n"] == n]
            cells.append(
                f"{np.mean(v):.4f} ± {np.std(v) / max(len(v) - 1, 1) ** 0.5:.4f}" if v else "-"
            )
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "The paper's Fig. 3, read off approximately (../shared/anchors/mining_gold.md):",
        "",
    ]
    lines += ["| method | " + " | ".join(f"N={n}" for n in sizes) + " |"]
    lines += ["|---|" + "---|" * len(sizes)]
    for m, d in PAPER.items():
        cells = " | ".join(str(d.get(n, "-")) for n in sizes)
        lines.append(f"| {m} (paper) | {cells} |")
    means = _means(runs)
    carl = means.get("carl", {})
    lines += [
        "",
        "Data efficiency: N' = the number of samples CARL needs for a method's error at N, by",
        "log-log interpolation of CARL's mean errors between the grid points, and N'/N:",
        "",
    ]
    ns = sorted(carl)
    for m in ("rascal", "scandal", "alices", "cascal", "rolr", "alice", "nde"):
        for n, err in sorted(means.get(m, {}).items()):
            lines.append(f"- {m} at N={n} ({err:.4f}): {_crossing(ns, carl, n, err)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
