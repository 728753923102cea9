"""The tutorials in examples/ run at their CI budget, write PNGs that decode to non-blank images,
and print numbers that agree with the exact answer each compares against.

Each example's ``main("ci", out)`` returns what it printed; the tolerances below are loose
enough for the tiny budgets but each has a reason (an interval, a standard error, a baseline
such as the prior or the best Gaussian), so a broken method fails them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("[0-9][0-9]_*.py"))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name[:-3]}", EXAMPLES / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_figures(paths, out: Path) -> None:
    import matplotlib.image

    assert paths, "the example wrote no figure"
    for path in paths:
        path = Path(path)
        assert path.parent == out and path.suffix == ".png", path
        assert path.stat().st_size > 10_000, f"{path.name}: {path.stat().st_size} bytes"
        image = matplotlib.image.imread(path)
        assert image.ndim == 3 and min(image.shape[:2]) >= 200, image.shape
        assert float(image[..., :3].std()) > 0.05, f"{path.name} is blank"


def check_01(r):
    # exact-match rejection is an exact sampler: KS does not reject, the mean is within 4
    # standard errors, and the acceptance rate within 4 binomial standard errors of p(k)
    assert r["ks_pvalue"] > 1e-3
    assert abs(r["mean"] - r["exact_mean"]) < 4 * r["mean_se"]
    lo, hi = r["interval"]
    assert lo < r["exact_mean"] < hi
    ev, n = r["evidence"], r["num_simulations"]
    assert abs(r["acceptance"] - ev) < 4 * np.sqrt(ev * (1 - ev) / n)


def check_02(r):
    # every ABC run holds the exact posterior mean inside its 95% intervals and puts at least
    # half of its draws in the exact 95% region (the prior puts ~11% there)
    assert len(r["runs"]) >= 3
    for name, run in r["runs"].items():
        lo, hi = run["interval"]
        assert np.all((lo < r["exact_mean"]) & (r["exact_mean"] < hi)), name
        assert run["in95"] > 0.5, (name, run["in95"])
        assert np.all(run["sd"] < r["prior_sd"]), name


def check_03(r):
    # the logit explains most of the exact log ratio's variance, and the learned ratio is as
    # powerful a test as the exact one (Neyman–Pearson), better than the multiplicity alone
    assert r["r2"] > 0.8
    auc = r["auc"]
    assert abs(auc["learned ratio"] - auc["exact ratio"]) < 0.02
    assert auc["exact ratio"] > auc["multiplicity alone"] + 0.03


def check_04(r):
    # the learned MLE is within half an exact 95% interval of the exact MLE, and the learned
    # 95% interval holds the exact MLE
    lo, hi = r["exact"]["interval"]
    assert abs(r["learned"]["mle"] - r["exact"]["mle"]) < (hi - lo) / 2
    llo, lhi = r["learned"]["interval"]
    assert llo < r["exact"]["mle"] < lhi


def check_05(r):
    # the flow is far closer to the two crescents than the best Gaussian, at every observation
    res = r["results"]
    gauss = res["gaussian"]["c2st"]
    assert gauss > 0.85  # the crescents are not Gaussian: the comparison means something
    for obs in (1, 2, 3):
        assert res[obs]["c2st"] < gauss - 0.05, (obs, res[obs]["c2st"], gauss)
    assert res[1]["c2st"] < 0.75


def check_06(r):
    # at both observations most MCMC draws lie in the exact 95% region (the prior puts < 15%
    # there) and the chains mixed
    for obs, res in r["results"].items():
        assert res["prior_in95"] < 0.25, obs
        assert res["in95"] > 0.5, (obs, res["in95"])
        assert res["rhat"] < 1.05, (obs, res["rhat"])


def check_07(r):
    # the gold averages to the exact ratio (per-nail z-scores), the density-with-score estimate
    # beats classification alone from the same runs, and its 95% set holds the exact MLE
    assert r["gold_max_z"] < 5
    assert r["errors"]["SCANDAL"] < r["errors"]["CARL"]
    lo, hi = r["sets"]["SCANDAL"]["interval"]
    assert lo < r["sets"]["exact"]["mle"] < hi
    elo, ehi = r["sets"]["exact"]["interval"]
    assert elo < r["theta_true"] < ehi


def check_08(r):
    # the exact posterior passes every check and covers 95% within 3 standard errors; the
    # over-confident one under-covers and the under-confident one over-covers by more than that;
    # NPE covers 95% within 4 standard errors
    res = r["results"]
    exact = res["exact"]
    assert exact["sbc"] and exact["tarp"]
    assert abs(exact["coverage"][2] - 0.95) < 3 * exact["coverage_se"][2]
    over = res["over-confident (sd × 0.6)"]
    assert not over["tarp"] and over["atc"] < 0
    assert over["coverage"][2] < 0.95 - 3 * over["coverage_se"][2]
    # the HPD levels' KS test: the shrunk posterior fails it; the exact one passes at 1%
    assert over["coverage_ks_p"] < 0.01 < exact["coverage_ks_p"]
    under = res["under-confident (sd × 1.6)"]
    assert not under["tarp"] and under["atc"] > 0
    assert under["coverage"][0] > 0.5 + 3 * under["coverage_se"][0]
    npe = next(v for k, v in res.items() if k.startswith("NPE"))
    assert abs(npe["coverage"][2] - 0.95) < 4 * npe["coverage_se"][2]
    assert len(r["figures"]) == 2


CHECKS = {name: globals()[f"check_{name[:2]}"] for name in SCRIPTS}


def test_every_step_is_here():
    steps = [name[:2] for name in SCRIPTS]
    assert steps == [f"{k:02d}" for k in range(1, 9)], SCRIPTS


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_runs_at_ci_budget(name, tmp_path, capsys):
    module = _load(name)
    assert "arXiv:" in module.__doc__  # a tutorial: what the step is, and its paper
    result = module.main("ci", tmp_path)
    printed = capsys.readouterr().out
    assert "wrote" in printed and len(printed.splitlines()) >= 3
    _check_figures(result["figures"], tmp_path)
    CHECKS[name](result)


def test_command_line(tmp_path):
    """`python examples/NN_name.py --ci --out DIR` parses its flags and writes its PNG (run
    in-process through the script's ``cli``, on the cheapest example)."""
    module = _load(SCRIPTS[0])
    assert module.cli(["--ci", "--out", str(tmp_path / "cli")]) == 0
    pngs = list((tmp_path / "cli").glob("*.png"))
    assert len(pngs) == 1 and pngs[0].stat().st_size > 10_000
