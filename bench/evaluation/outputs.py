"""Evaluation of a generator on a test split: outputs as 8-bit RGB and sample grids (metrics: bench.evaluation.scoring)."""
from __future__ import annotations

import copy
from pathlib import Path

import torch
import torchvision
from PIL import Image

from bench.config import RunConfig
from bench.data.colour import decode, encode, input_rgb8
from bench.run.randomness import derived_seed
from bench.run.rundir import atomic_write

EVAL_BATCH_SIZE = 16


@torch.no_grad()
def colourise(generator: torch.nn.Module, images_rgb8: torch.Tensor, colour_space: str, device: torch.device,
              batch_size: int, precision: str = "fp32", train_mode: bool = False) -> torch.Tensor:
    """Generator outputs for the greyscale versions of ``images_rgb8``, as uint8 RGB on the CPU.

    With ``colour_space="paired"`` the images are (B, 6, H, W) pairs (see ``bench.data.colour.encode``)
    and the generator sees the paired input image instead.

    ``train_mode`` runs with dropout and batch statistics on, as pix2pix's test script does by
    default; it works on a copy so the model's running statistics are left untouched.
    """
    model = copy.deepcopy(generator).train() if train_mode else generator
    was_training = model.training
    model.train(train_mode)
    outputs = []
    for start in range(0, len(images_rgb8), batch_size):
        inputs, _ = encode(images_rgb8[start:start + batch_size].to(device), colour_space)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            predicted = model(inputs)
        outputs.append(decode(inputs, predicted.float(), colour_space).cpu())
    model.train(was_training)
    return torch.cat(outputs)


def save_sample_grid(path: Path, inputs_rgb8: torch.Tensor, outputs_rgb8: torch.Tensor,
                     colour_space: str = "lab") -> None:
    """PNG grid, one row per test image: grey input (paired: the input image) | output | ground truth."""
    shown = input_rgb8(inputs_rgb8, colour_space)
    rows = torch.stack([shown, outputs_rgb8, inputs_rgb8[:, :3]], dim=1).flatten(0, 1)
    grid = torchvision.utils.make_grid(rows, nrow=3, padding=2, pad_value=255)
    image = Image.fromarray(grid.permute(1, 2, 0).numpy())
    atomic_write(path, lambda handle: image.save(handle, format="PNG"), mode="wb")


def evaluation_outputs(generator, images, config: RunConfig, device, step: int) -> torch.Tensor:
    """The outputs an evaluation after ``step`` scores; ``colorbench eval`` regenerates them identically."""
    # Evaluation must not consume the training RNG (train-mode inference draws dropout masks).
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(derived_seed(config.seed, "eval", step))
        batch_size = config.data.batch_size if config.eval.train_mode_inference else EVAL_BATCH_SIZE
        return colourise(generator, images, config.encoding, device, batch_size, config.precision,
                         train_mode=config.eval.train_mode_inference)
