"""Experiment trackers: a run mirrors what it writes to TensorBoard, Weights & Biases and MLflow.

``open_trackers(config, run_dir, run_id, resume_step)`` returns a :class:`Trackers` that the trainer
calls where it appends to ``stats.jsonl`` (:meth:`Trackers.log_stats`) and ``metrics.jsonl``
(:meth:`Trackers.log_metrics`) and saves a sample grid (:meth:`Trackers.log_image`).  The
trackers are those of ``log.tracker``; with none (the default) nothing is imported and every
call does nothing.  The libraries (the ``trackers`` extra) are imported only here, and only
for the trackers switched on.

The run directory stays the source of truth: a tracker that cannot be imported, started or
written to is named in one warning on stderr and left out for the rest of the call, never a
failed run.  Where the files go: ``log.tracker_dir`` (default ``trackers/`` beside the run
directory, i.e. ``<results>/<ablation>/trackers``), grouped by ablation (the run directory's
parent folder, the ablation's results folder):

* TensorBoard: ``<dir>/tensorboard/<ablation>/<run directory name>/``; a resumed run purges the
  events after its checkpoint's step (``SummaryWriter(purge_step=...)``) and writes them again.
* MLflow: ``$MLFLOW_TRACKING_URI``, else the file store ``file:<dir>/mlruns``; experiment = the
  ablation, one MLflow run per run, found again by its ``run_id`` tag when the run resumes.
* W&B: ``wandb.init(dir=<dir>, group=<ablation>, id=<ablation>-<run id>, resume="allow")`` in
  project ``$WANDB_PROJECT`` (default colorbench); ``$WANDB_MODE`` is respected, default
  offline unless an API key is configured (``WANDB_API_KEY`` or ``wandb login``).

Each tracker gets a step at most once: records a resumed run writes again (those after its
checkpoint, which the trainer drops from the JSONL files and recomputes, bitwise the same on
CPU) replace TensorBoard's events and are not sent again to MLflow (per metric) or W&B (whose
steps only increase; its last step is kept in ``<dir>/wandb/<id>.last-step``).
"""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import netrc
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Protocol

from bench.config import RunConfig, config_to_dict, flatten_keys
from bench.run.identity import config_id_of

TRACKERS = ("tensorboard", "wandb", "mlflow")
WANDB_DEFAULT_PROJECT = "colorbench"
TENSORBOARD_FLUSH_S = 30
# Fields of a metrics.jsonl record that describe how it was measured rather than a value.
_DESCRIPTIVE = {"split", "step", "epoch", "source", "dataset", "n_images", "resolution", "image_ids", "protocol",
                "detector", "per_image", "unavailable", "metric", "value"}
_NOT_SCALARS = {"step", "total_steps"}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def stats_scalars(record: dict) -> dict[str, float]:
    """A stats.jsonl record as tracker scalars: ``train/<field>`` (lr, images_per_s, epoch, loss_*)."""
    return {f"train/{k}": float(v) for k, v in record.items() if k not in _NOT_SCALARS and _number(v)}


def metric_scalars(record: dict) -> dict[str, float]:
    """A metrics.jsonl record as tracker scalars: ``<split>/<metric>`` and its other numbers
    (``test/delta_cf.cf_output``, ``test/hist_isect_lab.per_channel.L``); none when unavailable."""
    if not _number(record.get("value")):
        return {}
    key = f"{record['split']}/{record['metric']}"
    scalars = {key: float(record["value"])}
    for field, value in record.items():
        if field in _DESCRIPTIVE:
            continue
        if _number(value):
            scalars[f"{key}.{field}"] = float(value)
        elif isinstance(value, dict):
            scalars.update({f"{key}.{field}.{k}": float(v) for k, v in value.items() if _number(v)})
    return scalars


def metric_descriptions(records: list[dict]) -> dict[str, dict[str, Any]]:
    """How an evaluation measured: per metric its protocol, detector and why it is unavailable, and under
    ``evaluation`` what it scored (split, dataset, n_images, resolution); for trackers' texts, tags or config."""
    described = {r["metric"]: {k: r[k] for k in ("protocol", "detector", "unavailable") if r.get(k) is not None}
                 for r in records}
    if records:
        described["evaluation"] = {k: records[0][k] for k in ("split", "dataset", "n_images", "resolution")
                                   if records[0].get(k) is not None}
    return described


def default_tracker_dir(run_dir: Path) -> Path:
    """``trackers/`` beside the run directory: ``<results>/<ablation>/trackers``."""
    return Path(run_dir).resolve().parent / "trackers"


def ablation_name(run_dir: Path) -> str:
    """The ablation a run belongs to: its directory's parent folder, the ablation's results folder."""
    return Path(run_dir).resolve().parent.name


class Tracker(Protocol):
    """One tracker of a run (TensorBoard, MLflow, W&B), opened with a :class:`TrackedRun`."""

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Record ``values`` at ``step``, except steps it already had before the run resumed."""

    def describe(self, metrics: dict[str, dict], step: int) -> None:
        """Record how each metric (and, as ``evaluation``, the evaluation) was measured."""

    def image(self, path: Path, step: int) -> None:
        """Record a sample grid (PNG) at ``step``."""

    def close(self, state: str) -> None:
        """End the tracker's run: ``done``, ``interrupted`` (to be resumed) or ``failed``."""


class TrackedRun:
    """What every tracker needs to open: the run's names, config and folders."""

    def __init__(self, config: RunConfig, run_dir: Path, run_id: str, ablation: str, resume_step: int) -> None:
        self.config, self.run_dir, self.ablation, self.resume_step = config, run_dir, ablation, resume_step
        self.dir = Path(config.log.tracker_dir).resolve() if config.log.tracker_dir else default_tracker_dir(run_dir)
        self.run_id, self.config_id = run_id, config_id_of(run_id)
        self.tags = {"run_id": self.run_id, "config_id": self.config_id, "seed": str(config.seed),
                     "ablation": ablation, "run_dir": str(run_dir)}
        self.params = {k: json.dumps(v) if isinstance(v, (list, dict)) else str(v)
                       for k, v in flatten_keys(config_to_dict(config)).items()}


class Trackers:
    """The trackers of one run; a failing one is reported once and dropped, never raised."""

    def __init__(self, backends: dict[str, Tracker], run_dir: Path | None = None) -> None:
        self.backends = backends
        self.run_dir = run_dir
        self.described: set[str] = set()
        self.closed = False

    def __bool__(self) -> bool:
        return bool(self.backends)

    def _each(self, method: str, *args: Any) -> None:
        for name, backend in list(self.backends.items()):
            try:
                getattr(backend, method)(*args)
            except Exception as err:  # noqa: BLE001 - a tracker never fails the run
                _warn(name, f"{method} failed", err)
                del self.backends[name]
                with contextlib.suppress(Exception):
                    backend.close("failed")

    def log_stats(self, record: dict) -> None:
        """Mirror a stats.jsonl record (losses, lr, throughput, epoch) at its step."""
        if self.backends:
            self._each("scalars", stats_scalars(record), int(record["step"]))

    def log_metrics(self, records: list[dict], step: int) -> None:
        """Mirror an evaluation's metrics.jsonl records: each value, and each metric's protocol once."""
        if not self.backends:
            return
        scalars: dict[str, float] = {}
        for record in records:
            scalars.update(metric_scalars(record))
        new = {k: v for k, v in metric_descriptions(records).items() if k not in self.described}
        if new:
            self._each("describe", new, step)
            self.described |= set(new)
        self._each("scalars", scalars, step)

    def log_image(self, path: str | Path, step: int) -> None:
        """Mirror a samples/ grid (PNG) at its step."""
        if self.backends:
            self._each("image", Path(path), step)

    def close(self, state: str = "done") -> None:
        """End every tracker's run: ``done``, ``interrupted`` (it resumes later) or ``failed``."""
        if self.closed:
            return
        self.closed = True
        self._each("close", state)
        self.backends = {}
        if self in _OPEN:
            _OPEN.remove(self)


_OPEN: list[Trackers] = []  # closed at exit, or when the same run directory opens trackers again


def _close_all_open() -> None:
    for trackers in list(_OPEN):
        trackers.close("failed")


def open_trackers(config: RunConfig, run_dir: str | Path, run_id: str, resume_step: int = 0,
                  ablation: str | None = None) -> Trackers:
    """The trackers of ``config.log.tracker`` for run ``run_id`` in ``run_dir``, continuing after ``resume_step``.

    ``ablation`` (default: the run directory's parent folder name) groups the runs of a sweep.
    A tracker that cannot start is named in a warning and left out.
    """
    run_dir = Path(run_dir).resolve()
    for stale in [t for t in _OPEN if t.run_dir == run_dir]:  # a call that raised left them open
        stale.close("failed")
    if not config.log.tracker:
        return Trackers({})
    context = TrackedRun(config, run_dir, run_id, ablation or ablation_name(run_dir), resume_step)
    backends: dict[str, Tracker] = {}
    for name in config.log.tracker:
        try:
            context.dir.mkdir(parents=True, exist_ok=True)
            backends[name] = _BACKENDS[name](context)
        except Exception as err:  # noqa: BLE001 - includes the ImportError of a missing extra
            hint = " (is the trackers extra installed?)" if isinstance(err, ImportError) else ""
            _warn(name, "could not start" + hint, err)
    trackers = Trackers(backends, run_dir)
    if backends:
        if not _OPEN:  # registered after the libraries' own exit hooks, so it runs before them
            atexit.unregister(_close_all_open)
            atexit.register(_close_all_open)
        _OPEN.append(trackers)
    return trackers


def _warn(name: str, what: str, err: BaseException) -> None:
    message = f"{type(err).__name__}: {err}".splitlines()[0]
    print(f"colorbench: warning: tracker {name} {what} ({message}); the run goes on without it "
          "(its run directory holds every record)", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# The backends: scalars(values, step), describe(metrics, step), image(path, step), close(state)

class _TensorBoard:
    def __init__(self, context: TrackedRun) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.logdir = context.dir / "tensorboard" / context.ablation / context.run_dir.name
        resumed = self.logdir.is_dir() and any(self.logdir.glob("events.out.tfevents.*"))
        # purge_step: TensorBoard drops the events at and after it, written before the run resumed.
        self.writer = SummaryWriter(str(self.logdir), flush_secs=TENSORBOARD_FLUSH_S,
                                    purge_step=context.resume_step + 1 if resumed else None)
        if not resumed:
            lines = [f"- {k}: `{v}`" for k, v in context.tags.items()]
            self.writer.add_text("run", "\n".join(lines), context.resume_step)
            config = "\n".join(f"    {k}: {v}" for k, v in context.params.items())
            self.writer.add_text("config", config, context.resume_step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def describe(self, metrics: dict[str, dict], step: int) -> None:
        for name, description in metrics.items():
            text = "\n".join(f"- {k}: {json.dumps(v) if isinstance(v, (dict, list)) else v}"
                             for k, v in description.items())
            self.writer.add_text(f"protocol/{name}", text, step)

    def image(self, path: Path, step: int) -> None:
        import numpy as np
        from PIL import Image

        with Image.open(path) as grid:
            pixels = np.asarray(grid.convert("RGB"))
        self.writer.add_image("samples", pixels, step, dataformats="HWC")
        self.writer.flush()

    def close(self, state: str) -> None:
        self.writer.close()


class _MLflow:
    def __init__(self, context: TrackedRun) -> None:
        # MLflow 3 keeps its file store in maintenance mode behind this switch; a sweep's runs write to it
        # from many processes and nodes at once, which suits one folder per run better than one SQLite file.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.tracking import MlflowClient

        self.uri = os.environ.get("MLFLOW_TRACKING_URI") or (context.dir / "mlruns").as_uri()
        self.client = MlflowClient(self.uri)
        with _locked(context.dir / ".mlflow.lock"):  # concurrent runs of a sweep create the experiment once
            experiment = self.client.get_experiment_by_name(context.ablation)
            experiment_id = (experiment.experiment_id if experiment is not None
                             else self.client.create_experiment(context.ablation))
        found = self.client.search_runs([experiment_id], f"tags.run_id = '{context.run_id}'",
                                        order_by=["attributes.start_time ASC"], max_results=1)
        self.last_step: dict[str, int] = {}
        if found:
            self.run = found[0].info.run_id
            self.client.update_run(self.run, status="RUNNING")
            for key in found[0].data.metrics:
                history = self.client.get_metric_history(self.run, key)
                self.last_step[key] = max((m.step for m in history), default=-1)
        else:
            self.run = self.client.create_run(experiment_id, run_name=context.run_dir.name,
                                              tags=context.tags).info.run_id
            self._batch(params=[_mlflow_entities().Param(k, v[:6000]) for k, v in context.params.items()])

    def _batch(self, **kwargs: Any) -> None:
        for name, items in kwargs.items():
            for start in range(0, len(items), 100):  # MLflow's limit is 100 params or 1000 metrics a call
                self.client.log_batch(self.run, **{name: items[start:start + 100]})

    def scalars(self, values: dict[str, float], step: int) -> None:
        Metric = _mlflow_entities().Metric
        now = int(time.time() * 1000)
        fresh = [Metric(k, v, now, step) for k, v in values.items() if step > self.last_step.get(k, -1)]
        self._batch(metrics=fresh)
        self.last_step.update({m.key: step for m in fresh})

    def describe(self, metrics: dict[str, dict], step: int) -> None:
        RunTag = _mlflow_entities().RunTag
        tags = [RunTag(f"{_described(name)}.{k}", json.dumps(v) if isinstance(v, (dict, list)) else str(v))
                for name, description in metrics.items() for k, v in description.items()]
        self._batch(tags=tags)

    def image(self, path: Path, step: int) -> None:
        self.client.log_artifact(self.run, str(path), "samples")

    def close(self, state: str) -> None:
        status = {"done": "FINISHED", "interrupted": "KILLED"}.get(state, "FAILED")
        self.client.set_terminated(self.run, status=status)


def _described(name: str) -> str:
    """Tag or config key of a description: ``evaluation``, or ``metric.<name>``."""
    return name if name == "evaluation" else f"metric.{name}"


def _mlflow_entities():
    import mlflow.entities

    return mlflow.entities


@contextlib.contextmanager
def _locked(path: Path):
    import fcntl

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def wandb_run_id(ablation: str, run: str) -> str:
    """The W&B id of a run: ``<ablation>-<run id>`` (a run id recurs across ablations), at most 64 characters."""
    text = re.sub(r"[^A-Za-z0-9._-]", "-", f"{ablation}-{run}")
    return text if len(text) <= 64 else f"{text[:47]}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def wandb_mode() -> str:
    """``$WANDB_MODE`` when set; else online where an API key is configured, offline otherwise."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    with contextlib.suppress(Exception):
        path = os.environ.get("NETRC") or Path.home() / ".netrc"
        if netrc.netrc(path).authenticators(os.environ.get("WANDB_BASE_URL", "api.wandb.ai")
                                            .removeprefix("https://").removeprefix("http://").split("/")[0]):
            return "online"
    return "offline"


class _WandB:
    def __init__(self, context: TrackedRun) -> None:
        import wandb

        self.wandb = wandb
        self.id = wandb_run_id(context.ablation, context.run_id)
        self.step_file = context.dir / "wandb" / f"{self.id}.last-step"
        self.step_file.parent.mkdir(parents=True, exist_ok=True)
        config = {**flatten_keys(config_to_dict(context.config)), "run_id": context.run_id,
                  "config_id": context.config_id, "ablation": context.ablation, "run_dir": str(context.run_dir)}
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or WANDB_DEFAULT_PROJECT, group=context.ablation, id=self.id,
            name=context.run_dir.name, job_type="train", resume="allow", dir=str(context.dir), mode=wandb_mode(),
            config=config, tags=[context.ablation, context.run_id, context.config_id, f"seed={context.config.seed}"],
            reinit="create_new", settings=wandb.Settings(console="off"))
        last = int(self.step_file.read_text()) if self.step_file.exists() else -1
        self.last_step = max(last, (getattr(self.run, "starting_step", 0) or 0) - 1)
        self.current = -1  # the step this call last logged: later records at that step join it

    def _log(self, values: dict[str, Any], step: int) -> None:
        if step <= self.last_step and step != self.current:  # sent before the run resumed; W&B's steps only increase
            return
        self.run.log(values, step=step)
        self.current = self.last_step = step
        self.step_file.write_text(f"{step}\n")

    def scalars(self, values: dict[str, float], step: int) -> None:
        if values:
            self._log(values, step)

    def describe(self, metrics: dict[str, dict], step: int) -> None:
        self.run.config.update({_described(name): description for name, description in metrics.items()},
                               allow_val_change=True)

    def image(self, path: Path, step: int) -> None:
        self._log({"samples": self.wandb.Image(str(path))}, step)

    def close(self, state: str) -> None:
        self.run.finish(exit_code=1 if state == "failed" else 0)


_BACKENDS = {"tensorboard": _TensorBoard, "wandb": _WandB, "mlflow": _MLflow}
