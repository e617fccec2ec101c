"""Fault injection: interrupt, kill and damage tiny `colorbench train` runs, resume them, compare every file.

    python benchmarks/fault_injection.py [--trials 10] [--seed 0] [--steps 40] [--faults a,b] [--keep DIR]

First an uninterrupted reference run, then one trial after another, each a fresh run
directory with one fault (they take turns in the order below, with the step at which they
strike drawn from a seeded RNG):

  sigkill             kill -9 at a random step; then a torn last stats line and an orphan
                      `.checkpoint.pt.*.tmp`, as a kill in the middle of a write leaves
  sigint, sigterm     the signal at a random step: exit 130 / 143 with "stopped at step N of M"
  two-writers         two `colorbench train` on the directory at once: one is refused, naming
                      the other's PID and host
  foreign-checkpoint  checkpoint.pt replaced by one of another run (seed 1)
  deleted-config      config.yaml deleted from a half-trained directory
  damaged-checkpoint  checkpoint.pt truncated, emptied or overwritten with random bytes
  garbage-done        DONE of a finished run overwritten with garbage
  malformed-line      a damaged line in the middle of metrics.jsonl
  disk-full           the run directory on a small tmpfs that fills up (needs `mount -t tmpfs`,
                      so root; skipped, with the reason, where it fails), then made larger

After the fault the command is run again, as a user would (for a refusal: after doing what
its message says), to the end; the directory must then equal the reference in every file
(bench.run.compare.run_differences: stats.jsonl's timing fields, config.yaml's environment and
DONE's run_dir aside).  One line per trial: trial, fault, outcome (identical / refused with
the message, then identical / DIFFERENT or UNEXPECTED with what), then a summary.  Exit 1
when a trial ended DIFFERENT or UNEXPECTED.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.run.compare import run_differences

FAULTS = ("sigkill", "sigint", "sigterm", "two-writers", "foreign-checkpoint", "deleted-config", "damaged-checkpoint",
          "garbage-done", "malformed-line", "disk-full")
LOG_EVERY = 3
START_TIMEOUT_S = 300


class Unexpected(Exception):
    """The run did something other than what the fault should lead to."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10, help="number of trials (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the RNG that picks the steps (default 0)")
    parser.add_argument("--steps", type=int, default=40, help="training steps of the run (default 40)")
    parser.add_argument("--faults", help=f"comma-separated faults to take turns (default all: {','.join(FAULTS)})")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temporary folder)")
    args = parser.parse_args()
    faults = tuple(args.faults.split(",")) if args.faults else FAULTS
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        parser.error(f"--faults: unknown {', '.join(unknown)}; allowed: {', '.join(FAULTS)}")

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="colorbench-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    bench = Bench(work, args.steps)
    rng = random.Random(args.seed)
    started = time.monotonic()
    print(f"fault injection: {args.trials} trials of a {args.steps}-step run (stats every {LOG_EVERY} steps), "
          f"seed {args.seed}, in {work}", flush=True)
    rc, err = bench.training.train(bench.evaluation.reference)
    if rc != 0:
        print(f"the reference run failed (exit {rc}):\n{err}")
        return 1
    outcomes = []
    try:
        for trial in range(1, args.trials + 1):
            fault = faults[(trial - 1) % len(faults)]
            run_dir = work / f"trial-{trial:02d}-{fault}"
            t0 = time.monotonic()
            try:
                outcome = getattr(bench, "fault_" + fault.replace("-", "_"))(run_dir, rng)
            except Unexpected as err:
                outcome = f"UNEXPECTED: {err}"
            outcomes.append(outcome)
            print(f"trial {trial:2d}  {fault:18s}  {outcome}  ({time.monotonic() - t0:.0f} s)", flush=True)
    finally:
        bench.cleanup()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    kinds = {kind: sum(o.startswith(kind) for o in outcomes)
             for kind in ("identical", "refused", "skipped", "DIFFERENT", "UNEXPECTED")}
    print(f"summary: {len(outcomes)} trials: " + ", ".join(f"{n} {kind}" for kind, n in kinds.items() if n)
          + f"; {time.monotonic() - started:.0f} s")
    return 1 if kinds["DIFFERENT"] or kinds["UNEXPECTED"] else 0


class Bench:
    """The tiny run, its reference directory and the faults."""

    def __init__(self, work: Path, steps: int) -> None:
        self.work = work
        self.steps = steps
        self.images = work / "images"
        self.reference = work / "reference"
        self.mounts: list[Path] = []
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", "COLORBENCH_CACHE": str(work / "cache")}
        if not self.images.exists():
            _write_images(self.images)

    # ------------------------------------------------------------------ running

    def command(self, run_dir: Path, *extra: str) -> list[str]:
        overrides = ["data.dataset=folder", f"data.root={self.images}", "data.image_size=32", "data.batch_size=4",
                     "data.test_fraction=0.25", "generator.depth=5", "generator.ngf=8", "discriminator.ndf=8",
                     "discriminator.n_layers=1", f"optim.steps={self.steps}", "optim.schedule=constant",
                     "eval.every_epochs=3", "eval.n_sample_images=2", f"log_every={LOG_EVERY}",
                     "checkpoint_every=7", "device=cpu", "generator.dropout=true", "data.augmentation=flip+jitter",
                     *extra]
        return [sys.executable, "-m", "bench", "train", "--out", str(run_dir),
                *(a for o in overrides for a in ("--set", o))]

    def start(self, run_dir: Path, *extra: str) -> subprocess.Popen:
        return subprocess.Popen(self.command(run_dir, *extra), env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def train(self, run_dir: Path, *extra: str) -> tuple[int, str]:
        done = subprocess.run(self.command(run_dir, *extra), env=self.env, capture_output=True, text=True,
                              timeout=START_TIMEOUT_S + 20 * self.steps)
        return done.returncode, done.stderr

    def wait_for_step(self, run_dir: Path, process: subprocess.Popen, step: int) -> None:
        """Until stats.jsonl has a record at ``step`` or later (records come every LOG_EVERY steps)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        path = run_dir / "stats.jsonl"
        while True:
            if path.exists():
                lines = [line for line in path.read_text().splitlines() if line.endswith("}")]
                if lines and json.loads(lines[-1])["step"] >= step:
                    return
            if process.poll() is not None:
                raise Unexpected(f"the run ended (exit {process.returncode}) before step {step}: "
                                 f"{_last_line(process.stderr.read())}")
            if time.monotonic() > deadline:
                raise Unexpected(f"no stats record at step {step} after {START_TIMEOUT_S} s")
            time.sleep(0.01)

    def random_step(self, rng: random.Random) -> int:
        return rng.randint(1, self.steps - 2 * LOG_EVERY)

    def interrupted(self, run_dir: Path, rng: random.Random, signum: int = signal.SIGINT) -> int:
        """A run stopped by ``signum`` after a random step; the step it saved."""
        process = self.start(run_dir)
        self.wait_for_step(run_dir, process, self.random_step(rng))
        time.sleep(rng.uniform(0, 0.1))
        process.send_signal(signum)
        _, err = process.communicate(timeout=120)
        code = 128 + signum
        if process.returncode != code:
            raise Unexpected(f"exit {process.returncode} after {signal.Signals(signum).name}, not {code}: "
                             f"{_last_line(err)}")
        if "Traceback" in err:
            raise Unexpected(f"a traceback after {signal.Signals(signum).name}: {_last_line(err)}")
        marker = "stopped at step "
        line = next((line for line in err.splitlines() if line.startswith(marker)), None)
        if line is None or "rerun the same command to continue" not in line:
            raise Unexpected(f"no 'stopped at step N of M; rerun the same command to continue' line: {_last_line(err)}")
        return int(line[len(marker):].split()[0])

    def finish_and_compare(self, run_dir: Path, prefix: str = "") -> str:
        rc, err = self.train(run_dir)
        if rc != 0:
            return f"UNEXPECTED: {prefix}the rerun exited {rc}: {_last_line(err)}"
        differences = run_differences(self.reference, run_dir)
        if differences:
            return f"DIFFERENT: {prefix}" + "; ".join(differences[:3])
        return f"{prefix}identical" if not prefix else f"refused: {prefix}identical"

    def refused(self, run_dir: Path, must_name: str) -> str:
        """Run the command on a damaged directory: it must exit 2 with one line naming ``must_name``."""
        rc, err = self.train(run_dir)
        lines = [line for line in err.splitlines() if line.strip()]
        if rc != 2 or "Traceback" in err or len(lines) != 1:
            raise Unexpected(f"exit {rc} with {len(lines)} line(s) of stderr, not one refusal: {_last_line(err)}")
        if must_name not in lines[0]:
            raise Unexpected(f"the message does not name {must_name}: {lines[0]}")
        return lines[0].removeprefix("colorbench: error: ")

    # ------------------------------------------------------------------ the faults

    def fault_sigkill(self, run_dir: Path, rng: random.Random) -> str:
        process = self.start(run_dir)
        step = self.random_step(rng)
        self.wait_for_step(run_dir, process, step)
        time.sleep(rng.uniform(0, 0.1))
        process.kill()
        process.communicate()
        if (run_dir / "DONE").exists():
            raise Unexpected("the run finished before the kill")
        with open(run_dir / "stats.jsonl", "a") as handle:  # as a kill in the middle of an append leaves it
            handle.write('{"epoch": 3, "loss_d_fake": 0.69')
        (run_dir / ".checkpoint.pt.x1y2z3.tmp").write_bytes(os.urandom(1000))  # ... or of a checkpoint write
        return self.finish_and_compare(run_dir) + f" (killed after step {step})"

    def fault_sigint(self, run_dir: Path, rng: random.Random) -> str:
        step = self.interrupted(run_dir, rng, signal.SIGINT)
        return self.finish_and_compare(run_dir) + f" (exit 130, stopped and saved at step {step})"

    def fault_sigterm(self, run_dir: Path, rng: random.Random) -> str:
        step = self.interrupted(run_dir, rng, signal.SIGTERM)
        return self.finish_and_compare(run_dir) + f" (exit 143, stopped and saved at step {step})"

    def fault_two_writers(self, run_dir: Path, rng: random.Random) -> str:
        first, second = self.start(run_dir), self.start(run_dir)
        results = [(p, *p.communicate(timeout=START_TIMEOUT_S + 20 * self.steps)) for p in (first, second)]
        codes = sorted(p.returncode for p, _, _ in results)
        if codes == [0, 0]:
            return "skipped: the two writers did not overlap (one finished before the other started)"
        if codes != [0, 2]:
            raise Unexpected(f"exit codes {codes}, not one run and one refusal")
        (winner, _, _), (_, _, err) = sorted(results, key=lambda r: r[0].returncode)
        message = _last_line(err).removeprefix("colorbench: error: ")
        holder = f"pid {winner.pid} on host {socket.gethostname()}"
        if holder not in message:
            raise Unexpected(f"the refusal does not name the holder ({holder}): {message}")
        differences = run_differences(self.reference, run_dir)
        if differences:
            return "DIFFERENT: " + "; ".join(differences[:3])
        return f"refused: {_short(message)}; the other writer's run: identical"

    def fault_foreign_checkpoint(self, run_dir: Path, rng: random.Random) -> str:
        self.interrupted(run_dir, rng)
        other = run_dir.parent / (run_dir.name + "-other")
        process = self.start(other, "seed=1")
        self.wait_for_step(other, process, LOG_EVERY)
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=120)
        shutil.copy(other / "checkpoint.pt", run_dir / "checkpoint.pt")
        shutil.rmtree(other)
        message = self.refused(run_dir, str(run_dir / "checkpoint.pt"))
        if "delete it" not in message:
            raise Unexpected(f"the message does not say what to do: {message}")
        (run_dir / "checkpoint.pt").unlink()  # as it says: the run restarts from step 0
        return self.finish_and_compare(run_dir, f"{_short(message)}; deleted it: ")

    def fault_deleted_config(self, run_dir: Path, rng: random.Random) -> str:
        self.interrupted(run_dir, rng)
        kept = (run_dir / "config.yaml").read_bytes()
        (run_dir / "config.yaml").unlink()
        message = self.refused(run_dir, str(run_dir / "config.yaml"))
        (run_dir / "config.yaml").write_bytes(kept)  # as it says: put it back
        return self.finish_and_compare(run_dir, f"{_short(message)}; put it back: ")

    def fault_damaged_checkpoint(self, run_dir: Path, rng: random.Random) -> str:
        self.interrupted(run_dir, rng)
        path = run_dir / "checkpoint.pt"
        data = path.read_bytes()
        damage = rng.choice(["truncated", "empty", "random"])
        path.write_bytes({"truncated": data[:rng.randint(1, len(data) - 1)], "empty": b"",
                          "random": os.urandom(rng.randint(1, 100_000))}[damage])
        message = self.refused(run_dir, str(path))
        if "weights_only" in message or "delete it" not in message:
            raise Unexpected(f"not the one clean line expected: {message}")
        path.unlink()
        return self.finish_and_compare(run_dir, f"({damage}) {_short(message)}; deleted it: ")

    def fault_garbage_done(self, run_dir: Path, rng: random.Random) -> str:
        rc, err = self.train(run_dir)
        if rc != 0:
            raise Unexpected(f"the run failed (exit {rc}): {_last_line(err)}")
        (run_dir / "DONE").write_bytes(rng.choice([b"{", b"garbage", b"\x00" * 64, b"[1, 2]"]))
        message = self.refused(run_dir, str(run_dir / "DONE"))
        (run_dir / "DONE").unlink()
        return self.finish_and_compare(run_dir, f"{_short(message)}; deleted it: ")

    def fault_malformed_line(self, run_dir: Path, rng: random.Random) -> str:
        self.interrupted(run_dir, rng)
        if not (run_dir / "metrics.jsonl").exists():  # stopped before the first evaluation: damage stats.jsonl
            name = "stats.jsonl"
        else:
            name = "metrics.jsonl"
        path = run_dir / name
        lines = path.read_text().splitlines(keepends=True)
        if len(lines) < 2:
            return "skipped: fewer than two records to put a damaged line between"
        at = rng.randint(1, len(lines) - 1)
        path.write_text("".join(lines[:at] + ['{"step": 1, "damaged\n'] + lines[at:]))
        message = self.refused(run_dir, f"{path}: line {at + 1}")
        path.write_text("".join(lines))  # as it says: remove that line
        return self.finish_and_compare(run_dir, f"{_short(message)}; removed it: ")

    def fault_disk_full(self, run_dir: Path, rng: random.Random) -> str:
        run_dir.mkdir(parents=True)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", str(run_dir)],
                                 capture_output=True, text=True)
        if mounted.returncode != 0:
            return f"skipped: mount -t tmpfs failed ({_last_line(mounted.stderr) or 'exit ' + str(mounted.returncode)})"
        self.mounts.append(run_dir)
        rc, err = self.train(run_dir)  # the second checkpoint (3 MB, beside the first until renamed) does not fit
        if rc == 0:
            return "skipped: the run fitted in 5 MB"
        if "No space left on device" not in err and "ENOSPC" not in err and "failed writing" not in err:
            raise Unexpected(f"exit {rc} without a disk-full error: {_last_line(err)}")
        leftovers = sorted(p.name for p in run_dir.rglob(".*.tmp"))
        subprocess.run(["mount", "-o", "remount,size=64m", str(run_dir)], check=True)
        note = f"disk full, exit {rc} ({_short(_last_line(err), 70)})"
        if leftovers:
            note += f"; temporary files left: {', '.join(leftovers)}"
        outcome = self.finish_and_compare(run_dir)
        return f"{outcome} after more space ({note})"

    def cleanup(self) -> None:
        for mount in self.mounts:
            subprocess.run(["umount", str(mount)], capture_output=True)


def _write_images(folder: Path, n: int = 20, size: int = 48) -> None:
    """The test suite's synthetic colour images (tests/conftest.py), as its image folder."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import colourful_image
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(colourful_image(rng, size)).save(folder / f"img{i:02d}.png")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip() and "step/s" not in line]
    return lines[-1] if lines else ""


def _short(text: str, limit: int = 150) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


if __name__ == "__main__":
    sys.exit(main())
