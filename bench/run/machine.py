"""The machine a run executes on, as far as it decides the digits: CPU model and ISA, math libraries, GPU.

The same config, seed and package versions give different last digits on different CPUs:
oneDNN, MKL and ATen pick kernels by instruction set (AVX-512 against AVX2: other vector
widths, other summation orders), and the error compounds over training (the demo: PSNR
17.79 on an AVX-512 machine, 16.71 on an AVX2-only one).  So each run's ``environment``
records the CPU model and the ISA flags that select kernels, torch's CPU capability, the
MKL and oneDNN versions, the variables that pin their code paths (``bench.run.reproducible``),
and with CUDA the GPU, driver, CUDA and cuDNN versions.  Reports show it and warn when the
runs of one table come from different machines.

Light at module level (the report reads :func:`machine_label` without torch).
"""
from __future__ import annotations

import os
import platform
import re
import socket
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.config import ConfigError

if TYPE_CHECKING:
    import torch

# Set by a packed array task (bench.sweep.job) in each of its runs' processes: "<slot>/<runs per task>".
PACK_VARIABLE = "COLORBENCH_PACKED"

# /proc/cpuinfo flags that select different CPU kernels in ATen, oneDNN or MKL (in this order)
ISA_FLAGS = ("sse4_2", "avx", "f16c", "fma", "avx2", "avx_vnni", "avx512f", "avx512dq", "avx512bw", "avx512vl",
             "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


def cpu_info(cpuinfo: str | Path = "/proc/cpuinfo") -> dict[str, Any]:
    """CPU vendor, model name and the ISA flags of :data:`ISA_FLAGS` it has (from /proc/cpuinfo, else platform)."""
    text = ""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        pass
    first = text.split("\n\n", 1)[0]  # the first processor's block; all cores of a machine are alike
    fields = dict(re.findall(r"^([^\t:\n]+?)\s*:\s*(.*)$", first, flags=re.MULTILINE))
    flags = set(fields.get("flags", "").split())
    return {
        "cpu_model": fields.get("model name") or platform.processor() or platform.machine() or None,
        "cpu_vendor": fields.get("vendor_id"),
        "cpu_isa": [flag for flag in ISA_FLAGS if flag in flags] if flags else None,
        "cpu_count": os.cpu_count(),
    }


def library_versions(config_text: str) -> dict[str, str | None]:
    """MKL and oneDNN versions from ``torch.__config__.show()`` (None where torch was built without them)."""
    mkl = re.search(r"Math Kernel Library Version ([\w.]+)", config_text)
    onednn = re.search(r"(?:MKL-DNN|oneDNN) (v[\w.]+)", config_text)
    return {"mkl": mkl.group(1) if mkl else None, "onednn": onednn.group(1) if onednn else None}


def describe(device: Any) -> dict[str, Any]:
    """What :func:`environment` records about the machine and the math libraries' code paths."""
    import torch

    from bench.run import reproducible
    try:
        config_text = torch.__config__.show()
    except Exception:  # noqa: BLE001 - a build without the config text: the versions are unknown
        config_text = ""
    record = {**cpu_info(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
              **library_versions(config_text),
              "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
              "onednn_enabled": torch.backends.mkldnn.enabled,
              "math_env": reproducible.math_environment(), "reproducible": reproducible.state()}
    record["gpu"] = gpu_info(device) if getattr(device, "type", None) == "cuda" else None
    return record


def gpu_info(device: Any) -> dict[str, Any]:
    """Name, compute capability, driver, CUDA runtime and cuDNN versions of a CUDA device."""
    import torch
    index = device.index if device.index is not None else torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    return {"name": torch.cuda.get_device_name(index), "capability": f"{major}.{minor}",
            "memory_gib": round(torch.cuda.get_device_properties(index).total_memory / 2 ** 30, 1),
            "driver": _nvidia_driver(index), "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "tf32_matmul": read_flag(lambda: torch.backends.cuda.matmul.allow_tf32),
            "tf32_cudnn": read_flag(lambda: torch.backends.cudnn.allow_tf32)}


def read_flag(read: Any) -> Any:
    """A torch backend flag, or why it cannot be read (torch refuses to read a TF32 flag that its newer
    ``fp32_precision`` settings made ambiguous)."""
    try:
        return read()
    except RuntimeError as err:
        return f"unknown ({str(err).splitlines()[0][:80]})"


def visible_gpus(environ: dict[str, str] | None = None, driver_dir: str | Path = "/proc/driver/nvidia/gpus") -> int:
    """How many NVIDIA GPUs a process started here would see, without importing torch (seconds to load).

    ``CUDA_VISIBLE_DEVICES`` decides where it is set (empty or ``-1``: none; else its entries up to
    the first invalid one, as CUDA reads it); otherwise the driver's list of GPUs (one folder each
    under ``/proc/driver/nvidia/gpus``).  A machine without the NVIDIA driver has none.
    """
    try:
        installed = len([entry for entry in Path(driver_dir).iterdir() if entry.is_dir()])
    except OSError:
        installed = 0
    visible = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return installed
    count = 0
    for entry in visible.split(","):
        entry = entry.strip()
        if not entry or entry.startswith("-"):
            break  # CUDA stops at the first invalid entry
        count += 1
    return min(count, installed)


def _nvidia_driver(index: int) -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", f"--id={index}", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def machine_label(environment: Any) -> str | None:
    """One line naming a run's machine and math code paths, from its config.yaml ``environment`` (None: not
    recorded, a run made before these fields).  Runs whose labels differ may differ in their last digits."""
    if not isinstance(environment, dict) or "cpu_model" not in environment:
        return None
    isa = environment.get("cpu_isa")
    top = [flag for flag in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile") if isa and flag in isa]
    parts = [str(environment.get("cpu_model")), f"ISA {'+'.join(top) or 'below avx2'}" if isa is not None else None,
             f"torch {environment.get('torch')} CPU capability {environment.get('cpu_capability')}",
             f"oneDNN {environment.get('onednn')}" if environment.get("onednn") else None,
             f"MKL {environment.get('mkl')}" if environment.get("mkl") else None,
             f"{environment.get('torch_threads')} threads" if environment.get("torch_threads") else None]
    gpu = environment.get("gpu")
    if isinstance(gpu, dict):
        parts.append(f"GPU {gpu.get('name')} (driver {gpu.get('driver')}, CUDA {gpu.get('cuda')}, "
                     f"cuDNN {gpu.get('cudnn')})")
    state = environment.get("reproducible")
    if isinstance(state, dict) and state.get("on"):
        pinned = " ".join(f"{k}={v}" for k, v in sorted((state.get("pinned") or {}).items()))
        onednn = ", oneDNN off" if environment.get("onednn_enabled") is False else ""  # older runs: oneDNN was on
        parts.append(f"reproducible mode ({pinned}{onednn})")
    else:
        parts.append("reproducible mode off")
    return ", ".join(p for p in parts if p)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is a config error."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: got cuda, but no CUDA device is available; allowed here: auto, cpu")
    return torch.device(name)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def environment(device: torch.device, gpu_path: dict | None = None) -> dict:
    """Code version and software/hardware the run executes on; ``gpu_path``: the run's GPU-path settings
    (``bench.training.gpu_path.record``: precision, memory format, where batches are made, cuDNN, TF32,
    determinism, packing), recorded as they are in force."""
    import torch  # here, not at the top: the sweep's job module and `colorbench status` read run directories
    import torchvision

    commit = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no")) if commit else None
    device_name = (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else platform.processor() or platform.machine())
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "torchvision": str(torchvision.__version__),
        "device": str(device),
        "device_name": device_name,
        "torch_threads": torch.get_num_threads(),
        "hostname": socket.gethostname(),
        **describe(device),  # CPU model and ISA, math libraries and their pinned code paths, GPU
        "gpu_path": gpu_path,
    }


def memory_bytes(device: Any = None) -> int:
    """The memory a run on ``device`` can use: a CUDA device's own, else the machine's RAM or its cgroup's limit (a
    container's, a SLURM job's), whichever is less."""
    if device is not None and getattr(device, "type", device) == "cuda":
        import torch
        return int(torch.cuda.get_device_properties(device).total_memory)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def format_bytes(n: float) -> str:
    """``n`` bytes as people read them: 1.5 GiB, 300.0 MiB."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


def check_memory(what: str, needed: int, detail: str, advice: str, device: Any = None, bound: str = "at least") -> None:
    """Refuse (ConfigError, exit 2) before allocating when ``needed`` bytes, what ``what`` will hold (``bound``: a
    lower bound, or "up to" for an upper one), exceed :func:`memory_bytes`: a clear line instead of an allocator's
    error or the OOM killer minutes later."""
    available = memory_bytes(device)
    if needed > available:
        where = "this GPU has" if device is not None and getattr(device, "type", device) == "cuda" else \
            "this machine has"
        raise ConfigError(f"{what}: need {bound} {format_bytes(needed)} of memory; {where} "
                          f"{format_bytes(available)} ({detail}); {advice}")
