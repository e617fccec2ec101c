"""One pix2pix training run: ``train(config, run_dir)``.

A plain function of plain values (importable and picklable, for submitit).  Calling it
again on the same directory continues from ``checkpoint.pt``; an interrupted and resumed
CPU run ends bitwise-identical to an uninterrupted one in every file (stats.jsonl's timing
fields, ``bench.run.rundir.TIMING_FIELDS``, aside), because data order and augmentation are
derived from (seed, step) and every RNG, optimiser and half-filled stats window is saved.

Only one process trains a directory at a time (``bench.run.rundir.locked``), and a directory
whose files are not this run's (a checkpoint of another run, logs without config.yaml) or
are damaged is refused with one line naming the file, never continued into a mixture.
"""
from __future__ import annotations

import math
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from bench.config import RunConfig, config_to_dict
from bench.config.yamlio import dumps, read  # colorbench's one YAML reader: no aliases (bombs), no duplicate keys
from bench.data import prepare_data
from bench.data.fingerprint import data_fingerprint
from bench.evaluation.baselines import is_grey_input, record_grey_input
from bench.evaluation.outputs import evaluation_outputs, save_sample_grid
from bench.evaluation.scoring import dataset_identity, metric_records, scoring_setup
from bench.models import build_networks
from bench.models.memory import check_training_fits
from bench.run import reproducible, rundir
from bench.run.checkpoint import (
    CHECKPOINT_FILE,
    FINISHED_CHECKPOINT_KEYS,
    load_checkpoint,
    load_own_checkpoint,
    save_checkpoint,
)
from bench.run.identity import config_id, data_id_of, run_id
from bench.run.machine import environment, resolve_device
from bench.run.randomness import rng_state, seed_all, set_rng_state
from bench.training.allocator import retain_freed_memory
from bench.training.batches import TrainingImages, training_batch  # noqa: F401 - training_batch: re-exported
from bench.training.gpu_path import configure_math, place_networks
from bench.training.gpu_path import record as gpu_path_record
from bench.training.schedules import build_scheduler
from bench.training.step import TrainingFailed, build_optimizer, train_step  # noqa: F401 - re-exported
from bench.training.trackers import Trackers, open_trackers


@dataclass
class Schedule:
    """Step arithmetic of a run."""
    steps_per_epoch: int
    total_steps: int
    eval_every_epochs: int
    eval_curve_points: int = 0

    def curve_steps(self) -> set[int]:
        """The learning curve's steps: ``eval_curve_points`` of them, a factor of 2 apart, the last step last."""
        return {max(1, round(self.total_steps / 2 ** k)) for k in range(self.eval_curve_points)}

    def epoch(self, step: int) -> int:
        return step // self.steps_per_epoch

    def ends_epoch(self, step: int) -> bool:
        """True when ``step`` optimisation steps complete an epoch."""
        return step % self.steps_per_epoch == 0

    def evaluates_after(self, step: int) -> bool:
        if step == self.total_steps or step in self.curve_steps():
            return True
        every = self.eval_every_epochs
        return every > 0 and self.ends_epoch(step) and (step // self.steps_per_epoch) % every == 0


def train(config: RunConfig, run_dir: str | Path, stop_after_step: int | None = None,
          stop_requested: Callable[[], bool] | None = None, planned_run_id: str | None = None) -> dict:
    """Train (or continue training) one run in ``run_dir``; return its summary.

    ``stop_after_step`` ends the call early after writing a checkpoint, as a preempted job
    would; calling ``train`` again continues from there.  ``stop_requested`` is asked after
    every step; when it returns true the call ends the same way at that step (a preempted
    job saves the step it is at, not the last periodic checkpoint).  A run that already has DONE
    returns its summary without training.  A non-finite loss writes FAILED and raises
    :class:`TrainingFailed`.  A directory another process is training, or whose files belong to
    another run or are damaged, raises :class:`bench.run.rundir.RunDirError` (a ConfigError).

    The run's id covers the data (``bench.run.identity``); ``planned_run_id``, the id a sweep
    named the directory by, must still be it (else the data changed since it was planned).
    """
    reproducible.configure_torch()
    check_training_fits(config, resolve_device(config.device))  # before writing or allocating anything
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = data_fingerprint(config, fetch=True)  # reads the photos' bytes (cached by size, mtime), decodes none
    data_id = data_id_of(fingerprint)
    run = run_id(config, data_id)
    if planned_run_id is not None and run != planned_run_id:
        raise rundir.RunDirError(f"{run_dir}: planned as run {planned_run_id!r}, but its data is now run {run!r} "
                                 "(the photos or weights changed since the sweep planned it); sweep again")
    with rundir.locked(run_dir):
        return _train(config, fingerprint, data_id, run_dir, stop_after_step, stop_requested)


def _train(config: RunConfig, fingerprint: dict, data_id: str, run_dir: Path, stop_after_step: int | None,
           stop_requested: Callable[[], bool] | None) -> dict:
    run = run_id(config, data_id)
    rundir.remove_stale_temporary_files(run_dir)  # left by a killed process; we hold the lock
    _check_run_dir(run_dir, run)
    if (run_dir / "DONE").exists():
        summary = _done_summary(run_dir, run)
        _drop_training_state(run_dir, config)  # a process stopped between DONE and the drop left it
        return summary
    if (run_dir / "FAILED").exists():
        raise TrainingFailed(f"{run_dir}: the run failed before (see {run_dir / 'FAILED'}); "
                             "delete that file to run it again")
    device = resolve_device(config.device)
    configure_math(config, device)  # cuDNN, TF32, determinism (bench/training/gpu_path.py); tf32 off CUDA fails here
    claimed = _claim_run_dir(run_dir, config, fingerprint, data_id, device)
    checkpoint = _own_checkpoint(run_dir, run)  # before the data: a foreign or damaged one fails fast
    if device.type == "cpu":
        retain_freed_memory()  # page faults cost ~10 % of a CPU step otherwise (bench/training/allocator.py)

    data = prepare_data(config.data)
    rundir.write_json(run_dir / "data_manifest.json", data.manifest)

    seed_all(config.seed)  # torch draws the initial weights; python and numpy only for reproducible checkpoints
    generator, discriminator = build_networks(config)
    place_networks(config, device, generator, discriminator)  # on the device, in the run's memory format
    opt_g = build_optimizer(generator, config)
    opt_d = build_optimizer(discriminator, config) if discriminator is not None else None

    train_images = TrainingImages(data.network_images("train", config.data.task), config, device)
    if claimed:
        _record_gpu_path(run_dir, config, device, train_images.placement)
    n_train = len(train_images)
    steps_per_epoch = math.ceil(n_train / config.data.batch_size)
    total_steps = config.optim.steps or config.optim.epochs * steps_per_epoch
    plan = Schedule(steps_per_epoch, total_steps, config.eval.every_epochs, config.eval.curve_points)
    sched_g = build_scheduler(opt_g, config.optim, steps_per_epoch, total_steps)
    sched_d = build_scheduler(opt_d, config.optim, steps_per_epoch, total_steps) if opt_d else None

    parts = {"generator": generator, "discriminator": discriminator, "opt_g": opt_g, "opt_d": opt_d,
             "sched_g": sched_g, "sched_d": sched_d}
    parts = {k: v for k, v in parts.items() if v is not None}
    step, stats = _resume(run_dir, parts, checkpoint, total_steps)
    trackers = open_trackers(config, run_dir, run, resume_step=step)  # log.tracker; a no-op without one

    test_images = data.network_images("test", config.data.task)  # built once, scored at every evaluation
    last_step = total_steps if stop_after_step is None else min(stop_after_step, total_steps)
    progress = tqdm(total=total_steps, initial=step, desc=f"train {run_dir.name}", unit="step", disable=None)
    generator.train()
    while step < last_step:
        epoch = plan.epoch(step)
        batch = train_images.batch(epoch, step - epoch * steps_per_epoch, step)  # on the device
        losses = train_step(batch, generator, discriminator, opt_g, opt_d, config,
                             adversarial=discriminator is not None and epoch >= config.optim.warmup_epochs,
                             run_dir=run_dir, step=step)
        _step_schedulers(sched_g, sched_d)
        step += 1
        progress.update(1)
        stats.add(losses, len(batch))
        if step % config.log_every == 0 or step == total_steps:  # as uninterrupted: a stop keeps the window
            record = stats.record(step, total_steps, plan.epoch(step - 1), sched_g)
            rundir.append_jsonl(run_dir / "stats.jsonl", record)
            trackers.log_stats(record)
        if plan.evaluates_after(step):
            _evaluate(run_dir, generator, data, test_images, config, device, step, plan.epoch(step - 1), trackers)
        stopping = stop_requested is not None and stop_requested()
        if step % config.checkpoint_every == 0 or plan.ends_epoch(step) or step == last_step or stopping:
            _save(run_dir, parts, step, run, stats)
        if stopping:
            break
    progress.close()
    trackers.close("done" if step == total_steps else "interrupted")

    if step < total_steps:
        return {"run_dir": str(run_dir), "run_id": run, "step": step, "total_steps": total_steps,
                "state": "interrupted"}
    summary = {"run_dir": str(run_dir), "run_id": run, "step": step, "total_steps": total_steps,
               "state": "done", "metrics": _final_metrics(run_dir, step)}
    rundir.write_json(run_dir / "DONE", summary)
    _drop_training_state(run_dir, config)
    return summary


def _drop_training_state(run_dir: Path, config: RunConfig) -> None:
    """Shrink a finished run's checkpoint.pt to what ``eval`` needs: the generator weights, step and run id.

    D, both optimisers (Adam keeps two tensors per weight), the schedulers and RNG states only
    serve to continue training, which a DONE run never does; ``keep_training_state`` keeps them.
    The file is replaced atomically, so a stop part-way leaves the whole checkpoint, which the
    next call on the directory shrinks.
    """
    path = run_dir / CHECKPOINT_FILE
    if config.keep_training_state or not path.exists():
        return
    state = load_checkpoint(path)
    if set(state) == set(FINISHED_CHECKPOINT_KEYS):
        return
    save_checkpoint(path, {key: state[key] for key in FINISHED_CHECKPOINT_KEYS})


def _step_schedulers(*schedulers) -> None:
    with warnings.catch_warnings():
        # During the warm-up D's schedule advances without D steps, so its lr follows the same clock as G's.
        warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()` before"))
        for scheduler in schedulers:
            if scheduler is not None:
                scheduler.step()




def _check_run_dir(run_dir: Path, run: str) -> None:
    """Refuse a directory that is not consistent or holds another run (the rule every command applies:
    config.yaml, DONE, FAILED and checkpoint.pt name this run), and one whose logs hold a line that is not a record."""
    rundir.check_run_dir(run_dir, run, logs=True)


def _done_summary(run_dir: Path, run: str) -> dict:
    """The finished run's summary (DONE, checked by :func:`_check_run_dir`), naming the directory it is in now: a
    copied results folder's DONE names the one it was written in."""
    summary = rundir.read_summary(run_dir / "DONE", "delete it and run the same command again to write it anew "
                                  "from the run's checkpoint")
    return {**summary, "run_dir": str(run_dir), "run_id": run, "metrics": summary.get("metrics", {})}


def _claim_run_dir(run_dir: Path, config: RunConfig, fingerprint: dict, data_id: str, device: torch.device) -> bool:
    """Write config.yaml on first use (:func:`_check_run_dir` has refused a directory of another run); True if
    this call wrote it."""
    path = run_dir / "config.yaml"
    if path.exists():
        return False
    record = {"run_id": run_id(config, data_id), "config_id": config_id(config, data_id), "data_id": data_id,
              "seed": config.seed, "config": config_to_dict(config),
              "data": {"images": len(fingerprint["images"]), "weights_sha256": fingerprint["weights"]},
              "environment": environment(device, gpu_path_record(config, device))}
    rundir.write_text(path, dumps(record))  # never anchors: colorbench's reader refuses them
    return True


def _record_gpu_path(run_dir: Path, config: RunConfig, device: torch.device, placement: str) -> None:
    """Complete the config.yaml this call claimed with where the batches are made (known once the data is)."""
    path = run_dir / "config.yaml"
    record = read(path)
    record["environment"]["gpu_path"] = gpu_path_record(config, device, placement)
    rundir.write_text(path, dumps(record))


def _own_checkpoint(run_dir: Path, run: str) -> dict | None:
    """checkpoint.pt of ``run_dir`` if there is one; one of another run, or damaged, raises RunDirError."""
    return load_own_checkpoint(run_dir / CHECKPOINT_FILE, run)


def _resume(run_dir: Path, parts: dict, state: dict | None, total_steps: int) -> tuple[int, "_StatsWindow"]:
    """Load ``state`` (checkpoint.pt, or None) into ``parts``; drop log records written after it (all, without one).

    Returns the step to continue from and the stats window as it was at that step.
    """
    path = run_dir / CHECKPOINT_FILE
    step, window = 0, None
    if state is not None:
        step = state.get("step")
        if not isinstance(step, int) or not 0 <= step <= total_steps:
            raise rundir.RunDirError(f"{path}: step {step!r} is not a step of this run (0 to {total_steps}); "
                                     "delete it to restart the run from step 0")
        # A finished run's checkpoint holds the generator only (_drop_training_state): it trains no further,
        # but its DONE (deleted, or unreadable and deleted) can be written again from its logs.
        finished = set(state) == set(FINISHED_CHECKPOINT_KEYS)
        if finished and step != total_steps:
            raise rundir.RunDirError(f"{path}: holds only the generator of step {step} of {total_steps}, nothing "
                                     "to train on from; delete it to restart the run from step 0")
        try:
            for name, part in parts.items():
                if not finished or name == "generator":
                    part.load_state_dict(state[name])
            if not finished:
                set_rng_state(state["rng"])
        except (KeyError, ValueError, RuntimeError, TypeError) as err:
            problem = f"no {err.args[0]!r} entry" if isinstance(err, KeyError) else str(err).splitlines()[0][:160]
            raise rundir.RunDirError(f"{path}: does not fit this run's networks ({problem}); delete it to restart "
                                     "the run from step 0") from None
        window = state.get("stats")
    for log in ("stats.jsonl", "metrics.jsonl"):
        rundir.truncate_jsonl(run_dir / log, step)
    return step, _StatsWindow(window)


def _save(run_dir: Path, parts: dict, step: int, run: str, stats: "_StatsWindow") -> None:
    state = {name: part.state_dict() for name, part in parts.items()}
    state.update(step=step, rng=rng_state(), run_id=run, stats=stats.state())
    save_checkpoint(run_dir / CHECKPOINT_FILE, state)


class _StatsWindow:
    """Mean loss terms and throughput over the steps since the last stats record.

    The loss sums go into the checkpoint (:meth:`state`), so the first record after a resume
    averages the same steps as an uninterrupted run's.  ``images_per_s`` is a timing: after a
    resume it counts the images since the resume only.
    """

    def __init__(self, saved: dict | None = None) -> None:
        self.reset()
        if saved:
            self.sums, self.counts = dict(saved["sums"]), dict(saved["counts"])

    def state(self) -> dict:
        """The loss sums and counts of the steps since the last record (no timings: checkpoints stay reproducible)."""
        return {"sums": dict(self.sums), "counts": dict(self.counts)}

    def reset(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.images = 0
        self.started = time.perf_counter()

    def add(self, losses: dict[str, float], images: int) -> None:
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1
        self.images += images

    def record(self, step: int, total_steps: int, epoch: int, scheduler) -> dict:
        elapsed = time.perf_counter() - self.started
        record = {"step": step, "total_steps": total_steps, "epoch": epoch, "lr": scheduler.get_last_lr()[0],
                  "images_per_s": self.images / elapsed if elapsed > 0 else None}
        record.update({f"loss_{k}": self.sums[k] / self.counts[k] for k in sorted(self.sums)})
        self.reset()
        return record


def _evaluate(run_dir: Path, generator, data, test_images, config: RunConfig, device, step: int, epoch: int,
              trackers: Trackers) -> None:
    outputs = evaluation_outputs(generator, test_images, config, device, step)
    setup, dataset = scoring_setup(config, device), dataset_identity(data.manifest)
    records = metric_records(outputs, data.test, data.test_ids, config.eval.metrics, setup, dataset=dataset,
                             split="test", step=step, epoch=epoch, source="train")
    for record in records:
        rundir.append_jsonl(run_dir / "metrics.jsonl", record)
    record_grey_input(run_dir, test_images, data.test, data.test_ids, config.eval.metrics, setup,
                      encoding=config.encoding, dataset=dataset, split="test", step=step,
                      epoch=epoch)  # once per run: the trivial baseline (bench/evaluation/baselines.py)
    trackers.log_metrics(records, step)
    shown = config.eval.n_sample_images
    if shown:
        grid = run_dir / "samples" / f"step-{step:07d}.png"
        save_sample_grid(grid, test_images[:shown], outputs[:shown], config.encoding)
        trackers.log_image(grid, step)


def _final_metrics(run_dir: Path, step: int) -> dict[str, float]:
    records = rundir.read_jsonl(run_dir / "metrics.jsonl", strict=True)
    return {r["metric"]: r["value"] for r in records if r["step"] == step and not is_grey_input(r)}
