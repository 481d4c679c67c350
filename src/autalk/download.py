"""Download the GRID corpus into the layout :mod:`autalk.data.readers` expects.

    <out>/sN/video/<id>.mpg     <out>/sN/align/<id>.align     <out>/sN/audio/<id>.wav  (with --audio)

GRID (Cooke, Barker, Cunningham, Shao 2006) is distributed under CC BY 4.0 by the University of
Sheffield and, with a DOI, on Zenodo (record 3625687). Both are described in :data:`GRID_SOURCES`, a table
of URL templates relative to a base URL; ``{speaker}`` is replaced by ``s1``..``s34``. A template without
``{speaker}`` is an archive of all speakers (Zenodo's ``alignments.zip`` and ``audio_25k.zip``): it is
downloaded once into ``<out>/.downloads/`` and kept, and only the speaker's files are taken from it.

Every archive is verified before anything is unpacked: the byte count against ``Content-Length`` (or
``Content-Range``), the size and checksum published in the Zenodo record metadata when it can be read
(``checksums`` for any other known values), and the archive structure itself (``zipfile.testzip`` CRCs;
every tar member read to the end, gzip CRC, tar end-of-archive blocks). Interrupted transfers are kept
as ``<name>.part`` and resumed with an HTTP ``Range`` request on the next attempt or the next run.

A speaker is unpacked into ``<out>/.staging-sN`` and moved into place only when all its archives are
good; ``<out>/sN/.autalk_download.json`` is written last and lists the parts that are complete, so a rerun
skips them. Alignment/audio folders of an all-speaker archive are matched to the speaker by file ids
(Zenodo's ``alignments.zip`` files several speakers' folders under the wrong name): the folder whose ids
cover the speaker's videos is used, and the switch is reported.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import re
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from autalk import __version__
from autalk.fsutil import atomic_write_text

# URL templates relative to ``base_url``. "video" is keyed by quality; every entry is a list of archives
# (Sheffield's high-quality video comes in two parts).
GRID_SOURCES: dict[str, dict] = {
    "zenodo": {
        "base_url": "https://zenodo.org/records/3625687/files",
        "metadata_url": "https://zenodo.org/api/records/3625687",
        "video": {"normal": ["{speaker}.zip?download=1"]},
        "align": ["alignments.zip?download=1"],
        "audio": ["audio_25k.zip?download=1"],
        "notes": "DOI 10.5281/zenodo.3625687. Per-speaker video zips (sN/<id>.mpg); alignments.zip and "
        "audio_25k.zip hold all speakers (alignments/sN/, audio_25k/sN/).",
    },
    "sheffield": {
        "base_url": "https://spandh.dcs.shef.ac.uk/gridcorpus",
        "metadata_url": None,
        "video": {
            "normal": ["{speaker}/video/{speaker}.mpg_vcd.zip"],
            "high": [
                "{speaker}/video/{speaker}.mpg_6000.part1.tar",
                "{speaker}/video/{speaker}.mpg_6000.part2.tar",
            ],
        },
        "align": ["{speaker}/align/{speaker}.tar"],
        "audio": ["{speaker}/audio/{speaker}.tar"],
        "notes": "The corpus's home page (spandh.dcs.shef.ac.uk/gridcorpus). Everything per speaker; audio "
        "25 kHz ({speaker}_50kHz.tar for 50 kHz).",
    },
}

# Checksums known in advance, by archive file name: {"s1.zip": "md5:..."}. None are hard-coded (we could
# not verify published values offline); Zenodo's are read from the record metadata at download time.
KNOWN_CHECKSUMS: dict[str, str] = {}

GRID_SPEAKERS: tuple[str, ...] = tuple(f"s{i}" for i in range(1, 35) if i != 21)
PART_SUFFIX = {"video": (".mpg",), "align": (".align",), "audio": (".wav",)}
MARKER = ".autalk_download.json"
CHUNK = 1 << 16
RETRY_DELAY = 1.0  # seconds before the first retry; doubles each time (max 30 s)
USER_AGENT = f"autalk/{__version__} (+https://github.com/; GRID downloader)"


class DownloadError(RuntimeError):
    """A download or verification failed; the message names the URL or archive and what to do."""


# ---- HTTP ----------------------------------------------------------------------------------------


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError):
        return f"{type(e.reason).__name__}: {e.reason}"
    return f"{type(e).__name__}: {e}"


def fetch(
    url: str,
    dest: Path,
    *,
    expected_size: int | None = None,
    checksum: str | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming with HTTP Range; verify size/checksum.

    Raises :class:`DownloadError` naming the URL. A short transfer keeps the ``.part`` file, so calling
    again (or rerunning the command) resumes where it stopped.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_error = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(RETRY_DELAY * 2.0 ** (attempt - 1), 30.0))
        offset = part.stat().st_size if part.exists() else 0
        req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        if offset:
            req.add_header("Range", f"bytes={offset}-")
        total: int | None = None
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status = getattr(resp, "status", 200)
                length = resp.headers.get("Content-Length")
                crange = resp.headers.get("Content-Range")
                if offset and status == 206 and crange:
                    m = re.match(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", crange)
                    if not m or int(m.group(1)) != offset:
                        raise DownloadError(f"{url}: server answered Range {offset}- with {crange!r}")
                    total = int(m.group(3)) if m.group(3) != "*" else None
                    mode = "ab"
                    log(f"resuming {dest.name} at {offset} bytes")
                else:
                    if offset:
                        log(f"{url}: server ignored the Range request; restarting {dest.name} from 0")
                    offset, mode = 0, "wb"
                    total = int(length) if length is not None else None
                if total is None and length is not None:
                    total = offset + int(length)
                with open(part, mode) as f, tqdm(
                    total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=dest.name, disable=not progress, leave=False, file=sys.stderr,
                ) as bar:
                    while True:
                        try:
                            chunk = resp.read(CHUNK)
                        except http.client.IncompleteRead as e:
                            f.write(e.partial)
                            break
                        if not chunk:
                            break
                        f.write(chunk)
                        bar.update(len(chunk))
        except urllib.error.HTTPError as e:
            if e.code == 416 and offset:
                cr = e.headers.get("Content-Range", "") if e.headers else ""
                m = re.match(r"bytes\s+\*/(\d+)", cr)
                if m and int(m.group(1)) == offset:  # the .part is already complete
                    total = offset
                else:
                    part.unlink(missing_ok=True)
                    last_error = f"HTTP 416 for Range {offset}-; restarting from scratch"
                    continue
            elif e.code in (408, 429, 500, 502, 503, 504) and attempt < retries:
                last_error = f"HTTP {e.code} {e.reason}"
                continue
            else:
                raise DownloadError(f"cannot download {url}: HTTP {e.code} {e.reason}") from e
        except (http.client.HTTPException, TimeoutError, OSError) as e:  # URLError is an OSError
            last_error = _reason(e)
            if attempt < retries:
                log(f"{url}: {last_error}; retrying ({attempt + 1}/{retries})")
                continue
            got = part.stat().st_size if part.exists() else 0
            keep = f"; {got} bytes kept in {part}, rerun to resume" if got else ""
            raise DownloadError(f"cannot download {url}: {last_error}{keep}") from e

        got = part.stat().st_size if part.exists() else 0
        if expected_size is not None and total is not None and total != expected_size:
            raise DownloadError(f"{url}: server reports {total} bytes, the record lists {expected_size}")
        want = total if total is not None else expected_size
        if want is not None and got < want:
            last_error = f"transfer truncated: received {got} of {want} bytes"
            if attempt < retries:
                log(f"{url}: {last_error}; resuming ({attempt + 1}/{retries})")
                continue
            raise DownloadError(f"cannot download {url}: {last_error}; the partial file {part} is kept "
                                "and a rerun resumes from it")
        if want is not None and got > want:
            part.unlink(missing_ok=True)
            raise DownloadError(f"{url}: received {got} bytes, more than the {want} announced; partial file "
                                "deleted, rerun to download again")
        if want is None:
            log(f"{url}: no Content-Length; size not verified (the archive check still runs)")
        break
    else:  # pragma: no cover - every path above either breaks, continues or raises
        raise DownloadError(f"cannot download {url}: {last_error}")

    checksum = checksum or KNOWN_CHECKSUMS.get(dest.name)
    if checksum:
        algo, _, hexd = checksum.partition(":")
        h = hashlib.new(algo or "md5")
        with open(part, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest().lower() != hexd.lower():
            part.unlink(missing_ok=True)
            raise DownloadError(f"{url}: {algo} checksum mismatch ({h.hexdigest()} != {hexd}); the file was "
                                "deleted, rerun to download again")
    part.replace(dest)
    return dest


def read_metadata(url: str, timeout: float = 30.0) -> dict[str, dict]:
    """Sizes and checksums of a Zenodo record's files: ``{name: {"size": int, "checksum": "md5:..."}}``."""
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        data = json.loads(resp.read().decode())
    files = data.get("files", [])
    if isinstance(files, dict):  # InvenioRDM: {"entries": [...]} or {name: {...}}
        files = files.get("entries", list(files.values()))
        if isinstance(files, dict):
            files = list(files.values())
    out = {}
    for f in files:
        name = f.get("key") or f.get("filename")
        if name:
            out[name] = {"size": f.get("size") or f.get("filesize"), "checksum": f.get("checksum")}
    return out


# ---- archives ------------------------------------------------------------------------------------


def verify_archive(path: Path, url: str = "") -> None:
    """Read a zip/tar archive completely; raise :class:`DownloadError` if it is corrupt or truncated."""
    src = f" from {url}" if url else ""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
                if bad is not None:
                    raise DownloadError(f"{path.name}{src}: CRC error in member {bad!r}")
            return
        with tarfile.open(path, "r:*") as t:
            n = 0
            for m in t:
                n += 1
                if m.isfile():
                    fobj = t.extractfile(m)
                    assert fobj is not None
                    size = 0
                    while block := fobj.read(1 << 20):
                        size += len(block)
                    if size != m.size:
                        raise DownloadError(f"{path.name}{src}: member {m.name!r} is cut short")
            if n == 0:
                raise DownloadError(f"{path.name}{src}: empty archive")
        with open(path, "rb") as f:
            head = f.read(6)
            size = path.stat().st_size
            f.seek(max(0, size - 1024))
            tail = f.read()
        compressed = head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ"))
        # An uncompressed tar ends with (at least) two zero blocks; a cut at a member boundary lacks them.
        if not compressed and (size % 512 or tail.strip(b"\0")):
            raise DownloadError(f"{path.name}{src}: tar archive has no end-of-archive blocks (truncated)")
    except DownloadError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError, ValueError) as e:
        raise DownloadError(f"{path.name}{src} is corrupt or truncated ({type(e).__name__}: {e})") from e


@contextlib.contextmanager
def _members(path: Path) -> Iterator[list[tuple[str, Callable[[], bytes]]]]:
    """``(posix_name, reader)`` of the regular files of a zip or tar archive (open while in the block)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            yield [(i.filename, lambda i=i: z.read(i)) for i in z.infolist() if not i.is_dir()]
        return
    with tarfile.open(path, "r:*") as t:
        yield [(m.name, lambda m=m: t.extractfile(m).read()) for m in t.getmembers() if m.isfile()]  # type: ignore[union-attr]


def _speaker_of(name: str) -> str | None:
    """The nearest ``sN`` folder in a member path (``alignments/s5/bbaf2n.align`` -> ``s5``)."""
    for part in reversed(PurePosixPath(name).parts[:-1]):
        if re.fullmatch(r"s\d+", part):
            return part
    return None


def _relevant(name: str, suffixes: tuple[str, ...]) -> bool:
    p = PurePosixPath(name)
    return (p.suffix.lower() in suffixes and "__MACOSX" not in p.parts and not p.name.startswith("._")
            and ".." not in p.parts)


def _unpack(
    archive: Path, part: str, speaker: str, dest: Path, shared: bool, video_ids: set[str], url: str
) -> tuple[int, str]:
    """Copy the ``part`` files of ``speaker`` from ``archive`` to ``dest``; (count, note)."""
    with _members(archive) as all_members:
        return _unpack_members(all_members, archive, part, speaker, dest, shared, video_ids, url)


def _unpack_members(all_members, archive, part, speaker, dest, shared, video_ids, url) -> tuple[int, str]:
    suffixes = PART_SUFFIX[part]
    members = [(n, r) for n, r in all_members if _relevant(n, suffixes)]
    note = ""
    if shared:
        groups: dict[str, list] = {}
        for n, r in members:
            groups.setdefault(_speaker_of(n) or "", []).append((n, r))
        chosen = speaker
        own = {PurePosixPath(n).stem for n, _ in groups.get(speaker, [])}
        if video_ids and len(own & video_ids) < 0.5 * min(len(video_ids), max(len(own), 1)):
            best = max(groups, key=lambda g: len({PurePosixPath(n).stem for n, _ in groups[g]} & video_ids))
            hits = len({PurePosixPath(n).stem for n, _ in groups[best]} & video_ids)
            if best and best != speaker and hits >= 0.5 * len(video_ids):
                chosen = best
                note = (f"{archive.name}: folder '{best}' holds {speaker}'s {part} files ({hits}/"
                        f"{len(video_ids)} ids match its videos, the '{speaker}' folder "
                        f"{len(own & video_ids)}): used '{best}'")
        members = groups.get(chosen, [])
    if not members:
        raise DownloadError(f"{archive.name} (from {url}) holds no {'/'.join(suffixes)} files for {speaker}")
    dest.mkdir(parents=True, exist_ok=True)
    for n, read in members:
        (dest / PurePosixPath(n).name).write_bytes(read())
    return len(members), note


# ---- GRID ----------------------------------------------------------------------------------------


def _norm_speaker(s: str) -> str:
    m = re.fullmatch(r"[sS]?0*(\d+)", str(s).strip())
    if not m:
        raise ValueError(f"not a GRID speaker id: {s!r} (use s1..s34)")
    n = int(m.group(1))
    if not 1 <= n <= 34:
        raise ValueError(f"GRID has speakers s1..s34, got {s!r}")
    return f"s{n}"


def grid_urls(
    speaker: str,
    source: str = "zenodo",
    base_url: str | None = None,
    audio: bool = False,
    quality: str = "normal",
) -> dict[str, list[tuple[str, bool]]]:
    """``{part: [(url, shared), ...]}`` for one speaker (``shared``: the archive holds all speakers)."""
    if source not in GRID_SOURCES:
        raise ValueError(f"unknown GRID source {source!r}; choose one of {', '.join(GRID_SOURCES)}")
    table = GRID_SOURCES[source]
    if quality not in table["video"]:
        have = ", ".join(table["video"])
        raise ValueError(f"source {source!r} has no {quality!r} video; available: {have}")
    base = (base_url or table["base_url"]).rstrip("/")
    parts = {"video": table["video"][quality], "align": table["align"]}
    if audio:
        parts["audio"] = table["audio"]
    return {
        part: [(f"{base}/{t.format(speaker=speaker)}", "{speaker}" not in t) for t in templates]
        for part, templates in parts.items()
    }


def _local_name(url: str, base: str) -> str:
    rel = url[len(base):] if url.startswith(base) else url.rsplit("/", 1)[-1]
    rel = rel.split("?", 1)[0].strip("/")
    return urllib.request.url2pathname(rel).replace("/", "_").replace("\\", "_") or "archive"


def download_grid(
    speakers: list[str],
    out: str | Path,
    *,
    source: str = "zenodo",
    base_url: str | None = None,
    audio: bool = False,
    quality: str = "normal",
    metadata_url: str | None = None,
    checksums: dict[str, str] | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    keep_archives: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, str]:
    """Download, verify and unpack GRID speakers into ``out``; returns ``{speaker: status}``.

    ``speakers``: ids (``s1``, ``1``) or ``["all"]`` for the 33 speakers with video. ``metadata_url``
    (default: the Zenodo record API when ``source="zenodo"`` and ``base_url`` is not overridden) gives
    sizes and checksums to verify against; if it cannot be read, the download goes on with
    Content-Length and archive checks only, and says so.
    """
    out = Path(out)
    if not speakers:
        raise ValueError("no speakers given (e.g. --speakers s1 s2, or all)")
    if [s.lower() for s in speakers] == ["all"]:
        speakers = list(GRID_SPEAKERS)
    speakers = list(dict.fromkeys(_norm_speaker(s) for s in speakers))
    table = GRID_SOURCES.get(source)
    if table is None:
        raise ValueError(f"unknown GRID source {source!r}; choose one of {', '.join(GRID_SOURCES)}")
    base = (base_url or table["base_url"]).rstrip("/")
    if metadata_url is None and base_url is None:
        metadata_url = table.get("metadata_url")
    out.mkdir(parents=True, exist_ok=True)
    cache = out / ".downloads"
    known: dict[str, dict] = {}
    if metadata_url:
        try:
            known = read_metadata(metadata_url, timeout=timeout)
        except (OSError, ValueError, http.client.HTTPException) as e:
            log(f"could not read checksums from {metadata_url} ({_reason(e)}); verifying by size and archive "
                "structure only")
    sums = dict(KNOWN_CHECKSUMS)
    sums.update({k: v["checksum"] for k, v in known.items() if v.get("checksum")})
    sums.update(checksums or {})

    status: dict[str, str] = {}
    for spk in speakers:
        if spk == "s21":
            log("s21: GRID has no video for speaker s21; skipped")
            status[spk] = "skipped (no video in GRID)"
            continue
        marker = out / spk / MARKER
        previous = json.loads(marker.read_text()) if marker.is_file() else {}
        done = previous.get("parts", {})
        if "video" in done and previous.get("quality", quality) != quality:
            # A finished speaker at another video quality is not what was asked for: fetch the video again.
            log(f"{spk}: video was downloaded at quality {previous['quality']!r}; fetching {quality!r}")
            done = {k: v for k, v in done.items() if k != "video"}
        wanted = grid_urls(spk, source, base, audio, quality)
        todo = [p for p in wanted if p not in done]
        if not todo:
            log(f"{spk}: complete ({', '.join(done)}), skipped")
            status[spk] = "skipped (complete)"
            continue
        staging = out / f".staging-{spk}"
        shutil.rmtree(staging, ignore_errors=True)
        new_parts: dict[str, dict] = {}
        per_speaker_archives: list[Path] = []
        try:
            for part in todo:
                n_files, notes, names = 0, [], []
                for url, shared in wanted[part]:
                    name = _local_name(url, base)
                    info = known.get(name, {})
                    path = cache / name
                    size = info.get("size")
                    if path.is_file() and size is not None and path.stat().st_size != size:
                        path.unlink()  # a stale copy of another size: fetch again
                    if not path.is_file():  # kept from an earlier run (shared, or --keep-archives): reuse
                        fetch(url, path, expected_size=info.get("size"), checksum=sums.get(name),
                              retries=retries, timeout=timeout, progress=progress, log=log)
                    try:
                        verify_archive(path, url)
                    except DownloadError:
                        path.unlink(missing_ok=True)  # a corrupt archive is never reused
                        raise
                    if not shared:
                        per_speaker_archives.append(path)
                    video_dir = staging / spk / "video"
                    if not video_dir.is_dir():
                        video_dir = out / spk / "video"
                    vids = {p.stem for p in video_dir.glob("*.mpg")} if video_dir.is_dir() else set()
                    n, note = _unpack(path, part, spk, staging / spk / part, shared, vids, url)
                    n_files += n
                    names.append(name)
                    if note:
                        log(f"{spk}: {note}")
                        notes.append(note)
                new_parts[part] = {"files": n_files, "archives": names, "notes": notes}
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        # All archives good: move into place (file by file, never deleting anything already there).
        for sub in sorted((staging / spk).iterdir()):
            target = out / spk / sub.name
            target.mkdir(parents=True, exist_ok=True)
            for f in sub.iterdir():
                f.replace(target / f.name)
        shutil.rmtree(staging, ignore_errors=True)
        record = {"speaker": spk, "source": source, "base_url": base, "quality": quality,
                  "autalk_version": __version__, "parts": {**done, **new_parts}}
        atomic_write_text(marker, json.dumps(record, indent=2) + "\n")
        if not keep_archives:
            for p in per_speaker_archives:
                p.unlink(missing_ok=True)
        counts = ", ".join(f"{v['files']} {k}" for k, v in new_parts.items())
        log(f"{spk}: done ({counts}) -> {out / spk}")
        status[spk] = "downloaded"
    return status
