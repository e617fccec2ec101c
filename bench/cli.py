"""The ``colorbench`` command line."""
from __future__ import annotations

import argparse
import io
import sys
from importlib import resources
from pathlib import Path

# Light modules only: every command, --help included, loads this module; torch and the data,
# model and training modules are imported inside the commands that use them.
from bench.config import ConfigError, DataConfig, RunConfig, describe_fields, dump_config, load_config
from bench.config.names import AUGMENTATIONS, BASELINE_NAMES, BENCHMARK_DATASETS, RESIZER_NAMES
from bench.run import reproducible

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def _config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML config file (a run's config.yaml works too)")
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                        help="override one field, e.g. --set generator.skip_connections=false; a list as a,b or "
                        "[a,b] (repeatable)")


def _load(args: argparse.Namespace, base: str | Path | None = None) -> RunConfig:
    return load_config(args.config or base, args.overrides)


def demo_config_path() -> Path:
    """The embedded default configuration used by ``colorbench demo``."""
    return Path(str(resources.files("bench") / "configs" / "demo.yaml"))


def cmd_train(args: argparse.Namespace) -> int:
    return _train_until_signal(_load(args), _out_folder(args.out))[1]


def _train_until_signal(config: RunConfig, out: Path) -> tuple[dict | None, int]:
    """Train; SIGINT/SIGTERM save the current step and stop (exit 130/143) instead of killing the run."""
    from bench.training.signals import StopOnSignal, StoppedAtOnce
    from bench.training.train import train
    with StopOnSignal() as stop:
        try:
            summary = train(config, out, stop_requested=stop.requested)
        except StoppedAtOnce as stopped:
            print("colorbench: stopped at once; rerun the same command to continue from the last checkpoint",
                  file=sys.stderr)
            return None, 128 + stopped.signum
    _print_summary(summary)
    return summary, stop.exit_code if summary["state"] != "done" else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from bench.data.fingerprint import data_id
    from bench.run.identity import run_id
    config = load_config(args.config or demo_config_path(), args.overrides)
    run = run_id(config, data_id(config, fetch=True))
    out = _out_folder(args.out) / run
    print(f"colorbench demo: run {run} -> {out}", file=sys.stderr)
    summary, code = _train_until_signal(config, out)
    if summary is not None and summary["state"] == "done":
        from bench.report.build import folder_report
        print(f"  report         {folder_report(Path(args.out), Path(args.out) / 'report')}")
    return code


def _print_summary(summary: dict) -> None:
    run_dir = Path(summary["run_dir"])
    if summary["state"] != "done":
        print(f"stopped at step {summary['step']} of {summary['total_steps']}; rerun the same command to continue "
              f"({run_dir / 'checkpoint.pt'})", file=sys.stderr)
        return
    metrics = summary["metrics"]
    print(f"run {summary['run_id']} done after {summary['step']} steps")
    for name in ("psnr_rgb8", "ssim_rgb8", "l1_rgb8", "mse_ab_rgb8"):
        if name in metrics:
            print(f"  {name:12s} {metrics[name]:.4f}")
    from bench.evaluation.baselines import grey_input_values
    grey = grey_input_values(run_dir)  # the trivial baseline on the same test images (bench/evaluation/baselines.py)
    for name in ("psnr_rgb8", "ssim_rgb8"):
        if isinstance(grey.get(name), (int, float)):
            print(f"  grey input {name:12s} {grey[name]:.4f}  (copying the grey input, a = b = 0)")
    samples = sorted((run_dir / "samples").glob("*.png"))
    print(f"  run directory  {run_dir}")
    print(f"  metrics        {run_dir / 'metrics.jsonl'}")
    if samples:
        print(f"  samples        {samples[-1]}")


def cmd_params(args: argparse.Namespace) -> int:
    import torch

    from bench.models import build_networks, count_parameters
    from bench.models.memory import check_parameters_fit
    config = _load(args)
    check_parameters_fit(config)  # before allocating: weights beyond the memory are one line, not an allocator error
    generator, discriminator = build_networks(config)
    rows = [("G", generator), ("D", discriminator)]
    print(f"{'network':8s} {'parameters':>14s} {'MB (fp32)':>10s} {'checkpoint MB':>14s}")
    total_params = total_mb = 0
    for name, model in rows:
        if model is None:
            print(f"{name:8s} {'(none)':>14s}")
            continue
        n = count_parameters(model)
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        print(f"{name:8s} {n:>14,d} {n * 4 / 1e6:>10.1f} {buffer.tell() / 1e6:>14.1f}")
        total_params += n
        total_mb += buffer.tell() / 1e6
    print(f"{'total':8s} {total_params:>14,d} {total_params * 4 / 1e6:>10.1f} {total_mb:>14.1f}")
    return 0


def cmd_perf(args: argparse.Namespace) -> int:
    from bench.perf.measure import measure
    measure(_load(args), steps=args.steps, warmup=args.warmup, baseline=args.baseline, workers=args.workers)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from bench.data.fingerprint import DataUnavailable, data_id
    from bench.run.identity import config_hash, config_id, run_id
    config = _load(args)
    try:
        data = data_id(config)
        print(f"# config id {config_id(config, data)}, run id {run_id(config, data)}")
    except DataUnavailable as err:
        print(f"# config hash {config_hash(config)}; data id unknown: {err}")
    print(dump_config(config), end="")
    return 0


def cmd_data_prepare(args: argparse.Namespace) -> int:
    from bench.config import DataConfig
    from bench.data import prepare_data
    from bench.data.summary import summary
    cfg = DataConfig(dataset="folder" if args.name == "imagefolder" else args.name, root=args.root,
                     download=args.download, image_size=args.size, n_train=args.n_train, n_test=args.n_test,
                     split_seed=args.seed, augmentation=args.augmentation, cache_dir=args.cache_dir)
    print(summary(prepare_data(cfg), cfg))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from bench.evaluation.score_run import score_run
    metrics = [name.strip() for name in args.metrics.split(",") if name.strip()] if args.metrics else None
    records = score_run(args.run_dir, dataset=args.dataset, metrics=metrics, overrides=args.overrides)
    if records:
        first = records[0]
        print(f"step {first['step']}, {first['dataset']['source']} {first['split']} split: "
              f"{first['n_images']} images at {first['resolution'][0]}x{first['resolution'][1]}")
    for record in records:
        shown = f"{record['value']:.4f}" if record["value"] is not None else f"unavailable: {record['unavailable']}"
        print(f"  {record['metric']:18s} {shown}")
    print(f"  appended to {Path(args.run_dir) / 'metrics.jsonl'}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from bench.evaluation.score_predictions import default_out, protocol_config, score_baseline, score_predictions
    if (args.predictions is None) == (args.baseline is None):
        raise ConfigError("score: give a folder of predictions or --baseline KEY (one of the two)")
    if args.baseline is not None:
        given = [flag for flag, value in (("--name", args.name), ("--allow-missing", args.allow_missing),
                                          ("--resize", args.resize),
                                          ("--keep-input-luminance", args.keep_input_luminance)) if value]
        if given:
            raise ConfigError(f"score --baseline: {', '.join(given)} apply to predictions only")
    metrics = [name.strip() for name in args.metrics.split(",") if name.strip()] if args.metrics else None
    config = protocol_config(args.config, args.dataset, metrics, args.overrides)
    name = args.baseline or args.name or Path(args.predictions).resolve().name
    out = _out_folder(args.out) if args.out else default_out(args.results, name, args.baseline is not None)
    if args.baseline is not None:
        scored = score_baseline(args.baseline, config, out, split=args.split)
    else:
        scored = score_predictions(args.predictions, config, out, name=args.name, split=args.split,
                                   allow_missing=args.allow_missing, resize=args.resize,
                                   keep_input_luminance=args.keep_input_luminance)
    protocol, found = scored.method["protocol"], scored.method.get("predictions")
    print(f"{scored.method['name']}: {protocol['dataset']['source']} {protocol['split']} split, "
          f"{protocol['n_images']} images at {protocol['resolution'][0]}x{protocol['resolution'][1]}")
    if found and (found["missing"] or found["extra"]):
        print(f"  --allow-missing: scored {found['scored']}; {len(found['missing'])} test items without a prediction, "
              f"{len(found['extra'])} files of no test item left out")
    for record in scored.records:
        shown = f"{record['value']:.4f}" if record["value"] is not None else f"unavailable: {record['unavailable']}"
        print(f"  {record['metric']:18s} {shown}")
    print(f"  method directory {scored.folder}")
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from bench.report.leaderboard import leaderboard_command
    metrics = [name.strip() for name in args.metrics.split(",") if name.strip()] if args.metrics else None
    return leaderboard_command(args.results, _out_folder(args.out), dataset=args.dataset, split=args.split,
                               metrics=metrics, rank_by=args.rank_by)


def cmd_assets(args: argparse.Namespace) -> int:
    from bench.data import assets
    if args.action == "status":
        mismatched = 0
        for asset, path, present in assets.status(args.directory):
            state = "present" if present else "absent"
            if present and args.verify:
                try:
                    assets.verify(path, asset)
                    state = "present, sha256 ok"
                except assets.AssetError:
                    state, mismatched = "present, sha256 MISMATCH", mismatched + 1
            print(f"{asset.name:14s} {state:8s} {path}  (for {asset.used_by})")
        return EXIT_FAILED if mismatched else 0
    unknown = [name for name in args.names if name not in assets.ASSETS]
    if unknown:
        raise ConfigError(f"assets fetch: unknown {', '.join(unknown)}; allowed: {', '.join(assets.ASSETS)}")
    failed = 0
    for name in args.names or list(assets.ASSETS):
        asset = assets.ASSETS[name]
        url = f"{args.base_url.rstrip('/')}/{asset.filename}" if args.base_url else None
        try:
            print(f"{name}: {assets.fetch(asset, args.directory, url)}")
        except assets.AssetError as err:
            print(f"colorbench: error: {err}", file=sys.stderr)
            failed += 1
    return EXIT_FAILED if failed else 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from bench.sweep.commands import sweep_command
    from bench.sweep.submit import SubmissionError, SweepOptions
    options = SweepOptions(executor=args.executor, dry_run=args.dry_run, max_parallel=args.max_parallel,
                           results=args.results, overrides=args.overrides, profile=args.profile,
                           rerun_failed=args.rerun_failed, max_num_timeout=args.max_num_timeout, wait=args.wait,
                           skip_missing_data=args.skip_missing_data, runs_per_task=args.runs_per_task,
                           reuse=not args.no_reuse)
    try:
        return sweep_command(args.file, options)
    except SubmissionError as err:
        print(f"colorbench: error: {err}", file=sys.stderr)
        return EXIT_FAILED


def cmd_status(args: argparse.Namespace) -> int:
    from bench.sweep.commands import status_command
    return status_command(args.target, args.results, args.overrides, args.profile)


def cmd_aggregate(args: argparse.Namespace) -> int:
    from bench.report.build import aggregate_command
    return aggregate_command(args.results_dir, _out_folder(args.out) if args.out else None)


def cmd_reproduce(args: argparse.Namespace) -> int:
    from bench.reproduce.command import default_studies_folder, list_command, reproduce_command
    from bench.sweep.submit import SubmissionError, SweepOptions
    folder = Path(args.studies) if args.studies else default_studies_folder()
    if args.list:
        return list_command(folder)
    if args.overview:
        from bench.reproduce.command import study_files
        from bench.reproduce.overview import write_overview
        from bench.sweep.profiles import profile_description, read_presets
        setting = profile_description(read_presets(folder), args.profile)
        print(write_overview(_out_folder(args.out), [path.stem for path in study_files(folder)], args.profile,
                             setting))
        return 0
    if args.name is None:
        raise ConfigError("reproduce: name a study (colorbench reproduce --list shows them)")
    if args.from_aggregate:
        from bench.reproduce.command import render_from_aggregate
        from bench.reproduce.output import MARKDOWN_FILE
        study_out = render_from_aggregate(args.name, args.profile, _out_folder(args.out), folder, args.resamples)
        print((study_out / MARKDOWN_FILE).read_text())
        return 0
    try:
        options = SweepOptions(executor=args.executor, dry_run=args.dry_run, max_parallel=args.max_parallel,
                               results=args.results, overrides=args.overrides, profile=args.profile,
                               reuse=not args.no_reuse)
        return reproduce_command(args.name, options, _out_folder(args.out), folder, args.resamples)
    except SubmissionError as err:
        print(f"colorbench: error: {err}", file=sys.stderr)
        return EXIT_FAILED


def cmd_report(args: argparse.Namespace) -> int:
    from bench.report.build import report_command
    from bench.reproduce.output import write_reproduction
    return report_command(args.ablations, args.results, _out_folder(args.out), args.select_by, args.resamples,
                          args.profile, study_section=write_reproduction)


def _reuse_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-reuse", action="store_true", help="train every missing run here, even one that "
                        "another ablation's folder under --results has finished (default: copy that one in: the "
                        "same run id is the same config, data and seed)")


def _profile_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="full", metavar="NAME",
                        help="scale of a study file: full (its top level, the default), or a profile of the file or "
                        "of profiles.yaml beside it, e.g. cpu or tiny; results go to <results>/<name>-<profile>/")


def _int_at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        if not text.strip().isdigit() or int(text) < minimum:
            raise argparse.ArgumentTypeError(f"got {text!r}; allowed: an integer >= {minimum}")
        return int(text)
    return parse


def _fields_epilog() -> str:
    return "config fields (dotted keys for --set):\n" + "\n".join(
        f"  {key} = {default!r}" for key, default, _ in describe_fields())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="colorbench", description="Benchmark and ablation suite for "
                                     "pix2pix-style colourisation GANs.")
    parser.add_argument("--reproducible", action="store_true",
                        help="pin the CPU math code paths (AVX2 kernels in torch and MKL, convolutions without "
                        "oneDNN, 2 threads) so a CPU run's digits do not follow the CPU's instruction set or caches, "
                        "at about 1.6x the time; also COLORBENCH_REPRODUCIBLE=1 (see docs/reproducibility.md)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    formatter = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("train", help="train one run into a directory (continues it if interrupted)",
                       epilog=_fields_epilog(), formatter_class=formatter)
    _config_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="run directory")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("demo", help="the embedded default: a short CPU run on the built-in samples photos",
                       description="Train the embedded demo config (64x64 pix2pix on the photos bundled with "
                       "scikit-image and matplotlib) and print PSNR/SSIM and where the outputs are.")
    _config_args(p)
    p.add_argument("--out", default="results/demo", metavar="DIR",
                   help="parent folder of the run directory (default: results/demo)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("params", help="parameter counts and checkpoint sizes of G and D",
                       epilog=_fields_epilog(), formatter_class=formatter)
    _config_args(p)
    p.set_defaults(func=cmd_params)

    p = sub.add_parser("perf", help="time training steps (data, G forward, D step, G step, optimizer), FLOP/s",
                       description="Median time per training step of the given config on its device, data "
                       "loading from the prepared cache included; --baseline also times the reference-style "
                       "step (per-sample PIL decode, stock layers, fp32, default Adam), alternating in rounds with a "
                       "child process that keeps the C allocator's default settings.")
    _config_args(p)
    p.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--baseline", action="store_true", help="also time the reference-style baseline and print the ratio")
    p.add_argument("--workers", type=int, default=0,
                   help="DataLoader workers of the baseline (default 0: loading counted in its own steps; "
                   "workers would keep decoding while the colorbench steps are timed)")
    p.set_defaults(func=cmd_perf)

    p = sub.add_parser("config", help="print the resolved config and its id",
                       epilog=_fields_epilog(), formatter_class=formatter)
    _config_args(p)
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("data", help="prepare a dataset once: decoded, filtered, cached, with a manifest")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser(
        "prepare", help="decode a dataset into the uint8 cache that training reads, listing every skipped file",
        description="Decode, filter (unreadable, greyscale, too small, duplicate by hash) and resize a dataset into "
        "the cache (<cache>/images/<key>.pt, manifest in <cache>/manifests/<key>.json; <cache> is --cache-dir, "
        "$COLORBENCH_CACHE or ~/.cache/colorbench).  The same arguments reuse the cache; a run whose data.* fields "
        "match (printed at the end) reads it without decoding.")
    a.add_argument("name", choices=(*BENCHMARK_DATASETS, "imagefolder", "folder", "samples"),
                   metavar="NAME", help="coco2017, country211, facades, imagefolder (= the config's folder), samples")
    a.add_argument("--root", metavar="DIR", help="the dataset's folder (imagefolder: any image tree; coco2017: holds "
                   "train2017/ and val2017/; country211: holds country211/; facades: holds train/ and test/); "
                   "default for the benchmark datasets: <cache>/datasets/NAME")
    a.add_argument("--download", action="store_true", help="download (resumably, checksum-verified) and unpack the "
                   "dataset into --root when it is absent there")
    a.add_argument("--size", type=_int_at_least(1), default=DataConfig().image_size, metavar="S",
                   help=f"side of the square images (data.image_size; default {DataConfig().image_size})")
    a.add_argument("--n-train", type=_int_at_least(1), metavar="N",
                   help="usable training images to keep, a seeded random sample (default: all)")
    a.add_argument("--n-test", type=_int_at_least(1), metavar="M", help="usable test images to keep (default: all; "
                   "imagefolder: data.test_fraction of the files)")
    a.add_argument("--seed", type=_int_at_least(0), default=0, metavar="K",
                   help="seed of the split and the selection (data.split_seed; default 0)")
    a.add_argument("--augmentation", choices=AUGMENTATIONS, default=DataConfig().augmentation,
                   help="the training augmentation; jitter stores training images larger, for the random crop "
                   f"(default {DataConfig().augmentation})")
    a.add_argument("--cache-dir", metavar="DIR", help="cache folder (data.cache_dir)")
    a.set_defaults(func=cmd_data_prepare)

    p = sub.add_parser("eval", help="score a run's checkpoint again (any dataset, any metrics) into its metrics.jsonl",
                       description="Rebuild the generator of RUN_DIR from its config.yaml and checkpoint.pt, "
                       "colourise the test split of its dataset (or of --dataset) as its evaluations did, and "
                       "append one record per metric to RUN_DIR/metrics.jsonl with \"source\": \"eval\".")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory (holds config.yaml and checkpoint.pt)")
    p.add_argument("--dataset", metavar="NAME|DIR", help="a data.dataset name or a folder of images, scored on "
                   "its test split as the run's data settings split it (default: the run's own dataset)")
    p.add_argument("--metrics", metavar="NAMES", help="comma-separated metric names (default: the run's eval.metrics)")
    p.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                   help="override a data.*, eval.* or device field, e.g. --set eval.weights_dir=/models (repeatable)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("score", help="score any method's outputs (a folder of images) or a trivial baseline "
                       "with the benchmark's protocol, into a method directory",
                       description="Match each image in PREDICTIONS to a test item by its id (its path without the "
                       "extension; a flat folder may use the id's last part), check it (8-bit colour, the evaluation "
                       "size), score it with the runs' metric functions and write a method directory (method.yaml, "
                       "metrics.jsonl, DONE) that aggregate, report, leaderboard and reproduce read like a run.  "
                       "--baseline scores a trivial baseline instead.  The protocol is --config (a run's config.yaml "
                       "works) with --dataset and --set.  Bad input: one line, exit 2, nothing written "
                       "(docs/scoring.md).")
    p.add_argument("predictions", nargs="?", metavar="PREDICTIONS", help="folder of predicted images")
    p.add_argument("--baseline", metavar="KEY", choices=BASELINE_NAMES,
                   help="score a trivial baseline instead: grey_input, mean_colour (colourisation), label_map, "
                   "mean_photo (labels -> photo)")
    p.add_argument("--dataset", metavar="NAME|DIR", help="a data.dataset name or a folder of images (default: the "
                   "config's dataset)")
    _config_args(p)
    p.add_argument("--split", default="test", choices=("test", "train"), help="split scored (default: test)")
    p.add_argument("--metrics", metavar="NAMES", help="comma-separated metric names (default: eval.metrics, all)")
    p.add_argument("--name", metavar="METHOD", help="the method's name (default: the predictions folder's name)")
    p.add_argument("--out", metavar="DIR", help="method directory to write (default: RESULTS/methods/<name>, "
                   "RESULTS/baselines/<key>); an older one there is replaced")
    p.add_argument("--results", default="results", metavar="DIR", help="results folder of the default --out "
                   "(default: results)")
    p.add_argument("--allow-missing", action="store_true", help="score the test items that have a prediction and "
                   "say how many are missing or extra, instead of refusing")
    p.add_argument("--resize", choices=RESIZER_NAMES, help="resize predictions that are not "
                   "the evaluation size with this Pillow filter (recorded in the fingerprint); default: refuse them")
    p.add_argument("--keep-input-luminance", action="store_true", help="put each test photo's CIELAB L (the grey "
                   "input's) back into its prediction before scoring, as many papers evaluate (recorded)")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("assets", help="pretrained weight files: status, and download on a machine with internet",
                       description="The weight files of FID/KID (pytorch-fid's Inception), LPIPS (torchvision's "
                       "AlexNet) and generator.pretrained_encoder (torchvision's ResNet-18).  Nothing else ever "
                       "downloads them: without them those metrics are recorded as unavailable.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser("fetch", help="download the weight files into the searched folder, checking their sha256")
    a.add_argument("names", nargs="*", metavar="NAME", help="assets to fetch (default: all)")
    a.add_argument("--dest", "--dir", dest="directory", metavar="DIR",
                   help="folder to put them in (default: torch's hub cache <TORCH_HOME>/hub/checkpoints)")
    a.add_argument("--base-url", metavar="URL", help="fetch each file from URL/<file name> (a mirror) "
                   "instead of its own address")
    a.set_defaults(func=cmd_assets)
    a = actions.add_parser("status", help="list each weight file as present or absent, with its path")
    a.add_argument("--dir", "--dest", dest="directory", metavar="DIR",
                   help="folder to look in (default: torch's hub cache <TORCH_HOME>/hub/checkpoints)")
    a.add_argument("--verify", action="store_true", help="also check the sha256 of each file present")
    a.set_defaults(func=cmd_assets)

    p = sub.add_parser("sweep", help="run an ablation file's grid (skips finished runs); SLURM job array or local",
                       description="Expand an ablation file (ablations/<name>.yaml) into runs <config-id>-s<seed>, "
                       "skip those whose directory holds DONE (and those pending or running), and submit the rest "
                       "through submitit into <results>/<name>/.  Exit 1 when a run has failed, 2 on a bad file.")
    p.add_argument("file", metavar="FILE", help="ablation file")
    p.add_argument("--executor", choices=("auto", "slurm", "local", "debug"), default="auto",
                   help="slurm: one job array; local: on this machine, waits; debug: in this process, one by one; "
                   "auto (default): slurm where srun is found, else local")
    p.add_argument("--dry-run", action="store_true", help="print the runs, their state and the job parameters; "
                   "submit nothing")
    p.add_argument("--max-parallel", type=_int_at_least(1), metavar="N",
                   help="runs at a time (local: default one per CPU core, 1 with a GPU; "
                   "slurm: the array's parallelism, default slurm.array_parallelism)")
    p.add_argument("--results", default="results", metavar="DIR", help="results folder (default: results)")
    p.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                   help="override a field of the ablation's base config, e.g. --set optim.epochs=2 (repeatable)")
    p.add_argument("--rerun-failed", action="store_true", help="submit failed and diverged runs again; "
                   "they continue from their last checkpoint")
    p.add_argument("--max-num-timeout", type=_int_at_least(0), metavar="N",
                   help="time-outs/preemptions a job is requeued after before it fails "
                   "(default: slurm.max_num_timeout, else 3)")
    p.add_argument("--wait", action="store_true", help="slurm: stay until every submitted run has ended")
    p.add_argument("--skip-missing-data", action="store_true", help="submit the runs whose data is here and skip "
                   "those whose photos or weights file are not (default: refuse the sweep)")
    p.add_argument("--runs-per-task", type=_int_at_least(1), metavar="K",
                   help="pack K runs into one job (SLURM array task, or local job), each in its own process, sharing "
                   "its GPU and CPUs; each keeps its own directory, resume and status (default: slurm.runs_per_task, "
                   "else 1)")
    _reuse_arg(p)
    _profile_arg(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("status", help="one table of an ablation's runs: state, step, failures with their reason",
                       description="Show every run of an ablation (file) or results folder (DIR), or of every "
                       "ablation under --results: run id, seed, state (done / running / pending / failed / diverged "
                       "/ missing), step of total, differing keys, and for failures the reason and the last lines "
                       "of the job's stderr.  Exit 1 when a run has failed or diverged.")
    p.add_argument("target", nargs="?", metavar="ABLATION|DIR", help="ablation file or its results folder "
                   "(default: every ablation under --results)")
    p.add_argument("--results", default="results", metavar="DIR", help="results folder of ablation files "
                   "(default: results)")
    p.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                   help="the --set overrides the ablation file was swept with")
    _profile_arg(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("aggregate", help="every run under a results folder as one table: parquet and CSV",
                       description="Collect every run directory under RESULTS_DIR into aggregate.parquet/.csv (one "
                       "row per run x metric of its latest evaluation: ablation, run id, seed, state, flattened "
                       "config.* fields, value; parquet also keeps the per-image values) and curves.parquet/.csv "
                       "(losses and metrics per step).  Failed, unfinished and older runs appear with their state; "
                       "files that cannot be read are named in warnings.")
    p.add_argument("results_dir", nargs="?", default="results", metavar="RESULTS_DIR",
                   help="results folder (default: results)")
    p.add_argument("--out", metavar="DIR", help="folder to write the tables to (default: RESULTS_DIR)")
    p.set_defaults(func=cmd_aggregate)

    p = sub.add_parser("report", help="per ablation: tables (md, csv, tex) and figures with uncertainty over seeds",
                       description="Write OUT/<ablation>/ (table.md, table.csv, table.tex, metrics/curves/qualitative/"
                       "histograms PNGs) for each ablation, and OUT/README.md indexing them with a one-line "
                       "finding.  Numbers are means over seeds with std and 95%% t-intervals; each variant is "
                       "compared with the baseline by a paired bootstrap over the same test images.  Running it "
                       "again on the same results gives identical files.")
    p.add_argument("ablations", nargs="*", metavar="ABLATION", help="ablation file, results folder, or name of a "
                   "folder under --results (default: every ablation and run folder under --results)")
    p.add_argument("--results", default="results", metavar="DIR", help="results folder (default: results)")
    p.add_argument("--out", default="reports", metavar="DIR", help="reports folder (default: reports)")
    p.add_argument("--select-by", metavar="METRIC", help="metric that picks nuisance settings and names the best "
                   "variant (default: psnr_rgb8)")
    p.add_argument("--resamples", type=_int_at_least(1), metavar="N",
                   help="bootstrap resamples of each comparison (default: 10000)")
    _profile_arg(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("leaderboard", help="every method, run group (seeds pooled) and baseline ranked, one table "
                       "per protocol: md, csv, tex and a figure",
                       description="Collect RESULTS (runs and method directories) and write OUT/leaderboard.md, "
                       ".csv, .tex and .png: per protocol (dataset, split, resolution, images, test list, resize "
                       "rule, lossy or resized outputs, re-inserted luminance) one table of every run group (mean "
                       "and 95%% t-interval over seeds), method and trivial baseline on every metric, with the rank "
                       "and whether neighbours' intervals overlap.  Rows of different protocols are never ranked "
                       "together; the fields that differ are named.")
    p.add_argument("--results", default="results", metavar="DIR", help="results folder (default: results)")
    p.add_argument("--out", default="reports/leaderboard", metavar="DIR",
                   help="folder to write to (default: reports/leaderboard)")
    p.add_argument("--dataset", metavar="NAME", help="only this dataset (e.g. samples, folder, coco2017)")
    p.add_argument("--split", default="test", help="split ranked (default: test)")
    p.add_argument("--metrics", metavar="NAMES", help="comma-separated metric names (default: all recorded)")
    p.add_argument("--rank-by", metavar="METRIC", help="metric that orders each table's rows (default: psnr_rgb8)")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("reproduce", help="run a study (a published table, a source report, an axis) and render it "
                       "beside the published numbers",
                       description="Sweep the study NAME (ablations/NAME.yaml) at --profile, skipping finished runs, "
                       "then write OUT/<study>[-<profile>]/: the ablation report (table.md and figures) and "
                       "reproduction.md / reproduction.json: the source's rows with its published numbers beside "
                       "ours (mean and 95%% interval over seeds), each published claim with a verdict (supported / "
                       "contradicted / inconclusive / not testable here, and why) and the rank agreement (Kendall's tau with a "
                       "bootstrap interval over seeds).  Exit 1 when a run has failed, 2 on a bad file.")
    p.add_argument("name", nargs="?", metavar="NAME", help="study name (see --list) or study file")
    p.add_argument("--list", action="store_true", help="list the studies with their runs per profile")
    p.add_argument("--from-aggregate", action="store_true",
                   help="re-derive the study's reproduction.md/.json from OUT/<study>-<profile>/aggregate.parquet and "
                   "the study file alone (no runs, no sweep)")
    p.add_argument("--overview", action="store_true", help="write OUT/REPRODUCTION.md from the studies rendered in "
                   "OUT at --profile (their committed reproduction.json/.md and compute.json): the headline count "
                   "of claims per verdict and every study's table; runs nothing")
    _profile_arg(p)
    p.add_argument("--executor", choices=("auto", "slurm", "local", "debug"), default="auto",
                   help="as for sweep: slurm (job array), local (this machine, waits), debug (in this process); "
                   "auto (default): slurm where srun is found, else local")
    p.add_argument("--max-parallel", type=_int_at_least(1), metavar="N", help="runs at a time (as for sweep)")
    p.add_argument("--dry-run", action="store_true", help="print the runs and their state; submit nothing")
    p.add_argument("--results", default="results", metavar="DIR", help="results folder (default: results)")
    p.add_argument("--out", default="reports", metavar="DIR", help="reports folder (default: reports)")
    p.add_argument("--studies", metavar="DIR", help="folder of study files (default: the repository's ablations/)")
    p.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                   help="override a field of the study's base config, e.g. --set eval.weights_dir=DIR (repeatable; "
                   "changes run ids where the field is result-affecting)")
    p.add_argument("--resamples", type=_int_at_least(1), metavar="N",
                   help="bootstrap resamples of each comparison (default: 10000)")
    _reuse_arg(p)
    p.set_defaults(func=cmd_reproduce)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``colorbench`` and ``python -m bench``; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.reproducible or reproducible.requested():  # before any command imports torch
            reproducible.apply(reexec=argv is None)
        return args.func(args)
    except KeyboardInterrupt:  # Ctrl-C outside training (train and demo save the step and stop by themselves)
        print("colorbench: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if isinstance(err, (ConfigError, reproducible.ReproducibleModeError)) or _raised(
                err, "bench.data.errors", "DatasetError"):
            print(f"colorbench: error: {err}", file=sys.stderr)
            cause = _file_system_error(err)  # e.g. the dataset cache on a full disk: the machine's trouble, exit 1
            return EXIT_FAILED if cause is not None and cause.errno in _environment_errnos() else EXIT_BAD_INPUT
        if _raised(err, "bench.training.train", "TrainingFailed"):
            print(f"colorbench: run failed: {err}", file=sys.stderr)
            return EXIT_FAILED
        os_error = _file_system_error(err)
        if os_error is not None:  # a full disk, a read-only folder, a name too long, a file where a folder goes ...
            print(f"colorbench: error: {_describe_os_error(os_error)}", file=sys.stderr)
            return EXIT_FAILED if os_error.errno in _environment_errnos() else EXIT_BAD_INPUT
        raise


def _out_folder(path: str | Path) -> Path:
    """``--out``: a folder, made if need be; never an existing file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {path}: exists and is not a directory")
    return path


def _file_errnos() -> set[int]:
    import errno
    return {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG, errno.ENOTDIR,
            errno.EISDIR, errno.EEXIST, errno.ENOENT, errno.ELOOP, errno.EIO, errno.EFBIG, errno.EMFILE}


def _environment_errnos() -> set[int]:
    """The machine's trouble rather than the command's input: exit 1 (failed), not 2 (bad input)."""
    import errno
    return {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EMFILE}


def _file_system_error(err: BaseException) -> OSError | None:
    """The file-system ``OSError`` behind ``err``: itself, or one in its chain (torch.save raises a RuntimeError
    whose context is the ENOSPC of the write)."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _file_errnos():
            return err
        err = err.__cause__ or err.__context__
    return None


def _describe_os_error(err: OSError) -> str:
    """``<path>: <what the OS says>`` (both paths of a rename; the bare reason when no path is known)."""
    reason = err.strerror or str(err)
    if err.filename is None:
        return reason
    if getattr(err, "filename2", None) is not None:
        return f"{err.filename} -> {err.filename2}: {reason}"
    return f"{err.filename}: {reason}"


def _raised(err: Exception, module: str, name: str) -> bool:
    """Whether ``err`` is ``module.name``, without importing ``module`` (and torch with it) for every command.

    An exception class of a module that was never imported cannot have been raised.
    """
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(err, getattr(loaded, name))


if __name__ == "__main__":
    sys.exit(main())
