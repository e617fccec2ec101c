"""``colorbench perf``: time the training step a run executes, phase by phase, optionally beside the baseline.

Times are medians over steps after a warm-up.  With ``--baseline`` the colorbench step
and the reference-style step (``bench.perf.baseline``) alternate in rounds, so both see
the same machine state.  The baseline runs in a child process, started fresh: it keeps the
C allocator's default settings, as the reference would, while colorbench's side applies
``bench.training.allocator`` exactly as ``train`` does.
"""
from __future__ import annotations

import contextlib
import math
import multiprocessing
import resource
import statistics
import tempfile
import time
import traceback
from collections import defaultdict
from pathlib import Path

import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from bench.config import ConfigError, RunConfig
from bench.data import prepare_data
from bench.models import build_networks
from bench.models.memory import check_training_fits
from bench.perf.baseline import ReferenceColorizationDataset, reference_networks, reference_step
from bench.run import reproducible
from bench.run.machine import resolve_device
from bench.training.allocator import retain_freed_memory
from bench.training.batches import TrainingImages
from bench.training.gpu_path import configure_math, place_networks
from bench.training.train import build_optimizer, train_step

PHASES = ("data", "g_forward", "d_step", "g_step", "optimizer")


class PhaseTimer:
    """Context managers that add the wall time of each phase of a step (synchronising CUDA first)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.current: dict[str, float] = defaultdict(float)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def __call__(self, phase: str):
        self._sync()
        start = time.perf_counter()
        yield
        self._sync()
        self.current[phase] += time.perf_counter() - start

    def take(self) -> dict[str, float]:
        """The phase times of the step just finished; starts the next step at zero."""
        taken, self.current = dict(self.current), defaultdict(float)
        return taken


def _check_baseline_config(config: RunConfig) -> None:
    """The baseline reproduces pix2pix's colourisation step; refuse settings it does not have."""
    required = {"colour_space": (config.colour_space, "lab"), "loss.adversarial": (config.loss.adversarial, "bce"),
                "loss.reconstruction": (config.loss.reconstruction, "l1"),
                "discriminator.conditional": (config.discriminator.conditional, True),
                "discriminator.arch": (config.discriminator.arch, "patchgan"), "data.task": (config.data.task, "colourise"),
                "optim.grad_clip_norm": (config.optim.grad_clip_norm, None), "loss.lambda_adv": (config.loss.lambda_adv, 1.0)}
    for key, (value, needed) in required.items():
        if value != needed:
            raise ConfigError(f"{key}: got {value!r}; --baseline reproduces the reference colourisation step, "
                              f"which needs {needed!r}")


class _ColorbenchRunner:
    def __init__(self, config: RunConfig, device: torch.device) -> None:
        self.config, self.device = config, device
        if device.type == "cpu":
            retain_freed_memory()  # as train() does
        configure_math(config, device)  # as train() does: cuDNN, TF32, determinism (bench/training/gpu_path.py)
        self.images = TrainingImages(prepare_data(config.data).network_images("train", config.data.task), config,
                                     device)  # on the device or pinned, as compute.training_images says
        torch.manual_seed(config.seed)
        self.generator, self.discriminator = build_networks(config)
        place_networks(config, device, self.generator, self.discriminator)  # in the run's memory format
        self.generator.train()
        self.opt_g = build_optimizer(self.generator, config)
        self.opt_d = build_optimizer(self.discriminator, config) if self.discriminator is not None else None
        self.steps_per_epoch = math.ceil(len(self.images) / config.data.batch_size)
        self.step = 0
        self.timer = PhaseTimer(device)

    def run_step(self) -> dict[str, float]:
        epoch, index = divmod(self.step, self.steps_per_epoch)
        with self.timer("data"):
            batch = self.images.batch(epoch, index, self.step)
        train_step(batch, self.generator, self.discriminator, self.opt_g, self.opt_d, self.config,
                   adversarial=self.discriminator is not None, run_dir=Path(tempfile.gettempdir()), step=self.step,
                   timer=self.timer)
        self.step += 1
        return self.timer.take()

    def flops_per_step(self) -> int:
        counter = FlopCounterMode(display=False)
        with counter:
            self.run_step()
        return counter.get_total_flops()


class _BaselineRunner:
    """The reference pipeline on files written from the prepared training images."""

    def __init__(self, config: RunConfig, device: torch.device, folder: Path, workers: int) -> None:
        data = prepare_data(config.data)
        paths = []
        for i, image in enumerate(data.train):
            path = folder / f"{i:05d}.jpg"
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(path, quality=95)
            paths.append(path)
        augmentation = config.data.augmentation
        load = data.train.shape[-1] if "jitter" in augmentation else config.data.image_size
        dataset = ReferenceColorizationDataset(paths, load, config.data.image_size, "flip" in augmentation)
        self.loader = torch.utils.data.DataLoader(dataset, batch_size=config.data.batch_size, shuffle=True,
                                                  num_workers=workers, persistent_workers=workers > 0, drop_last=True)
        self.batches = iter(self.loader)
        torch.manual_seed(config.seed)
        self.generator, self.discriminator = reference_networks(config)
        self.generator.to(device).train()
        self.discriminator.to(device)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.optim.lr, betas=config.optim.betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.optim.lr, betas=config.optim.betas)
        self.device, self.lambda_l1 = device, config.loss.lambda_rec
        self.timer = PhaseTimer(device)

    def run_step(self) -> dict[str, float]:
        with self.timer("data"):
            try:
                real_a, real_b = next(self.batches)
            except StopIteration:
                self.batches = iter(self.loader)
                real_a, real_b = next(self.batches)
            real_a, real_b = real_a.to(self.device), real_b.to(self.device)
        with self.timer("step"):
            reference_step(self.generator, self.discriminator, self.opt_g, self.opt_d, real_a, real_b,
                           self.lambda_l1)
        return self.timer.take()


def _baseline_worker(connection, config: RunConfig, workers: int) -> None:
    """Child process: build the baseline, then run as many steps as each message asks (None ends)."""
    try:
        with tempfile.TemporaryDirectory(prefix="colorbench-perf-") as folder:
            runner = _BaselineRunner(config, resolve_device(config.device), Path(folder), workers)
            connection.send(("ready", None))
            while (steps := connection.recv()) is not None:
                connection.send(("times", [runner.run_step() for _ in range(steps)]))
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
        connection.send(("error", traceback.format_exc()))


class _BaselineProcess:
    """The baseline runner in a child process, driven step batch by step batch from this one."""

    def __init__(self, config: RunConfig, workers: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, child_end = context.Pipe()
        self.process = context.Process(target=_baseline_worker, args=(child_end, config, workers))
        self.process.start()
        self._receive()

    def _receive(self):
        kind, payload = self.connection.recv()
        if kind == "error":
            self.close()
            raise RuntimeError(f"the baseline process failed:\n{payload}")
        return payload

    def run_steps(self, steps: int) -> list[dict]:
        self.connection.send(steps)
        return self._receive()

    def close(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(OSError):
                self.connection.send(None)
            self.process.join(timeout=60)
            if self.process.is_alive():
                self.process.terminate()


def measure(config: RunConfig, steps: int = 10, warmup: int = 3, baseline: bool = False, rounds: int = 3,
            workers: int = 0, report=print) -> dict:
    """Time ``steps`` training steps (after ``warmup``) and print images/s, phases, memory and FLOP/s."""
    if baseline:
        _check_baseline_config(config)
    reproducible.configure_torch()
    device = resolve_device(config.device)
    check_training_fits(config, device)  # as train: networks beyond the memory are one line, before any allocation
    batch = config.data.batch_size
    ours = _ColorbenchRunner(config, device)
    flops = ours.flops_per_step()
    theirs = _BaselineProcess(config, workers) if baseline else None
    try:
        for _ in range(warmup):
            ours.run_step()
        if theirs:
            theirs.run_steps(warmup)
        ours_times: list[dict] = []
        theirs_times: list[dict] = []
        per_round = max(1, steps // rounds)
        while len(ours_times) < steps:
            ours_times += [ours.run_step() for _ in range(min(per_round, steps - len(ours_times)))]
            if theirs:
                theirs_times += theirs.run_steps(per_round)
    finally:
        if theirs:
            theirs.close()
    result = {"device": str(device), "batch_size": batch, "image_size": config.data.image_size,
              "precision": config.precision, "steps": steps,
              "colorbench": _summary(ours_times, batch), "flops_per_image": flops / batch}
    result["colorbench"]["achieved_flop_per_s"] = flops / result["colorbench"]["step_s"]
    result["peak_memory_mb"] = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
                                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    if baseline:
        result["baseline"] = _summary(theirs_times, batch)
        result["speedup"] = result["colorbench"]["images_per_s"] / result["baseline"]["images_per_s"]
    _print(result, report)
    return result


def _summary(times: list[dict], batch: int) -> dict:
    totals = [sum(t.values()) for t in times]
    step_s = statistics.median(totals)
    phases = {phase: statistics.median(t.get(phase, 0.0) for t in times) for phase in sorted({k for t in times
                                                                                              for k in t})}
    return {"step_s": step_s, "images_per_s": batch / step_s, "phases_s": phases}


def _print(result: dict, report) -> None:
    report(f"device {result['device']}, batch {result['batch_size']}, {result['image_size']}x{result['image_size']}, "
           f"{result['precision']}, median of {result['steps']} steps")
    for name in ("colorbench", "baseline"):
        if name not in result:
            continue
        r = result[name]
        phases = ", ".join(f"{k} {v * 1e3:.1f}" for k, v in r["phases_s"].items())
        report(f"{name:10s} {r['step_s'] * 1e3:9.1f} ms/step  {r['images_per_s']:8.2f} images/s  ({phases} ms)")
    report(f"model FLOPs per image {result['flops_per_image'] / 1e9:.2f} GFLOP; achieved "
           f"{result['colorbench']['achieved_flop_per_s'] / 1e9:.1f} GFLOP/s; peak memory "
           f"{result['peak_memory_mb']:.0f} MB")
    if "speedup" in result:
        report(f"speed-up over baseline: {result['speedup']:.2f}x images/s")
