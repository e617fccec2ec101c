"""Reproducible mode: pin the CPU math code paths, so a CPU run's digits do not follow its CPU's ISA or caches.

``colorbench --reproducible COMMAND`` (or ``COLORBENCH_REPRODUCIBLE=1 colorbench COMMAND``)
sets, where they are not set already:

* ``ATEN_CPU_CAPABILITY=avx2``: torch's own vectorised kernels (elementwise ops, reductions,
  normalisation, fused Adam) use their AVX2 build, not AVX-512;
* ``ONEDNN_MAX_CPU_ISA=AVX2``: what oneDNN still runs (reorders, anything torch sends it) uses AVX2 kernels;
* ``MKL_CBWR=AVX2``: MKL's conditional numerical reproducibility on its AVX2 code path;
* ``OMP_NUM_THREADS=2``: the thread count, which decides how reductions are split.

These libraries read them once, when torch loads, so the mode has to be in place before the
first ``import torch``: when one is missing the process starts itself again
(``os.execve``, same interpreter, same arguments) with them set, once (the new process finds
them set and goes on).  A sweep passes them on to its jobs: local jobs inherit the
environment, SLURM jobs export them in their batch script (``bench.sweep.submit``), and a
job keeps the pinned thread count instead of its own (``bench.sweep.job``).

Pinning the instruction set is not enough for convolutions: oneDNN's AVX2 convolutions
(brgemm) size their blocks from the cache sizes the CPU reports, so the same kernel sums in
another order on a CPU with another L2, and no variable pins that.  So in the mode
:func:`configure_torch` (called where a process starts computing: training, re-scoring,
``colorbench perf``) turns torch's oneDNN path off, and convolutions run as torch's own
im2col + GEMM, the GEMM in MKL, which ``MKL_CBWR`` pins.  On a GPU the trainer turns
cuDNN's benchmark off and deterministic algorithms on in the mode
(``bench.training.gpu_path.configure_math``); ``bench.run.machine`` records GPU, driver and cuDNN.  Each run's ``environment`` records
whether the mode was on, the values in force (``state()``) and whether oneDNN was on; the
mode is not part of the run id, since the config id covers what is computed, not which
kernels compute it.

Imports nothing heavy: ``bench.cli`` and the sweep's job module load it before torch.
"""
from __future__ import annotations

import os
import sys

SWITCH = "COLORBENCH_REPRODUCIBLE"
PINNED = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2", "OMP_NUM_THREADS": "2"}
# Every variable that changes which CPU code path the math libraries take, recorded with each run when set.
MATH_VARIABLES = (*PINNED, "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "MKL_NUM_THREADS", "MKL_DEBUG_CPU_TYPE",
                  "ONEDNN_DEFAULT_FPMATH_MODE", "CUBLAS_WORKSPACE_CONFIG")
_TRUE = ("1", "true", "yes", "on")


class ReproducibleModeError(RuntimeError):
    """The mode was asked for where it cannot take effect (torch already loaded in this process)."""


def requested(environ: dict[str, str] | None = None) -> bool:
    """Whether ``COLORBENCH_REPRODUCIBLE`` asks for the mode."""
    return (os.environ if environ is None else environ).get(SWITCH, "").strip().lower() in _TRUE


def pinned_environment(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` with the mode switched on and each pinned variable set where it is not set already."""
    env = dict(environ)
    env[SWITCH] = "1"
    for name, value in PINNED.items():
        if not env.get(name):
            env[name] = value
    return env


def apply(reexec: bool = True) -> None:
    """Switch the mode on for this process: at once when the variables are set, else by starting it again.

    ``reexec=False`` (``bench.cli.main`` called with its own argv, not the process's) raises
    :class:`ReproducibleModeError` where a start again would be needed.
    """
    env = pinned_environment(dict(os.environ))
    missing = sorted(name for name in PINNED if os.environ.get(name) != env[name])
    if not missing:
        os.environ[SWITCH] = "1"  # the processes it starts (sweep jobs) get the mode too
        return
    if "torch" in sys.modules or not reexec:
        raise ReproducibleModeError(
            f"--reproducible: {', '.join(missing)} must be set before torch loads, and "
            + ("torch is loaded already in this process" if "torch" in sys.modules else
               "this call cannot start the process again") + "; set them in the environment ("
            + " ".join(f"{name}={env[name]}" for name in missing) + ") or run colorbench from the command line")
    sys.stdout.flush()
    sys.stderr.flush()
    argv = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
    os.execve(sys.executable, [sys.executable, *argv[1:]], env)


def pinned_threads() -> int | None:
    """The thread count a job keeps in the mode (None when the mode is off)."""
    if not requested():
        return None
    try:
        return int(os.environ.get("OMP_NUM_THREADS", PINNED["OMP_NUM_THREADS"]))
    except ValueError:
        return None


def math_environment() -> dict[str, str]:
    """The variables of :data:`MATH_VARIABLES` set in this process, with their values."""
    return {name: os.environ[name] for name in MATH_VARIABLES if os.environ.get(name)}


def state() -> dict:
    """What a run records: whether the mode is on and the pinned variables' values in force."""
    on = requested()
    return {"on": on, "pinned": {name: os.environ.get(name) for name in PINNED} if on else {},
            "as_documented": on and all(os.environ.get(name) == value for name, value in PINNED.items())}


def shell_exports() -> list[str]:
    """``export`` lines that switch the mode on in a batch script (empty when the mode is off here)."""
    if not requested():
        return []
    env = pinned_environment(dict(os.environ))
    return [f"export {name}={env[name]}" for name in (SWITCH, *PINNED)]


def configure_torch() -> None:
    """In the mode, compute convolutions with torch's own im2col + MKL GEMM instead of oneDNN (see the module)."""
    if requested():
        import torch
        torch.backends.mkldnn.enabled = False
