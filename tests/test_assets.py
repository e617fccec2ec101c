"""Weight files: the asset table, where they are looked for, and downloads from a local HTTP server."""
import hashlib
import http.server
import re
import threading

import pytest
import torch
import torchvision
from pytorch_fid.inception import FID_WEIGHTS_URL

import bench.training.train  # noqa: F401  (the CLI's commands import it; loaded before a test swaps the asset table)
from bench.cli import main
from bench.data import assets
from bench.data.assets import Asset, AssetError, asset_path, fetch, status, weights_dir

CONTENT = bytes(range(256)) * 4099  # about 1 MB, a little more than one download chunk
SHA256 = hashlib.sha256(CONTENT).hexdigest()


class Server:
    """A local HTTP server on 127.0.0.1 serving ``files`` (name -> bytes), with optional Range support."""

    def __init__(self, files: dict[str, bytes], ranges: bool = True) -> None:
        self.files, self.ranges, self.requests = files, ranges, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                server.requests.append((self.path, self.headers.get("Range")))
                body = server.files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if match and server.ranges:
                    start = int(match.group(1))
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                    body = body[start:]
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    running = Server({"weights-1234abcd.pth": CONTENT})
    yield running
    running.close()


def test_asset_table_matches_the_libraries():
    assert assets.ASSETS["fid_inception"].url == FID_WEIGHTS_URL
    assert assets.ASSETS["resnet18"].url == torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    assert assets.ASSETS["alexnet"].url == torchvision.models.AlexNet_Weights.IMAGENET1K_V1.url
    for asset in assets.ASSETS.values():  # every file name carries the first 8 hex digits of its sha256
        assert re.search(r"-([0-9a-f]{8})\.pth$", asset.filename).group(1) == asset.sha256[:8]
    assert all(len(asset.sha256) == 64 for asset in assets.ASSETS.values())  # the full digest, never a prefix


def test_weights_are_looked_for_in_the_torch_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert weights_dir() == tmp_path / "torch" / "hub" / "checkpoints"
    assert asset_path("alexnet") == tmp_path / "torch" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    assert asset_path("fid_inception", tmp_path / "w") == tmp_path / "w" / "pt_inception-2015-12-05-6726825d.pth"
    assert [(a.name, present) for a, _, present in status(tmp_path / "w")] == \
        [("fid_inception", False), ("resnet18", False), ("alexnet", False)]


def test_fetch_downloads_and_verifies(server, tmp_path):
    asset = Asset("w", f"{server.url}/weights-1234abcd.pth", SHA256, "test")
    path = fetch(asset, tmp_path / "dest")
    assert path == tmp_path / "dest" / "weights-1234abcd.pth" and path.read_bytes() == CONTENT
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == ["weights-1234abcd.pth"]
    assert fetch(asset, tmp_path / "dest") == path and len(server.requests) == 1  # present and verified: no request


def test_fetch_continues_an_interrupted_download(server, tmp_path):
    (tmp_path / "weights-1234abcd.pth.partial").write_bytes(CONTENT[:300_000])
    path = fetch(Asset("w", f"{server.url}/weights-1234abcd.pth", SHA256, "test"), tmp_path)
    assert path.read_bytes() == CONTENT
    assert server.requests == [("/weights-1234abcd.pth", "bytes=300000-")]
    assert not (tmp_path / "weights-1234abcd.pth.partial").exists()


def test_fetch_restarts_when_the_server_ignores_the_range(tmp_path):
    running = Server({"weights-1234abcd.pth": CONTENT}, ranges=False)
    try:
        (tmp_path / "weights-1234abcd.pth.partial").write_bytes(b"garbage from another file")
        path = fetch(Asset("w", f"{running.url}/weights-1234abcd.pth", SHA256, "test"), tmp_path)
    finally:
        running.close()
    assert path.read_bytes() == CONTENT


def test_fetch_finishes_a_partial_file_that_is_already_complete(server, tmp_path):
    (tmp_path / "weights-1234abcd.pth.partial").write_bytes(CONTENT)
    path = fetch(Asset("w", f"{server.url}/weights-1234abcd.pth", SHA256, "test"), tmp_path)
    assert path.read_bytes() == CONTENT and server.requests[0][1] == f"bytes={len(CONTENT)}-"


def test_a_mismatching_download_is_deleted_and_named(server, tmp_path):
    wrong = "0" * 64
    with pytest.raises(AssetError, match=f"weights-1234abcd.pth.partial: sha256 {SHA256} does not match w's {wrong}"):
        fetch(Asset("w", f"{server.url}/weights-1234abcd.pth", wrong, "test"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_mismatching_file_in_place_is_reported(server, tmp_path):
    (tmp_path / "weights-1234abcd.pth").write_bytes(b"old")
    with pytest.raises(AssetError, match="weights-1234abcd.pth: sha256 .* does not match"):
        fetch(Asset("w", f"{server.url}/weights-1234abcd.pth", SHA256, "test"), tmp_path)
    assert server.requests == []


def test_http_and_connection_errors_name_the_url(server, tmp_path):
    with pytest.raises(AssetError, match=f"{server.url}/missing.pth: download failed: HTTP 404"):
        fetch(Asset("w", f"{server.url}/missing.pth", SHA256, "test"), tmp_path)
    server.close()
    with pytest.raises(AssetError, match="weights-1234abcd.pth: download failed"):
        fetch(Asset("w", f"{server.url}/weights-1234abcd.pth", SHA256, "test"), tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def small_asset_table(monkeypatch):
    """Two small assets in place of the real table (whose files are far too big for a test)."""
    files = {"a-1234abcd.pth": CONTENT, "b-5678abcd.pth": CONTENT[::-1]}
    table = {name: Asset(name, f"https://example.invalid/{filename}", hashlib.sha256(body).hexdigest(), "test")
             for name, (filename, body) in zip(("a", "b"), files.items())}
    monkeypatch.setattr(assets, "ASSETS", table)
    return files


def test_cli_fetch_and_status(small_asset_table, tmp_path, capsys):
    running = Server(small_asset_table)
    try:
        assert main(["assets", "status", "--dir", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert f"absent   {tmp_path / 'a-1234abcd.pth'}" in out and "b-5678abcd.pth" in out
        assert main(["assets", "fetch", "--dest", str(tmp_path), "--base-url", running.url + "/"]) == 0
        assert (tmp_path / "b-5678abcd.pth").read_bytes() == CONTENT[::-1]
        assert main(["assets", "status", "--dir", str(tmp_path), "--verify"]) == 0
        assert capsys.readouterr().out.count("present, sha256 ok") == 2
        (tmp_path / "a-1234abcd.pth").write_bytes(b"tampered")
        assert main(["assets", "status", "--dir", str(tmp_path), "--verify"]) == 1
        assert "present, sha256 MISMATCH" in capsys.readouterr().out
        assert main(["assets", "fetch", "a", "--dest", str(tmp_path), "--base-url", running.url]) == 1
        assert "a-1234abcd.pth: sha256" in capsys.readouterr().err
    finally:
        running.close()


def test_cli_fetch_rejects_unknown_names(small_asset_table, tmp_path, capsys):
    assert main(["assets", "fetch", "inception", "--dest", str(tmp_path)]) == 2
    assert "assets fetch: unknown inception; allowed: a, b" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["assets"], ["assets", "fetch"], ["assets", "status"], ["eval"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0 and "usage: colorbench" in capsys.readouterr().out


def test_a_hub_file_is_what_pretrained_encoders_load(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    from bench.models.resnet_unet import default_weights_path
    assert default_weights_path() == tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert torch.hub.get_dir() == str(tmp_path / "hub")
