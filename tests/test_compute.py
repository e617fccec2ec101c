"""compute.json: each finished run's time from its config.yaml to its DONE, and the study's wall time."""
import os

import yaml

from bench.reproduce.compute import compute_record

T0 = 1_796_000_000  # 2026-11-30 00:53:20 UTC


def _run(results, name, start, end, threads=1):
    run = results / name
    run.mkdir(parents=True)
    environment = {"cpu_model": "AMD EPYC", "cpu_isa": ["avx2"], "torch": "2.15.0", "cpu_capability": "AVX2",
                   "torch_threads": threads, "reproducible": {"on": False}}
    (run / "config.yaml").write_text(yaml.safe_dump({"environment": environment}))
    (run / "DONE").write_text("{}")
    os.utime(run / "config.yaml", (start, start))
    os.utime(run / "DONE", (end, end))


def test_run_times_and_wall_time_leave_out_a_pause_in_which_nothing_ran(tmp_path):
    # two runs side by side (0-100 s, 50-130 s), a pause, then one more (1000-1060 s):
    # run time 100 + 80 + 60 = 240 s; wall time 130 + 60 = 190 s, not 1060 s from first start to last end
    _run(tmp_path, "a", T0, T0 + 100)
    _run(tmp_path, "b", T0 + 50, T0 + 130)
    _run(tmp_path, "c", T0 + 1000, T0 + 1060, threads=2)
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "unfinished" / "config.yaml").write_text("{}")
    record = compute_record(tmp_path, ["colorbench", "reproduce", "toy"])
    assert record["runs_done"] == 3
    assert record["run_seconds_total"] == 240.0 and record["run_seconds_mean"] == 80.0
    assert record["run_seconds_max"] == 100.0
    assert record["wall_seconds"] == 190.0
    assert record["first_start"] == "2026-11-30 00:53 UTC" and record["last_end"] == "2026-11-30 01:11 UTC"
    assert record["command"] == "colorbench reproduce toy"
    assert sorted(record["machines"].values()) == [1, 2]  # one label per thread count


def test_a_run_inside_another_adds_no_wall_time(tmp_path):
    _run(tmp_path, "long", T0, T0 + 300)
    _run(tmp_path, "inside", T0 + 100, T0 + 200)
    assert compute_record(tmp_path)["wall_seconds"] == 300.0


def test_no_finished_run(tmp_path):
    assert compute_record(tmp_path) == {"runs_done": 0}
