"""GRID downloader against a local HTTP server (127.0.0.1, random port, Range support)."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from autalk.cli import main as cli_main
from autalk.corpus.align import Segment, format_align, read_align, words_of
from autalk.corpus.grammar import words_from_id
from autalk.data.readers import list_clips
from autalk.download import DownloadError, download_grid, fetch, grid_urls, verify_archive
from autalk.media import write_video

IDS = {"s1": ["bbaf2n", "lgir8n"], "s2": ["pwij3a", "srbv5s"], "s3": ["lbiu6n", "sgbz1p"], "s4": ["bgaa1a"]}


class Server:
    """Serves ``files`` (path -> bytes). ``short[path] = n``: the next n answers send half the body."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.short: dict[str, int] = {}
        self.log: list[tuple[str, str | None]] = []
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802 (http.server API)
                path = self.path.split("?")[0]
                rng = self.headers.get("Range")
                srv.log.append((path, rng))
                body = srv.files.get(path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start, status = 0, 200
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    status = 206
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                payload = body[start:]
                if srv.short.get(path, 0) > 0:
                    srv.short[path] -= 1
                    payload = payload[: len(payload) // 2]
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _align(cid: str) -> bytes:
    words = words_from_id(cid)
    segs = [Segment(0.0, 0.2, "sil")]
    segs += [Segment(0.2 + 0.1 * i, 0.3 + 0.1 * i, w) for i, w in enumerate(words)]
    return format_align(segs).encode()


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def _tar(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def mpg(tmp_path_factory) -> bytes:
    p = tmp_path_factory.mktemp("mpg") / "clip.mpg"
    frames = np.random.default_rng(0).integers(0, 255, size=(5, 32, 48, 3), dtype=np.uint8)
    write_video(p, frames, fps=25)
    return p.read_bytes()


@pytest.fixture()
def server(mpg):
    srv = Server()
    # Zenodo-like: per-speaker video zips, one alignments.zip for everybody whose s1/s2 folders are swapped.
    for spk in ("s1", "s2", "s3"):
        srv.files[f"/files/{spk}.zip"] = _zip({f"{spk}/{cid}.mpg": mpg for cid in IDS[spk]})
    aligns = {f"alignments/s1/{cid}.align": _align(cid) for cid in IDS["s2"]}
    aligns |= {f"alignments/s2/{cid}.align": _align(cid) for cid in IDS["s1"]}
    aligns |= {f"alignments/s3/{cid}.align": _align(cid) for cid in IDS["s3"]}
    aligns |= {f"alignments/s4/{cid}.align": _align(cid) for cid in IDS["s4"]}
    aligns["__MACOSX/alignments/s1/._bbaf2n.align"] = b"junk"
    srv.files["/files/alignments.zip"] = _zip(aligns)
    # s4 as an uncompressed tar that is cut short (Content-Length matches the cut file).
    full = _tar({f"s4/{cid}.mpg": mpg for cid in IDS["s4"]})
    srv.files["/files/s4.zip"] = full[: len(full) // 2]
    yield srv
    srv.close()


def _dl(srv: Server, out: Path, speakers, **kw):
    kw.setdefault("retries", 0)
    return download_grid(speakers, out, base_url=srv.url + "/files", progress=False, log=lambda m: None, **kw)


def test_download_unpacks_verifies_and_skips(server, tmp_path):
    out = tmp_path / "grid"
    status = _dl(server, out, ["s1", "2", "s21"])
    assert status == {"s1": "downloaded", "s2": "downloaded", "s21": "skipped (no video in GRID)"}
    for spk in ("s1", "s2"):
        assert sorted(p.stem for p in (out / spk / "video").glob("*.mpg")) == IDS[spk]
        # the swapped folders of alignments.zip were matched to the videos by id
        assert sorted(p.stem for p in (out / spk / "align").glob("*.align")) == IDS[spk]
        marker = json.loads((out / spk / ".autalk_download.json").read_text())
        assert set(marker["parts"]) == {"video", "align"}
        assert any("folder" in n for n in marker["parts"]["align"]["notes"])
    assert not (out / "s1" / "align" / "._bbaf2n.align").exists()
    assert not list(out.glob(".staging-*"))
    assert not (out / ".downloads" / "s1.zip").exists()  # per-speaker archive removed after unpacking
    assert (out / ".downloads" / "alignments.zip").exists()  # shared archive kept for other speakers
    # the readers accept the result, aligns match the ids
    clips, problems = list_clips("grid", out)
    assert [c.key for c in clips] == ["s1/bbaf2n", "s1/lgir8n", "s2/pwij3a", "s2/srbv5s"] and problems == []
    assert all(words_of(read_align(c.align)) == words_from_id(c.clip_id) for c in clips)
    # rerun: complete speakers are skipped without any request
    n = len(server.log)
    assert _dl(server, out, ["s1", "s2"]) == {"s1": "skipped (complete)", "s2": "skipped (complete)"}
    assert len(server.log) == n


def test_video_refetched_when_quality_changes(server, tmp_path):
    out = tmp_path / "grid"
    assert _dl(server, out, ["s1"]) == {"s1": "downloaded"}
    marker = out / "s1" / ".autalk_download.json"
    record = json.loads(marker.read_text())
    assert record["quality"] == "normal"
    record["quality"] = "high"  # as if an earlier run had fetched the other video quality
    marker.write_text(json.dumps(record))
    n = len(server.log)
    assert _dl(server, out, ["s1"]) == {"s1": "downloaded"}
    assert len(server.log) > n, "the video archive was not requested again"
    assert json.loads(marker.read_text())["quality"] == "normal"
    assert _dl(server, out, ["s1"]) == {"s1": "skipped (complete)"}


def test_short_transfer_then_resume_with_range(server, tmp_path):
    out = tmp_path / "grid"
    server.short["/files/s3.zip"] = 1
    with pytest.raises(DownloadError, match=r"s3\.zip.*truncated: received \d+ of \d+ bytes"):
        _dl(server, out, ["s3"])
    part = out / ".downloads" / "s3.zip.part"
    assert part.exists() and 0 < part.stat().st_size < len(server.files["/files/s3.zip"])
    assert not (out / "s3").exists() and not list(out.glob(".staging-*"))  # nothing half-unpacked
    size = part.stat().st_size
    assert _dl(server, out, ["s3"]) == {"s3": "downloaded"}
    assert ("/files/s3.zip", f"bytes={size}-") in server.log
    assert sorted(p.stem for p in (out / "s3" / "video").glob("*.mpg")) == IDS["s3"]


def test_retry_resumes_within_one_run(server, tmp_path, monkeypatch):
    monkeypatch.setattr("autalk.download.RETRY_DELAY", 0.0)
    server.short["/files/s3.zip"] = 1
    assert _dl(server, tmp_path / "g", ["s3"], retries=1) == {"s3": "downloaded"}
    assert any(p == "/files/s3.zip" and r for p, r in server.log)


def test_truncated_archive_is_rejected_cleanly(server, tmp_path):
    out = tmp_path / "grid"
    with pytest.raises(DownloadError, match=r"s4\.zip.*(truncated|corrupt)"):
        _dl(server, out, ["s4"])
    assert not (out / "s4").exists() and not list(out.glob(".staging-*"))
    assert not (out / ".downloads" / "s4.zip").exists()  # never reused


def test_network_errors_name_the_url(server, tmp_path):
    msg = r"cannot download http://127\.0\.0\.1:\d+/files/s5\.zip\S*: HTTP 404"
    with pytest.raises(DownloadError, match=msg):
        _dl(server, tmp_path / "g", ["s5"])
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/files/s1.zip"
    with pytest.raises(DownloadError, match=f"cannot download {url}"):
        fetch(url, tmp_path / "x.zip", retries=0, progress=False, log=lambda m: None)


def test_checksum_from_metadata(server, tmp_path):
    good = hashlib.md5(server.files["/files/s1.zip"]).hexdigest()
    server.files["/api"] = json.dumps({"files": [
        {"key": "s1.zip", "size": len(server.files["/files/s1.zip"]), "checksum": f"md5:{good}"},
        {"key": "alignments.zip", "size": 10, "checksum": "md5:0"},
    ]}).encode()
    with pytest.raises(DownloadError, match="alignments.zip.*record lists 10"):
        _dl(server, tmp_path / "g", ["s1"], metadata_url=server.url + "/api")
    assert (tmp_path / "g" / ".downloads").exists() and not (tmp_path / "g" / "s1").exists()
    with pytest.raises(DownloadError, match="checksum mismatch"):
        _dl(server, tmp_path / "h", ["s1"], checksums={"s1.zip": "md5:" + "0" * 32})


def test_verify_archive_detects_cut_tar_at_member_boundary(tmp_path):
    data = _tar({"a.align": b"x" * 512, "b.align": b"y" * 512})
    p = tmp_path / "a.tar"
    p.write_bytes(data[: 512 * 2])  # header + data of the first member only, no end blocks
    with pytest.raises(DownloadError, match="end-of-archive"):
        verify_archive(p)
    z = tmp_path / "a.zip"
    z.write_bytes(_zip({"a.align": b"x" * 2000})[:-30])  # central directory cut off
    with pytest.raises(DownloadError, match="corrupt or truncated"):
        verify_archive(z, "http://example/a.zip")


def test_url_table_and_cli(server, tmp_path, capsys):
    u = grid_urls("s7", "sheffield", audio=True, quality="high")
    assert u["video"][0][0] == "https://spandh.dcs.shef.ac.uk/gridcorpus/s7/video/s7.mpg_6000.part1.tar"
    assert u["align"] == [("https://spandh.dcs.shef.ac.uk/gridcorpus/s7/align/s7.tar", False)]
    z = grid_urls("s7")
    assert z["video"] == [("https://zenodo.org/records/3625687/files/s7.zip?download=1", False)]
    assert z["align"][0][1] is True and "audio" not in z
    with pytest.raises(ValueError, match="no 'high' video"):
        grid_urls("s7", "zenodo", quality="high")
    out = tmp_path / "grid"
    argv = ["download", "grid", "--speakers", "s1", "--out", str(out), "--base-url", server.url + "/files",
            "--quiet", "--retries", "0"]
    assert cli_main(argv) == 0
    assert (out / "s1" / "video" / "bbaf2n.mpg").exists()
    assert cli_main(["download", "grid", "--speakers", "s4", "--out", str(out), "--base-url",
                     server.url + "/files", "--quiet", "--retries", "0"]) == 1
    assert "s4.zip" in capsys.readouterr().err
    assert cli_main(["download", "tcd"]) == 2
    assert "registration" in capsys.readouterr().err
