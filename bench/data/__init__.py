"""Data layer: image sources, decoding and filtering, downloads, the prepared-data cache and augmentation.

The names below load their module on first use (PEP 562), so that listing and fingerprinting
the data (``bench.run.identity``: a sweep's plan, ``status``, ``report``) does not import torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "AUGMENTATIONS": "augmentation", "augment": "augmentation", "load_size": "augmentation",
    "BENCHMARK_DATASETS": "datasets", "dataset_root": "datasets",
    "SkipImage": "decode", "read_colour_image": "decode",
    "DatasetError": "errors",
    "PreparedData": "prepare", "prepare_data": "prepare",
    "SourceImage": "sources", "SourceSplits": "sources", "folder_source": "sources", "samples_source": "sources",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
