"""Downloads against a local HTTP server on 127.0.0.1: resume, checksums, damaged archives, unpacking."""
from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_datasets import make_country211, make_facades

import bench.data.download as download
from bench.cli import main
from bench.data import DatasetError
from bench.data.download import Archive, fetch, unpack


class _Handler(BaseHTTPRequestHandler):
    """GET of the server's in-memory files, honouring ``Range: bytes=N-`` unless ``ranges`` is off."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        server = self.server
        data = server.files.get(self.path.lstrip("/"))
        server.requests.append((self.path, self.headers.get("Range")))
        if data is None:
            self.send_error(404)
            return
        start = 0
        if self.headers.get("Range") and server.ranges:
            start = int(self.headers["Range"].removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = server.cut_after.pop(self.path.lstrip("/"), None)
        self.wfile.write(body if cut is None else body[:cut])  # a cut drops the connection mid-body

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.requests, httpd.cut_after, httpd.ranges = {}, [], {}, True
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def tar_gz(folder: Path, arcname: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(folder, arcname=arcname)
    return buffer.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture(scope="module")
def country211_tgz(tmp_path_factory) -> bytes:
    tree = make_country211(tmp_path_factory.mktemp("c211"), per_class=2)
    return tar_gz(tree / "country211", "country211")


def serve(server, name: str, data: bytes, checksum: str | None = "auto", provides: str = "country211",
          inner: str | None = None) -> Archive:
    server.files[name] = data
    return Archive(f"{server.url}/{name}", md5(data) if checksum == "auto" else checksum, provides, inner)


def test_download_prepare_country211_end_to_end(server, country211_tgz, tmp_path, monkeypatch, capsys):
    archive = serve(server, "country211.tgz", country211_tgz)
    monkeypatch.setitem(download.ARCHIVES, "country211", (archive,))
    root, cache = tmp_path / "datasets" / "c211", tmp_path / "cache"
    args = ["data", "prepare", "country211", "--download", "--root", str(root), "--size", "32",
            "--cache-dir", str(cache)]
    assert main(args) == 0
    assert "train       4 images of 36x36; skipped 0" in capsys.readouterr().out
    assert (cache / "downloads" / "country211.tgz").read_bytes() == country211_tgz
    assert sorted(p.name for p in root.iterdir()) == ["country211"]  # no scratch folder left behind
    assert len(server.requests) == 1
    assert main(args) == 0  # present: nothing is downloaded again
    assert len(server.requests) == 1


def test_downloads_go_to_the_cache_named_by_the_environment(server, country211_tgz, tmp_path, monkeypatch):
    archive = serve(server, "country211.tgz", country211_tgz)
    monkeypatch.setitem(download.ARCHIVES, "country211", (archive,))
    monkeypatch.setenv("COLORBENCH_CACHE", str(tmp_path / "env"))
    assert main(["data", "prepare", "country211", "--download", "--size", "32"]) == 0
    assert (tmp_path / "env" / "downloads" / "country211.tgz").is_file()
    assert (tmp_path / "env" / "datasets" / "country211" / "country211" / "train").is_dir()


def test_interrupted_download_resumes_with_a_range_request(server, country211_tgz, tmp_path):
    archive = serve(server, "country211.tgz", country211_tgz)
    server.cut_after["country211.tgz"] = 1000
    with pytest.raises(DatasetError, match=rf"stopped at 1000 of {len(country211_tgz)} bytes; run again to resume"):
        fetch(archive, tmp_path)
    assert (tmp_path / "country211.tgz.part").stat().st_size == 1000
    assert not (tmp_path / "country211.tgz").exists()
    path = fetch(archive, tmp_path)
    assert server.requests[-1] == ("/country211.tgz", "bytes=1000-")
    assert path.read_bytes() == country211_tgz and not (tmp_path / "country211.tgz.part").exists()


def test_a_server_ignoring_ranges_gets_the_download_restarted(server, country211_tgz, tmp_path):
    archive = serve(server, "country211.tgz", country211_tgz)
    server.cut_after["country211.tgz"] = 1000
    with pytest.raises(DatasetError, match="run again to resume"):
        fetch(archive, tmp_path)
    server.ranges = False
    assert fetch(archive, tmp_path).read_bytes() == country211_tgz


def test_a_complete_part_file_is_checked_and_used(server, country211_tgz, tmp_path):
    archive = serve(server, "country211.tgz", country211_tgz)
    (tmp_path / "country211.tgz.part").write_bytes(country211_tgz)  # stopped between transfer and check
    assert fetch(archive, tmp_path).read_bytes() == country211_tgz
    assert server.requests == [("/country211.tgz", f"bytes={len(country211_tgz)}-")]  # answered 416


@pytest.mark.parametrize("damage", ["truncated", "flipped byte"])
def test_a_damaged_download_fails_its_checksum_and_is_deleted(server, country211_tgz, tmp_path, damage):
    served = (country211_tgz[:len(country211_tgz) // 2] if damage == "truncated"
              else country211_tgz[:500] + bytes([country211_tgz[500] ^ 1]) + country211_tgz[501:])
    archive = serve(server, "country211.tgz", served, checksum=md5(country211_tgz))
    with pytest.raises(DatasetError, match=rf"MD5 {md5(served)} differs from {md5(country211_tgz)} published for "
                                           r".*country211.tgz; the download is corrupt or truncated and was deleted"):
        fetch(archive, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_damaged_download_never_reaches_the_dataset_root(server, country211_tgz, tmp_path, monkeypatch, capsys):
    archive = serve(server, "country211.tgz", country211_tgz[:-100], checksum=md5(country211_tgz))
    monkeypatch.setitem(download.ARCHIVES, "country211", (archive,))
    root = tmp_path / "c211"
    assert main(["data", "prepare", "country211", "--download", "--root", str(root),
                 "--cache-dir", str(tmp_path / "cache")]) == 2
    assert "the download is corrupt or truncated and was deleted" in capsys.readouterr().err
    assert not root.exists() and list((tmp_path / "cache" / "downloads").iterdir()) == []


@pytest.fixture(scope="module")
def facades_tar(tmp_path_factory) -> bytes:
    """pix2pix's facades.tar.gz layout: facades/{train,val,test}/<n>.png."""
    tree = make_facades(tmp_path_factory.mktemp("f") / "facades", n_train=3, n_test=2)
    return tar_gz(tree, "facades")


def test_archive_without_published_checksum_is_read_through(server, facades_tar, tmp_path, monkeypatch):
    archive = serve(server, "facades.tar.gz", facades_tar, checksum=None, provides="train", inner="facades")
    monkeypatch.setitem(download.ARCHIVES, "facades", (archive,))
    root = tmp_path / "facades"
    assert main(["data", "prepare", "facades", "--download", "--root", str(root), "--size", "32",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    assert sorted(p.name for p in root.iterdir()) == ["test", "train", "val"]  # the archive's facades/ is the root


@pytest.mark.parametrize("cut", [0.5, 0.99])
def test_truncated_archive_without_checksum_is_detected(server, facades_tar, tmp_path, cut):
    archive = serve(server, "facades.tar.gz", facades_tar[:int(len(facades_tar) * cut)], checksum=None,
                    provides="train", inner="facades")
    with pytest.raises(DatasetError, match="damaged or truncated archive .*the download is corrupt or truncated "
                                           "and was deleted"):
        fetch(archive, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_http_errors_and_unreachable_servers_are_dataset_errors(server, tmp_path):
    with pytest.raises(DatasetError, match=r"download http://127\.0\.0\.1:\d+/absent.tgz: HTTP 404"):
        fetch(Archive(f"{server.url}/absent.tgz", None, "x"), tmp_path)
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    with pytest.raises(DatasetError, match="check the address or the network"):
        fetch(Archive(f"http://127.0.0.1:{port}/a.tgz", None, "x"), tmp_path)


def test_unpack_refuses_members_outside_the_root(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        member = tarfile.TarInfo("../escaped.txt")
        member.size = 2
        archive.addfile(member, io.BytesIO(b"hi"))
    (tmp_path / "evil.tar.gz").write_bytes(buffer.getvalue())
    with pytest.raises(DatasetError, match="cannot unpack"):
        unpack(tmp_path / "evil.tar.gz", Archive("http://x/evil.tar.gz", None, "data"), tmp_path / "root")
    assert not (tmp_path / "escaped.txt").exists()


def test_unpack_of_an_archive_without_the_expected_folder_is_an_error(tmp_path, facades_tar):
    (tmp_path / "facades.tar.gz").write_bytes(facades_tar)
    with pytest.raises(DatasetError, match="holds no facades/photos"):
        unpack(tmp_path / "facades.tar.gz", Archive("http://x/facades.tar.gz", None, "photos", inner="facades"),
               tmp_path / "root")
    assert list((tmp_path / "root").iterdir()) == []  # the scratch folder is gone too


def test_every_benchmark_dataset_has_its_archives():
    from torchvision.datasets import Country211

    from bench.data import BENCHMARK_DATASETS
    assert set(download.ARCHIVES) == set(BENCHMARK_DATASETS)
    published = {a.filename: a.md5 for archives in download.ARCHIVES.values() for a in archives}
    assert published == {"train2017.zip": "cced6f7f71b7629ddf16f17bbcfab6b2",
                         "val2017.zip": "442b8da7639aecaf257c1dceb8ba8c80",
                         "country211.tgz": Country211._MD5, "facades.tar.gz": None}
    assert download.ARCHIVES["country211"][0].url == Country211._URL
