"""Experiment trackers (log.tracker) against the real libraries in their offline modes.

What TensorBoard's event files (read with its EventAccumulator), MLflow's file store (queried
through MlflowClient) and W&B's offline run logs (read with ``wandb leet inspect --json``) hold
must equal the run's stats.jsonl and metrics.jsonl, steps and values, across a resume; a
tracker that breaks is a warning, never a failed run.  Nothing here touches the network.
"""
import hashlib
import importlib.util
import json
import math
import os
import subprocess
import sys
import time

import pytest
import yaml
from test_train import tiny

from bench.cli import main
from bench.config import ConfigError, load_config
from bench.data.fingerprint import data_id
from bench.run import rundir
from bench.run.identity import config_hash, config_id
from bench.training import trackers
from bench.training.trackers import metric_scalars, open_trackers, stats_scalars, wandb_mode, wandb_run_id
from bench.training.train import train

# Imported by the tests themselves, not here: collecting this file imports no tracker library.
_MISSING = [name for name in ("tensorboard", "wandb", "mlflow") if importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(bool(_MISSING) and os.environ.get("CI") != "true",  # CI installs the extra
                                reason=f"the trackers extra is not installed (no {', '.join(_MISSING)}): "
                                       "pip install -c constraints.txt -e '.[dev,trackers]'")

ALL = "log.tracker=[tensorboard,wandb,mlflow]"


@pytest.fixture(autouse=True, scope="module")
def _offline(tmp_path_factory):
    """W&B offline and quiet, with its settings and caches in a temporary folder; MLflow's default store."""
    home = tmp_path_factory.mktemp("wandb-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("WANDB_MODE", "offline")
    for name, value in {"WANDB_SILENT": "true", "WANDB_DIR": str(home), "WANDB_CONFIG_DIR": str(home / "config"),
                        "WANDB_CACHE_DIR": str(home / "cache"), "WANDB_DATA_DIR": str(home / "data"),
                        "WANDB_ERROR_REPORTING": "false", "WANDB_X_DISABLE_STATS": "true"}.items():
        mp.setenv(name, value)
    for name in ("WANDB_API_KEY", "WANDB_PROJECT", "MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE"):
        mp.delenv(name, raising=False)
    yield
    mp.undo()


# ---------------------------------------------------------------------------------------
# Reading back what each tracker holds, with the library's own reader

def expected(run_dir):
    """The run's JSONL records as tracker scalars: key -> [(step, value)] (its own evaluations, source train)."""
    points = {}
    for record in rundir.read_jsonl(run_dir / "stats.jsonl"):
        for key, value in stats_scalars(record).items():
            points.setdefault(key, []).append((record["step"], value))
    for record in rundir.read_jsonl(run_dir / "metrics.jsonl"):
        if record.get("source") != "train":  # e.g. the grey-input baseline's records: not the run's evaluations
            continue
        for key, value in metric_scalars(record).items():
            points.setdefault(key, []).append((record["step"], value))
    return points


def tensorboard_run(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = run_dir.parent / "trackers" / "tensorboard" / run_dir.parent.name / run_dir.name
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    scalars = {key: [(e.step, e.value) for e in events.Scalars(key)] for key in events.Tags()["scalars"]}
    return events, scalars


def mlflow_runs(results_dir, ablation):
    """{run id tag: (MLflow run, key -> [(step, value)])} of the ablation's experiment."""
    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # as the runs set it for themselves
    client = MlflowClient((results_dir / "trackers" / "mlruns").as_uri())
    experiment = client.get_experiment_by_name(ablation)
    runs = {}
    for run in client.search_runs([experiment.experiment_id]):
        history = {key: sorted(((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)))
                   for key in run.data.metrics}
        runs[run.data.tags["run_id"]] = (run, history)
    return client, runs


def wandb_records(run_dir, config):
    """Every record of the run's W&B offline logs (one per train call), oldest first, read by wandb itself."""
    wandb_id = wandb_run_id(run_dir.parent.name, f"{config_id(config, data_id(config))}-s{config.seed}")
    records = []
    for folder in sorted((run_dir.parent / "trackers" / "wandb").glob(f"offline-run-*-{wandb_id}*")):
        out = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", str(folder), "--json"],
                             capture_output=True, text=True, check=True).stdout
        records.append([json.loads(line) for line in out.splitlines()])
    return records


def wandb_scalars(logs):
    points = {}
    for log in logs:
        for record in log:
            if record["type"] == "history":
                step = int(record["history"]["step"]["num"])
                for key, value in record["history"]["item"].items():
                    if not key.startswith(("_", "samples")):
                        points.setdefault(key, []).append((step, value))
    return points


def assert_same(got, want, rel=0.0, loose=()):
    """Same keys and steps; values equal (float32 TensorBoard: to ``rel``), except the keys in ``loose``."""
    assert sorted(got) == sorted(want)
    for key, points in want.items():
        assert [s for s, _ in got[key]] == [s for s, _ in points], key  # no step missing, none twice
        if key not in loose:
            for (_, value), (_, wanted) in zip(got[key], points):
                assert math.isclose(value, wanted, rel_tol=rel), (key, got[key], points)


# ---------------------------------------------------------------------------------------
# A run stopped (checkpoint at step 3) and resumed, with all three trackers

@pytest.fixture(scope="module")
def resumed_run(image_folder, tmp_path_factory):
    config = tiny(image_folder, ALL)
    run = tmp_path_factory.mktemp("results") / "tiny-ablation" / "run-a"
    started = time.perf_counter()
    assert train(config, run, stop_after_step=3)["state"] == "interrupted"
    assert train(config, run)["state"] == "done"
    print(f"two train calls with tensorboard, wandb and mlflow: {time.perf_counter() - started:.1f} s")
    return config, run


def test_tensorboard_events_equal_the_jsonl_records(resumed_run):
    config, run = resumed_run
    events, scalars = tensorboard_run(run)
    want = expected(run)
    assert {"train/loss_g_rec", "train/lr", "train/images_per_s", "test/psnr_rgb8", "test/delta_cf.cf_output",
            "test/hist_isect_lab.per_channel.a"} <= set(want)
    assert_same(scalars, want, rel=1e-6)  # events hold float32
    assert [(e.step, e.width, e.height) for e in events.Images("samples")] == [(4, 104, 70), (8, 104, 70)]
    texts = events.Tags()["tensors"]
    assert "run/text_summary" in texts and "protocol/psnr_rgb8/text_summary" in texts
    run_text = events.Tensors("run/text_summary")[0].tensor_proto.string_val[0].decode()
    assert f"`{config_id(config, data_id(config))}-s0`" in run_text and "`tiny-ablation`" in run_text


def test_mlflow_store_equals_the_jsonl_records(resumed_run):
    config, run = resumed_run
    client, runs = mlflow_runs(run.parent, "tiny-ablation")
    assert list(runs) == [f"{config_id(config, data_id(config))}-s0"]  # the resumed call continued the same MLflow run
    mlrun, history = runs[f"{config_id(config, data_id(config))}-s0"]
    assert_same(history, expected(run))
    assert mlrun.info.status == "FINISHED" and mlrun.info.run_name == "run-a"
    tags, params = mlrun.data.tags, mlrun.data.params
    assert (tags["config_id"], tags["seed"], tags["ablation"]) == (config_id(config, data_id(config)), "0", "tiny-ablation")
    assert params["data.image_size"] == "32" and params["log.tracker"] == '["tensorboard", "wandb", "mlflow"]'
    assert json.loads(tags["metric.psnr_rgb8.protocol"])  # every metric's protocol
    assert "not found" in tags.get("metric.fid_inception_pt.unavailable", "not found")
    grids = [a.path for a in client.list_artifacts(mlrun.info.run_id, "samples")]
    assert grids == ["samples/step-0000004.png", "samples/step-0000008.png"]


def test_wandb_offline_logs_equal_the_jsonl_records(resumed_run):
    config, run = resumed_run
    logs = wandb_records(run, config)
    assert len(logs) == 2  # one offline run log per train call, both of the same W&B run
    assert_same(wandb_scalars(logs), expected(run))
    for log in logs:
        (start,) = [r["run"] for r in log if r["type"] == "run"]
        assert start["run_id"] == f"tiny-ablation-{config_id(config, data_id(config))}-s0" and start["run_group"] == "tiny-ablation"
        assert start["display_name"] == "run-a"
        assert start["config"]["update"]["data.image_size"] == 32
        assert start["config"]["update"]["config_id"] == config_id(config, data_id(config))
    images = {int(r["history"]["step"]["num"]): r["history"]["item"]["samples.sha256"] for log in logs for r in log
              if r["type"] == "history" and r["history"]["item"].get("samples._type") == "image-file"}
    assert images == {step: hashlib.sha256((run / "samples" / f"step-{step:07d}.png").read_bytes()).hexdigest()
                      for step in (4, 8)}  # the very sample grids


# ---------------------------------------------------------------------------------------
# A crash after the checkpoint: records the resumed run drops and writes again

def test_a_crash_after_the_checkpoint_gives_no_step_twice(image_folder, tmp_path):
    config = tiny(image_folder, ALL)
    run = tmp_path / "crashes" / "run-b"
    def crash_at_6():
        if len(list(rundir.read_jsonl(run / "stats.jsonl"))) == 6:  # records up to step 6; the checkpoint is at 4
            raise RuntimeError("node lost")
        return False

    with pytest.raises(RuntimeError, match="node lost"):
        train(config, run, stop_requested=crash_at_6)
    assert max(r["step"] for r in rundir.read_jsonl(run / "stats.jsonl")) == 6
    assert train(config, run)["state"] == "done"  # resumes at 4: steps 5..8 again
    want = expected(run)
    assert [s for s, _ in want["train/lr"]] == list(range(1, 9))

    _, scalars = tensorboard_run(run)  # events after step 4 purged and written again
    assert_same(scalars, want, rel=1e-6)
    # MLflow and W&B keep the first values of steps 5 and 6 (bitwise the same on CPU, but for the timing)
    _, runs = mlflow_runs(run.parent, "crashes")
    (mlrun, history), = runs.values()
    assert_same(history, want, loose={"train/images_per_s"})
    assert mlrun.info.status == "FINISHED"
    assert_same(wandb_scalars(wandb_records(run, config)), want, loose={"train/images_per_s"})


# ---------------------------------------------------------------------------------------
# A tracker that breaks is a warning

def _break(monkeypatch, name):
    def fail(*args, **kwargs):
        raise OSError("disk full")

    if name == "tensorboard":
        from torch.utils.tensorboard import SummaryWriter
        monkeypatch.setattr(SummaryWriter, "add_scalar", fail)
    elif name == "mlflow":
        from mlflow.tracking import MlflowClient
        monkeypatch.setattr(MlflowClient, "log_batch", fail)
    else:
        from wandb.sdk.wandb_run import Run
        monkeypatch.setattr(Run, "log", fail)


@pytest.mark.parametrize("broken", ["tensorboard", "wandb", "mlflow"])
def test_a_tracker_failing_to_write_is_one_warning_and_the_others_go_on(image_folder, tmp_path, monkeypatch,
                                                                        capfd, broken):
    others = [name for name in ("tensorboard", "mlflow") if name != broken][:1]
    config = tiny(image_folder, f"log.tracker=[{broken},{others[0]}]", "optim.epochs=1")
    _break(monkeypatch, broken)
    run = tmp_path / "broken" / "run"
    assert train(config, run)["state"] == "done"
    err = capfd.readouterr().err
    warnings = [line for line in err.splitlines() if "colorbench: warning: tracker" in line]
    assert len(warnings) == 1 and f"tracker {broken} " in warnings[0] and "disk full" in warnings[0], err
    if "mlflow" in others:
        assert_same(mlflow_runs(run.parent, "broken")[1][f"{config_id(config, data_id(config))}-s0"][1], expected(run))
    else:
        assert_same(tensorboard_run(run)[1], expected(run), rel=1e-6)


def test_an_unusable_tracker_dir_is_a_warning_per_tracker(image_folder, tmp_path, capfd):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    config = tiny(image_folder, ALL, f"log.tracker_dir={not_a_folder}", "optim.epochs=1")
    summary = train(config, tmp_path / "run")
    assert summary["state"] == "done" and (tmp_path / "run" / "DONE").exists()
    warnings = [line for line in capfd.readouterr().err.splitlines() if "colorbench: warning: tracker" in line]
    assert [w.split()[3] for w in warnings] == ["tensorboard", "wandb", "mlflow"]
    assert all("could not start" in w for w in warnings)


def test_a_missing_library_names_the_extra(image_folder, tmp_path, monkeypatch, capfd):
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)  # as if mlflow were not installed
    config = tiny(image_folder, "log.tracker=mlflow", "optim.epochs=1")
    assert train(config, tmp_path / "run")["state"] == "done"
    err = capfd.readouterr().err
    assert "tracker mlflow could not start (is the trackers extra installed?) (ModuleNotFoundError" in err


# ---------------------------------------------------------------------------------------
# A sweep: runs grouped by ablation

def test_a_sweep_groups_its_runs_by_ablation(image_folder, tmp_path):
    base = {"data": {"dataset": "folder", "root": str(image_folder), "image_size": 32, "batch_size": 4,
                     "test_fraction": 0.25},
            "generator": {"depth": 5, "ngf": 8}, "discriminator": {"ndf": 8, "n_layers": 1},
            "optim": {"steps": 2, "schedule": "constant"}, "eval": {"n_sample_images": 2},
            "log_every": 1, "device": "cpu"}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({"name": "tiny", "base": base, "grid": {"generator.skip_connections": [True, False]}}))
    results = tmp_path / "results"
    assert main(["sweep", str(path), "--results", str(results), "--executor", "debug",
                 "--set", "log.tracker=[tensorboard,mlflow]"]) == 0
    runs = sorted(p for p in (results / "tiny").iterdir() if (p / "DONE").exists())
    assert len(runs) == 2
    tensorboard_dirs = sorted(p.name for p in (results / "tiny" / "trackers" / "tensorboard" / "tiny").iterdir())
    assert tensorboard_dirs == [p.name for p in runs]
    _, mlruns = mlflow_runs(results / "tiny", "tiny")
    assert sorted(mlruns) == sorted(yaml.safe_load((p / "config.yaml").read_text())["run_id"] for p in runs)
    for run in runs:
        run_id = yaml.safe_load((run / "config.yaml").read_text())["run_id"]
        assert_same(tensorboard_run(run)[1], expected(run), rel=1e-6)
        assert_same(mlruns[run_id][1], expected(run))
    # the tracker is not part of the runs' identity: sweeping again without it has nothing to do
    assert main(["sweep", str(path), "--results", str(results), "--executor", "debug"]) == 0


# ---------------------------------------------------------------------------------------
# The knob, and nothing imported without it

def test_the_tracker_knob_takes_one_name_a_list_or_none_and_is_not_identity():
    assert load_config(None, ["log.tracker=tensorboard"]).log.tracker == ("tensorboard",)
    assert load_config(None, ["log.tracker=[wandb, mlflow]"]).log.tracker == ("wandb", "mlflow")
    assert load_config(None, ["log.tracker=none"]).log.tracker == () == load_config().log.tracker
    assert config_hash(load_config(None, [ALL, "log.tracker_dir=/x"])) == config_hash(load_config())
    with pytest.raises(ConfigError, match=r"log.tracker: got 'tb'; allowed: none, tensorboard, wandb, mlflow"):
        load_config(None, ["log.tracker=tb"])
    with pytest.raises(ConfigError, match=r"log.tracker\[1\]: got 'neptune'"):
        load_config(None, ["log.tracker=[wandb, neptune]"])
    with pytest.raises(ConfigError, match="names a tracker twice"):
        load_config(None, ["log.tracker=[wandb, wandb]"])


def test_without_a_tracker_no_tracker_library_is_imported(tmp_path):
    code = ("import sys; import bench.training.train, bench.config, bench.sweep.job; from bench.config import RunConfig; "
            "from bench.training.trackers import open_trackers; t = open_trackers(RunConfig(), sys.argv[1], \"abc-s0\"); "
            "t.log_stats({'step': 1, 'lr': 1.0}); t.log_metrics([], 1); t.close(); "
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('tensorboard', 'wandb', 'mlflow') "
            "or m.startswith('torch.utils.tensorboard')]; print(heavy); assert not heavy")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], check=True)
    assert not (tmp_path / "trackers").exists()


def test_wandb_mode_and_ids(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert wandb_mode() == "offline"  # no API key: never the network
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password 0123\n")
    os.chmod(tmp_path / "netrc", 0o600)
    assert wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"
    assert wandb_run_id("smoke", "0123456789ab-s0") == "smoke-0123456789ab-s0"
    long = wandb_run_id("x" * 80, "0123456789ab-s0")
    assert len(long) == 64 and long != wandb_run_id("x" * 81, "0123456789ab-s0")


def test_a_run_raising_leaves_no_tracker_open(image_folder, tmp_path):
    config = tiny(image_folder, "log.tracker=tensorboard", "optim.epochs=1")

    def stop_now():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        train(config, tmp_path / "run", stop_requested=stop_now)
    assert len(trackers._OPEN) == 1  # closed when the run opens its trackers again, or at exit
    assert train(config, tmp_path / "run")["state"] == "done"
    assert not trackers._OPEN


def test_open_trackers_for_a_sweep_job_groups_by_the_results_folder(tmp_path):
    config = load_config(None, ["log.tracker=tensorboard"])
    opened = open_trackers(config, tmp_path / "smoke" / "abc-s0-x", "abc-s0")
    opened.close()
    assert (tmp_path / "smoke" / "trackers" / "tensorboard" / "smoke" / "abc-s0-x").is_dir()
