"""benchmarks/gpu_check.py, the prepared GPU check, run the way CI can: --device cpu --tiny (the script itself)."""
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tiny_check_runs_every_section_and_writes_its_json_and_markdown(tmp_path):
    out = tmp_path / "check"
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--out", str(out)],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["device"] == "cpu" and report["tiny"] is True and report["elapsed_s"] <= elapsed
    assert report["machine"]["torch"] == torch.__version__ and report["machine"]["gpu"] is None

    checks = report["checks"]
    assert list(checks) == ["batches", "cpu_vs_device", "determinism", "precisions"]
    assert all(check["passed"] is True for check in checks.values())
    assert checks["batches"]["batches"] == 12 and checks["batches"]["unequal_steps"] == []
    # on --device cpu both sides are the CPU: the same weights and batches give the same losses, exactly
    assert checks["cpu_vs_device"]["max_rel_diff"] == 0.0 and len(checks["cpu_vs_device"]["rel_diff_per_update"]) == 5
    assert checks["determinism"]["two_runs_differences"] == [] and checks["determinism"]["resumed_differences"] == []
    assert checks["determinism"]["settings"]["cublas_workspace_config"] == ":4096:8"
    bf16 = checks["precisions"]["variants"]["bf16"]
    assert bf16["finite"] and bf16["first_rel_diff_to_fp32"] > 0  # autocast really ran in bf16
    assert "tf32" not in checks["precisions"]["variants"]  # CUDA only

    rows = report["speed"]["rows"]
    assert {row["workload"] for row in rows} == {"unet_256 b1 256px", "unet_128 b16 128px", "cpu-profile b1 64px",
                                                 "report-000 b16 128px"}
    for row in rows:
        batch = 1 if " b1 " in row["workload"] else 4  # --tiny shrinks batch 16 to 4
        assert row["images_per_s"] > 0 and row["ms_per_step"] * row["images_per_s"] == pytest.approx(1000 * batch)
    host = [row for row in rows if row["extra"] == ["compute.training_images=host"]]
    assert len(host) == 1 and host[0]["batches"] == "cpu"
    assert all(row["batches"].startswith("resident on cpu") for row in rows if row not in host)
    report000 = {row["precision"]: row for row in rows if row["workload"] == "report-000 b16 128px"}
    assert set(report["speed"]["report000_minutes"]) == set(report000) == {"fp32", "bf16"}
    for precision, minutes in report["speed"]["report000_minutes"].items():
        assert minutes == pytest.approx(8000 * 50 / report000[precision]["images_per_s"] / 60)

    packed = report["packed"]
    assert [row["runs"] for row in packed] == [1, 2]
    for row in packed:
        assert len(row["per_run_images_per_s"]) == row["runs"] and all(v > 0 for v in row["per_run_images_per_s"])
        assert row["images_per_s"] == pytest.approx(sum(row["per_run_images_per_s"]))

    md = (out / "gpu_check.md").read_text()
    for heading in ("# colorbench GPU check:", "## Correctness", "## Speed", "## Packed runs"):
        assert heading in md
    for name in checks:
        assert f"| {name} | pass |" in md
    assert "| report-000 b16 128px | fp32 | default |" in md and "Source report 000's workload" in md
    assert "| 2 | " in md and "Machine: no GPU" in md
    assert md in done.stdout  # printed too


@pytest.mark.parametrize("argv, message", [
    (["--minutes", "0"], "gpu_check: --minutes: got 0.0; allowed: a number > 0"),
    (["--device", "tpu"], "invalid choice: 'tpu'"),
])
def test_bad_arguments_exit_2_with_one_line(argv, message, capsys):
    module = _module()
    try:
        code = module.main(argv)
    except SystemExit as exited:  # argparse's own errors
        code = exited.code
    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_the_cuda_check_without_a_gpu_exits_2_before_writing_anything(tmp_path, capsys):
    assert _module().main(["--device", "cuda", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gpu_check: --device cuda: no CUDA device is available here") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
