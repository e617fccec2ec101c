"""Evaluation of a generator on a test split: outputs as 8-bit RGB, metrics, sample grids."""
from __future__ import annotations

import copy
from pathlib import Path

import torch
import torchvision
from PIL import Image

from .colour import decode, encode, grey_rgb8
from .metrics import PROTOCOLS, compute_metrics
from .rundir import atomic_write


@torch.no_grad()
def colourise(generator: torch.nn.Module, images_rgb8: torch.Tensor, colour_space: str, device: torch.device,
              batch_size: int, precision: str = "fp32", train_mode: bool = False) -> torch.Tensor:
    """Generator outputs for the greyscale versions of ``images_rgb8``, as uint8 RGB on the CPU.

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


def metric_records(outputs_rgb8: torch.Tensor, targets_rgb8: torch.Tensor, image_ids: list[str], *, split: str,
                   step: int, epoch: int) -> list[dict]:
    """One metrics.jsonl record per metric: mean value, per-image values and the protocol."""
    height, width = targets_rgb8.shape[-2:]
    records = []
    for name, per_image in compute_metrics(outputs_rgb8, targets_rgb8).items():
        values = per_image.tolist()
        records.append({
            "split": split, "step": step, "epoch": epoch, "metric": name,
            "value": float(per_image.mean()), "n_images": len(values),
            "resolution": [int(height), int(width)], "protocol": PROTOCOLS[name],
            "image_ids": image_ids, "per_image": values,
        })
    return records


def save_sample_grid(path: Path, inputs_rgb8: torch.Tensor, outputs_rgb8: torch.Tensor) -> None:
    """PNG grid, one row per test image: grey input | output | ground truth."""
    grey = grey_rgb8(encode(inputs_rgb8, "lab")[0])
    rows = torch.stack([grey, outputs_rgb8, inputs_rgb8], dim=1).flatten(0, 1)
    grid = torchvision.utils.make_grid(rows, nrow=3, padding=2, pad_value=255)
    image = Image.fromarray(grid.permute(1, 2, 0).numpy())
    atomic_write(path, lambda handle: image.save(handle, format="PNG"), mode="wb")
