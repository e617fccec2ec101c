"""Download and unpack the benchmark datasets: resumable, checksum-verified, never using a bad file.

Archives go to ``<cache_dir>/downloads`` (``$COLORBENCH_CACHE/downloads``, else
``~/.cache/colorbench/downloads``).  A transfer writes ``<file>.part`` and, after an
interruption, continues it with an HTTP Range request.  Only a complete file that passes
its check is renamed to ``<file>``: the MD5 published for the archive, or, for the pix2pix
facades archive, which has no published checksum, a full read of the gzip stream (its
CRC-32 and length).  A file that fails the check is deleted and an error says so.  Unpacking
goes through a temporary folder inside the dataset root, so an interrupted unpack leaves
no half-complete dataset behind.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from tqdm import tqdm

from bench.data.errors import DatasetError

CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60


@dataclass(frozen=True)
class Archive:
    """One downloadable archive of a dataset.

    ``md5`` is the published checksum (None: checked by its own CRCs); unpacking creates
    ``provides`` (a path relative to the dataset root); ``inner`` is the folder inside the
    archive whose contents belong in the root (None: the archive's top level).
    """

    url: str
    md5: str | None
    provides: str
    inner: str | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


ARCHIVES: dict[str, tuple[Archive, ...]] = {
    "coco2017": (
        Archive("http://images.cocodataset.org/zips/train2017.zip", "cced6f7f71b7629ddf16f17bbcfab6b2", "train2017"),
        Archive("http://images.cocodataset.org/zips/val2017.zip", "442b8da7639aecaf257c1dceb8ba8c80", "val2017"),
    ),
    # The URL and MD5 of torchvision.datasets.Country211; it unpacks to the country211/ folder that class reads.
    "country211": (
        Archive("https://openaipublic.azureedge.net/clip/data/country211.tgz", "84988d7644798601126c29e9877aab6a",
                "country211"),
    ),
    "facades": (
        Archive("http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz", None, "train", inner="facades"),
    ),
}


def download_dataset(dataset: str, root: Path, downloads: Path) -> None:
    """Unpack into ``root`` each archive of ``dataset`` whose content is missing, downloaded to ``downloads``."""
    for archive in ARCHIVES[dataset]:
        if not (root / archive.provides).exists():
            unpack(fetch(archive, downloads), archive, root)


def fetch(archive: Archive, directory: Path) -> Path:
    """``directory/<archive file>``, downloaded or resumed as needed and checked.

    A file under the final name passed its check before it was renamed, so it is used as is.
    Raises DatasetError when the transfer stops early (run again to resume) or the check fails.
    """
    target = directory / archive.filename
    if target.is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    _transfer(archive.url, part)
    try:
        verify(part, archive)
    except DatasetError as err:
        part.unlink()
        raise DatasetError(f"{err}; the download is corrupt or truncated and was deleted, run again") from None
    os.replace(part, target)
    return target


def verify(path: Path, archive: Archive) -> None:
    """Raise DatasetError unless ``path`` has the archive's MD5, or, without one, reads through cleanly."""
    if archive.md5 is None:
        _check_readable(path)
        return
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file, tqdm(total=path.stat().st_size, desc=f"checking {path.name}", unit="B",
                                         unit_scale=True, unit_divisor=1024, disable=None) as bar:
        for chunk in iter(lambda: file.read(CHUNK_BYTES), b""):
            digest.update(chunk)
            bar.update(len(chunk))
    if digest.hexdigest() != archive.md5:
        raise DatasetError(f"{path}: MD5 {digest.hexdigest()} differs from {archive.md5} published for {archive.url}")


def unpack(path: Path, archive: Archive, root: Path) -> None:
    """Extract ``path`` into ``root``; ``archive.provides`` appears last, once everything else is in place."""
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".unpacking-") as scratch:
        _extract(path, Path(scratch))
        top = Path(scratch) / archive.inner if archive.inner else Path(scratch)
        if not (top / archive.provides).exists():
            raise DatasetError(f"{path}: holds no {Path(archive.inner or '') / archive.provides}")
        for entry in sorted(top.iterdir(), key=lambda entry: entry.name == archive.provides):
            if not (root / entry.name).exists():
                os.replace(entry, root / entry.name)


def _transfer(url: str, part: Path) -> None:
    """Download ``url`` into ``part``, continuing a partial file with a Range request where the server allows."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = urlopen(Request(url, headers={"Range": f"bytes={offset}-"} if offset else {}), timeout=TIMEOUT_S)
    except HTTPError as err:
        if err.code == 416 and offset:  # nothing left to send: the part is whole, or longer; the check decides
            return
        raise DatasetError(f"download {url}: HTTP {err.code} {err.reason}") from None
    except (URLError, OSError) as err:
        raise DatasetError(f"download {url}: {getattr(err, 'reason', err)}; check the address or the network") from None
    with response:
        resumed = offset > 0 and response.status == 206
        if resumed and not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
            raise DatasetError(f"download {url}: asked for bytes from {offset}, server sent "
                               f"{response.headers.get('Content-Range')!r}")
        start = offset if resumed else 0  # a plain 200 answer is the whole file: start again
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        with open(part, "ab" if resumed else "wb") as file, tqdm(
                total=total, initial=start, desc=f"downloading {part.name[:-len('.part')]}", unit="B",
                unit_scale=True, unit_divisor=1024, disable=None) as bar:
            try:
                for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                    file.write(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as err:
                raise DatasetError(f"download {url}: interrupted after {file.tell()} bytes ({err}); "
                                   "run again to resume") from None
    size = part.stat().st_size
    if total is not None and size < total:  # the connection closed early (urllib does not raise for that)
        raise DatasetError(f"download {url}: stopped at {size} of {total} bytes; run again to resume")


def _check_readable(path: Path) -> None:
    """Read a .zip's or a gzip stream's data through, which checks its CRC-32s (and gzip's length)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"bad CRC-32 for {bad}")
        else:
            with gzip.open(path) as stream:
                while stream.read(CHUNK_BYTES):
                    pass
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as err:
        raise DatasetError(f"{path}: damaged or truncated archive ({err})") from None


def _extract(path: Path, destination: Path) -> None:
    """Extract a .zip or a (compressed) tar archive, refusing members that would land outside ``destination``."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:  # extract() sanitises member names
                for member in tqdm(archive.infolist(), desc=f"unpacking {path.name}", unit="file", disable=None):
                    archive.extract(member, destination)
        else:
            with tarfile.open(path) as archive:
                for member in tqdm(archive, desc=f"unpacking {path.name}", unit="file", disable=None):
                    if hasattr(tarfile, "data_filter"):
                        archive.extract(member, destination, filter="data")
                    else:  # Python 3.10 before 3.10.12, 3.11 before 3.11.4: no extraction filters
                        archive.extract(_checked_member(member, destination), destination, set_attrs=False)
    except (OSError, EOFError, zlib.error, tarfile.TarError, zipfile.BadZipFile) as err:
        raise DatasetError(f"{path}: cannot unpack ({err})") from None


def _checked_member(member: tarfile.TarInfo, destination: Path) -> tarfile.TarInfo:
    """What tarfile's ``data`` filter refuses, for Pythons without it: members and links that would land outside
    ``destination``, and anything but files, folders and links (devices, FIFOs).  The caller extracts without
    owners, permissions and times (``set_attrs=False``), as the filter's data mode ignores them too."""
    root = destination.resolve()
    target = (root / member.name).resolve()
    if Path(member.name).is_absolute() or not target.is_relative_to(root):
        raise tarfile.TarError(f"member {member.name!r} would be extracted outside {destination}")
    if member.issym() or member.islnk():
        base = target.parent if member.issym() else root
        link = Path(member.linkname)
        if link.is_absolute() or not (base / link).resolve().is_relative_to(root):
            raise tarfile.TarError(f"member {member.name!r} links outside {destination} (to {member.linkname!r})")
    elif not (member.isfile() or member.isdir()):
        raise tarfile.TarError(f"member {member.name!r} is a special file")
    return member
