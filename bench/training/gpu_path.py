"""The GPU path of a run: math settings, memory format, and what the run records about them.

Every choice here is a config knob or a documented default (docs/performance.md, "The GPU
path"), and :func:`record` is what a run keeps in its ``environment`` (``gpu_path``).  The
digits question, knob by knob:

* ``precision`` (identity): ``fp32`` runs IEEE float32 everywhere, so on CUDA TF32 is off for
  matmuls and cuDNN convolutions (torch's own default would use TF32 in convolutions);
  ``tf32`` (CUDA only) rounds the inputs of those to a 10-bit mantissa; ``bf16`` autocasts.
  Each computes something else, so each is its own config id.
* ``compute.channels_last`` (identity, hashed only when true): the networks' weights and
  activations in NHWC layout.  The same arithmetic, but other convolution kernels, which sum
  in another order: the last digits change, so it is part of the config id.
* cuDNN benchmark (documented default, not a knob): on for CUDA runs, off in the reproducible
  mode.  It picks among cuDNN's algorithms by timing them, per process, so two runs may sum in
  different orders and differ in the last digits, as two CPU models or thread counts do.  It
  is a property of how a machine computes, like those, so the reproducible mode pins it
  (off, with ``torch.backends.cudnn.deterministic``, ``torch.use_deterministic_algorithms``
  and ``CUBLAS_WORKSPACE_CONFIG``) rather than the config id, and every run records it.
* ``compute.training_images`` (not identity) and pinned, non-blocking copies (documented
  default): where the batches are cropped and how they reach the GPU.  The batches are the
  same bytes either way (``bench.training.batches``), so these only change the speed.

Imports torch: only the trainer and the benchmarks load it.
"""
from __future__ import annotations

import os

import torch

from bench.config import ConfigError, RunConfig
from bench.run import reproducible
from bench.run.machine import PACK_VARIABLE, read_flag

CUBLAS_WORKSPACE = ":4096:8"  # cuBLAS's deterministic workspace setting (CUDA's documentation)


def configure_math(config: RunConfig, device: torch.device) -> None:
    """Set the process-wide math flags of a run on ``device`` (call before its first CUDA operation).

    On CUDA: TF32 only with ``precision: tf32``; cuDNN benchmark on, except in the reproducible
    mode, which turns on deterministic algorithms instead.  ``precision: tf32`` on another
    device is a config error.
    """
    if config.precision == "tf32" and device.type != "cuda":
        raise ConfigError(f"precision: tf32 runs on CUDA only (TF32 is a tensor-core format); the run's device is "
                          f"{device.type}; allowed here: fp32, bf16")
    if device.type != "cuda":
        return
    pinned = reproducible.requested()
    tf32 = config.precision == "tf32"
    # The legacy flags: bench.run.machine reads them back, and torch refuses to mix them with fp32_precision.
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = not pinned
    torch.backends.cudnn.deterministic = pinned
    if pinned:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)  # read when cuBLAS starts
    # warn_only: an operation without a deterministic CUDA kernel warns rather than failing the run
    torch.use_deterministic_algorithms(pinned, warn_only=True)


def memory_format(config: RunConfig) -> torch.memory_format:
    """The networks' and batches' memory format: ``compute.channels_last`` or torch's default."""
    return torch.channels_last if config.compute.channels_last else torch.contiguous_format


def place_networks(config: RunConfig, device: torch.device, *networks: torch.nn.Module | None) -> None:
    """Move the networks to ``device`` in the run's memory format (None entries are skipped)."""
    for network in networks:
        if network is not None:
            network.to(device=device, memory_format=memory_format(config))


def record(config: RunConfig, device: torch.device, placement: str | None = None) -> dict:
    """The GPU-path settings in force, as the run's ``environment`` keeps them under ``gpu_path``."""
    cuda = device.type == "cuda"
    pack = os.environ.get(PACK_VARIABLE)
    return {
        "precision": config.precision,
        "channels_last": config.compute.channels_last,
        "training_images": config.compute.training_images,
        "training_batches": placement,
        "cudnn_benchmark": torch.backends.cudnn.benchmark if cuda else None,
        "cudnn_deterministic": torch.backends.cudnn.deterministic if cuda else None,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "tf32": _tf32_flags() if cuda else None,
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "packed": pack,  # "slot/K" when K runs share one array task (and GPU), else None
    }


def _tf32_flags() -> dict:
    return {"matmul": read_flag(lambda: torch.backends.cuda.matmul.allow_tf32),
            "cudnn": read_flag(lambda: torch.backends.cudnn.allow_tf32)}
