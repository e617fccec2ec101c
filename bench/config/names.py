"""Names the config, the command line and the heavy modules share, in a module that imports nothing.

``bench.config`` validates ``eval.metrics`` against :data:`METRIC_NAMES` and ``colorbench --help``
lists the datasets and augmentations from here, so neither imports torch, torchmetrics or
pytorch-fid.  Each name list is defined here once: ``bench.evaluation.metrics`` orders its registry by
:data:`METRIC_NAMES` (and refuses to import if the two differ), ``bench.data.augmentation`` and
``bench.data.datasets`` re-export the others.
"""

METRIC_NAMES = ("psnr_rgb8", "ssim_rgb8", "l1_rgb8", "mse_ab_rgb8", "de2000_rgb8", "cf", "delta_cf", "hist_isect_lab",
                "lpips_alex", "fid_inception_pt", "kid_inception_pt")
"""Every registered metric (``bench.evaluation.metrics.METRICS``), in registry order: the default ``eval.metrics``."""

AUGMENTATIONS = ("none", "flip", "jitter", "flip+jitter")
"""The training augmentations (``data.augmentation``)."""

BENCHMARK_DATASETS = ("coco2017", "country211", "facades")
"""The datasets that are downloaded into a folder of their own (``data.dataset`` besides samples and folder)."""

BASELINE_NAMES = ("grey_input", "mean_colour", "label_map", "mean_photo")
"""The trivial baselines (``bench.evaluation.baselines.BASELINES``; ``colorbench score --baseline``)."""

RESIZER_NAMES = ("bicubic", "bilinear", "lanczos")
"""The filters ``colorbench score --resize`` may resize predictions with (``bench.evaluation.predictions.RESIZERS``)."""
