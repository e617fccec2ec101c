"""Benchmark datasets in their published layouts: COCO 2017, Country211 and the pix2pix facades.

Each source lists the candidate files of its train and test splits under a dataset root
(ids are paths relative to it, so the cache key does not depend on where it is mounted):

- ``coco2017``: ``train2017/`` -> train, ``val2017/`` -> test (the official held-out split);
- ``country211``: torchvision's ``Country211`` class on ``<root>/country211/``; its train
  split -> train, its test split -> test (``valid`` is not used);
- ``facades``: pix2pix's aligned format, each file a photo (left half, A) beside its label
  map (right half, B); ``train/`` -> train, ``test/`` -> test (``val/`` is not used, as
  pix2pix reports on test).  The photo is the colourisation target, the label map the
  paired input of the labels -> photo task.
"""
from __future__ import annotations

from pathlib import Path

from PIL import UnidentifiedImageError

from bench.config import DataConfig
from bench.config.names import BENCHMARK_DATASETS  # noqa: F401 (re-exported; the CLI reads it without torchvision)
from bench.data.cache import cache_dir
from bench.data.decode import oriented_size
from bench.data.errors import DatasetError
from bench.data.items import SourceImage, SourceSplits, image_files

_DOWNLOAD_HINT = "set --root (data.root) to the dataset's folder, or pass --download (data.download: true)"


def dataset_root(cfg: DataConfig) -> Path:
    """``data.root``, or ``<cache_dir>/datasets/<dataset>`` (where ``--download`` puts it) when unset."""
    if cfg.root is not None:
        return Path(cfg.root).expanduser()
    return cache_dir(cfg.cache_dir) / "datasets" / cfg.dataset


def coco2017_source(root: Path) -> SourceSplits:
    """Every image of ``<root>/train2017`` (train) and ``<root>/val2017`` (test), sorted."""
    train = _split_files(root, "coco2017", "train2017")
    test = _split_files(root, "coco2017", "val2017")
    return SourceSplits("coco2017", str(root.resolve()), _items(root, train), _items(root, test))


def country211_source(root: Path) -> SourceSplits:
    """The train and test splits of ``torchvision.datasets.Country211(root)``, sorted."""
    from torchvision.datasets import Country211  # here: torchvision takes seconds to import, the others need none
    def split_files(split: str) -> list[str]:
        try:
            samples = Country211(str(root), split=split).samples
        except (RuntimeError, FileNotFoundError) as err:  # no country211/ folder, or no split folder in it
            raise DatasetError(f"country211: no dataset at {root / 'country211' / split} ({err}); "
                               f"{_DOWNLOAD_HINT}") from None
        return sorted(Path(path).relative_to(root).as_posix() for path, _ in samples)

    return SourceSplits("country211", str(root.resolve()), _items(root, split_files("train")),
                        _items(root, split_files("test")))


def facades_source(root: Path) -> SourceSplits:
    """The aligned pairs of ``<root>/train`` and ``<root>/test``: photo (left half) with its label map (right half)."""
    def pairs(paths: list[str]) -> list[SourceImage]:
        return [_aligned_pair(root, path) for path in paths]

    return SourceSplits("facades", str(root.resolve()), pairs(_split_files(root, "facades", "train")),
                        pairs(_split_files(root, "facades", "test")))


def _split_files(root: Path, dataset: str, folder: str) -> list[str]:
    """Relative paths of the images under ``root/folder``; a missing or empty folder is a DatasetError."""
    if not (root / folder).is_dir():
        raise DatasetError(f"{dataset}: {root / folder} is not a directory; {_DOWNLOAD_HINT}")
    paths = [f"{folder}/{path}" for path in image_files(root / folder)]
    if not paths:
        raise DatasetError(f"{dataset}: no image files in {root / folder}")
    return paths


def _items(root: Path, paths: list[str]) -> list[SourceImage]:
    return [SourceImage(path, path, root / path) for path in paths]


def _aligned_pair(root: Path, path: str) -> SourceImage:
    """The item of one A|B file: ``box`` the left half, ``pair_box`` the right half.

    A file whose header cannot be read gets no boxes; decoding it fails and skips it as unreadable.
    """
    try:
        width, height = oriented_size(root / path)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return SourceImage(path, path, root / path)
    half = width // 2
    return SourceImage(path, path, root / path, box=(0, 0, half, height), pair_box=(half, 0, 2 * half, height))
