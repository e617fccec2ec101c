"""Bad input gets one clean line, never a traceback or a hang: YAML, values, files, the results folder.

Each case was observed (see the issue "Trustworthy results ... every bad input a clean error").
"""
from __future__ import annotations

import errno
import io
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from bench.cli import main
from bench.config import ConfigError, load_config, parse_override
from bench.data import DatasetError, assets
from bench.data.decode import SkipImage, read_colour_image
from bench.data.download import Archive, unpack
from bench.run import rundir
from bench.sweep.ablation import AblationError, load_ablation, parse_ablation
from bench.sweep.results import AblationResults
from bench.sweep.status import collect_status

SMALL_BOMB = ('a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]\n'
              "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n")


def bomb(levels: int) -> str:
    """A "billion laughs" document: ``levels`` lists of ten aliases of the one before (10**levels strings)."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def one_line_error(capsys) -> str:
    """The stderr of a command that failed cleanly: exactly one line, ``colorbench: error: ...``."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("colorbench: error: "), err
    return lines[0]


# ---------------------------------------------------------------------------------------
# YAML

def test_alias_bomb_is_refused_at_once_without_expanding(tmp_path):
    """1.3 KB that expands to a billion strings: refused at its first anchor, in a fresh process."""
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb(9))
    assert path.stat().st_size < 1400
    done = subprocess.run([sys.executable, "-m", "bench", "config", "--config", str(path)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"colorbench: error: {path}:1:5: anchor &l0: anchors and aliases are not allowed (write the value out)"]


def test_anchors_and_aliases_are_refused_by_every_reader(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(SMALL_BOMB)
    assert main(["config", "--config", str(config)]) == 2
    assert "config.yaml:1:4: anchor &a: anchors and aliases are not allowed" in one_line_error(capsys)

    ablation = tmp_path / "ablation.yaml"
    ablation.write_text("name: x\nbase: {}\ngrid: {generator.ngf: &n [8, 16]}\nseeds: *n\n")
    with pytest.raises(AblationError, match=r"ablation\.yaml:3:23: anchor &n"):
        load_ablation(ablation)
    with pytest.raises(ConfigError, match="alias \\*x: anchors and aliases are not allowed"):
        parse_override("generator=*x")

    results = tmp_path / "results" / "x"
    results.mkdir(parents=True)
    (results / "ablation.yaml").write_text(SMALL_BOMB)
    with pytest.raises(ConfigError, match="anchor &a"):
        AblationResults(results).read_snapshot()

    from bench.reproduce.command import study_files
    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "s.yaml").write_text(SMALL_BOMB)
    with pytest.raises(ConfigError, match="anchor &a"):
        study_files(studies)

    from bench.report.published import PublishedError, load_published
    (tmp_path / "published.yaml").write_text(SMALL_BOMB)
    with pytest.raises(PublishedError, match="anchor &a"):
        load_published(tmp_path / "published.yaml")


def test_a_value_used_twice_is_written_out_twice_so_it_reads_back(tmp_path):
    values = [8, 16]
    ablation = parse_ablation({"name": "x", "grid": {"generator.ngf": values, "discriminator.ndf": values}}, "x.yaml")
    results = AblationResults(tmp_path)
    results.write_snapshot(ablation)
    assert "&" not in results.snapshot_path.read_text()
    assert results.read_snapshot().runs == ablation.runs


def test_a_file_that_is_not_utf8_is_one_line(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("optim: {lr: 0.0002}  # réglé\n".encode("latin-1"))
    assert main(["config", "--config", str(path)]) == 2
    assert one_line_error(capsys) == f"colorbench: error: {path}: not UTF-8 text (byte 0xe9 at offset 24)"


def test_deeply_nested_brackets_are_one_line(tmp_path, capsys):
    path = tmp_path / "deep.yaml"
    path.write_text("[" * 20000 + "]" * 20000 + "\n")
    assert main(["config", "--config", str(path)]) == 2
    assert one_line_error(capsys) == f"colorbench: error: {path}:1:101: nested deeper than 100 levels"


def test_duplicate_keys_are_refused_not_silently_overwritten(tmp_path, capsys):
    path = tmp_path / "dup.yaml"
    path.write_text("optim:\n  lr: 0.0002\n  epochs: 3\n  lr: 0.1\n")
    assert main(["config", "--config", str(path)]) == 2
    assert one_line_error(capsys) == (f"colorbench: error: {path}:4:3: duplicate key 'lr' (first at line 2); "
                                      "each key may appear once")
    ablation = tmp_path / "ablation.yaml"
    ablation.write_text("name: x\ngrid: {generator.ngf: [8]}\nname: y\n")
    with pytest.raises(AblationError, match="ablation.yaml:3:1: duplicate key 'name'"):
        load_ablation(ablation)
    with pytest.raises(ConfigError, match="duplicate key 'ngf'"):
        parse_override("generator={ngf: 8, ngf: 16}")


def test_a_syntax_error_is_one_line_with_file_line_and_column(tmp_path, capsys):
    path = tmp_path / "syntax.yaml"
    path.write_text("optim:\n  lr: 0.0002\n  betas: [0.5, 0.999\n  epochs: 3\n")
    assert main(["config", "--config", str(path)]) == 2
    assert one_line_error(capsys) == (f"colorbench: error: {path}:4:9: expected ',' or ']', but got ':' "
                                      "(while parsing a flow sequence at line 3, column 10)")


def test_control_characters_are_one_line(tmp_path, capsys):
    path = tmp_path / "nul.yaml"
    path.write_bytes(b"seed: 1\x00\n")
    assert main(["config", "--config", str(path)]) == 2
    assert "nul.yaml: character #x0000 at position 7" in one_line_error(capsys)


# ---------------------------------------------------------------------------------------
# Values

@pytest.mark.parametrize("override, message", [
    ("seed=18446744073709551616", "seed: got 18446744073709551616; allowed: 0 <= seed < 2**63"),
    ("seed=9223372036854775808", "seed: got 9223372036854775808; allowed: 0 <= seed < 2**63"),
    ("seed=-1", "seed: got -1; allowed: 0 <= seed < 2**63"),
    ("data.image_size=1099511627776", "data.image_size: got 1099511627776; allowed: 1..8192"),
    ("data.batch_size=100000000000000000000000", "data.batch_size: got 100000000000000000000000; allowed: 1..65536"),
    ("optim.steps=1180591620717411303424", "optim.steps: got 1180591620717411303424; allowed: an integer "
                                           "of magnitude below 2**63"),
    ("optim.lr=inf", "optim.lr: got inf; allowed: a finite number"),
    ("optim.lr=.inf", "optim.lr: got inf; allowed: a finite number"),
    ("loss.lambda_rec=.inf", "loss.lambda_rec: got inf; allowed: a finite number"),
    ("loss.lambda_adv=inf", "loss.lambda_adv: got inf; allowed: a finite number"),
    ("optim.grad_clip_norm=inf", "optim.grad_clip_norm: got inf; allowed: a finite number"),
    ("data.greyscale_chroma=inf", "data.greyscale_chroma: got inf; allowed: a finite number"),
])
def test_out_of_range_values_are_refused_before_anything_runs(override, message, capsys, tmp_path):
    # A tiny run underneath, so a value that slipped through fails in seconds instead of training for hours.
    tiny = ["--set", "optim.steps=1", "--set", "data.image_size=32", "--set", "generator.depth=5"]
    assert main(["train", "--out", str(tmp_path / "run"), *tiny, "--set", override]) == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_the_largest_seed_is_accepted_and_trains(image_folder, tmp_path, capsys):
    from test_sweep import tiny_base
    overrides = [f"{section}.{key}={value}" for section, values in tiny_base(image_folder, steps=1).items()
                 if isinstance(values, dict) for key, value in values.items()] + [f"seed={2 ** 63 - 1}"]
    assert load_config(None, overrides).seed == 2 ** 63 - 1
    assert main(["train", "--out", str(tmp_path / "run"), *sum([["--set", o] for o in overrides], [])]) == 0


@pytest.mark.parametrize("mem, message", [(".inf", "got inf"), ("9" * 400 + "G", "got '999")])
def test_slurm_memory_must_be_finite(mem, message):
    data = {"name": "x", "grid": {"generator.ngf": [8]}, "slurm": {"mem": yaml.safe_load(mem)}}
    with pytest.raises(AblationError, match=f"slurm.mem: {message}"):
        parse_ablation(data, "x.yaml")


def test_an_ablation_name_too_long_for_a_folder_is_refused_by_dry_run(tmp_path, capsys):
    path = tmp_path / "long.yaml"
    path.write_text(f"name: {'a' * 300}\ngrid: {{generator.ngf: [8]}}\n")
    assert main(["sweep", str(path), "--dry-run", "--results", str(tmp_path / "results")]) == 2
    assert "name: got 300 characters; allowed: at most 100" in one_line_error(capsys)
    parse_ablation({"name": "a" * 100, "grid": {"generator.ngf": [8]}}, "x.yaml")  # the longest allowed


# ---------------------------------------------------------------------------------------
# Files of a results folder: one bad run is a warning and a row, never the whole collection

BINARY = bytes(range(256)) * 4


@pytest.fixture
def two_runs(tmp_path):
    """results/toy with both runs of a two-point grid done, and a jobs.jsonl."""
    from test_report import write_run
    ablation = parse_ablation({"name": "toy", "base": {"data": {"dataset": "samples", "image_size": 64},
                                                       "generator": {"depth": 6, "ngf": 8}},
                               "grid": {"generator.skip_connections": [True, False]}}, "toy.yaml")
    folder = AblationResults(tmp_path / "results" / "toy")
    folder.write_snapshot(ablation)
    for run in ablation.runs:
        write_run(folder.root / run.dir_name, run.config, run.point["generator.skip_connections"])
        folder.record_job(run, executor="debug", job_id="1", folder=str(tmp_path))
    return folder, ablation


def _damage(folder: AblationResults, run, name: str) -> Path:
    path = folder.jobs_path if name == "jobs.jsonl" else folder.root / run.dir_name / name.split()[0]
    if name.endswith(" folder"):
        path.unlink()
        path.mkdir()
        (path / "x").write_text("{}\n")
    else:
        path.write_bytes(BINARY)
    return path


@pytest.mark.parametrize("name", ["metrics.jsonl", "stats.jsonl", "config.yaml", "metrics.jsonl folder",
                                  "stats.jsonl folder", "config.yaml folder"])
def test_a_run_with_an_undecodable_file_is_a_broken_row_and_a_warning(two_runs, name, tmp_path, capsys):
    folder, ablation = two_runs
    bad, good = ablation.runs
    path = _damage(folder, bad, name)
    results = folder.root.parent

    assert main(["aggregate", str(results), "--out", str(tmp_path / "tables")]) == 0
    out, err = capsys.readouterr()
    assert "2 runs in 1 groups (1 broken, 1 done)" in out
    assert f"colorbench: warning: {path}: " in err and "Traceback" not in err
    import pandas as pd
    frame = pd.read_csv(tmp_path / "tables" / "aggregate.csv").drop_duplicates("run_id").set_index("run_id")
    assert frame.loc[bad.run_id, "state"] == "broken" and frame.loc[good.run_id, "state"] == "done"

    assert main(["status", str(folder.root)]) == 1
    out = capsys.readouterr().out
    assert next(line for line in out.splitlines() if line.startswith(bad.run_id)).split()[2] == "broken"
    assert next(line for line in out.splitlines() if line.startswith(good.run_id)).split()[2] == "done"
    assert f"reason: {path}: " in out and "1 done, 1 broken (of 2 runs)" in out

    assert main(["report", "--results", str(results), "--out", str(tmp_path / "reports"), "--resamples", "20"]) == 0
    assert f"colorbench: warning: {path}: " in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["binary", "folder", "records"])
def test_a_bad_jobs_file_is_a_warning_and_the_states_come_from_the_runs(two_runs, damage, tmp_path, capsys):
    folder, ablation = two_runs
    if damage == "binary":
        folder.jobs_path.write_bytes(BINARY)
    elif damage == "folder":
        folder.jobs_path.unlink()
        folder.jobs_path.mkdir()
    else:  # JSON, but not job records
        folder.jobs_path.write_text('[1, 2]\n{"run_id": 3}\n{"run_id": "x", "executor": "slurm"}\n' + "[" * 5000 + "\n")
    assert main(["status", str(folder.root)]) == 0
    out, err = capsys.readouterr()
    assert "2 done (of 2 runs)" in out
    assert err.startswith(f"colorbench: warning: {folder.jobs_path}: ") and "Traceback" not in err
    assert main(["aggregate", str(folder.root.parent), "--out", str(tmp_path / "tables")]) == 0
    out, err = capsys.readouterr()
    assert "(2 done)" in out and f"colorbench: warning: {folder.jobs_path}: " in err


def test_an_unreadable_snapshot_leaves_the_other_ablations_in_status(two_runs, capsys):
    folder, _ = two_runs
    other = folder.root.parent / "other"
    other.mkdir()
    (other / "ablation.yaml").write_bytes(BINARY)
    assert main(["status", "--results", str(folder.root.parent)]) == 0
    out, err = capsys.readouterr()
    assert "ablation toy: " in out and "2 done (of 2 runs)" in out
    assert err.startswith(f"colorbench: warning: {other / 'ablation.yaml'}: not UTF-8 text")


class _Exploit:
    """Unpickling this runs code: what a hostile results folder could put in a submitit result file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def test_status_never_unpickles_files_of_the_results_folder(two_runs, tmp_path, capsys):
    folder, ablation = two_runs
    run = ablation.runs[0]
    (folder.root / run.dir_name / "DONE").unlink()
    jobs = tmp_path / "submitit"
    jobs.mkdir()
    marker = tmp_path / "marker"
    (jobs / "4242_0_result.pkl").write_bytes(pickle.dumps(("error", _Exploit(marker))))
    folder.record_job(run, executor="local", job_id="4242", folder=str(jobs), pid=999999, pid_start=1)
    statuses = collect_status(folder, ablation.runs)
    assert not marker.exists()
    assert statuses[0].state == "failed"
    assert statuses[0].reason == "job 4242 (local) ended without finishing the run (no result)"


def test_the_job_records_its_outcome_as_json_and_status_reads_it(two_runs, tmp_path, monkeypatch):
    from bench.sweep.outcome import outcome_path, record_outcome
    folder, ablation = two_runs
    run = ablation.runs[0]
    (folder.root / run.dir_name / "DONE").unlink()
    jobs = folder.root / "submitit" / "20260101-000000-x"  # a job's files are read only inside the results folder
    jobs.mkdir(parents=True)
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "local")
    monkeypatch.setenv("SUBMITIT_FOLDER", str(jobs))
    monkeypatch.setenv("SUBMITIT_LOCAL_JOB_ID", "4242")

    def failing():
        raise DatasetError("no usable image\nfor the train split")

    with pytest.raises(DatasetError):
        record_outcome(failing)
    assert outcome_path(jobs, "4242").is_file()
    folder.record_job(run, executor="local", job_id="4242", folder=str(jobs), pid=999999, pid_start=1)
    assert collect_status(folder, ablation.runs)[0].reason == "for the train split"
    assert record_outcome(lambda: {"state": "interrupted", "step": 3, "total_steps": 10})["step"] == 3
    assert collect_status(folder, ablation.runs)[0].reason == "the job ended with the run interrupted at step 3"
    outcome_path(jobs, "4242").write_bytes(BINARY)  # garbage: as if there were none
    assert collect_status(folder, ablation.runs)[0].reason.endswith("ended without finishing the run (no result)")


# ---------------------------------------------------------------------------------------
# Output paths, the cache, a full disk, a read-only folder

@pytest.mark.parametrize("argv", [
    ["train", "--out", "{file}", "--set", "data.image_size=32", "--set", "generator.depth=5"],
    ["demo", "--out", "{file}"],
    ["aggregate", "{results}", "--out", "{file}"],
    ["report", "--results", "{results}", "--out", "{file}"],
    ["reproduce", "pix2pix-table1-facades", "--out", "{file}", "--dry-run"],
])
def test_out_naming_a_file_is_one_line(argv, tmp_path, capsys):
    file = tmp_path / "a-file"
    file.write_text("keep me\n")
    (tmp_path / "results" / "g" / "run").mkdir(parents=True)
    (tmp_path / "results" / "g" / "run" / "DONE").write_text('{"step": 1, "total_steps": 1}\n')
    argv = [arg.format(file=file, results=tmp_path / "results") for arg in argv]
    assert main(argv) == 2
    assert one_line_error(capsys) == f"colorbench: error: --out {file}: exists and is not a directory"
    assert file.read_text() == "keep me\n"


def test_a_cache_dir_that_is_a_file_is_one_line_naming_it(image_folder, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache-file"
    cache.write_text("")
    monkeypatch.setenv("COLORBENCH_CACHE", str(cache))
    assert main(["data", "prepare", "imagefolder", "--root", str(image_folder), "--size", "16"]) == 2
    line = one_line_error(capsys)
    assert line.startswith(f"colorbench: error: dataset cache {cache}: cannot write there (")


def test_a_read_only_cache_dir_is_one_line_naming_it(image_folder, tmp_path, monkeypatch, capsys):
    def read_only(*args, dir=None, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), dir)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    assert main(["data", "prepare", "imagefolder", "--root", str(image_folder), "--size", "16",
                 "--cache-dir", str(tmp_path / "ro")]) == 2
    assert one_line_error(capsys) == (f"colorbench: error: dataset cache {tmp_path / 'ro'}: cannot write there "
                                      "(Read-only file system); set data.cache_dir or $COLORBENCH_CACHE to a "
                                      "writable folder")


def test_read_only_output_is_one_line_naming_the_path(two_runs, tmp_path, monkeypatch, capsys):
    folder, _ = two_runs

    def read_only(*args, dir=None, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), dir)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    assert main(["aggregate", str(folder.root.parent), "--out", str(tmp_path / "ro")]) == 2
    assert one_line_error(capsys) == f"colorbench: error: {tmp_path / 'ro'}: Read-only file system"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full to fill a disk")
def test_a_full_disk_under_torch_save_is_one_line_naming_the_file(image_folder, tmp_path, monkeypatch, capsys):
    """torch.save on a full disk raises a RuntimeError with the ENOSPC OSError only in its context."""
    from test_sweep import tiny_base
    base = tiny_base(image_folder)
    overrides = [f"{section}.{key}={value}" for section, values in base.items() if isinstance(values, dict)
                 for key, value in values.items()] + ["eval.n_sample_images=0", "device=cpu"]
    from bench.data import prepare_data
    prepare_data(load_config(None, overrides).data)  # the dataset cache is written; the checkpoint is next
    real = os.fdopen

    def full_disk(fd, mode="r", *args, **kwargs):
        if mode == "wb":  # torch.save of a checkpoint (or the dataset cache)
            os.close(fd)
            fd = os.open("/dev/full", os.O_WRONLY)
        return real(fd, mode, *args, **kwargs)

    monkeypatch.setattr(rundir.os, "fdopen", full_disk)
    assert main(["train", "--out", str(tmp_path / "run"), *sum([["--set", o] for o in overrides], [])]) == 1
    assert one_line_error(capsys) == f"colorbench: error: {tmp_path / 'run' / 'checkpoint.pt'}: No space left on device"


def test_a_name_too_long_for_the_file_system_is_one_line(tmp_path, capsys):
    out = tmp_path / ("x" * 300)
    assert main(["aggregate", str(tmp_path), "--out", str(out)]) == 2
    assert one_line_error(capsys) == f"colorbench: error: {out}: File name too long"


# ---------------------------------------------------------------------------------------
# Small items

def test_published_notes_with_commas_are_whole():
    from bench.report.published import load_published
    tables = {table.id: table for table in load_published()}
    ssim = next(m for m in tables["seed-000"].metrics if m["name"] == "SSIM")
    assert ssim["metric_note"] == "the SSIM implementation, window and colour handling are not given"
    cf = next(m for m in tables["ddcolor-table-1-coco-stuff"].metrics if m["name"] == "CF")
    assert cf["metric_note"] == "DDColor's evaluation code, absolute opponent components, as colorbench's cf"


def test_a_published_metric_with_an_unknown_key_is_refused(tmp_path):
    from bench.report.published import PUBLISHED_FILE, PublishedError, load_published
    data = yaml.safe_load(PUBLISHED_FILE.read_text())
    data["tables"][0]["metrics"][0]["window and colour handling are not given"] = None
    path = tmp_path / "published.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PublishedError, match="unknown key 'window and colour handling are not given'"):
        load_published(path)


def test_every_weight_file_is_checked_against_its_full_sha256(tmp_path):
    assert all(len(asset.sha256) == 64 for asset in assets.ASSETS.values())
    assert assets.ASSETS["resnet18"].sha256 == "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec"
    assert assets.ASSETS["alexnet"].sha256 == "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02"
    path = tmp_path / "weights.pth"
    path.write_bytes(b"weights")
    import hashlib
    prefix = hashlib.sha256(b"weights").hexdigest()[:8]
    with pytest.raises(assets.AssetError, match="does not match"):  # a matching prefix is not enough
        assets.verify(path, assets.Asset("x", "http://x/weights.pth", prefix, "tests"))


def _tar(path: Path, *members: tuple[str, bytes | str]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, str):  # a symbolic link to ``content``
                info.type, info.linkname = tarfile.SYMTYPE, content
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return path


@pytest.fixture
def python_without_tar_filters(monkeypatch):
    """tarfile as on Python 3.10 before 3.10.12 and 3.11 before 3.11.4: no ``filter`` argument."""
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    real = tarfile.TarFile.extract

    def extract(self, member, path="", set_attrs=True, *, numeric_owner=False, **kwargs):
        if kwargs:
            raise TypeError(f"extract() got an unexpected keyword argument {next(iter(kwargs))!r}")
        return real(self, member, path, set_attrs, numeric_owner=numeric_owner, filter="fully_trusted")

    monkeypatch.setattr(tarfile.TarFile, "extract", extract)


def test_unpacking_on_a_python_without_tar_filters(python_without_tar_filters, tmp_path):
    good = _tar(tmp_path / "good.tar.gz", ("data/a.txt", b"a"), ("data/link", "a.txt"))
    unpack(good, Archive("http://x/good.tar.gz", None, "data"), tmp_path / "root")
    assert (tmp_path / "root" / "data" / "a.txt").read_bytes() == b"a"
    for name, members in (("up.tar.gz", [("data/../../escaped.txt", b"x")]), ("abs.tar.gz", [("/tmp/abs.txt", b"x")]),
                          ("link.tar.gz", [("data/x", b"x"), ("data/etc", "/etc")]),
                          ("uplink.tar.gz", [("data/x", b"x"), ("data/up", "../../..")])):
        with pytest.raises(DatasetError, match="cannot unpack"):
            unpack(_tar(tmp_path / name, *members), Archive(f"http://x/{name}", None, "data"), tmp_path / name[:-7])
    assert not (tmp_path / "escaped.txt").exists()


def _grey_photo(size: int = 64) -> np.ndarray:
    """A grey photograph's luminance: a smooth gradient with a flat square, 40..200."""
    y, x = np.mgrid[0:size, 0:size] / size
    grey = 40 + 160 * (0.5 + 0.5 * np.sin(3 * x + 2 * y))
    grey[size // 4:size // 2, size // 4:size // 2] = 60
    return grey


@pytest.mark.parametrize("tint", [(40, 10, -30), (-25, -5, 30)], ids=["sepia", "blue"])
def test_a_tinted_grey_photo_is_greyscale(tint, tmp_path):
    rgb = np.clip(_grey_photo()[..., None] + np.array(tint), 0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "tinted.png")
    Image.fromarray(rgb).save(tmp_path / "tinted.jpg", quality=85)
    for name in ("tinted.png", "tinted.jpg"):
        with pytest.raises(SkipImage, match="greyscale: near-equal channels"):
            read_colour_image(tmp_path / name, 32, 2.0)


def test_a_colour_photo_with_a_cast_is_still_colour(tmp_path):
    grey = _grey_photo()
    rgb = np.stack([grey, grey, grey], -1) + np.array((30, 10, -20))  # a cast ...
    rgb[:32, :, 0] += 25  # ... and real colour: a red top half
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(tmp_path / "colour.png")
    assert read_colour_image(tmp_path / "colour.png", 32, 2.0).shape == (64, 64, 3)


# ---------------------------------------------------------------------------------------
# YAML reduced to JSON types, and size limits of what colorbench reads

def test_yaml_values_that_are_not_json_types_are_refused_or_read_as_text(tmp_path, capsys):
    """A date is read as the text it is written as; !!binary, !!set and the like are refused at the reader."""
    config = tmp_path / "date.yaml"
    config.write_text("optim: {lr: 2020-01-01}\n")
    assert main(["config", "--config", str(config)]) == 2
    assert "optim.lr: got '2020-01-01'; allowed: a number" in one_line_error(capsys)

    config.write_text("data:\n  root: !!binary aGk=\n")
    assert main(["config", "--config", str(config)]) == 2
    assert one_line_error(capsys) == (f"colorbench: error: {config}:2:9: tag !!binary: not allowed; colorbench reads "
                                      "text, numbers, true/false, null, lists and mappings")

    ablation = tmp_path / "ablation.yaml"
    ablation.write_text("name: x\nbase: {data: {dataset: folder, root: 2020-01-01}}\ngrid: {generator.ngf: [8]}\n")
    assert load_ablation(ablation).base["data"]["root"] == str(tmp_path / "2020-01-01")  # beside the file
    ablation.write_text("name: x\ngrid: {generator.ngf: !!set {a, b}}\n")
    with pytest.raises(AblationError, match=r"ablation\.yaml:2:23: tag !!set: not allowed"):
        load_ablation(ablation)
    assert main(["sweep", str(ablation), "--dry-run", "--results", str(tmp_path / "results")]) == 2
    assert "tag !!set: not allowed" in one_line_error(capsys)


def test_a_merge_key_is_refused_as_a_key_given_twice(tmp_path, capsys):
    path = tmp_path / "merge.yaml"
    path.write_text("generator:\n  depth: 5\n  <<: {depth: 6}\n")
    assert main(["config", "--config", str(path)]) == 2
    assert one_line_error(capsys) == (f"colorbench: error: {path}:3:3: merge key <<: not allowed (write the keys "
                                      "out; each key may appear once)")


def test_a_huge_yaml_file_or_document_is_refused_at_once(tmp_path, capsys):
    big = tmp_path / "big.yaml"
    with open(big, "w") as handle:  # a 50 MB list, as a config
        handle.write("seed: [" + "1, " * 17_000_000 + "1]\n")
    done = subprocess.run([sys.executable, "-m", "bench", "config", "--config", str(big)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"colorbench: error: {big}: larger than 1048576 bytes; colorbench reads no YAML file this large"]
    many = tmp_path / "many.yaml"
    many.write_text("seed: [" + "1," * 60_000 + "1]\n")
    assert main(["config", "--config", str(many)]) == 2
    assert f"{many}:1:" in (line := one_line_error(capsys)) and "more than 50000 values" in line


# ---------------------------------------------------------------------------------------
# Values that are valid in form but cannot be met: paths, 64-bit seeds, SLURM times, grids, memory

@pytest.mark.parametrize("key", ["data.cache_dir", "eval.weights_dir", "data.root", "generator.pretrained_path",
                                 "log.tracker_dir"])
def test_the_home_of_an_unknown_user_is_one_line(key, capsys):
    assert main(["config", "--set", f"{key}=~nosuchuser/x"]) == 2
    assert f"{key}: got '~nosuchuser/x'; no user nosuchuser on this machine" in one_line_error(capsys)


def test_data_prepare_refuses_a_seed_train_would_refuse(image_folder, capsys):
    seed = "99999999999999999999999"
    assert main(["data", "prepare", "imagefolder", "--root", str(image_folder), "--size", "16", "--seed", seed]) == 2
    assert f"data.split_seed: got {seed}; allowed: 0 <= value < 2**63" in one_line_error(capsys)
    assert main(["train", "--out", "x", "--set", f"data.split_seed={seed}"]) == 2
    assert f"data.split_seed: got {seed}; allowed: 0 <= value < 2**63" in one_line_error(capsys)


@pytest.mark.parametrize("time", ["99999999999999999999999-00:00:00", 10 ** 30, "366-00:00:00"])
def test_a_slurm_time_beyond_a_year_is_refused(time):
    with pytest.raises(AblationError, match=r"slurm\.time: got .*; allowed: at most 365 days \(525600 minutes\)"):
        parse_ablation({"name": "x", "grid": {"generator.ngf": [8]}, "slurm": {"time": time}}, "x.yaml")
    assert parse_ablation({"name": "x", "grid": {"generator.ngf": [8]}, "slurm": {"time": "365-00:00:00"}},
                          "x.yaml").slurm.time_min == 525600


@pytest.mark.parametrize("grid, seeds, problem", [
    ({"generator.ngf": list(range(1, 1001)), "discriminator.ndf": list(range(1, 1001))}, [0], "grid: 1000000 runs "
     "(1000000 grid points x 1 seeds); allowed: at most 2000 runs in one ablation file (split it into several)"),
    ({"generator.ngf": [8]}, list(range(5000)), "grid: 5000 runs (1 grid points x 5000 seeds); allowed: at most 2000 "
     "runs in one ablation file (split it into several)"),
    ({"generator.ngf": [8]}, list(range(50_000)), "more than 50000 values; colorbench reads no file this large")])
def test_a_grid_beyond_the_run_cap_is_refused_before_it_is_expanded(grid, seeds, problem, tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text(yaml.safe_dump({"name": "huge", "grid": grid, "seeds": seeds}))
    done = subprocess.run([sys.executable, "-m", "bench", "sweep", str(path), "--dry-run", "--results",
                           str(tmp_path / "results")], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"colorbench: error: {path}") and line.endswith(problem)


def test_networks_too_large_for_the_machine_are_refused_with_the_estimate(tmp_path, monkeypatch, capsys):
    assert main(["params", "--set", "generator.ngf=100000"]) == 2
    line = one_line_error(capsys)
    assert "generator and discriminator: need at least " in line and " of memory; this machine has " in line
    assert "(132,800,026,165,635 parameters of 4 bytes); lower generator.ngf" in line
    assert main(["params", "--set", "generator.ngf=4611686018427387904"]) == 2
    assert "generator.ngf: got 4611686018427387904; allowed: 1..1048576" in one_line_error(capsys)

    import bench.run.machine
    monkeypatch.setattr(bench.run.machine, "memory_bytes", lambda device=None: 16 << 30)
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--set", "data.image_size=8192", "--set", "generator.depth=9"]) == 2
    line = one_line_error(capsys)
    assert "training: need at least " in line and "of memory; this machine has 16.0 GiB" in line
    assert not out.exists()  # refused before anything is written


def test_a_dataset_too_large_for_the_machine_is_refused_before_decoding(image_folder, monkeypatch, capsys):
    import bench.run.machine
    monkeypatch.setattr(bench.run.machine, "memory_bytes", lambda device=None: 100 << 20)
    assert main(["data", "prepare", "imagefolder", "--root", str(image_folder), "--size", "2048"]) == 2
    line = one_line_error(capsys)
    assert ("dataset: need up to 293.6 MiB of memory; this machine has 100.0 MiB (18 training images at 2288x2288 and "
            "2 test images at 2048x2048); set data.n_train and data.n_test, or a smaller data.image_size") in line


# ---------------------------------------------------------------------------------------
# Run and results files that are not files: FIFOs, devices, links leaving the folder, sizes, crafted records

def _bench(*argv: str, timeout: int = 60, memory_gb: int | None = None) -> subprocess.CompletedProcess:
    """``python -m bench ARGV`` in a fresh process, killed after ``timeout`` s (a hang fails the test, never blocks it);
    ``memory_gb`` caps its address space, so a reader that does not stop fails fast instead of filling the machine."""
    def limit() -> None:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (memory_gb << 30, memory_gb << 30))
    return subprocess.run([sys.executable, "-m", "bench", *argv], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, preexec_fn=limit if memory_gb else None)


@pytest.mark.parametrize("name", ["jobs.jsonl", "metrics.jsonl", "config.yaml", "stats.jsonl", "DONE"])
def test_a_fifo_in_a_results_folder_is_refused_never_waited_on(two_runs, name, tmp_path):
    folder, ablation = two_runs
    path = folder.jobs_path if name == "jobs.jsonl" else folder.root / ablation.runs[0].dir_name / name
    path.unlink()
    os.mkfifo(path)
    results = str(folder.root.parent)
    status = _bench("status", str(folder.root))
    aggregate = _bench("aggregate", results, "--out", str(tmp_path / "tables"))
    report = _bench("report", "--results", results, "--out", str(tmp_path / "reports"), "--resamples", "20")
    for done in (status, aggregate, report):
        assert "Traceback" not in done.stderr, done.stderr
        assert f"{path}: a FIFO, not a regular file" in done.stdout + done.stderr
    assert status.returncode == (0 if name == "jobs.jsonl" else 1)
    assert aggregate.returncode == 0 and report.returncode == 0


@pytest.fixture
def failed_job(two_runs):
    """The first run of ``two_runs`` without DONE, its debug job's stderr beside its outcome in the results folder."""
    folder, ablation = two_runs
    run = ablation.runs[0]
    (folder.root / run.dir_name / "DONE").unlink()
    jobs = folder.root / "submitit" / "20260101-000000-x"
    jobs.mkdir(parents=True)
    folder.record_job(run, executor="debug", job_id="77", folder=str(jobs))
    (jobs / "77_0_log.err").write_text("RuntimeError: the job's own last line\n")
    return folder, ablation, jobs / "77_0_log.err"


@pytest.mark.parametrize("name", ["metrics.jsonl", "stats.jsonl", "job stderr"])
def test_a_link_to_dev_zero_is_refused_not_read_to_the_end(failed_job, name, tmp_path):
    folder, ablation, stderr = failed_job
    path = stderr if name == "job stderr" else folder.root / ablation.runs[1].dir_name / name
    path.unlink()
    path.symlink_to("/dev/zero")
    status = _bench("status", str(folder.root), timeout=60, memory_gb=8)
    aggregate = _bench("aggregate", str(folder.root.parent), "--out", str(tmp_path / "tables"), memory_gb=8)
    for done in (status, aggregate):
        assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr, done.stderr
    assert status.returncode == 1 and aggregate.returncode == 0
    base = folder.root if name == "job stderr" else path.parent  # a job's files: anywhere in the results folder
    assert f"{path}: a link to /dev/zero, outside {base}" in status.stdout
    if name != "job stderr":
        assert f"colorbench: warning: {path}: a link to /dev/zero" in aggregate.stderr


def test_a_file_larger_than_its_cap_is_a_broken_run(two_runs, monkeypatch, capsys):
    folder, ablation = two_runs
    monkeypatch.setattr(rundir, "MAX_LOG_BYTES", 2000)
    path = folder.root / ablation.runs[0].dir_name / "metrics.jsonl"
    assert path.stat().st_size > 2000
    assert main(["status", str(folder.root)]) == 1
    out = capsys.readouterr().out
    assert f"reason: {path}: {path.stat().st_size / 1024:.1f} KiB, more than the 2.0 KiB colorbench reads" in out


def test_a_crafted_jobs_file_neither_crashes_status_nor_shows_files_outside_the_results_folder(failed_job, tmp_path,
                                                                                              capsys):
    folder, ablation, _ = failed_job
    run = ablation.runs[0]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "5_0_log.err").write_text("SECRET-LINE-FROM-OUTSIDE\n")
    folder.record_job(run, executor="debug", job_id="5", folder=str(outside))
    assert main(["status", str(folder.root)]) == 1
    out, err = capsys.readouterr()
    assert "SECRET-LINE-FROM-OUTSIDE" not in out + err
    assert f"{outside / '5_0_log.err'}: outside {folder.root}" in out
    folder.record_job(run, executor="debug", job_id="6\u0000", folder=str(folder.root))
    assert main(["status", str(folder.root)]) == 1
    out, err = capsys.readouterr()
    assert f"colorbench: warning: {folder.jobs_path}: line 5: job_id: got \"6\\u0000\"; allowed: a job id" in err


# ---------------------------------------------------------------------------------------
# One rule for a consistent run directory, applied by status, aggregate and report alike

@pytest.mark.parametrize("planted", ["config.yaml", "DONE", "checkpoint.pt"])
def test_a_run_directory_holding_another_runs_file_is_broken_everywhere(two_runs, planted, tmp_path, capsys):
    folder, ablation = two_runs
    mine, other = ablation.runs
    mine_dir, other_dir = folder.root / mine.dir_name, folder.root / other.dir_name
    if planted == "config.yaml":
        (mine_dir / "config.yaml").write_bytes((other_dir / "config.yaml").read_bytes())
        reason = f"{mine_dir}: holds run '{other.run_id}', not '{mine.run_id}'"
    elif planted == "checkpoint.pt":  # read without torch by status, as train and eval read it
        import torch
        torch.save({"generator": {"w": torch.zeros(2)}, "step": 10, "run_id": other.run_id}, mine_dir / planted)
        reason = (f"{mine_dir / planted}: belongs to run '{other.run_id}', not to this directory's run "
                  f"'{mine.run_id}'")
    else:
        rundir.write_json(mine_dir / "DONE", {"step": 10, "total_steps": 10, "state": "done", "run_id": other.run_id})
        reason = f"{mine_dir / 'DONE'}: the summary of run '{other.run_id}', not of this directory's run '{mine.run_id}'"
    assert main(["status", str(folder.root)]) == 1
    out = capsys.readouterr().out
    assert next(line for line in out.splitlines() if line.startswith(mine.run_id)).split()[2] == "broken"
    assert f"reason: {reason}" in out

    assert main(["aggregate", str(folder.root.parent), "--out", str(tmp_path / "tables")]) == 0
    out, err = capsys.readouterr()
    assert "(1 broken, 1 done)" in out and f"colorbench: warning: {reason}" in err
    import pandas as pd
    frame = pd.read_csv(tmp_path / "tables" / "aggregate.csv")
    assert frame[frame["run_id"] == mine.run_id]["value"].isna().all()  # none of its numbers is reported

    assert main(["report", "--results", str(folder.root.parent), "--out", str(tmp_path / "reports"),
                 "--resamples", "20"]) == 0
    assert f"colorbench: warning: {reason}" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# A report with a bad samples grid

def _png(width: int, height: int, rows: bytes | None = None) -> bytes:
    """A PNG of ``width`` x ``height`` RGB pixels: zeros, compressed as they are streamed (a 10000x9000 image in a
    few hundred KB), or with ``rows=b""`` only its header (what Pillow reads to learn the size)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    if rows is None:
        packer, row = zlib.compressobj(9), bytes(1 + 3 * width)
        rows = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + header + (chunk(b"IDAT", rows) if rows else b"") + chunk(b"IEND", b"")


@pytest.mark.parametrize("damage", ["garbage", "dev-zero", "20000x20000", "9000x9000"])
def test_a_bad_samples_grid_is_a_warning_and_the_figure_shows_the_others(two_runs, damage, tmp_path, capsys):
    import torch

    from bench.evaluation.outputs import save_sample_grid
    folder, ablation = two_runs
    grids = []
    for run in ablation.runs:
        truth = torch.full((2, 3, 16, 16), 120, dtype=torch.uint8)
        grids.append(folder.root / run.dir_name / "samples" / "step-0000010.png")
        save_sample_grid(grids[-1], truth, truth // 2)
    bad = grids[1]
    if damage == "garbage":
        bad.write_bytes(BINARY)
    elif damage == "dev-zero":
        bad.unlink()
        bad.symlink_to("/dev/zero")
    else:
        side = int(damage.split("x")[0])
        bad.write_bytes(_png(side, side, rows=b""))
    assert main(["report", "--results", str(folder.root.parent), "--out", str(tmp_path / "reports"),
                 "--resamples", "20"]) == 0
    err = capsys.readouterr().err
    assert f"colorbench: warning: {bad}: " in err and "Traceback" not in err
    assert (tmp_path / "reports" / "toy" / "qualitative.png").is_file()  # drawn from the other run's grid


# ---------------------------------------------------------------------------------------
# Exit codes and the smaller things

def test_a_full_disk_under_the_dataset_cache_exits_1(image_folder, tmp_path, monkeypatch, capsys):
    def full(*args, dir=None, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), dir)

    monkeypatch.setattr(tempfile, "mkstemp", full)
    assert main(["data", "prepare", "imagefolder", "--root", str(image_folder), "--size", "16",
                 "--cache-dir", str(tmp_path / "full")]) == 1
    assert one_line_error(capsys) == (f"colorbench: error: dataset cache {tmp_path / 'full'}: cannot write there "
                                      "(No space left on device); set data.cache_dir or $COLORBENCH_CACHE to a "
                                      "writable folder")


@pytest.mark.parametrize("when", ["importing the command line", "parsing the arguments"])
def test_ctrl_c_while_the_command_line_starts_is_one_line(when):
    """Ctrl-C in the first moments (imports, argument parsing) lands before main's handler: the entry point's."""
    interrupt = ("import builtins\nreal = builtins.__import__\n"
                 "def imported(name, *args, **kwargs):\n"
                 "    if name == 'bench.cli':\n        raise KeyboardInterrupt\n"
                 "    return real(name, *args, **kwargs)\n"
                 "builtins.__import__ = imported\n") if when.startswith("importing") else (
                 "import argparse\n"
                 "def parse(*args, **kwargs):\n    raise KeyboardInterrupt\n"
                 "argparse.ArgumentParser.parse_args = parse\n")
    code = interrupt + "import sys\nsys.argv = ['colorbench', 'config']\nfrom bench.__main__ import run\nrun()\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (130, "colorbench: interrupted\n")


def test_a_garbage_pretrained_encoder_file_is_one_line(tmp_path, capsys):
    weights = tmp_path / "resnet18.pth"
    weights.write_bytes(BINARY)
    assert main(["params", "--set", "generator.arch=resnet18_unet", "--set", "generator.pretrained_encoder=true",
                 "--set", f"generator.pretrained_path={weights}", "--set", "generator.dropout=false"]) == 2
    assert f"generator.pretrained_path: {weights} is not a torchvision ResNet-18 state dict (" in one_line_error(capsys)


def test_data_prepare_skips_a_decompression_bomb_without_pillows_raw_warning(image_folder, tmp_path):
    folder = tmp_path / "photos"
    shutil.copytree(image_folder, folder)
    (folder / "huge.png").write_bytes(_png(10000, 9000))
    done = _bench("data", "prepare", "imagefolder", "--root", str(folder), "--size", "16", "--cache-dir",
                  str(tmp_path / "cache"), timeout=120)
    assert done.returncode == 0, done.stderr
    assert "DecompressionBombWarning" not in done.stderr and "Warning" not in done.stderr, done.stderr
    import json
    manifest = next((tmp_path / "cache" / "manifests").glob("*.json"))
    skipped = [s for split in json.loads(manifest.read_text())["splits"].values() for s in split["skipped"]]
    assert any("huge.png" in json.dumps(s) and "too large: 90,000,000 pixels" in json.dumps(s) for s in skipped), skipped
