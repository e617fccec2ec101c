"""One prepared check of colorbench's GPU path: is it correct, and how fast is it (JSON + Markdown).

    python benchmarks/gpu_check.py --device cuda --minutes 8 --out DIR
    python benchmarks/gpu_check.py --device cpu --tiny --out DIR        # the script itself, in under a minute

One process (plus the packed runs' workers), one time budget: the sections run in this order,
each within what is left, and the report is written after each, so a run cut short still
leaves its findings.  Correctness:

* ``batches``: the training set resident on the device, cropped and flipped there, gives the
  CPU path's batches bit for bit (``bench.training.batches``);
* ``cpu_vs_device``: the same initial weights and batches, 20 updates on the CPU and on the
  device in fp32 (TF32 off, dropout off: CPU and CUDA draw dropout masks from different
  generators); every loss term of the first update within :data:`FIRST_RTOL` (rounding
  alone) and of every update within :data:`LOSS_RTOL` (rounding amplified by training);
* ``determinism``: in the reproducible mode (deterministic algorithms, ``CUBLAS_WORKSPACE_CONFIG``,
  cuDNN benchmark off) ``train`` on the device twice, and once interrupted half-way and
  resumed: every file of the three run directories equal (``bench.run.compare``);
* ``precisions``: 20 updates in bf16 autocast, TF32 (CUDA) and channels-last: finite, and
  how far from fp32.

Speed (images/s, ms/step and peak memory of the real ``train_step``, batches resident on the
device): unet_256 at batch 1 at 256², unet_128 at batch 16 at 128², the ``cpu`` profile's
network at 64² at batch 1 (also with host batches and pinned copies), that network packed K =
1, 2, 4, 8, 16 processes per GPU, and source report 000's workload (8,000 COCO images x 50 epochs at
128², batch 16) extrapolated to minutes.  ``--tiny`` shrinks every network and image so the
whole check runs on two CPU cores in under a minute (the test suite runs it).

Exit 0 when every check that ran passed, 1 when one failed, 2 for bad arguments (e.g.
``--device cuda`` where no GPU answers).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

# Only what the packed workers need at the top (they start once per process); the trainer where it is used.
from bench.config import RunConfig, load_config  # noqa: E402
from bench.models import build_networks  # noqa: E402
from bench.run.compare import run_differences  # noqa: E402
from bench.run.machine import environment  # noqa: E402
from bench.training.batches import device_training_batch, training_batch  # noqa: E402
from bench.training.gpu_path import configure_math, place_networks  # noqa: E402
from bench.training.step import build_optimizer, train_step  # noqa: E402

# CPU against device in fp32, largest relative difference of a loss term.  The first update sees only rounding
# (two CPU kernel choices for the same arithmetic, measured on the check's network: 7e-8 to 3e-7); later ones
# see it amplified by training a GAN (the same pairs after 20 updates: 1.2e-2 and 4.6e-2).  A wrong weight,
# batch or loss differs by far more from the first update on.
FIRST_RTOL = 1e-4
LOSS_RTOL = 1e-1  # every update of the 20
UPDATES = {False: 20, True: 5}  # --tiny checks the plumbing with fewer
REPORT000_IMAGES, REPORT000_EPOCHS = 8000, 50
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# ---- the workloads, at full scale and --tiny -----------------------------------------------------------

def _net(size: int, depth: int, ngf: int, ndf: int, n_layers: int, batch: int, *extra: str) -> list[str]:
    return [f"data.image_size={size}", f"generator.depth={depth}", f"generator.ngf={ngf}",
            f"discriminator.ndf={ndf}", f"discriminator.n_layers={n_layers}", f"data.batch_size={batch}", *extra]


REPORT000 = ["colour_space=rgb", "optim.grad_clip_norm=1.0", "optim.grad_clip_scope=generator"]
WORKLOADS = {  # name -> (full-scale overrides, --tiny overrides)
    "unet_256 b1 256px": (_net(256, 8, 64, 64, 3, 1), _net(64, 6, 8, 8, 1, 1)),
    "unet_128 b16 128px": (_net(128, 7, 64, 64, 3, 16), _net(32, 5, 8, 8, 1, 4)),
    "cpu-profile b1 64px": (_net(64, 6, 32, 32, 3, 1), _net(32, 5, 8, 8, 1, 1)),
    "report-000 b16 128px": (_net(128, 7, 64, 64, 3, 16, *REPORT000), _net(32, 5, 8, 8, 1, 4, *REPORT000)),
}
CHECK_NET = {False: _net(64, 6, 32, 32, 3, 8), True: _net(32, 5, 8, 8, 1, 4)}  # the correctness checks' network
PACKED = {False: (1, 2, 4, 8, 16), True: (1, 2)}
STEPS = {False: {"warmup": 5, "steps": 40, "seconds": 12.0}, True: {"warmup": 1, "steps": 2, "seconds": 0.3}}
PACK_WINDOW_S = {False: 10.0, True: 1.0}


class Budget:
    """The time left of ``--minutes``."""

    def __init__(self, minutes: float) -> None:
        self.deadline = time.monotonic() + 60 * minutes

    def left(self) -> float:
        return self.deadline - time.monotonic()


# ---- helpers ---------------------------------------------------------------------------------------------

def config_for(overrides: list[str], device: torch.device, *more: str) -> RunConfig:
    return load_config(None, [*overrides, "optim.schedule=constant", f"device={device.type}", *more])


def synthetic_images(n: int, side: int, seed: int = 0) -> torch.Tensor:
    """``n`` smooth random colour images, uint8 (n, 3, side, side): colourful, not noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side] / side
    images = []
    for _ in range(n):
        channels = [np.sin(2 * np.pi * (rng.uniform(0.3, 1.5) * x + rng.uniform(0.3, 1.5) * y + rng.uniform()))
                    for _ in range(3)]
        images.append((np.stack(channels) * 0.5 + 0.5) * 255)
    return torch.from_numpy(np.stack(images).astype(np.uint8))


def load_side(config: RunConfig) -> int:
    from bench.data.augmentation import load_size
    return load_size(config.data.image_size, config.data.augmentation)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(config: RunConfig, device: torch.device, seed: int = 0):
    """Networks (on ``device``, in the config's memory format) and their optimisers, from ``seed``."""
    torch.manual_seed(seed)
    generator, discriminator = build_networks(config)
    place_networks(config, device, generator, discriminator)
    generator.train()
    return generator, discriminator, build_optimizer(generator, config), build_optimizer(discriminator, config)


def updates(config: RunConfig, device: torch.device, networks, images: torch.Tensor, n: int,
            scratch: Path) -> list[dict[str, float]]:
    """``n`` training updates of ``networks`` on the batches of ``images`` (cropped where they live)."""
    generator, discriminator, opt_g, opt_d = networks
    per_epoch = math.ceil(len(images) / config.data.batch_size)
    losses = []
    for step in range(n):
        epoch, index = divmod(step, per_epoch)
        batch = device_training_batch(images, config, epoch, index, step)
        losses.append(train_step(batch, generator, discriminator, opt_g, opt_d, config, adversarial=True,
                                 run_dir=scratch, step=step))
    return losses


def relative_differences(a: list[dict[str, float]], b: list[dict[str, float]]) -> list[float]:
    """Per update, the largest |a - b| / |a| over the loss terms."""
    return [max(abs(x[k] - y[k]) / max(abs(x[k]), 1e-12) for k in x) for x, y in zip(a, b)]


def peak_memory(device: torch.device) -> dict[str, float | None]:
    if device.type == "cuda":
        return {"peak_allocated_mib": torch.cuda.max_memory_allocated(device) / 2 ** 20,
                "peak_reserved_mib": torch.cuda.max_memory_reserved(device) / 2 ** 20}
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"peak_allocated_mib": None, "process_max_rss_mib": rss_mib}


@contextlib.contextmanager
def reproducible_mode(on: bool):
    """The reproducible mode in this process (COLORBENCH_REPRODUCIBLE), and torch's oneDNN flag put back after."""
    previous, onednn = os.environ.get("COLORBENCH_REPRODUCIBLE"), torch.backends.mkldnn.enabled
    os.environ["COLORBENCH_REPRODUCIBLE"] = "1" if on else "0"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("COLORBENCH_REPRODUCIBLE", None)
        else:
            os.environ["COLORBENCH_REPRODUCIBLE"] = previous
        torch.backends.mkldnn.enabled = onednn


# ---- correctness ------------------------------------------------------------------------------------------

def check_batches(device: torch.device, tiny: bool, scratch: Path) -> dict:
    """The resident training set's batches against training_batch's, bit for bit, over two epochs."""
    config = config_for(CHECK_NET[tiny], device)
    images = synthetic_images(21, load_side(config))
    resident = images.to(device)
    per_epoch = math.ceil(len(images) / config.data.batch_size)
    unequal = [step for step in range(2 * per_epoch)
               if not torch.equal(device_training_batch(resident, config, *divmod(step, per_epoch), step).cpu(),
                                  training_batch(images, config, *divmod(step, per_epoch), step))]
    return {"passed": not unequal, "batches": 2 * per_epoch, "unequal_steps": unequal,
            "detail": f"{2 * per_epoch} batches of {config.data.batch_size} ({config.data.augmentation}), "
                      f"{'all equal bit for bit' if not unequal else f'{len(unequal)} differ'}"}


def check_cpu_vs_device(device: torch.device, tiny: bool, scratch: Path) -> dict:
    config = config_for(CHECK_NET[tiny], device, "generator.dropout=false")
    cpu = torch.device("cpu")
    images = synthetic_images(16, load_side(config))
    configure_math(config, device)  # fp32: TF32 off on CUDA
    on_cpu = build(config_for(CHECK_NET[tiny], cpu, "generator.dropout=false"), cpu)
    on_device = build(config, device)
    for a, b in zip(on_cpu[:2], on_device[:2]):
        b.load_state_dict(a.state_dict())  # the same initial weights, bit for bit
    cpu_losses = updates(config, cpu, on_cpu, images, UPDATES[tiny], scratch)
    device_losses = updates(config, device, on_device, images.to(device), UPDATES[tiny], scratch)
    rel = relative_differences(cpu_losses, device_losses)
    finite = all(math.isfinite(v) for losses in device_losses for v in losses.values())
    passed = finite and rel[0] <= FIRST_RTOL and max(rel) <= LOSS_RTOL
    return {"passed": passed, "updates": UPDATES[tiny], "first_rel_diff": rel[0], "max_rel_diff": max(rel),
            "rel_diff_per_update": rel, "tolerance": {"first": FIRST_RTOL, "all": LOSS_RTOL},
            "cpu_losses_last": cpu_losses[-1], "device_losses_last": device_losses[-1],
            "detail": f"largest relative difference of a loss term: {rel[0]:.1e} at update 1, {max(rel):.1e} over "
                      f"{UPDATES[tiny]} (tolerance {FIRST_RTOL:.0e} / {LOSS_RTOL:.0e})"}


def check_determinism(device: torch.device, tiny: bool, scratch: Path) -> dict:
    from bench.training.train import train
    folder = scratch / "photos"
    folder.mkdir(exist_ok=True)
    for i, image in enumerate(synthetic_images(12 if tiny else 48, 40 if tiny else 96, seed=1)):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{i:03d}.png")
    steps = 4 if tiny else 30
    config = config_for(CHECK_NET[tiny], device, "data.dataset=folder", f"data.root={folder}",
                        "data.test_fraction=0.25", f"optim.steps={steps}", "eval.every_epochs=0",
                        f"eval.n_sample_images={0 if tiny else 2}", "eval.metrics=psnr_rgb8,ssim_rgb8", "log_every=1",
                        "keep_training_state=true", f"data.batch_size={4 if tiny else 8}",
                        "compute.training_images=device")
    with reproducible_mode(True):
        train(config, scratch / "first")
        train(config, scratch / "second")
        train(config, scratch / "resumed", stop_after_step=steps // 2)
        train(config, scratch / "resumed")
        state = {"cudnn_benchmark": torch.backends.cudnn.benchmark,
                 "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
                 "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}
    twice = run_differences(scratch / "first", scratch / "second")
    resumed = run_differences(scratch / "first", scratch / "resumed")
    return {"passed": not twice and not resumed, "steps": steps, "interrupted_at": steps // 2, "settings": state,
            "two_runs_differences": twice, "resumed_differences": resumed,
            "detail": f"{steps} steps; two runs: {'equal' if not twice else f'{len(twice)} file(s) differ'}; "
                      f"interrupted at {steps // 2} and resumed: "
                      f"{'equal' if not resumed else f'{len(resumed)} file(s) differ'} (every file, bit for bit)"}


def check_precisions(device: torch.device, tiny: bool, scratch: Path) -> dict:
    images = synthetic_images(16, load_side(config_for(CHECK_NET[tiny], device))).to(device)
    variants = {"fp32": [], "bf16": ["precision=bf16"], "channels_last": ["compute.channels_last=true"]}
    if device.type == "cuda":
        variants["tf32"] = ["precision=tf32"]
    losses = {}
    for name, extra in variants.items():
        config = config_for(CHECK_NET[tiny], device, "generator.dropout=false", *extra)
        configure_math(config, device)
        losses[name] = updates(config, device, build(config, device), images, UPDATES[tiny], scratch)
    configure_math(config_for(CHECK_NET[tiny], device), device)
    result = {"passed": True, "updates": UPDATES[tiny], "variants": {}}
    for name, values in losses.items():
        finite = all(math.isfinite(v) for step in values for v in step.values())
        rel = relative_differences(losses["fp32"], values)
        result["variants"][name] = {"finite": finite, "first_rel_diff_to_fp32": rel[0],
                                    "max_rel_diff_to_fp32": max(rel)}
        result["passed"] &= finite
    result["detail"] = "; ".join(f"{name}: {'finite' if v['finite'] else 'NOT FINITE'}, first update "
                                 f"{v['first_rel_diff_to_fp32']:.1e} from fp32"
                                 for name, v in result["variants"].items() if name != "fp32")
    return result


# ---- speed ------------------------------------------------------------------------------------------------

def time_steps(config: RunConfig, device: torch.device, warmup: int, steps: int, seconds: float,
               scratch: Path) -> dict:
    """Median time of real training steps (after ``warmup``), batches made as the config says."""
    from bench.training.batches import TrainingImages
    configure_math(config, device)
    networks = build(config, device)
    images = TrainingImages(synthetic_images(max(32, 2 * config.data.batch_size), load_side(config)), config, device)
    per_epoch = math.ceil(len(images) / config.data.batch_size)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, step, started = [], 0, time.monotonic()
    while step < warmup + steps and (step < warmup + 3 or time.monotonic() - started < seconds):
        epoch, index = divmod(step, per_epoch)
        synchronize(device)
        t0 = time.perf_counter()
        batch = images.batch(epoch, index, step)
        train_step(batch, *networks[:2], *networks[2:], config, adversarial=True, run_dir=scratch, step=step)
        synchronize(device)
        if step >= warmup:
            times.append(time.perf_counter() - t0)
        step += 1
    median = statistics.median(times)
    return {"ms_per_step": 1e3 * median, "images_per_s": config.data.batch_size / median, "timed_steps": len(times),
            "batches": images.placement, **peak_memory(device)}


def measure_speed(device: torch.device, tiny: bool, budget: Budget, scratch: Path, report: Callable) -> dict:
    precisions = ["fp32", "bf16"] + (["tf32"] if device.type == "cuda" else [])
    rows = []
    plan = [(name, precision, []) for name in ("unet_256 b1 256px", "unet_128 b16 128px") for precision in precisions]
    plan += [("cpu-profile b1 64px", "fp32", []), ("cpu-profile b1 64px", "fp32", ["compute.training_images=host"]),
             ("unet_128 b16 128px", "bf16", ["compute.channels_last=true"])]
    plan += [("report-000 b16 128px", precision, []) for precision in precisions]
    for name, precision, extra in plan:
        if budget.left() < 20 and not tiny:
            rows.append({"workload": name, "precision": precision, "extra": extra, "skipped": "time budget"})
            continue
        config = config_for(WORKLOADS[name][tiny], device, f"precision={precision}", "compute.training_images=device",
                            *extra)
        try:
            result = time_steps(config, device, **STEPS[tiny], scratch=scratch)
        except Exception as err:  # noqa: BLE001 - an out-of-memory or a kernel missing: reported, the rest goes on
            result = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}
        rows.append({"workload": name, "precision": precision, "extra": extra, **result})
        report()
    return {"rows": rows, "report000_minutes": report000_minutes(rows)}


def report000_minutes(rows: list[dict]) -> dict[str, float]:
    """Source report 000's training (8,000 images x 50 epochs at 128², batch 16) in minutes at each measured rate."""
    return {row["precision"]: REPORT000_IMAGES * REPORT000_EPOCHS / row["images_per_s"] / 60 for row in rows
            if row["workload"] == "report-000 b16 128px" and "images_per_s" in row}


class PackedWorkers:
    """K processes training the cpu profile's network at batch 1 at once on one device, for each K.

    max(K) workers start with the check, so their start-up (torch, CUDA) overlaps the
    correctness sections; they warm up and wait.  Then for each K the first K of them train
    together for the same window, while the others wait, and report the images they trained.
    """

    def __init__(self, device: torch.device, tiny: bool, folder: Path) -> None:
        self.device, self.tiny, self.folder = device, tiny, folder
        self.ks, self.window = PACKED[tiny], PACK_WINDOW_S[tiny]
        self.workers = []
        for index in range(max(self.ks)):
            spec = {"device": device.type, "tiny": tiny, "folder": str(folder), "window": self.window,
                    "groups": [k for k in self.ks if index < k],
                    "threads": {k: self.threads(k) for k in self.ks}}
            self.workers.append(subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))

    def threads(self, k: int) -> int:
        """Torch threads per worker on a CPU: the cores shared by the K runs, as a packed sweep shares them (one
        with --tiny)."""
        return 1 if self.tiny else max(1, (os.cpu_count() or 1) // k)

    def _wait_for(self, pattern: str, count: int, deadline: float) -> bool:
        while time.monotonic() < deadline and not any(w.poll() is not None and w.returncode for w in self.workers):
            if len(list(self.folder.glob(pattern))) >= count:
                return True
            time.sleep(0.02)
        return False

    def measure(self, budget: Budget, report: Callable) -> list[dict]:
        deadline = time.monotonic() + max(10.0, budget.left() if not self.tiny else 90.0)
        ran = []
        if self._wait_for("ready.*", len(self.workers), deadline):
            for k in self.ks:  # one group at a time, the same window each
                if not self.tiny and budget.left() < self.window + 5:
                    break
                (self.folder / f"start-{k}").write_text(str(time.time() + 0.1))
                if not self._wait_for(f"done-{k}.*", k, deadline + self.window + 30):
                    break
                ran.append(k)
        errors = self.close()
        rows = []
        for k in self.ks:
            results = [_read_json(path) for path in sorted(self.folder.glob(f"done-{k}.*"))]
            if k not in ran or len(results) < k or None in results:
                why = "time budget" if not errors and budget.left() < self.window + 5 else \
                    "a worker failed or timed out" + (f": {errors[0]}" if errors else "")
                rows.append({"runs": k, "skipped" if why == "time budget" else "error": why})
                continue
            rows.append({"runs": k, "images_per_s": sum(r["images"] for r in results) / self.window,
                         "per_run_images_per_s": [r["images"] / self.window for r in results],
                         "window_s": self.window,
                         "threads_per_run": self.threads(k) if self.device.type == "cpu" else None,
                         "peak_mib_per_run": [r.get("peak_allocated_mib") or r.get("process_max_rss_mib")
                                              for r in results]})
        single = next((row["images_per_s"] for row in rows if row["runs"] == 1 and "images_per_s" in row), None)
        for row in rows:
            if single and "images_per_s" in row:
                row["speedup_vs_1"] = row["images_per_s"] / single
        report()
        return rows

    def close(self) -> list[str]:
        """Stop the workers (once); the last line of each failed one's stderr."""
        errors, workers, self.workers = [], self.workers, []
        for worker in workers:
            if worker.poll() is None:
                (self.folder / "stop").touch()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.wait(timeout=10)
            if worker.poll() is None:
                worker.kill()
            _, err = worker.communicate()
            if worker.returncode and err and err.strip():
                errors.append(err.strip().splitlines()[-1])
        return errors


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def worker_main(spec: dict) -> int:
    """One packed worker: warm up, say so; for each of its groups wait for the start, count the images of the
    window and write them to ``done-<K>.<pid>``."""
    device = torch.device(spec["device"])
    folder = Path(spec["folder"])
    config = config_for(WORKLOADS["cpu-profile b1 64px"][spec["tiny"]], device, "compute.training_images=device")
    configure_math(config, device)
    networks = build(config, device)
    images = synthetic_images(32, load_side(config)).to(device)
    step = 0

    def one() -> None:
        nonlocal step
        batch = device_training_batch(images, config, step // 32, step % 32, step)
        train_step(batch, *networks[:2], *networks[2:], config, adversarial=True, run_dir=folder, step=step)
        step += 1

    for _ in range(5):
        one()
    synchronize(device)
    (folder / f"ready.{os.getpid()}").touch()
    for k in spec["groups"]:
        torch.set_num_threads(spec["threads"][str(k)])
        start_file = folder / f"start-{k}"
        while not start_file.exists():
            if (folder / "stop").exists():
                return 0
            time.sleep(0.02)
        start = float(start_file.read_text() or time.time())
        while time.time() < start:
            time.sleep(0.001)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        counted = 0
        while time.time() < start + spec["window"]:
            one()
            counted += 1
        synchronize(device)
        done = folder / f"done-{k}.{os.getpid()}"
        tmp = done.with_name(f"partial-{done.name}")
        tmp.write_text(json.dumps({"images": counted * config.data.batch_size, **peak_memory(device)}))
        tmp.rename(done)
    return 0


# ---- the report -------------------------------------------------------------------------------------------

def _mib(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def markdown(report: dict) -> str:
    """The report as Markdown: what docs/performance.md's GPU section takes."""
    machine = report["machine"]
    gpu = machine.get("gpu")
    where = (f"{gpu.get('name')} ({gpu.get('memory_gib')} GiB, capability {gpu.get('capability')}, driver "
             f"{gpu.get('driver')}, CUDA {gpu.get('cuda')}, cuDNN {gpu.get('cudnn')})" if gpu else "no GPU")
    peak = "peak MiB (torch's peak allocated)" if gpu else "peak MiB (the process's max RSS)"
    lines = [f"# colorbench GPU check: {report['device_name']}", "",
             f"`{report['command']}`, {report['date']}, {report['elapsed_s']:.0f} s of a {report['minutes']:g} min "
             f"budget{' (--tiny: shrunken networks; the numbers mean nothing)' if report['tiny'] else ''}.", "",
             f"Machine: {where}; CPU {machine.get('cpu_model')}; torch {machine.get('torch')}.", "",
             "## Correctness", "", "| check | result | detail |", "|---|---|---|"]
    for name, check in report["checks"].items():
        verdict = "skipped" if "skipped" in check else "error" if "error" in check else \
            "pass" if check.get("passed") else "FAIL"
        detail = check.get("skipped") or check.get("error") or check.get("detail", "")
        lines.append(f"| {name} | {verdict} | {detail} |")
    lines += ["", "## Speed", "", "Real `train_step`s on synthetic photos, median after warm-up; batches cropped on "
              "the device unless the setting says host.", "",
              f"| workload | precision | setting | images/s | ms/step | {peak} |", "|---|---|---|---|---|---|"]
    for row in report["speed"].get("rows", []):
        setting = ", ".join(row["extra"]) or "default"
        if "images_per_s" in row:
            memory = row.get("peak_allocated_mib") or row.get("process_max_rss_mib")
            lines.append(f"| {row['workload']} | {row['precision']} | {setting} | {row['images_per_s']:.1f} | "
                         f"{row['ms_per_step']:.1f} | {_mib(memory)} |")
        else:
            lines.append(f"| {row['workload']} | {row['precision']} | {setting} | "
                         f"{row.get('skipped') or row.get('error')} | | |")
    minutes = report["speed"].get("report000_minutes", {})
    if minutes:
        lines += ["", "Source report 000's workload (8,000 images x 50 epochs at 128², batch 16; evaluations left "
                  "out), extrapolated: " + ", ".join(f"{m:.1f} min in {p}" for p, m in minutes.items())
                  + " (published: about 6 h on one GPU)."]
    lines += ["", "## Packed runs", "", "The cpu profile's network at 64², batch 1: K processes training at once on "
              "one device, each its own run.", "",
              f"| runs K | images/s together | per run | vs K = 1 | {peak} per run |",
              "|---|---|---|---|---|"]
    for row in report["packed"]:
        if "images_per_s" in row:
            peaks = [p for p in row["peak_mib_per_run"] if p is not None]
            lines.append(f"| {row['runs']} | {row['images_per_s']:.1f} | "
                         f"{statistics.mean(row['per_run_images_per_s']):.1f} | {row.get('speedup_vs_1', 1.0):.2f}x | "
                         f"{_mib(max(peaks) if peaks else None)} |")
        else:
            lines.append(f"| {row['runs']} | {row.get('skipped') or row.get('error')} | | | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--minutes", type=float, default=8.0, help="time budget (default 8)")
    parser.add_argument("--out", type=Path, default=Path("gpu-check"), help="folder for gpu_check.json and .md")
    parser.add_argument("--tiny", action="store_true", help="shrunken networks and images: checks the script")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(json.loads(args.worker))
    if not (args.minutes > 0 and math.isfinite(args.minutes)):
        print(f"gpu_check: --minutes: got {args.minutes}; allowed: a number > 0", file=sys.stderr)
        return EXIT_USAGE
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: --device cuda: no CUDA device is available here (torch {torch.__version__}, built for CUDA "
              f"{torch.version.cuda}); --device cpu --tiny checks the script itself", file=sys.stderr)
        return EXIT_USAGE
    return run_check(torch.device(args.device), args.minutes, args.out, args.tiny,
                     " ".join(["python", "benchmarks/gpu_check.py", *(argv if argv is not None else sys.argv[1:])]))


def run_check(device: torch.device, minutes: float, out: Path, tiny: bool, command: str) -> int:
    budget = Budget(minutes)
    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    if device.type == "cpu" and tiny:
        torch.set_num_threads(1)  # --tiny checks the plumbing: one thread each, for this process and the workers
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before cuBLAS starts: the determinism check
    machine = environment(device)
    report = {"command": command, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "device": device.type,
              "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else
              (machine.get("cpu_model") or platform.processor()),
              "tiny": tiny, "minutes": minutes, "machine": machine, "tolerance":
              {"cpu_vs_device_first": FIRST_RTOL, "cpu_vs_device_all": LOSS_RTOL},
              "checks": {}, "speed": {}, "packed": [], "elapsed_s": 0.0}

    def write() -> None:
        report["elapsed_s"] = time.monotonic() - started
        (out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        (out / "gpu_check.md").write_text(markdown(report))

    with tempfile.TemporaryDirectory(prefix="colorbench-gpu-check-") as scratch_dir:
        scratch = Path(scratch_dir)
        (scratch / "packed").mkdir()
        packed = PackedWorkers(device, tiny, scratch / "packed")  # they start up while the checks run
        try:
            _sections(device, tiny, budget, scratch, report, write, started, packed)
        finally:
            packed.close()
    print((out / "gpu_check.md").read_text())
    failed = [name for name, check in report["checks"].items() if "error" in check or check.get("passed") is False]
    if failed:
        print(f"gpu_check: failed: {', '.join(failed)}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def _sections(device: torch.device, tiny: bool, budget: Budget, scratch: Path, report: dict, write: Callable,
          started: float, packed: PackedWorkers) -> None:
    os.environ.setdefault("COLORBENCH_CACHE", str(scratch / "cache"))
    checks = {"batches": check_batches, "cpu_vs_device": check_cpu_vs_device,
              "determinism": check_determinism, "precisions": check_precisions}
    for name, check in checks.items():
        if budget.left() < (5 if tiny else 30):
            report["checks"][name] = {"skipped": "time budget"}
            continue
        section = scratch / name
        section.mkdir()
        try:
            report["checks"][name] = check(device, tiny, section)
        except Exception as err:  # noqa: BLE001 - a check that cannot run is reported, the rest goes on
            traceback.print_exc()
            report["checks"][name] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}
        print(f"gpu_check: {name} ({time.monotonic() - started:.0f} s): "
              f"{report['checks'][name].get('detail') or report['checks'][name]}", flush=True)
        write()
    report["speed"] = measure_speed(device, tiny, budget, scratch, write)
    print(f"gpu_check: speed ({time.monotonic() - started:.0f} s)", flush=True)
    write()
    report["packed"] = packed.measure(budget, write)
    print(f"gpu_check: packed ({time.monotonic() - started:.0f} s)", flush=True)
    write()



if __name__ == "__main__":
    sys.exit(main())
