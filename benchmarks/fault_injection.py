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
  fifo-log            stats.jsonl of a half-trained run replaced by a FIFO (a reader that opens it
                      waits forever for a writer)
  dev-zero-log        metrics.jsonl (stats.jsonl before the first evaluation) a link to /dev/zero (a
                      reader that reads it never ends)
  bad-record          a line {"step": "x"} in the middle of stats.jsonl: JSON, not a record
  binary-log          stats.jsonl overwritten with binary garbage
  foreign-config      a finished run's config.yaml replaced by another run's (seed 1)
  foreign-done        a finished run's DONE naming another run
  foreign-checkpoint-done  a finished run's checkpoint.pt replaced by another run's: train and
                      eval must both refuse it, metrics.jsonl untouched
  concurrent-eval     `colorbench eval` while the run trains: refused (the run's lock), nothing
                      appended to the live metrics.jsonl
  bad-samples-png     a finished run's last samples grid overwritten with garbage, a link to
                      /dev/zero or a PNG header of 20000x20000 or 9000x9000 pixels (report)

Every run directory lies in an ablation's results folder (an ablation.yaml of one run beside
it), so that after each damage `colorbench status`, `aggregate` and `report` read it too: they
must end within their time limit, without a traceback, with their exit codes (status 0 or 1,
the others 0).  After the fault the command is run again, as a user would (for a refusal:
after doing what its message says), to the end; the directory must then equal the reference
in every file (bench.run.compare.run_differences: stats.jsonl's timing fields, config.yaml's
environment and DONE's run_dir aside).  One line per trial: trial, fault, outcome (identical /
refused with the message, then identical / DIFFERENT or UNEXPECTED with what), then a summary
with the commands run, how many hung (killed after their limit) and how many printed a
traceback.  Exit 1 when a trial ended DIFFERENT or UNEXPECTED, or a command hung or printed a
traceback.
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
          "garbage-done", "malformed-line", "disk-full", "fifo-log", "dev-zero-log", "bad-record", "binary-log",
          "foreign-config", "foreign-done", "foreign-checkpoint-done", "concurrent-eval", "bad-samples-png")
LOG_EVERY = 3
START_TIMEOUT_S = 300
READER_TIMEOUT_S = 120  # status, aggregate, report of one tiny run: seconds, unless a read never ends


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
    rc, err = bench.train(bench.reference)
    if rc != 0:
        print(f"the reference run failed (exit {rc}):\n{err}")
        return 1
    outcomes = []
    try:
        for trial in range(1, args.trials + 1):
            fault = faults[(trial - 1) % len(faults)]
            run_dir = bench.trial_run_dir(work / f"trial-{trial:02d}-{fault}")
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
          + f"; {bench.commands} commands run, {bench.hung} hung, {bench.tracebacks} with a traceback"
          + f"; {time.monotonic() - started:.0f} s")
    return 1 if kinds["DIFFERENT"] or kinds["UNEXPECTED"] or bench.hung or bench.tracebacks else 0


class Bench:
    """The tiny run, its reference directory and the faults."""

    def __init__(self, work: Path, steps: int) -> None:
        self.work = work
        self.steps = steps
        self.images = work / "images"
        self.reference = work / "reference"
        self.mounts: list[Path] = []
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", "COLORBENCH_CACHE": str(work / "cache")}
        self.commands = self.hung = self.tracebacks = 0
        if not self.images.exists():
            _write_images(self.images)
        os.environ["COLORBENCH_CACHE"] = self.env["COLORBENCH_CACHE"]  # planning the ablation below hashes the images
        from bench.config import apply_overrides
        from bench.sweep.ablation import parse_ablation
        base = apply_overrides({}, self.overrides())
        # One run, the reference's config: its directory in an ablation's results folder, for status to read.
        self.ablation = parse_ablation({"name": "faults", "base": base, "grid": {"generator.ngf": [8]}}, "faults")

    def trial_run_dir(self, folder: Path) -> Path:
        """The run directory of a trial: the one run of ``folder``, an ablation's results folder."""
        from bench.sweep.results import AblationResults
        AblationResults(folder).write_snapshot(self.ablation)
        return folder / self.ablation.runs[0].dir_name

    # ------------------------------------------------------------------ running

    def overrides(self, *extra: str) -> list[str]:
        return ["data.dataset=folder", f"data.root={self.images}", "data.image_size=32", "data.batch_size=4",
                "data.test_fraction=0.25", "generator.depth=5", "generator.ngf=8", "discriminator.ndf=8",
                "discriminator.n_layers=1", f"optim.steps={self.steps}", "optim.schedule=constant",
                "eval.every_epochs=3", "eval.n_sample_images=2", f"log_every={LOG_EVERY}",
                "checkpoint_every=7", "device=cpu", "generator.dropout=true", "data.augmentation=flip+jitter", *extra]

    def command(self, run_dir: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "bench", "train", "--out", str(run_dir),
                *(a for o in self.overrides(*extra) for a in ("--set", o))]

    def colorbench(self, *argv: str, timeout: float = READER_TIMEOUT_S) -> tuple[int | None, str, str]:
        """``colorbench ARGV``: (exit code, stdout, stderr), counted; None as the code when it hung (killed)."""
        self.commands += 1
        try:
            done = subprocess.run([sys.executable, "-m", "bench", *argv], env=self.env, capture_output=True,
                                  text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            self.hung += 1
            return None, "", f"hung: killed after {timeout:.0f} s"
        if "Traceback" in done.stderr:
            self.tracebacks += 1
        return done.returncode, done.stdout, done.stderr

    def readers(self, run_dir: Path) -> str:
        """status, aggregate and report of the trial's results folder: none may hang, print a traceback, or end
        otherwise than status 0 or 1 and the others 0.  What they said, in a few words."""
        folder = run_dir.parent
        codes = {}
        for name, argv, allowed in (
                ("status", ["status", str(folder)], (0, 1)),
                ("aggregate", ["aggregate", str(folder), "--out", str(folder.parent / f"{folder.name}-tables")], (0,)),
                ("report", ["report", "--results", str(folder), "--out", str(folder.parent / f"{folder.name}-reports"),
                            "--resamples", "20"], (0,))):
            rc, out, err = self.colorbench(*argv)
            if rc not in allowed or "Traceback" in err:
                raise Unexpected(f"{name} exited {rc}: {_last_line(err) or _last_line(out)}")
            state = next((line.split()[2] for line in out.splitlines() if line.startswith(self.run_id)), "")
            codes[name] = f"{name} {rc}" + (f" ({state})" if state else "")
        return ", ".join(codes.values())

    @property
    def run_id(self) -> str:
        return self.ablation.runs[0].run_id

    def start(self, run_dir: Path, *extra: str) -> subprocess.Popen:
        return subprocess.Popen(self.command(run_dir, *extra), env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def train(self, run_dir: Path, *extra: str) -> tuple[int, str]:
        self.commands += 1
        try:
            done = subprocess.run(self.command(run_dir, *extra), env=self.env, capture_output=True, text=True,
                                  timeout=START_TIMEOUT_S + 20 * self.steps, check=False)
        except subprocess.TimeoutExpired:
            self.hung += 1
            raise Unexpected(f"train hung: killed after {START_TIMEOUT_S + 20 * self.steps} s") from None
        if "Traceback" in done.stderr:
            self.tracebacks += 1
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

    def finished(self, run_dir: Path) -> None:
        """``run_dir`` as the reference: a finished run of the same config (the same run id)."""
        shutil.copytree(self.reference, run_dir)

    def damaged_and_repaired(self, run_dir: Path, name: str, damage, must_name: str) -> str:
        """Damage the file ``name`` of ``run_dir`` (``damage(path)``), check that train refuses it naming
        ``must_name`` and that the readers cope, put the file back, finish and compare."""
        path = run_dir / name
        kept = path.read_bytes()
        damage(path)
        message = self.refused(run_dir, must_name)
        readers = self.readers(run_dir)
        path.unlink()
        path.write_bytes(kept)  # as the message says: repair it (here: the intact copy)
        return self.finish_and_compare(run_dir, f"{_short(message, 110)}; {readers}; put it back: ")

    def half_trained(self, run_dir: Path, rng: random.Random) -> None:
        self.interrupted(run_dir, rng)

    def fault_fifo_log(self, run_dir: Path, rng: random.Random) -> str:
        self.half_trained(run_dir, rng)
        return self.damaged_and_repaired(run_dir, "stats.jsonl", lambda path: (path.unlink(), os.mkfifo(path)),
                                         f"{run_dir / 'stats.jsonl'}: a FIFO")

    def fault_dev_zero_log(self, run_dir: Path, rng: random.Random) -> str:
        self.half_trained(run_dir, rng)
        name = "metrics.jsonl" if (run_dir / "metrics.jsonl").exists() else "stats.jsonl"  # before the first evaluation
        return self.damaged_and_repaired(run_dir, name, lambda path: (path.unlink(), path.symlink_to("/dev/zero")),
                                         f"{run_dir / name}: a link to /dev/zero")

    def fault_bad_record(self, run_dir: Path, rng: random.Random) -> str:
        self.half_trained(run_dir, rng)
        lines = (run_dir / "stats.jsonl").read_text().splitlines(keepends=True)
        if len(lines) < 2:
            return "skipped: fewer than two records to put a bad one between"
        at = rng.randint(1, len(lines) - 1)
        return self.damaged_and_repaired(
            run_dir, "stats.jsonl", lambda path: path.write_text("".join(lines[:at] + ['{"step": "x"}\n'] + lines[at:])),
            f"{run_dir / 'stats.jsonl'}: line {at + 1}: step: got \"x\"")

    def fault_binary_log(self, run_dir: Path, rng: random.Random) -> str:
        self.half_trained(run_dir, rng)
        return self.damaged_and_repaired(run_dir, "stats.jsonl",
                                         lambda path: path.write_bytes(bytes(range(128, 256)) * 8),
                                         f"{run_dir / 'stats.jsonl'}: not UTF-8 text")

    def other_run(self, run_dir: Path) -> Path:
        """A run of seed 1 stopped after its first stats record, beside ``run_dir`` (the caller removes it)."""
        other = run_dir.parent / (run_dir.name + "-other")
        process = self.start(other, "seed=1")
        self.wait_for_step(other, process, LOG_EVERY)
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=120)
        return other

    def fault_foreign_config(self, run_dir: Path, rng: random.Random) -> str:
        self.finished(run_dir)
        other = self.other_run(run_dir)
        theirs = (other / "config.yaml").read_bytes()
        shutil.rmtree(other)
        return self.damaged_and_repaired(run_dir, "config.yaml", lambda path: path.write_bytes(theirs),
                                         f"{run_dir}: holds run")

    def fault_foreign_done(self, run_dir: Path, rng: random.Random) -> str:
        self.finished(run_dir)
        done = json.loads((run_dir / "DONE").read_text())
        seed = done["run_id"].rsplit("-s", 1)[0] + "-s1"
        return self.damaged_and_repaired(run_dir, "DONE",
                                         lambda path: path.write_text(json.dumps({**done, "run_id": seed})),
                                         f"{run_dir / 'DONE'}: the summary of run '{seed}'")

    def fault_foreign_checkpoint_done(self, run_dir: Path, rng: random.Random) -> str:
        self.finished(run_dir)
        other = self.other_run(run_dir)
        theirs = (other / "checkpoint.pt").read_bytes()
        shutil.rmtree(other)
        path, metrics = run_dir / "checkpoint.pt", (run_dir / "metrics.jsonl").read_bytes()
        kept = path.read_bytes()
        path.write_bytes(theirs)
        message = self.refused(run_dir, f"{path}: belongs to run")
        rc, _, err = self.colorbench("eval", str(run_dir), "--metrics", "psnr_rgb8", timeout=START_TIMEOUT_S)
        if rc != 2 or f"{path}: belongs to run" not in err:
            raise Unexpected(f"eval on another run's checkpoint exited {rc}: {_last_line(err)}")
        if (run_dir / "metrics.jsonl").read_bytes() != metrics:
            raise Unexpected("eval appended to metrics.jsonl from another run's checkpoint")
        readers = self.readers(run_dir)
        path.write_bytes(kept)
        return self.finish_and_compare(run_dir, f"{_short(message, 110)}; eval refused too; {readers}; put it back: ")

    def fault_concurrent_eval(self, run_dir: Path, rng: random.Random) -> str:
        process = self.start(run_dir)
        self.wait_for_step(run_dir, process, self.random_step(rng))
        process.send_signal(signal.SIGSTOP)  # paused mid-run, holding the lock, so eval cannot miss it
        try:
            rc, _, err = self.colorbench("eval", str(run_dir), "--metrics", "psnr_rgb8", timeout=START_TIMEOUT_S)
        finally:
            process.send_signal(signal.SIGCONT)
        _, train_err = process.communicate(timeout=START_TIMEOUT_S + 20 * self.steps)
        if process.returncode != 0:
            raise Unexpected(f"the training exited {process.returncode}: {_last_line(train_err)}")
        holder = f"in use by another colorbench process (pid {process.pid} on host {socket.gethostname()}"
        if rc != 2 or holder not in err:
            raise Unexpected(f"eval during training exited {rc}: {_last_line(err)}")
        differences = run_differences(self.reference, run_dir)
        if differences:
            return "DIFFERENT: " + "; ".join(differences[:3])
        return f"refused: {_short(_last_line(err).removeprefix('colorbench: error: '), 110)}; the run: identical"

    def fault_bad_samples_png(self, run_dir: Path, rng: random.Random) -> str:
        self.finished(run_dir)
        grid = max((run_dir / "samples").glob("step-*.png"))
        kept = grid.read_bytes()
        damage = rng.choice(["garbage", "dev-zero", "20000x20000", "9000x9000"])
        grid.unlink()
        if damage == "garbage":
            grid.write_bytes(os.urandom(5000))
        elif damage == "dev-zero":
            grid.symlink_to("/dev/zero")
        else:
            side = int(damage.split("x")[0])
            grid.write_bytes(_png_header(side, side))
        rc, _, err = self.colorbench("report", "--results", str(run_dir.parent), "--out",
                                     str(run_dir.parent.parent / f"{run_dir.parent.name}-reports"), "--resamples", "20")
        if rc != 0 or f"colorbench: warning: {grid}: " not in err:
            raise Unexpected(f"report with a bad samples grid exited {rc}: {_last_line(err)}")
        readers = self.readers(run_dir)
        grid.unlink()
        grid.write_bytes(kept)
        differences = run_differences(self.reference, run_dir)
        if differences:
            return "DIFFERENT: " + "; ".join(differences[:3])
        return f"refused: ({damage}) report warned, {readers}; put it back: identical"

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


def _png_header(width: int, height: int) -> bytes:
    """A PNG of ``width`` x ``height`` RGB pixels with no pixel data: what Pillow reads to learn the size."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IEND", b""))


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip() and "step/s" not in line]
    return lines[-1] if lines else ""


def _short(text: str, limit: int = 150) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


if __name__ == "__main__":
    sys.exit(main())
