"""Start-up time: median wall time of ``colorbench --help``, ``import bench.sweep.job`` and ``import bench.config``.

Each is timed over N fresh processes (the first, which may find a cold disk cache, is not
counted), with the CPU model and its SIMD flags, since torch's import time depends on both.
The target is under 1 s each; ``tests/test_import_time.py`` checks that none of them imports
torch, torchmetrics, pytorch-fid, pandas or seaborn.  ``--top K`` also lists the K slowest
imports (cumulative, from ``python -X importtime``) of each.

    python benchmarks/import_time.py [--runs 7] [--top 10]
"""
from __future__ import annotations

import argparse
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

COLORBENCH = shutil.which("colorbench")
CASES = {
    "colorbench --help": [COLORBENCH, "--help"] if COLORBENCH else [sys.executable, "-m", "bench", "--help"],
    "import bench.sweep.job": [sys.executable, "-c", "import bench.sweep.job"],
    "import bench.config": [sys.executable, "-c", "import bench.config"],
}


def cpu() -> tuple[str, str]:
    """The CPU model and its AVX2 / AVX-512 flags, from /proc/cpuinfo where there is one."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), "unknown"
    model = re.search(r"^model name\s*:\s*(.+)$", info, re.M)
    flags = sorted(set(re.findall(r"\b(avx2|avx512[a-z_0-9]*)\b", info)))
    return (model.group(1).strip() if model else platform.machine()), " ".join(flags) or "no AVX2/AVX-512"


def wall_times(command: list[str], runs: int) -> list[float]:
    subprocess.run(command, capture_output=True, check=True)  # warm-up, not counted
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def slowest_imports(command: list[str], top: int) -> list[tuple[float, str]]:
    """(cumulative seconds, module) of the ``top`` slowest imports of one run under ``-X importtime``."""
    if command[0] != sys.executable:  # the console script: the same imports as python -m bench
        command = [sys.executable, "-m", "bench", *command[1:]]
    stderr = subprocess.run([command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True).stderr
    rows = []
    for line in stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if len(fields) == 3 and fields[1].strip().isdigit():
            rows.append((int(fields[1]) / 1e6, fields[2].rstrip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed fresh processes per command (default 7)")
    parser.add_argument("--top", type=int, default=0, metavar="K", help="also list the K slowest imports of each")
    args = parser.parse_args()
    model, flags = cpu()
    print(f"CPU: {model} ({flags}); Python {platform.python_version()}; median of {args.runs} fresh processes")
    for name, command in CASES.items():
        times = wall_times(command, args.runs)
        print(f"  {name:24s} {statistics.median(times):6.2f} s  (min {min(times):.2f}, max {max(times):.2f})")
        for seconds, module in slowest_imports(command, args.top):
            print(f"      {seconds:6.3f} s {module}")


if __name__ == "__main__":
    main()
