"""Run configuration: typed, frozen dataclasses with validation, YAML I/O and a stable id.

Every knob of a run lives here with its default next to its declaration.  Defaults are
those of the pix2pix paper (Isola et al. 2017) and its reference implementation.
Fields marked ``identity=False`` (seed, paths, device, logging cadence) do not change
what a run computes, so they are left out of the config hash; the data behind the paths
enters run identity through its fingerprint instead (``bench.run.identity``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

# light modules only: every submitted job and every CLI call imports this one (no torch, torchmetrics, ...)
from bench.config import yamlio
from bench.config.colour_spaces import AB_COLOUR_SPACES
from bench.config.names import METRIC_NAMES
from bench.config.patch_geometry import min_patch_image_size


class ConfigError(ValueError):
    """A configuration value, key or file is invalid; the message names it."""


def _meta(identity: bool = True, doc: str = "", hashed_at_default: bool = True) -> dict:
    return {"identity": identity, "doc": doc, "hashed_at_default": hashed_at_default}


def knob(default: Any, doc: str, identity: bool = True, hashed_at_default: bool = True) -> Any:
    """A config field with its documentation and whether it is part of the config id.

    ``hashed_at_default=False`` (an identity field added after runs existed): the config hash
    leaves the field out while it has its default value, so every earlier run keeps its id,
    and includes it once it is set to anything else.
    """
    return field(default=default, metadata=_meta(identity, doc, hashed_at_default))


LEAKY_SLOPE = 0.2  # pix2pix's LeakyReLU negative slope, in the U-Net's encoder and in the PatchGAN
SEED_LIMIT = 2 ** 63  # seeds are 0 <= seed < 2**63: torch.manual_seed takes 64 bits, numpy and run ids no sign
INT_LIMIT = 2 ** 63  # every integer knob fits a signed 64-bit integer, as torch and numpy need it
MAX_IMAGE_SIZE = 8192
MAX_BATCH_SIZE = 65536
MAX_CHANNELS = 1 << 20  # ngf, ndf: far beyond any GPU's memory (the memory estimate refuses sooner)


@dataclass(frozen=True)
class GeneratorConfig:
    arch: Literal["unet", "resnet18_unet", "classic_unet"] = knob(
        "unet", "generator architecture: unet = pix2pix's U-Net; resnet18_unet = U-Net on a ResNet-18 encoder; "
        "classic_unet = Ronneberger et al.'s U-Net (pairs of 3x3 conv-norm-ReLU, max-pooling, bilinear "
        "up-sampling; needs depth 1..6 and dropout false)")
    depth: int = knob(8, "unet: number of down-sampling blocks, 5..9 (7 = unet_128, 8 = unet_256); classic_unet: "
                      "number of max-pooling steps, 1..6 (4 = Ronneberger et al.); image_size must be divisible by 2**depth")
    ngf: int = knob(64, "unet, classic_unet: filters in the outermost layer (classic_unet: ngf*2**depth at the bottleneck)")
    norm: Literal["batch", "instance"] = knob("batch", "normalisation layer")
    dropout: bool = knob(True, "unet: dropout 0.5 in the innermost ngf*8 decoder blocks (3 for unet_256); "
                         "classic_unet has no dropout and needs false")
    skip_connections: bool = knob(True, "U-Net skips (unet, classic_unet); false gives the paper's encoder-decoder")
    output_bias: bool = knob(True, "unet: bias on the outermost up-convolution; false drops its out_channels "
                             "parameters (source report 002's count)")
    leaky_slope: float = knob(LEAKY_SLOPE, "unet: negative slope of the encoder's LeakyReLUs, 0 <= value < 1 "
                              "(pix2pix: 0.2; source report 002: 0.01)")
    pretrained_encoder: bool = knob(False, "resnet18_unet: load ImageNet ResNet-18 weights (never silently random)")
    pretrained_path: str | None = knob(None, "resnet18_unet: weights file; default is torchvision's file in the torch hub cache", identity=False)

    def __post_init__(self) -> None:
        if self.arch == "classic_unet":
            if not 1 <= self.depth <= 6:
                raise ConfigError(f"generator.depth: got {self.depth}; allowed with generator.arch classic_unet: 1..6 "
                                  "(4 = Ronneberger et al.)")
            if self.dropout:
                raise ConfigError("generator.dropout: classic_unet has no dropout; set generator.dropout: false")
        elif not 5 <= self.depth <= 9:
            raise ConfigError(f"generator.depth: got {self.depth}; allowed: 5..9 (7 = unet_128, 8 = unet_256)")
        _positive("generator.ngf", self.ngf)
        _at_most("generator.ngf", self.ngf, MAX_CHANNELS)
        if not 0.0 <= self.leaky_slope < 1.0:  # also refuses nan and infinities
            raise ConfigError(f"generator.leaky_slope: got {self.leaky_slope}; allowed: 0 <= value < 1")
        if self.arch != "unet" and not self.output_bias:
            raise ConfigError("generator.output_bias: false is only available with generator.arch: unet")
        if self.arch != "unet" and self.leaky_slope != LEAKY_SLOPE:
            raise ConfigError(f"generator.leaky_slope: got {self.leaky_slope}; only generator.arch: unet has "
                              f"LeakyReLUs, allowed with {self.arch}: {LEAKY_SLOPE}")
        if self.arch == "resnet18_unet" and not self.skip_connections:
            raise ConfigError("generator.skip_connections: false is only available with generator.arch: unet "
                              "or classic_unet")
        if self.arch != "resnet18_unet" and self.pretrained_encoder:
            raise ConfigError("generator.pretrained_encoder: true needs generator.arch: resnet18_unet")
        _path("generator.pretrained_path", self.pretrained_path)


@dataclass(frozen=True)
class DiscriminatorConfig:
    arch: Literal["patchgan", "none"] = knob("patchgan", "discriminator; none trains the generator on reconstruction alone")
    n_layers: Literal[0, 1, 2, 3, 4, 5] = knob(3, "PatchGAN depth: 0 = 1x1 PixelGAN, 1 = 16x16, 3 = 70x70, 5 = 286x286")
    ndf: int = knob(64, "filters in the first layer")
    norm: Literal["batch", "instance"] = knob("batch", "normalisation layer")
    conditional: bool = knob(True, "true: sees input and output concatenated; false: sees the output only")
    leaky_slope: float = knob(LEAKY_SLOPE, "negative slope of the LeakyReLUs, 0 <= value < 1 "
                              "(pix2pix: 0.2; source report 002: 0.01)")
    first_bias: bool = knob(True, "bias on the first convolution (the first 1x1 one at n_layers 0); false drops its "
                            "ndf parameters (source report 002's count)")
    last_stride: Literal[1, 2] = knob(1, "n_layers >= 1: stride of the last ndf*k convolution before the output one; "
                                      "1 = pix2pix (n_layers 3: 70x70 patches, a 30x30 map on 256x256), "
                                      "2 = source report 003 (n_layers 3: 94x94 patches, a 15x15 map)")

    def __post_init__(self) -> None:
        _positive("discriminator.ndf", self.ndf)
        _at_most("discriminator.ndf", self.ndf, MAX_CHANNELS)
        if not 0.0 <= self.leaky_slope < 1.0:  # also refuses nan and infinities
            raise ConfigError(f"discriminator.leaky_slope: got {self.leaky_slope}; allowed: 0 <= value < 1")
        if self.n_layers == 0 and self.last_stride != 1:
            raise ConfigError(f"discriminator.last_stride: got {self.last_stride}; the n_layers 0 PixelGAN has only "
                              "1x1 convolutions, allowed: 1")


@dataclass(frozen=True)
class LossConfig:
    reconstruction: Literal["l1", "l2", "l1+l2", "none"] = knob("l1", "reconstruction loss of the generator")
    adversarial: Literal["bce", "lsgan", "none"] = knob("bce", "adversarial loss (bce = the paper's vanilla GAN loss)")
    lambda_rec: float = knob(100.0, "weight of the reconstruction loss")
    lambda_adv: float = knob(1.0, "weight of the generator's adversarial loss")

    def __post_init__(self) -> None:
        _non_negative("loss.lambda_rec", self.lambda_rec)
        _non_negative("loss.lambda_adv", self.lambda_adv)
        rec_on = self.reconstruction != "none" and self.lambda_rec > 0
        adv_on = self.adversarial != "none" and self.lambda_adv > 0
        if not (rec_on or adv_on):
            raise ConfigError("loss: at least one term must be on (reconstruction with lambda_rec > 0, "
                              "or adversarial with lambda_adv > 0)")


@dataclass(frozen=True)
class DataConfig:
    dataset: Literal["samples", "folder", "coco2017", "country211", "facades"] = knob(
        "samples", "samples = photos bundled with scikit-image/matplotlib; folder = any image tree at data.root; "
        "coco2017 (train2017/ -> train, val2017/ -> test), country211 (torchvision's layout; train -> train, "
        "test -> test), facades (pix2pix aligned pairs, photo beside label map; train/ -> train, test/ -> test)")
    root: str | None = knob(None, "folder: directory searched recursively for images; coco2017/country211/facades: "
                            "the dataset's folder, default CACHE/datasets/DATASET (CACHE: see cache_dir)", identity=False)
    download: bool = knob(False, "coco2017/country211/facades: download and extract the dataset into data.root "
                          "when absent", identity=False)
    task: Literal["colourise", "paired"] = knob(
        "colourise", "colourise: the input is the greyscale of the target photo; paired: the input is the dataset's "
        "paired image (facades: label map -> photo; needs colour_space rgb)")
    train_list: str | None = knob(None, "folder dataset: text file of image paths (relative to root) for training", identity=False)
    test_list: str | None = knob(None, "folder dataset: text file of image paths for testing", identity=False)
    test_fraction: float = knob(0.1, "folder dataset without lists and n_test: share of images held out for testing")
    n_train: int | None = knob(None, "keep this many usable training images, the first in a seeded random order "
                               "(null = all)")
    n_test: int | None = knob(None, "keep this many usable test images, likewise; folder: taken from the whole folder, "
                              "training images from the rest")
    split_seed: int = knob(0, "seed of the deterministic train/test split and of the n_train/n_test selection")
    image_size: int = knob(256, "side of the square training and test images")
    augmentation: Literal["none", "flip", "jitter", "flip+jitter"] = knob(
        "flip+jitter", "jitter = resize to round(1.117*size) then random crop (286 -> 256)")
    batch_size: int = knob(1, "images per step")
    min_side: int = knob(32, "images whose shorter side is below this are skipped")
    greyscale_chroma: float = knob(2.0, "images whose mean (max-min over RGB), measured after removing the image's "
                                   "mean tint, is at most this (0..255) are greyscale and skipped")
    cache_dir: str | None = knob(None, "decoded-image cache; default $COLORBENCH_CACHE or ~/.cache/colorbench", identity=False)

    def __post_init__(self) -> None:
        _positive("data.image_size", self.image_size)
        for name in ("root", "train_list", "test_list", "cache_dir"):
            _path(f"data.{name}", getattr(self, name))
        # DataConfig is also made directly (colorbench data prepare), not only through _from_dict's 64-bit check.
        if not 0 <= self.split_seed < SEED_LIMIT:
            raise ConfigError(f"data.split_seed: got {self.split_seed}; allowed: 0 <= value < 2**63")
        for name in ("n_train", "n_test"):  # data prepare's --n-train, --n-test; the others have their own caps
            value = getattr(self, name)
            if value is not None and not -INT_LIMIT < value < INT_LIMIT:
                raise ConfigError(f"data.{name}: got {value}; allowed: an integer of magnitude below 2**63")
        _at_most("data.image_size", self.image_size, MAX_IMAGE_SIZE)
        _positive("data.batch_size", self.batch_size)
        _at_most("data.batch_size", self.batch_size, MAX_BATCH_SIZE)
        _positive("data.min_side", self.min_side)
        _non_negative("data.greyscale_chroma", self.greyscale_chroma)
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"data.test_fraction: got {self.test_fraction}; allowed: 0 < value < 1")
        if self.dataset == "folder" and self.root is None:
            raise ConfigError("data.root: the folder dataset needs data.root set to a directory of images")
        if (self.train_list is None) != (self.test_list is None):
            raise ConfigError("data.train_list / data.test_list: give both or neither")
        if self.train_list is not None and self.dataset != "folder":
            raise ConfigError(f"data.train_list / data.test_list: only for data.dataset: folder (got {self.dataset})")
        for name in ("n_train", "n_test"):
            if getattr(self, name) is not None:
                _positive(f"data.{name}", getattr(self, name))
        if self.download and self.dataset not in ("coco2017", "country211", "facades"):
            raise ConfigError(f"data.download: got true for data.dataset={self.dataset}, which has nothing to download; "
                              "allowed datasets: coco2017, country211, facades")
        if self.task == "paired" and self.dataset != "facades":
            raise ConfigError(f"data.task: paired needs a dataset of image pairs; got data.dataset={self.dataset}; "
                              "allowed: facades")


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = knob(200, "training length in epochs (pix2pix: 100 constant + 100 decay)")
    steps: int | None = knob(None, "if set, train for exactly this many steps instead of epochs")
    lr: float = knob(2e-4, "Adam learning rate of G and D")
    betas: tuple[float, float] = knob((0.5, 0.999), "Adam betas")
    schedule: Literal["constant", "linear", "step", "cosine", "exponential"] = knob(
        "linear", "linear: constant until decay_start_epoch, then in equal steps per epoch towards "
        "final_lr_fraction, one step short of it in the last epoch (pix2pix's rule with 0); step: x step_factor "
        "at decay_start_epoch and every step_every epochs after; cosine: half a cosine from 1 to "
        "final_lr_fraction over all steps; exponential: constant until decay_start_epoch, then geometric per "
        "epoch, exactly final_lr_fraction in the last epoch")
    decay_start_epoch: int = knob(100, "linear/step/exponential: first epoch of decay")
    step_every: int = knob(10, "step: epochs between decays")
    step_factor: float = knob(0.5, "step: multiplicative factor per decay")
    final_lr_fraction: float = knob(0.0, "linear/cosine/exponential: where the decay ends, as a fraction of optim.lr; "
                                    "0 <= value < 1, exponential needs > 0")
    grad_clip_norm: float | None = knob(None, "clip the gradient norm (over all parameters of a network) to this "
                                        "value; which networks: grad_clip_scope (off by default)")
    grad_clip_scope: Literal["both", "generator"] = knob(
        "both", "networks whose gradients grad_clip_norm clips: both = G and D, generator = G only "
        "(needs grad_clip_norm)")
    warmup_epochs: int = knob(0, "generator-only reconstruction epochs before adversarial training starts")

    def __post_init__(self) -> None:
        _positive("optim.epochs", self.epochs)
        if self.steps is not None:
            _positive("optim.steps", self.steps)
        _positive("optim.lr", self.lr)
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"optim.betas: got {list(self.betas)}; allowed: two numbers in [0, 1)")
        _non_negative("optim.decay_start_epoch", self.decay_start_epoch)
        _positive("optim.step_every", self.step_every)
        if not 0.0 < self.step_factor <= 1.0:
            raise ConfigError(f"optim.step_factor: got {self.step_factor}; allowed: 0 < value <= 1")
        self._check_final_lr_fraction()
        if self.grad_clip_norm is not None:
            _positive("optim.grad_clip_norm", self.grad_clip_norm)
        elif self.grad_clip_scope != "both":  # it would change the run id without changing the run
            raise ConfigError(f"optim.grad_clip_scope: got {self.grad_clip_scope} with optim.grad_clip_norm null, "
                              "which clips nothing; set optim.grad_clip_norm, or leave the scope at both")
        _non_negative("optim.warmup_epochs", self.warmup_epochs)

    def _check_final_lr_fraction(self) -> None:
        fraction = self.final_lr_fraction
        if not 0.0 <= fraction < 1.0:
            raise ConfigError(f"optim.final_lr_fraction: got {fraction}; allowed: 0 <= value < 1")
        if self.schedule == "exponential" and fraction == 0.0:
            raise ConfigError(f"optim.final_lr_fraction: got {fraction} with optim.schedule=exponential, which "
                              "never reaches 0; allowed: 0 < value < 1")
        if self.schedule in ("constant", "step") and fraction > 0.0:  # unused: it would only change the run id
            raise ConfigError(f"optim.final_lr_fraction: got {fraction}, which optim.schedule={self.schedule} "
                              "does not use; allowed with it: 0 (or schedule linear, cosine, exponential)")


@dataclass(frozen=True)
class EvalConfig:
    every_epochs: int = knob(10, "evaluate on the test split every this many epochs (0 = only at the end)", identity=False)
    curve_points: int = knob(0, "also evaluate at this many steps a factor of 2 apart, the last step last "
                             "(total/2**(n-1), ..., total/2, total): a learning curve at log-spaced budgets",
                             identity=False)
    n_sample_images: int = knob(4, "test images shown in each samples/ grid", identity=False)
    train_mode_inference: bool = knob(False, "evaluate with dropout and batch statistics on, as pix2pix's test script does")
    metrics: tuple[str, ...] = knob(METRIC_NAMES, "metrics recorded at each evaluation (docs/metrics.md); those whose "
                                    "weights are absent are recorded as unavailable", identity=False)
    weights_dir: str | None = knob(None, "folder of the metric weight files (FID Inception, AlexNet); default "
                                   "torch's hub cache, TORCH_HOME/hub/checkpoints", identity=False)

    def __post_init__(self) -> None:
        _non_negative("eval.every_epochs", self.every_epochs)
        _non_negative("eval.n_sample_images", self.n_sample_images)
        if not 0 <= self.curve_points <= 30:
            raise ConfigError(f"eval.curve_points: got {self.curve_points}; allowed: 0..30")
        unknown = [name for name in self.metrics if name not in METRIC_NAMES]
        if unknown:
            raise ConfigError(f"eval.metrics: unknown {', '.join(unknown)}; allowed: {', '.join(METRIC_NAMES)}")
        if len(set(self.metrics)) != len(self.metrics):
            raise ConfigError(f"eval.metrics: {list(self.metrics)} names a metric twice")
        _path("eval.weights_dir", self.weights_dir)


@dataclass(frozen=True)
class ComputeConfig:
    """How a run computes on its device (docs/performance.md, "The GPU path"); precision is the top-level key."""

    channels_last: bool = knob(
        False, "networks and batches in channels-last (NHWC) memory layout: the same arithmetic through other "
        "convolution kernels, so the last digits change (part of the config id when true)", hashed_at_default=False)
    training_images: Literal["auto", "device", "host"] = knob(
        "auto", "where the prepared uint8 training images live and each batch is cropped and flipped: device = in "
        "the device's memory, cropped there by one gather (on the CPU: the same gather on CPU tensors); host = in CPU "
        "memory, cropped there and copied to a GPU from pinned memory without blocking; auto = device on CUDA when "
        "they take at most a quarter of its free memory, else host. The batches are the same bytes either way "
        "(speed only)", identity=False)


TrackerName = Literal["none", "tensorboard", "wandb", "mlflow"]


@dataclass(frozen=True)
class LogConfig:
    tracker: TrackerName | tuple[TrackerName, ...] = knob(
        (), "experiment trackers each run mirrors stats.jsonl, metrics.jsonl and its sample grids to: none, "
        "or one or a list of tensorboard, wandb, mlflow (needs the trackers extra; docs/trackers.md); "
        "a tracker that fails is a warning, never a failed run", identity=False)
    tracker_dir: str | None = knob(None, "folder of the trackers' files (TensorBoard events, MLflow store, W&B "
                                   "offline runs); default: trackers/ beside the run directory, i.e. "
                                   "RESULTS/ABLATION/trackers", identity=False)

    def __post_init__(self) -> None:  # one name or a list; stored as a tuple without none
        names = (self.tracker,) if isinstance(self.tracker, str) else tuple(self.tracker)
        if len(set(names)) != len(names):
            raise ConfigError(f"log.tracker: {list(names)} names a tracker twice")
        _path("log.tracker_dir", self.tracker_dir)
        object.__setattr__(self, "tracker", tuple(name for name in names if name != "none"))


@dataclass(frozen=True)
class RunConfig:
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    log: LogConfig = field(default_factory=LogConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    colour_space: Literal["lab", "rgb", "lab_l100_ab128"] = knob(
        "lab", "lab: predict ab from L (pix2pix: L/50-1, ab/110); rgb: predict RGB in [-1, 1] from L (L/50-1); "
        "lab_l100_ab128: predict ab/128 (in [-1, 1]) from L/100 (in [0, 1])")
    precision: Literal["fp32", "bf16", "tf32"] = knob(
        "fp32", "fp32 = IEEE float32 (on CUDA TF32 off in matmuls and cuDNN convolutions); bf16 = autocast to "
        "bfloat16; tf32 = CUDA only: float32 tensors, TF32 tensor-core matmuls and convolutions (inputs rounded to a "
        "10-bit mantissa)")
    seed: int = knob(0, "seed of initialisation, data order, augmentation and dropout", identity=False)
    device: Literal["auto", "cpu", "cuda"] = knob("auto", "auto = cuda when available", identity=False)
    log_every: int = knob(50, "write a stats.jsonl record every this many steps", identity=False)
    checkpoint_every: int = knob(500, "write checkpoint.pt every this many steps (and at each epoch end)", identity=False)
    keep_training_state: bool = knob(False, "after DONE keep checkpoint.pt whole (optimisers, D, RNG states); false "
                                     "keeps only the final generator weights, which eval, report and reproduce need",
                                     identity=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.seed, int) and 0 <= self.seed < SEED_LIMIT):
            raise ConfigError(f"seed: got {self.seed}; allowed: 0 <= seed < 2**63")
        if self.generator.arch in ("unet", "classic_unet") and self.data.image_size % 2 ** self.generator.depth:
            raise ConfigError(f"data.image_size: got {self.data.image_size}; generator.depth={self.generator.depth} "
                              f"needs a multiple of {2 ** self.generator.depth}")
        if self.generator.arch == "resnet18_unet" and self.data.image_size % 32:
            raise ConfigError(f"data.image_size: got {self.data.image_size}; resnet18_unet needs a multiple of 32")
        d = self.discriminator
        min_size = min_patch_image_size(d.n_layers, d.last_stride)
        if d.arch == "patchgan" and self.data.image_size < min_size:
            raise ConfigError(f"data.image_size: got {self.data.image_size}; discriminator.n_layers={d.n_layers} "
                              f"needs at least {min_size} for a non-empty patch map "
                              f"(with discriminator.last_stride={d.last_stride})")
        if (self.discriminator.arch == "none") != (self.loss.adversarial == "none"):
            raise ConfigError("discriminator.arch / loss.adversarial: set both to none, or neither "
                              f"(got discriminator.arch={self.discriminator.arch}, loss.adversarial={self.loss.adversarial})")
        if self.optim.warmup_epochs and self.loss.reconstruction == "none":
            raise ConfigError("optim.warmup_epochs: the warm-up trains the generator on reconstruction alone; "
                              "it needs loss.reconstruction other than none")
        if self.data.task == "paired" and self.colour_space != "rgb":
            raise ConfigError(f"colour_space: got {self.colour_space}; data.task=paired predicts the whole photo, "
                              "allowed: rgb")
        _positive("log_every", self.log_every)
        _positive("checkpoint_every", self.checkpoint_every)

    @property
    def in_channels(self) -> int:
        """Colourisation: the L channel; paired: the RGB of the paired input image."""
        return 3 if self.data.task == "paired" else 1

    @property
    def out_channels(self) -> int:
        """Lab colour spaces: a and b; otherwise R, G, B."""
        return 2 if self.colour_space in AB_COLOUR_SPACES else 3

    @property
    def encoding(self) -> str:
        """How images become network inputs and targets (see ``bench.data.colour.encode``): the colour space, or paired."""
        return "paired" if self.data.task == "paired" else self.colour_space


def _positive(name: str, value: float) -> None:
    _finite(name, value)
    if not value > 0:
        raise ConfigError(f"{name}: got {value}; allowed: a number > 0")


def _non_negative(name: str, value: float) -> None:
    _finite(name, value)
    if not value >= 0:
        raise ConfigError(f"{name}: got {value}; allowed: a number >= 0")


def _at_most(name: str, value: int, maximum: int) -> None:
    if value > maximum:
        raise ConfigError(f"{name}: got {value}; allowed: 1..{maximum}")


def _path(name: str, value: str | None) -> None:
    """A path a run will open: no NUL character (the OS refuses it) and no ``~user`` of a user this machine lacks
    (``Path.expanduser`` raises then, wherever the path is first used)."""
    if value is None:
        return
    if "\0" in value:
        raise ConfigError(f"{name}: got {value!r}; a path cannot hold a NUL character")
    if value.startswith("~") and os.path.expanduser(value) == value:
        user = value[1:].split("/", 1)[0]
        raise ConfigError(f"{name}: got {value!r}; " + (f"no user {user} on this machine" if user else
                                                         "no home folder known ($HOME unset)"))


def _finite(name: str, value: float) -> None:
    """Infinities and nan are refused: a run would fail or silently do nothing with them."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name}: got {value}; allowed: a finite number")


# ---------------------------------------------------------------------------------------
# Conversion from plain dicts (YAML) with type checking

def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _split_list(name: str, text: str, args: tuple) -> list | str:
    """A comma-separated string as the list it stands for: "a, b" -> ["a", "b"], "" -> [].

    Items of a ``str`` element stay text; others are read as YAML scalars ("0.5" -> 0.5,
    "3" -> 3), as ``--set`` reads a whole value.
    """
    if not text.strip():
        return []
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise ConfigError(f"{name}: got {text!r}; allowed: a list, or its items separated by commas (none empty)")
    elements = (args[0],) * len(items) if args[-1] is Ellipsis else args
    if len(elements) != len(items):
        return text  # not a list of that length: the caller's check names the value
    return [item if element is str else _yaml_scalar(item) for item, element in zip(items, elements)]


def _yaml_scalar(text: str) -> Any:
    try:
        return yamlio.loads(text)
    except yamlio.YamlError:
        return text  # left to the element's check, which names the value


def _coerce(name: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against the annotation ``tp``; return it converted (lists -> tuples, '1e-4' -> float).

    A list field (``tuple[X, ...]`` or ``tuple[X, Y]``) also takes its items as one comma-separated
    string, so ``--set eval.metrics=psnr_rgb8,ssim_rgb8`` is ``--set eval.metrics=[psnr_rgb8,ssim_rgb8]``
    and an empty string is the empty list.
    """
    origin = get_origin(tp)
    if origin is Literal:
        allowed = get_args(tp)
        for option in allowed:  # YAML gives 3 for 3 and 'none' for none; match exactly, bools apart from ints
            if value == option and type(value) is type(option):
                return option
        raise ConfigError(f"{name}: got {value!r}; allowed: {', '.join(str(a) for a in allowed)}")
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{name}: got null; a value is required")
        inner = [a for a in args if a is not type(None)]
        if len(inner) > 1:  # one value or a list of them (log.tracker): the error of the form given
            listed = isinstance(value, (list, tuple))
            inner.sort(key=lambda option: (get_origin(option) is tuple) != listed)
            for option in inner[1:]:
                with contextlib.suppress(ConfigError):
                    return _coerce(name, value, option)
        return _coerce(name, value, inner[0])
    if origin is tuple:
        args = get_args(tp)
        if isinstance(value, str):  # "a,b" (as --set key=a,b gives) is the list [a, b]
            value = _split_list(name, value, args)
        if len(args) == 2 and args[1] is Ellipsis:  # tuple[X, ...]: a list of any length
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{name}: got {value!r}; allowed: a list")
            return tuple(_coerce(f"{name}[{i}]", v, args[0]) for i, v in enumerate(value))
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{name}: got {value!r}; allowed: a list of {len(args)} numbers")
        return tuple(_coerce(f"{name}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args)))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: got {value!r}; allowed: true, false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value  # its range: the field's own check, then _from_dict's 64-bit one
        raise ConfigError(f"{name}: got {value!r}; allowed: an integer")
    if tp is float:
        number = None
        if isinstance(value, str):  # PyYAML reads 2e-4 (no dot) as a string
            with contextlib.suppress(ValueError):
                number = float(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            with contextlib.suppress(OverflowError):  # an integer beyond float's range
                number = float(value)
        if number is None:
            raise ConfigError(f"{name}: got {value!r}; allowed: a number")
        _finite(name, number)  # also 'inf', '.inf' and 'nan', which YAML and float() read
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{name}: got {value!r}; allowed: a string")
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, name)
    raise TypeError(f"unsupported annotation {tp!r} for {name}")


def _from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: got {data!r}; allowed: a mapping of keys to values")
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(f"unknown config key {where}{unknown[0]!s}; allowed keys{' of ' + prefix if prefix else ''}: "
                          + ", ".join(names))
    kwargs = {k: _coerce(f"{prefix}.{k}" if prefix else k, v, hints[k]) for k, v in data.items()}
    config = cls(**kwargs)  # the fields' own checks first: they name the allowed range
    for key, value in kwargs.items():
        if isinstance(value, int) and not isinstance(value, bool) and not -INT_LIMIT < value < INT_LIMIT:
            raise ConfigError(f"{prefix + '.' if prefix else ''}{key}: got {value}; allowed: an integer of "
                              "magnitude below 2**63")
    return config


def config_from_dict(data: dict) -> RunConfig:
    """Build and validate a RunConfig from nested plain values; missing keys take their defaults."""
    return _from_dict(RunConfig, data)


def config_to_dict(config: Any) -> dict:
    """Nested plain values (tuples as lists), suitable for YAML and JSON."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def flatten_keys(data: dict, prefix: str = "") -> dict[str, Any]:
    """Nested sections as one level of dotted keys: {"a": {"b": 1}} -> {"a.b": 1}."""
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(flatten_keys(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``key.sub=value`` (value read as YAML) into a key path and a value."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. generator.skip_connections=false")
    key, raw = text.split("=", 1)
    path = key.strip().split(".")
    if not all(path):
        raise ConfigError(f"--set {text!r}: empty key")
    try:
        value = yamlio.loads(raw, "value") if raw.strip() else None
    except yamlio.YamlError as err:
        raise ConfigError(f"--set {text!r}: {err}") from None
    return path, value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Return a copy of ``data`` with each ``key=value`` override set (nested keys by dots)."""
    data = json.loads(json.dumps(data))
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {part} is not a section")
            node = child
        node[path[-1]] = value
    return data


def read_yaml(path: Path, what: str, error: type[ConfigError] = ConfigError) -> Any:
    """The parsed YAML of ``path`` (``bench.config.yamlio``: no anchors, aliases or duplicate keys, UTF-8 only);
    ``error`` naming the file, and the line and column of a problem, when it cannot be read or parsed."""
    try:
        return yamlio.read(path)
    except OSError as err:
        raise error(f"{path}: cannot read {what} ({err.strerror or err})") from None
    except yamlio.YamlError as err:
        raise error(str(err)) from None


def read_config_file(path: str | Path) -> dict:
    """Read a YAML config file into plain values. A run directory's config.yaml is accepted too."""
    path = Path(path)
    data = read_yaml(path, "config file")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    if "config_id" in data and "config" in data:  # a run directory's config.yaml
        data = data["config"]
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Defaults, then the YAML file (if any), then ``--set`` overrides; validated."""
    data = read_config_file(path) if path is not None else {}
    data = apply_overrides(data, list(overrides))
    try:
        return config_from_dict(data)
    except ConfigError as err:
        if path is not None:
            raise ConfigError(f"{path}: {err}") from None
        raise


def dump_config(config: RunConfig) -> str:
    """YAML text of the full resolved config."""
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)


def describe_fields(cls: type = RunConfig, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, default, doc) for every knob, for docs/configuration.md and ``--help``."""
    rows = []
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        if f.default_factory is not dataclasses.MISSING:  # a section
            rows += describe_fields(f.default_factory, key + ".")
        else:
            default = list(f.default) if isinstance(f.default, tuple) else f.default
            rows.append((key, default, f.metadata.get("doc", "")))
    return rows


def fields_markdown() -> str:
    """Markdown table of every config field with its default (docs/configuration.md's table is this text)."""
    def show(value: Any) -> str:
        return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    rows = ["| field | default | meaning |", "|---|---|---|"]
    rows += [f"| `{key}` | `{show(default)}` | {doc} |" for key, default, doc in describe_fields()]
    return "\n".join(rows) + "\n"
