"""Data layer: image sources, decoding and filtering, downloads, the prepared-data cache and augmentation."""
from bench.data.augment import AUGMENTATIONS, augment, load_size
from bench.data.datasets import BENCHMARK_DATASETS, dataset_root
from bench.data.decode import SkipImage, read_colour_image
from bench.data.errors import DatasetError
from bench.data.prepare import PreparedData, prepare_data
from bench.data.sources import SourceImage, SourceSplits, folder_source, samples_source

__all__ = [
    "AUGMENTATIONS", "BENCHMARK_DATASETS", "DatasetError", "PreparedData", "SkipImage", "SourceImage", "SourceSplits",
    "augment", "dataset_root", "folder_source", "load_size", "prepare_data", "read_colour_image", "samples_source",
]
