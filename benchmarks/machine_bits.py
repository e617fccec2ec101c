"""Which stages of the demo's training give machine-dependent bits: hashes to compare between CPUs.

    python benchmarks/machine_bits.py [--reproducible] [--steps N]
    python benchmarks/machine_bits.py --reproducible --qemu EPYC-Milan-v1   # also under QEMU's model of a Zen 3

Prints one line per stage of the demo config's training: the prepared photos and their
encoding, the initial weights, each generator layer's output in the first forward pass, the
losses of the first update, both networks after it and after ``--steps`` updates.  Run it on two machines and diff the output, or give
``--qemu CPU`` to run it a second time under ``qemu-x86_64 -cpu CPU`` (Debian: ``apt install
qemu-user``; the demo took 48 min there, 45 s here), which reports that CPU's CPUID (ISA, cache sizes)
to the libraries, and print both columns.  ``--reproducible`` runs with the variables of
``colorbench --reproducible`` and its oneDNN switch (``bench/run/reproducible.py``);
``--keep-onednn`` sets the same variables but leaves oneDNN on, to see what the switch is for.

Caveat: QEMU computes the approximate instructions (``rcpps``, ``rsqrtps``) exactly, where
hardware returns a 12-bit approximation, so a stage that uses them can differ under emulation
where two real CPUs agree (``torch.sqrt`` of a float tensor does, the demo's training does not).
A stage that differs between two real CPUs is the evidence that counts.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def _child(steps: int) -> None:
    """Print ``stage hash`` lines (this process's libraries and CPU), the photos prepared afresh."""
    with tempfile.TemporaryDirectory(prefix="machine-bits-cache-") as cache:
        os.environ["COLORBENCH_CACHE"] = cache
        _print_stages(steps)


def _print_stages(steps: int) -> None:
    import torch

    from bench.cli import demo_config_path
    from bench.config import load_config
    from bench.data import prepare_data
    from bench.data.colour import encode
    from bench.models import build_networks
    from bench.run import reproducible
    from bench.run.randomness import seed_all
    from bench.training.step import train_step
    from bench.training.train import build_optimizer, train, training_batch

    def digest(*tensors: torch.Tensor) -> str:
        h = hashlib.sha256()
        for t in tensors:
            h.update(t.detach().contiguous().numpy().tobytes())
        return h.hexdigest()[:12]

    reproducible.configure_torch()
    config = load_config(demo_config_path(), [])
    data = prepare_data(config.data)
    photos = data.network_images("train", config.data.task)
    batch = training_batch(photos, config, 0, 0, 0)
    inputs, targets = encode(batch, config.encoding)
    print("data/photos", digest(photos))
    print("data/encoded", digest(inputs, targets))
    seed_all(config.seed)
    generator, discriminator = build_networks(config)
    print("init/generator", digest(*generator.state_dict().values()))
    print("init/discriminator", digest(*discriminator.state_dict().values()))
    outputs = []
    hooks = [module.register_forward_hook(lambda m, i, o, name=name: outputs.append((name, digest(o))))
             for name, module in generator.named_modules() if not list(module.children())]
    generator.train()
    generator(inputs)
    for hook in hooks:
        hook.remove()
    for name, value in outputs:
        print(f"forward/generator.{name}", value)
    seed_all(config.seed)  # afresh: the forward pass above moved batch norm's running statistics
    generator, discriminator = build_networks(config)
    opt_g, opt_d = build_optimizer(generator, config), build_optimizer(discriminator, config)
    with tempfile.TemporaryDirectory() as run_dir:
        losses = train_step(batch, generator, discriminator, opt_g, opt_d, config, adversarial=True,
                            run_dir=Path(run_dir), step=0)
    print("step1/losses", hashlib.sha256(repr(sorted(losses.items())).encode()).hexdigest()[:12])
    print("step1/generator", digest(*generator.state_dict().values()))
    print("step1/discriminator", digest(*discriminator.state_dict().values()))
    with tempfile.TemporaryDirectory() as run_dir:
        train(config, run_dir, stop_after_step=steps)
        state = torch.load(os.path.join(run_dir, "checkpoint.pt"), weights_only=True)
    print(f"step{steps}/generator", digest(*state["generator"].values()))
    print(f"step{steps}/discriminator", digest(*state["discriminator"].values()))
    print("torch/cpu_capability", torch.backends.cpu.get_cpu_capability())
    print("torch/threads", torch.get_num_threads())
    print("torch/onednn_enabled", torch.backends.mkldnn.enabled)


def _run(prefix: list[str], steps: int, env: dict[str, str]) -> dict[str, str]:
    command = [*prefix, sys.executable, os.path.abspath(__file__), "--child", "--steps", str(steps)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="updates before the last hashes (default 3)")
    parser.add_argument("--reproducible", action="store_true", help="as colorbench --reproducible")
    parser.add_argument("--keep-onednn", action="store_true",
                        help="with --reproducible: its variables, but oneDNN left on")
    parser.add_argument("--qemu", metavar="CPU", help="also run under qemu-x86_64 -cpu CPU and compare")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.steps)
        return
    from bench.run import reproducible
    from bench.run.machine import cpu_info
    env = {k: v for k, v in os.environ.items() if k not in (reproducible.SWITCH, *reproducible.MATH_VARIABLES)}
    if args.reproducible:
        env = reproducible.pinned_environment(env)
        if args.keep_onednn:
            del env[reproducible.SWITCH]  # the variables stay; bench.run.reproducible.configure_torch does nothing
    mode = ("on" if not args.keep_onednn else "variables only, oneDNN on") if args.reproducible else "off"
    info = cpu_info()
    print(f"# {info['cpu_model']} ({'+'.join(info['cpu_isa'] or [])}), reproducible mode {mode}, {args.steps} steps")
    here = _run([], args.steps, env)
    there = _run(["qemu-x86_64", "-cpu", args.qemu], args.steps, env) if args.qemu else None
    differing = 0
    for stage, value in here.items():
        if there is None:
            print(f"{stage:48s} {value}")
            continue
        other = there.get(stage, "-")
        differing += other != value and not stage.startswith("torch/")
        print(f"{stage:48s} {value:14s} {other:14s} {'same' if other == value else 'DIFFERENT'}")
    if there is not None:
        print(f"# columns: this CPU, qemu -cpu {args.qemu}; {differing} stage(s) differ")


if __name__ == "__main__":
    main()
