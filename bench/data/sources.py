"""Image sources: which files (and which crops of them) make up the train and test splits.

``samples`` tiles the colour photographs bundled with scikit-image and matplotlib, so a
demo runs with nothing downloaded; ``folder`` takes every image under a directory; the
benchmark datasets (COCO 2017, Country211, facades) live in ``bench.data.datasets``.
Listing reads no pixels: the samples' tile grid needs only each photo's header.
"""
from __future__ import annotations

import random
from pathlib import Path

from bench.config import DataConfig
from bench.data.datasets import coco2017_source, country211_source, dataset_root, facades_source
from bench.data.decode import oriented_size
from bench.data.errors import DatasetError
from bench.data.items import IMAGE_EXTENSIONS, SourceImage, SourceSplits, image_files, seeded_order

__all__ = ["IMAGE_EXTENSIONS", "SourceImage", "SourceSplits", "folder_source", "open_source", "read_path_list",
           "samples_source"]

# Natural colour photographs shipped with scikit-image, by group.  The two motorcycle
# files are a stereo pair of one scene, so they form one group and share a split.
_SKIMAGE_PHOTOS = {
    "astronaut": ["astronaut.png"],
    "chelsea": ["chelsea.png"],
    "coffee": ["coffee.png"],
    "rocket": ["rocket.jpg"],
    "motorcycle": ["motorcycle_left.png", "motorcycle_right.png"],
}
SAMPLE_TEST_GROUPS = ("chelsea", "coffee")  # a cat and a cup; the portraits, rocket and motorcycle train

# Square tiles cut from each sample photo: (name, side as a fraction of the shorter side,
# grid points per axis).  The grid points are spread evenly over the whole photo, so
# neighbouring tiles overlap; 1 + 9 + 16 = 26 tiles per photo.
_TILE_SCALES = (("full", 1, 1), ("half", 1 / 2, 3), ("third", 1 / 3, 4))


_BENCHMARK_SOURCES = {"coco2017": coco2017_source, "country211": country211_source, "facades": facades_source}


def open_source(cfg: DataConfig) -> SourceSplits:
    """The candidates of the source ``cfg.dataset`` names, split as the config says.

    Where ``n_train`` / ``n_test`` is set, that split's candidates come in a seeded random
    order (``seeded_order``) and the builder keeps the first usable ones.
    """
    if cfg.dataset == "samples":
        source = samples_source()
    elif cfg.dataset == "folder":
        lists = None if cfg.train_list is None else (Path(cfg.train_list), Path(cfg.test_list))
        source = folder_source(Path(cfg.root), cfg.split_seed, cfg.test_fraction, lists,
                               test_from_all=cfg.n_test is not None and lists is None)
    else:
        source = _BENCHMARK_SOURCES[cfg.dataset](dataset_root(cfg))
    return SourceSplits(source.name, source.root, seeded_order(source.train, cfg.n_train, cfg.split_seed),
                        seeded_order(source.test, cfg.n_test, cfg.split_seed))


def samples_source() -> SourceSplits:
    """Tiles of the bundled sample photos; the split is fixed: ``SAMPLE_TEST_GROUPS`` are the test photos."""
    import matplotlib.cbook  # here: a folder of photos (and run identity) needs neither library
    import skimage.data

    skimage_dir = Path(skimage.data.__file__).parent
    photos = {group: [skimage_dir / name for name in names] for group, names in _SKIMAGE_PHOTOS.items()}
    photos["grace_hopper"] = [Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))]
    train, test = [], []
    for group, paths in sorted(photos.items()):
        for path in paths:
            if not path.is_file():
                raise DatasetError(f"samples: bundled photo {path} is missing; reinstall scikit-image/matplotlib")
            tiles = [SourceImage(f"{path.stem}/{tile_id}", group, path, box) for tile_id, box in _tiles(path)]
            (test if group in SAMPLE_TEST_GROUPS else train).extend(tiles)
    return SourceSplits("samples", "scikit-image and matplotlib sample data", train, test)


def _tiles(path: Path) -> list[tuple[str, tuple[int, int, int, int]]]:
    """(tile id, box) for every tile of ``_TILE_SCALES`` over the photo at ``path``."""
    width, height = oriented_size(path)
    tiles = []
    for scale, fraction, n in _TILE_SCALES:
        side = round(min(width, height) * fraction)
        for row, top in enumerate(_grid(height, side, n)):
            for col, left in enumerate(_grid(width, side, n)):
                tiles.append((f"{scale}-r{row}c{col}", (left, top, left + side, top + side)))
    return tiles


def _grid(extent: int, side: int, n: int) -> list[int]:
    """``n`` start offsets of a window of ``side`` spread evenly over ``extent`` (centred when n = 1)."""
    if n == 1:
        return [(extent - side) // 2]
    return [round(i * (extent - side) / (n - 1)) for i in range(n)]


def folder_source(root: Path, split_seed: int, test_fraction: float,
                  lists: tuple[Path, Path] | None = None, test_from_all: bool = False) -> SourceSplits:
    """Every image file under ``root``, each its own group, split by seed or by (train, test) list files.

    Without lists, the sorted relative paths are permuted by ``random.Random(split_seed)``
    and the first ``round(test_fraction * n)`` (at least 1, at most n - 1) are the test split.
    ``test_from_all`` (for a fixed test size) makes every file a candidate of both splits
    instead: the builder fills the test split first and never trains on a file it examined.
    """
    if not root.is_dir():
        raise DatasetError(f"data.root {root}: not a directory")
    if lists is not None:
        train_paths, test_paths = _read_lists(root, *lists)
    elif test_from_all:
        train_paths = test_paths = _at_least_two(image_files(root), root)
    else:
        train_paths, test_paths = _seeded_split(_at_least_two(image_files(root), root), split_seed, test_fraction)
    return SourceSplits("folder", str(root.resolve()), _folder_items(root, train_paths), _folder_items(root, test_paths))


def _at_least_two(paths: list[str], root: Path) -> list[str]:
    if len(paths) < 2:
        raise DatasetError(f"data.root {root}: found {len(paths)} image file(s); a train/test split needs at least 2")
    return paths


def _seeded_split(paths: list[str], split_seed: int, test_fraction: float) -> tuple[list[str], list[str]]:
    order = list(range(len(paths)))
    random.Random(split_seed).shuffle(order)
    n_test = min(len(paths) - 1, max(1, round(test_fraction * len(paths))))
    test_indices = set(order[:n_test])
    train = [p for i, p in enumerate(paths) if i not in test_indices]
    test = [p for i, p in enumerate(paths) if i in test_indices]
    return train, test


def _read_lists(root: Path, train_list: Path, test_list: Path) -> tuple[list[str], list[str]]:
    """The paths of both list files, checked to exist under ``root`` and to be listed once."""
    listed_in: dict[str, Path] = {}
    for list_file in (train_list, test_list):
        for path in read_path_list(list_file):
            if not (root / path).is_file():
                raise DatasetError(f"{list_file}: listed image {path} does not exist under {root}")
            if path in listed_in:  # in both lists it would leak test images into training
                raise DatasetError(f"{list_file}: {path} is already listed in {listed_in[path]}")
            listed_in[path] = list_file
    return ([p for p, f in listed_in.items() if f == train_list],
            [p for p, f in listed_in.items() if f == test_list])


def read_path_list(list_file: Path) -> list[str]:
    """Non-blank lines of ``list_file`` that are not ``#`` comments, stripped."""
    try:
        lines = list_file.read_text().splitlines()
    except OSError as err:
        raise DatasetError(f"{list_file}: cannot read image list ({err.strerror or err})") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _folder_items(root: Path, paths: list[str]) -> list[SourceImage]:
    return [SourceImage(path, path, root / path) for path in paths]
