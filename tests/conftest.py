from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Keep the decoded-image cache of the test session out of the user's ~/.cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("COLORBENCH_CACHE", str(tmp_path_factory.mktemp("colorbench-cache")))
    yield
    mp.undo()


def colourful_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random colour field with a few flat rectangles: colourful, not noise."""
    y, x = np.mgrid[0:size, 0:size] / size
    channels = [np.sin(2 * np.pi * (rng.uniform(0.3, 1.5) * x + rng.uniform(0.3, 1.5) * y + rng.uniform()))
                for _ in range(3)]
    image = (np.stack(channels, -1) * 0.5 + 0.5) * 255
    for _ in range(3):
        r0, c0 = rng.integers(0, size // 2, 2)
        image[r0:r0 + size // 4, c0:c0 + size // 4] = rng.integers(0, 256, 3)
    return image.astype(np.uint8)


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    """20 synthetic colour PNGs of 48x48 (a folder dataset that needs no real photos)."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray(colourful_image(rng, 48)).save(root / f"img{i:02d}.png")
    return root
