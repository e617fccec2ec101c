"""Pretrained weight files the benchmark can use, where they are looked for, and their download.

Nothing is downloaded while training or scoring: a missing file makes the metric that
needs it unavailable (or ``generator.pretrained_encoder`` an error).  ``colorbench assets
fetch`` downloads the files on a machine with internet into the directory that is searched,
by default torch's hub cache ``<TORCH_HOME>/hub/checkpoints`` where torchvision and
pytorch-fid would put them themselves.  Downloads go to ``<name>.partial``, continue from
there with an HTTP range request when interrupted, and are renamed into place only after
their sha256 matched.
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from pytorch_fid.inception import FID_WEIGHTS_URL
from tqdm import tqdm

CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60


class AssetError(RuntimeError):
    """A weight file could not be downloaded or does not have the expected content; the message names it."""


@dataclass(frozen=True)
class Asset:
    """One weight file: its download URL, its full sha256 and its use."""

    name: str
    url: str
    sha256: str
    used_by: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


ASSETS: dict[str, Asset] = {asset.name: asset for asset in (
    # pytorch-fid's port of the TF Inception of 2015-12-05 (95,628,359 bytes); the name carries the first 8 hex digits
    Asset("fid_inception", FID_WEIGHTS_URL, "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
          "fid_inception_pt, kid_inception_pt"),
    # torchvision names its files <arch>-<first 8 hex digits of the sha256>.pth; 8 digits are no check, the full
    # digest is (resnet18-f37072fd.pth: 46,830,571 bytes; alexnet-owt-7be5be79.pth: 244,408,911 bytes)
    Asset("resnet18", torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url,
          "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec",
          "generator.pretrained_encoder of resnet18_unet"),
    Asset("alexnet", torchvision.models.AlexNet_Weights.IMAGENET1K_V1.url,
          "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02", "lpips_alex (backbone)"),
)}


def weights_dir(configured: str | Path | None = None) -> Path:
    """``configured`` if given, else torch's hub checkpoint folder (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(configured).expanduser() if configured else Path(torch.hub.get_dir()) / "checkpoints"


def asset_path(name: str, directory: str | Path | None = None) -> Path:
    """Where the weight file ``name`` is looked for: in ``weights_dir(directory)``, under its download name."""
    return weights_dir(directory) / ASSETS[name].filename


def verify(path: Path, asset: Asset) -> None:
    """Raise AssetError naming ``path`` unless its sha256 is ``asset.sha256``."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    actual = digest.hexdigest()
    if actual != asset.sha256:
        raise AssetError(f"{path}: sha256 {actual} does not match {asset.name}'s {asset.sha256} (from {asset.url})")


def status(directory: str | Path | None = None) -> list[tuple[Asset, Path, bool]]:
    """(asset, path looked at, whether a file is there) for every asset."""
    return [(asset, asset_path(name, directory), asset_path(name, directory).is_file())
            for name, asset in ASSETS.items()]


def fetch(asset: Asset, directory: str | Path | None = None, url: str | None = None) -> Path:
    """Download ``asset`` (from ``url``, default its own) into ``weights_dir(directory)``; return the file.

    A file already there is verified and kept.  Otherwise the download continues a
    ``.partial`` file left by an interrupted one, and the result is renamed into place only
    when its sha256 matches; a mismatching download is deleted and AssetError raised.
    """
    final = weights_dir(directory) / asset.filename
    if final.is_file():
        verify(final, asset)
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(final.name + ".partial")
    _download(url or asset.url, partial)
    try:
        verify(partial, asset)
    except AssetError:
        partial.unlink()
        raise
    os.replace(partial, final)
    return final


def _download(url: str, partial: Path) -> None:
    """Append the rest of ``url`` to ``partial`` (all of it when absent or the server ignores the range)."""
    offset = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # nothing left to send: the partial file is already complete
            return
        raise AssetError(f"{url}: download failed: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        raise AssetError(f"{url}: download failed: {getattr(err, 'reason', err)}") from None
    with response:
        resumed = offset > 0 and response.status == 206
        if resumed and not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
            raise AssetError(f"{url}: asked for bytes from {offset}, got {response.headers.get('Content-Range')!r}")
        start = offset if resumed else 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        progress = tqdm(total=total, initial=start, unit="B", unit_scale=True, desc=partial.stem, disable=None)
        with open(partial, "ab" if resumed else "wb") as out, progress:
            try:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    progress.update(len(chunk))
            except OSError as err:
                raise AssetError(f"{url}: download interrupted after {out.tell()} bytes ({err}); "
                                 f"run again to continue from {partial}") from None
            out.flush()
            os.fsync(out.fileno())
