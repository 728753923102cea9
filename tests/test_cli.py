"""The lfi command: run writes its outputs, tasks lists, errors are clear; demo's wiring."""

import json
import subprocess
import sys

import numpy as np
import pytest

import lfi
from lfi.cli import main


def test_run_writes_samples_posterior_metrics_and_plot(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "run",
            "gaussian_2d",
            "--method",
            "npe",
            "--simulations",
            "500",
            "--observation",
            "2",
            "--seed",
            "3",
            "--samples",
            "300",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    samples = np.load(out / "samples_obs2.npy")
    assert samples.shape == (300, 2)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "gaussian_2d" and metrics["num_simulations"] == 500
    assert 0.4 <= metrics["c2st"]["2"] <= 1.0
    assert metrics["seconds_train"] > 0 and metrics["epochs"] >= 1
    assert (out / "pairplot_obs2.png").stat().st_size > 1000
    posterior = lfi.load(out / "posterior.lfi")
    task = lfi.tasks.get("gaussian_2d")
    np.testing.assert_allclose(
        posterior.sample(300, x=task.observation(2), seed=0).shape, samples.shape
    )
    assert "C2ST" in capsys.readouterr().out


def test_same_seed_same_samples(tmp_path):
    args = [
        "run",
        "gaussian_2d",
        "--simulations",
        "300",
        "--samples",
        "50",
        "--quiet",
        "--no-c2st",
        "--seed",
        "1",
        "--out",
    ]
    assert main(args + [str(tmp_path / "a")]) == 0
    assert main(args + [str(tmp_path / "b")]) == 0
    np.testing.assert_array_equal(
        np.load(tmp_path / "a" / "samples_obs1.npy"), np.load(tmp_path / "b" / "samples_obs1.npy")
    )


def test_tasks_lists_every_task(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for name in lfi.tasks.names():
        assert name in out


def test_errors_are_clear(tmp_path, capsys):
    assert main(["run", "no_such_task", "--out", str(tmp_path)]) == 2
    assert "no_such_task" in capsys.readouterr().err
    assert (
        main(
            [
                "run",
                "two_moons",
                "--observation",
                "11",
                "--simulations",
                "100",
                "--quiet",
                "--out",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "num_observation" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--rounds", "--ensemble", "--samples", "--simulations"])
def test_counts_must_be_positive(flag, tmp_path, capsys):
    with pytest.raises(SystemExit):  # argparse: before any work, with the flag named
        main(["run", "two_moons", flag, "0", "--out", str(tmp_path)])
    assert flag in capsys.readouterr().err


def test_an_unusable_out_or_bench_grid_fails_before_any_work(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    # simulating 10^6 rows would take minutes: the error comes first
    args = ["run", "two_moons", "--simulations", "1000000", "--quiet", "--out", str(afile / "x")]
    assert main(args) == 2
    assert "afile" in capsys.readouterr().err
    bench = ["bench", "--tasks", "two_moons", "--quiet", "--out", str(tmp_path / "b")]
    bad = [(["--methods", "npe,bogus"], "bogus"), (["--budgets=-5"], "-5"),
           (["--budgets", "10-1"], "10-1"), (["--observations", "0-3"], "0")]  # fmt: skip
    for extra, word in bad:
        assert main([*bench, *extra]) == 2
        assert word in capsys.readouterr().err
    assert not (tmp_path / "b" / "results.csv").exists()


def test_console_script_help():
    proc = subprocess.run(
        [sys.executable, "-m", "lfi.cli", "demo", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "two_moons" in proc.stdout


def test_run_with_a_mining_gold_method_saves_the_estimator(tmp_path, capsys):
    out = tmp_path / "gold"
    args = ["run", "madminer_toy", "--method", "rascal", "--simulations", "300", "--samples",
            "200", "--no-c2st", "--quiet", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    assert "estimator.lfi" in capsys.readouterr().out
    est = lfi.load(str(out / "estimator.lfi"))
    assert isinstance(est, lfi.GoldRatio) and est.method == "rascal"
    assert np.load(out / "samples_obs1.npy").shape == (200, 1)
    assert main(["run", "madminer_toy", "--method", "sally", "--out", str(out), "--quiet"]) == 2
    assert "summary statistic" in capsys.readouterr().err
