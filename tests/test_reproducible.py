"""Reproducible mode (pinned CPU code paths, started again once) and the machine each run records."""
import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

from bench.cli import main
from bench.config import config_to_dict, load_config
from bench.data.fingerprint import data_id
from bench.run import reproducible, rundir
from bench.run.identity import config_id, run_id
from bench.run.machine import cpu_info, library_versions, machine_label
from bench.sweep.ablation import parse_ablation
from bench.sweep.submit import slurm_parameters

HAS_AVX2 = "avx2" in (cpu_info()["cpu_isa"] or [])
PRINT_ENV = ("import os, sys; print('start', os.environ.get('ATEN_CPU_CAPABILITY'), os.environ.get('OMP_NUM_THREADS'), "
             "flush=True)\n")


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without the mode's switch and pinned variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in (reproducible.SWITCH, *reproducible.MATH_VARIABLES)}
    return {**env, **extra}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=300)


def test_the_switch_sets_the_variables_and_starts_the_process_again_once():
    code = PRINT_ENV + "from bench.cli import main\nsys.exit(main())"
    out = run(["-c", code, "--reproducible", "config"], clean_environment())
    assert out.returncode == 0, out.stderr
    starts = [line for line in out.stdout.splitlines() if line.startswith("start ")]
    assert starts == ["start None None", "start avx2 2"]  # once as started, once with the variables set
    assert "# config id " in out.stdout


def test_the_environment_switch_and_values_already_set():
    code = PRINT_ENV + "from bench.cli import main\nsys.exit(main())"
    out = run(["-c", code, "config"], clean_environment(COLORBENCH_REPRODUCIBLE="1", OMP_NUM_THREADS="1"))
    assert out.returncode == 0, out.stderr
    # a value set before is kept (and recorded): only the missing ones are pinned
    assert [line for line in out.stdout.splitlines() if line.startswith("start ")] == ["start None 1", "start avx2 1"]
    pinned = clean_environment(COLORBENCH_REPRODUCIBLE="1", **reproducible.PINNED)
    out = run(["-c", code, "config"], pinned)
    assert [line for line in out.stdout.splitlines() if line.startswith("start ")] == ["start avx2 2"]  # no restart


def test_the_mode_cannot_start_again_a_process_that_loaded_torch(monkeypatch, capsys):
    for name in (reproducible.SWITCH, *reproducible.PINNED):
        monkeypatch.delenv(name, raising=False)
    assert main(["--reproducible", "config"]) == 2
    assert "must be set before torch loads" in capsys.readouterr().err
    assert reproducible.pinned_environment({"OMP_NUM_THREADS": "4"}) == {
        **reproducible.PINNED, "OMP_NUM_THREADS": "4", reproducible.SWITCH: "1"}


@pytest.mark.skipif(not HAS_AVX2, reason="this CPU has no AVX2: the mode's code paths are not available here")
def test_a_run_records_the_machine_and_the_mode():
    code = ("import json\nfrom bench.run import reproducible\nreproducible.apply()\nimport torch\n"
            "from bench.run.machine import environment\nprint(json.dumps(environment(torch.device('cpu'))))")
    record = json.loads(run(["-c", code], clean_environment(COLORBENCH_REPRODUCIBLE="1")).stdout.splitlines()[-1])
    assert record["cpu_capability"] == "AVX2" and record["torch_threads"] == 2
    assert record["reproducible"] == {"on": True, "pinned": reproducible.PINNED, "as_documented": True}
    assert record["math_env"] == reproducible.PINNED
    assert record["cpu_model"] and "avx2" in record["cpu_isa"]
    plain = json.loads(run(["-c", code.replace("reproducible.apply()\n", "")],
                           clean_environment()).stdout.splitlines()[-1])
    assert plain["reproducible"]["on"] is False and plain["math_env"] == {}
    assert plain["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert "reproducible mode (ATEN_CPU_CAPABILITY=avx2 " in machine_label(record)
    assert machine_label(plain).endswith("reproducible mode off")


def test_cpu_fields_and_library_versions_are_parsed(tmp_path):
    (tmp_path / "cpuinfo").write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) "
                                      "Gold 6148\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw\n\n"
                                      "processor\t: 1\nmodel name\t: other\n")
    info = cpu_info(tmp_path / "cpuinfo")
    assert info["cpu_model"] == "Intel(R) Xeon(R) Gold 6148" and info["cpu_vendor"] == "GenuineIntel"
    assert info["cpu_isa"] == ["sse4_2", "avx", "fma", "avx2", "avx512f", "avx512bw"]
    text = torch.__config__.show()
    versions = library_versions(text)
    assert versions["onednn"] is None or versions["onednn"].startswith("v")
    assert library_versions("  - Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build 20240605\n"
                            "  - Intel(R) MKL-DNN v3.13.3 (Git Hash b38f)") == {"mkl": "2024.2", "onednn": "v3.13.3"}
    assert machine_label({"git_commit": None}) is None  # a run made before these fields


def test_training_records_the_cpu_fields(image_folder, tmp_path):
    from test_train import tiny

    from bench.training.train import train
    train(tiny(image_folder, "optim.epochs=1"), tmp_path / "run")
    environment = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["environment"]
    for key in ("cpu_model", "cpu_vendor", "cpu_isa", "cpu_count", "cpu_capability", "mkl", "onednn",
                "deterministic_algorithms", "onednn_enabled", "math_env", "reproducible", "gpu"):
        assert key in environment, key
    assert environment["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and environment["gpu"] is None
    assert environment["onednn_enabled"] is torch.backends.mkldnn.enabled  # the mode off: torch's default


def test_the_mode_trains_with_convolutions_outside_onednn(image_folder, tmp_path, monkeypatch):
    # oneDNN's AVX2 convolutions block by the CPU's cache sizes, which no variable pins (bench/run/reproducible.py)
    from test_train import tiny

    from bench.training.train import train
    monkeypatch.setenv(reproducible.SWITCH, "1")
    try:
        train(tiny(image_folder, "optim.epochs=1"), tmp_path / "run")
        assert torch.backends.mkldnn.enabled is False
    finally:
        torch.backends.mkldnn.enabled = True
    environment = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["environment"]
    assert environment["onednn_enabled"] is False and environment["reproducible"]["on"] is True
    assert machine_label(environment).endswith(", oneDNN off)")
    monkeypatch.delenv(reproducible.SWITCH)
    reproducible.configure_torch()
    assert torch.backends.mkldnn.enabled is True  # the mode off: left as torch has it


def test_sweep_jobs_get_the_mode(monkeypatch):
    ablation = parse_ablation({"name": "toy", "base": {}, "grid": {"optim.lr": [0.0002]}, "seeds": [0]}, "toy.yaml")
    monkeypatch.delenv(reproducible.SWITCH, raising=False)
    assert "slurm_setup" not in slurm_parameters(ablation)
    assert reproducible.pinned_threads() is None
    monkeypatch.setenv(reproducible.SWITCH, "1")
    for name, value in reproducible.PINNED.items():
        monkeypatch.setenv(name, value)
    assert slurm_parameters(ablation)["slurm_setup"] == [f"export {reproducible.SWITCH}=1"] + [
        f"export {name}={value}" for name, value in reproducible.PINNED.items()]
    assert reproducible.pinned_threads() == 2  # a job keeps it instead of its share of the cores


def test_a_report_warns_when_its_runs_ran_on_different_machines(tmp_path):
    config = load_config(None, ["data.dataset=samples", "data.image_size=32", "generator.depth=5"])
    environments = [{"cpu_model": "AMD EPYC", "cpu_isa": ["avx2", "avx512f"], "cpu_capability": "AVX512",
                     "torch": "2.15.0", "torch_threads": 2, "reproducible": {"on": False}},
                    {"cpu_model": "Intel Core i7-4770", "cpu_isa": ["avx2"], "cpu_capability": "AVX2",
                     "torch": "2.15.0", "torch_threads": 2, "reproducible": {"on": False}}]
    root = tmp_path / "results" / "two-machines"
    for seed, environment in enumerate(environments):
        run_dir = root / f"run-s{seed}"
        seeded = load_config(None, ["data.dataset=samples", "data.image_size=32", "generator.depth=5", f"seed={seed}"])
        rundir.write_text(run_dir / "config.yaml", yaml.safe_dump(
            {"run_id": run_id(seeded, data_id(seeded)), "config_id": config_id(config, data_id(config)), "seed": seed,
             "config": config_to_dict(seeded), "environment": environment}, sort_keys=False))
        rundir.append_jsonl(run_dir / "metrics.jsonl", {"split": "test", "step": 1, "source": "train", "metric":
                                                        "psnr_rgb8", "value": 17.0 + seed, "n_images": 4,
                                                        "resolution": [32, 32], "dataset": {"source": "samples"}})
        rundir.write_json(run_dir / "DONE", {"step": 1, "total_steps": 1, "state": "done"})
    assert main(["report", str(root), "--out", str(tmp_path / "reports"), "--resamples", "50"]) == 0
    md = (tmp_path / "reports" / "two-machines" / "table.md").read_text()
    assert "**Warning: the runs of this table ran on 2 different machines or math code paths** (listed" in md
    assert "- Intel Core i7-4770, ISA avx2, torch 2.15.0 CPU capability AVX2, 2 threads, reproducible mode off: " in md
    assert "- AMD EPYC, ISA avx2+avx512f, torch 2.15.0 CPU capability AVX512, 2 threads, reproducible mode off: " in md
    (root / "run-s1" / "config.yaml").write_text((root / "run-s1" / "config.yaml").read_text().replace(
        "Intel Core i7-4770", "AMD EPYC").replace("- avx2\n", "- avx2\n  - avx512f\n").replace("AVX2", "AVX512"))
    assert main(["report", str(root), "--out", str(tmp_path / "reports"), "--resamples", "50"]) == 0
    md = (tmp_path / "reports" / "two-machines" / "table.md").read_text()
    assert "Warning" not in md and "Machine: AMD EPYC, ISA avx2+avx512f, torch 2.15.0 CPU capability AVX512" in md


def test_visible_gpus_are_read_off_the_driver_and_cuda_visible_devices(tmp_path, monkeypatch):
    """How many GPUs a local sweep shares, without importing torch: the driver's list, narrowed by the variable."""
    from bench.run.machine import visible_gpus
    from bench.sweep.submit import local_parallelism
    driver = tmp_path / "gpus"
    assert visible_gpus({}, driver) == 0  # no NVIDIA driver
    for address in ("0000:01:00.0", "0000:41:00.0"):
        (driver / address).mkdir(parents=True)
    assert visible_gpus({}, driver) == 2
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1"}, driver) == 1
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,1,2"}, driver) == 2  # no more than the driver has
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, driver) == 0
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,-1,1"}, driver) == 1  # CUDA stops at the first invalid entry
    monkeypatch.setattr("bench.sweep.submit.visible_gpus", lambda: 1)
    assert local_parallelism(8) == 1  # runs on one GPU go one at a time
    monkeypatch.setattr("bench.sweep.submit.visible_gpus", lambda: 0)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert local_parallelism(8) == 2 and local_parallelism(1) == 1  # one per core, never more than the runs
