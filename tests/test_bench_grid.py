"""lfi bench: the grid's CSV, its resume, the table beside sbibm and the plot."""

import csv

import matplotlib.image as mpimg
import numpy as np

import lfi.bench_grid as grid
from lfi.cli import main


def test_sbibm_figures_are_the_published_ones():
    # three spot checks against sbibm's main_paper.csv (../shared/anchors/sbibm_c2st.md)
    assert grid.sbibm_c2st("two_moons", "npe", 10_000) == 0.606
    assert grid.sbibm_c2st("slcp", "nle", 1000) == 0.946
    assert grid.sbibm_c2st("sir", "rejection_abc", 100_000) == 0.713
    assert grid.sbibm_c2st("galton", "npe", 1000) is None


def test_grid_resumes_without_recomputing_finished_cells(tmp_path, monkeypatch):
    calls = []

    class Result:
        def __init__(self, obs):
            self.c2st = {k: 0.5 + 0.01 * k for k in obs}
            self.metrics = {"seconds_train": 1.0, "epochs": 3}

    def fake_run_task(task, method, *, num_simulations, observations, seed, **kw):
        calls.append((task, method, num_simulations, tuple(observations)))
        result = Result(observations)
        for k in observations:
            kw["on_observation"](k, {**result.metrics, "c2st": result.c2st[k]})
        return result

    monkeypatch.setattr(grid, "run_task", fake_run_task)
    args = (["two_moons"], ["npe", "nre"], [1000], [1, 2], tmp_path)
    grid.bench(*args, progress=False, max_epochs=3)
    assert len(calls) == 2
    grid.bench(["two_moons"], ["npe", "nre"], [1000], [1, 2, 3], tmp_path, progress=False,
               max_epochs=3)  # fmt: skip
    assert calls[2:] == [("two_moons", "npe", 1000, (3,)), ("two_moons", "nre", 1000, (3,))]
    grid.bench(*args, progress=False, max_epochs=4)  # other options: other rows
    assert len(calls) == 6
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10 and {r["observation"] for r in rows} == {"1", "2", "3"}
    summary = (tmp_path / "summary.md").read_text()
    # this run's rows only (observations 1, 2 with max_epochs=4), beside sbibm's NPE at 10^3
    assert "| two_moons | 0.515 (2) | 0.725 |" in summary


def test_rows_of_other_lfi_code_are_kept_but_not_reused(tmp_path, monkeypatch):
    calls = []

    class Result:
        c2st = {1: 0.6}
        metrics = {"epochs": 2}

    def fake_run_task(task, method, *, observations, **kw):
        calls.append(tuple(observations))
        kw["on_observation"](1, {**Result.metrics, "c2st": 0.6})
        return Result()

    monkeypatch.setattr(grid, "run_task", fake_run_task)
    monkeypatch.setenv("LFI_CPU_CORES", "1")  # rows of one device: code is the bare hash
    path = tmp_path / "results.csv"
    # a CSV of an older lfi: no "code" column
    old = ["task", "method", "budget", "observation", "seed", "options", "c2st", "epochs"]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(old)
        writer.writerow(["two_moons", "npe", "1000", "1", "0", "{}", "0.9", "5"])
    grid.bench(["two_moons"], ["npe"], [1000], [1], tmp_path, progress=False)
    assert calls == [(1,)]  # the old row is not taken as done
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert [r["c2st"] for r in rows] == ["0.9", "0.6"]  # kept, and the new one appended
    assert rows[0]["code"] == "" and rows[1]["code"] == grid.run_id() == grid.code_id()
    assert rows[0]["epochs"] == "5" and list(rows[0]) == grid.FIELDS
    assert "0.600 (1)" in (tmp_path / "summary.md").read_text()  # this code's row only
    grid.bench(["two_moons"], ["npe"], [1000], [1], tmp_path, progress=False)
    assert len(calls) == 1  # same code: resumed
    monkeypatch.setattr(grid, "code_id", lambda: "changed")
    grid.bench(["two_moons"], ["npe"], [1000], [1], tmp_path, progress=False)
    assert len(calls) == 2  # another lfi: run again


def test_run_id_names_a_split_over_cpu_devices(monkeypatch):
    import jax

    from lfi import _cores

    monkeypatch.setenv("LFI_CPU_CORES", "1")
    assert grid.run_id() == grid.code_id()
    monkeypatch.setattr(jax, "local_device_count", lambda: 4)
    monkeypatch.setattr(_cores, "requested", lambda: 2)
    assert grid.run_id() == grid.code_id() + "+2cpu"  # not the same rows as one device's


def test_code_id_is_a_stable_hash_of_the_source():
    assert grid.code_id() == grid.code_id.__wrapped__()
    assert len(grid.code_id()) == 12 and int(grid.code_id(), 16) >= 0


def test_cli_bench_end_to_end(tmp_path, capsys):
    out = tmp_path / "b"
    argv = ["bench", "--tasks", "two_moons", "--methods", "npe", "--budgets", "300",
            "--observations", "1", "--samples", "300", "--out", str(out), "--quiet",
            "--option", "max_epochs=2"]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "| two_moons |" in text and "1 rows" in text
    with open(out / "results.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert 0.5 <= float(row["c2st"]) <= 1.0
    img = mpimg.imread(out / "c2st.png")
    assert img.shape[0] > 100 and np.std(img) > 0


def _fake(calls, fail_after=None):
    class Result:
        def __init__(self, c2st):
            self.c2st, self.metrics = c2st, {"epochs": 2}

    def fake_run_task(task, method, *, num_simulations, observations, num_samples, **kw):
        calls.append((method, num_simulations, tuple(observations), num_samples))
        scores = {}
        for i, k in enumerate(observations):
            if fail_after is not None and i == fail_after:
                raise KeyboardInterrupt
            scores[k] = 0.5 + 0.1 * k
            kw["on_observation"](k, {"epochs": 2, "c2st": scores[k]})
        return Result(scores)

    return fake_run_task


def test_an_interrupted_cell_keeps_its_finished_observations(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(grid, "run_task", _fake(calls, fail_after=1))
    try:
        grid.bench(["two_moons"], ["npe"], [1000], [1, 2], tmp_path, progress=False)
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(grid, "run_task", _fake(calls))
    grid.bench(["two_moons"], ["npe"], [1000], [1, 2], tmp_path, progress=False)
    assert [c[2] for c in calls] == [(1, 2), (2,)]  # observation 1 was written when scored


def test_num_samples_duplicates_empty_files_and_sequential_names(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(grid, "run_task", _fake(calls))
    (tmp_path / "results.csv").write_text("")  # a run killed before its first row
    grid.bench(["two_moons"], ["npe", "NPE"], [1000, 1000], [1, 2, 1], tmp_path, progress=False,
               num_samples=200)  # fmt: skip
    assert calls == [("npe", 1000, (1, 2), 200)]  # duplicates asked once
    grid.bench(["two_moons"], ["npe"], [1000], [1, 2], tmp_path, progress=False)
    assert calls[1:] == [("npe", 1000, (1, 2), 10_000)]  # other sample counts: other rows
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["num_samples"] for r in rows] == ["200", "200", "10000", "10000"]
    assert "| two_moons | 0.650 (2) | 0.725 |" in (tmp_path / "summary.md").read_text()
    # npe with rounds is snpe, and sbibm's SNPE figure (10 rounds) is not set beside 2 rounds
    grid.bench(["two_moons"], ["npe"], [1000], [1], tmp_path / "s", progress=False, num_rounds=2)
    assert calls[-1][0] == "snpe"
    summary = (tmp_path / "s" / "summary.md").read_text()
    assert "snpe" in summary and "| two_moons | 0.600 (1) | – |" in summary
