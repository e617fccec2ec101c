"""The ``colorbench`` command line."""
from __future__ import annotations

import argparse
import io
import sys
from importlib import resources
from pathlib import Path

import torch

from .config import ConfigError, RunConfig, config_id, describe_fields, dump_config, load_config, run_id

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def _config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML config file (a run's config.yaml works too)")
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                        help="override one field, e.g. --set generator.skip_connections=false (repeatable)")


def _load(args: argparse.Namespace, base: str | Path | None = None) -> RunConfig:
    return load_config(args.config or base, args.overrides)


def demo_config_path() -> Path:
    """The embedded default configuration used by ``colorbench demo``."""
    return Path(str(resources.files("bench") / "configs" / "demo.yaml"))


def cmd_train(args: argparse.Namespace) -> int:
    from .train import train
    config = _load(args)
    summary = train(config, args.out)
    _print_summary(summary)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .train import train
    config = load_config(args.config or demo_config_path(), args.overrides)
    out = Path(args.out) / run_id(config)
    print(f"colorbench demo: run {run_id(config)} -> {out}", file=sys.stderr)
    summary = train(config, out)
    _print_summary(summary)
    return 0


def _print_summary(summary: dict) -> None:
    run_dir = Path(summary["run_dir"])
    if summary["state"] != "done":
        print(f"stopped at step {summary['step']}/{summary['total_steps']}; run again to continue: {run_dir}")
        return
    metrics = summary["metrics"]
    print(f"run {summary['run_id']} done after {summary['step']} steps")
    for name in ("psnr_rgb8", "ssim_rgb8", "mse_ab_rgb8"):
        if name in metrics:
            print(f"  {name:12s} {metrics[name]:.4f}")
    samples = sorted((run_dir / "samples").glob("*.png"))
    print(f"  run directory  {run_dir}")
    print(f"  metrics        {run_dir / 'metrics.jsonl'}")
    if samples:
        print(f"  samples        {samples[-1]}")


def cmd_params(args: argparse.Namespace) -> int:
    from .models import build_discriminator, build_generator, count_parameters
    config = _load(args)
    generator = build_generator(config.generator, config.in_channels, config.out_channels)
    d_in = config.in_channels + config.out_channels if config.discriminator.conditional else config.out_channels
    discriminator = build_discriminator(config.discriminator, d_in)
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


def cmd_config(args: argparse.Namespace) -> int:
    config = _load(args)
    print(f"# config id {config_id(config)}, run id {run_id(config)}")
    print(dump_config(config), end="")
    return 0


def _fields_epilog() -> str:
    return "config fields (dotted keys for --set):\n" + "\n".join(
        f"  {key} = {default!r}" for key, default, _ in describe_fields())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="colorbench", description="Benchmark and ablation suite for "
                                     "pix2pix-style colourisation GANs.")
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

    p = sub.add_parser("config", help="print the resolved config and its id",
                       epilog=_fields_epilog(), formatter_class=formatter)
    _config_args(p)
    p.set_defaults(func=cmd_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``colorbench`` and ``python -m bench``; returns the exit code."""
    from .data import DatasetError
    from .train import TrainingFailed
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, DatasetError) as err:
        print(f"colorbench: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TrainingFailed as err:
        print(f"colorbench: run failed: {err}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
