"""Find the clips of a corpus on disk and load their frames and audio, reporting every repair made.

Corpora (``corpus`` argument of :func:`list_clips`):

``grid``
    GRID (Cooke et al. 2006). Videos ``<root>/sN/video/<id>.mpg`` (also ``<root>/sN/<id>.mpg`` as in the
    Zenodo zips and ``<root>/sN/video/mpg_6000/<id>.mpg`` as in the high-quality tars); alignments
    ``<root>/sN/align/<id>.align`` (also ``<root>/align/sN/`` and Zenodo's ``<root>/alignments/sN/``);
    audio ``<root>/sN/audio/<id>.wav`` (also ``<root>/audio_25k/sN/``, ``<root>/audio_50k/sN/``,
    ``<root>/audio/sN/``). s21 has no video and yields a problem entry, no clips.
``synthgrid``
    The teaching corpus: GRID layout plus ``<root>/sN/au/<id>.csv`` (OpenFace CSV ground truth).
``tcd``
    TCD-TIMIT (Harte & Gillen 2015): ``<root>/{volunteers|lipspeakers}/<speaker>/Clips/straightcam/<s>.mp4``
    (the frontal camera only; ~30 fps, resampled to 25 fps by :func:`load_clip_av`). An optional
    ``<speaker>/audio/<s>.wav`` is used when present, else the mp4's own audio.
``folder``
    Any ``*.mp4 *.mpg *.avi *.mov *.mkv`` under ``root`` (LRW / VoxCeleb2 style); speaker = parent folder
    name, clip id = file stem (made unique from the relative path where a speaker name has two clips of
    the same stem, e.g. LRW's ``<WORD>/train/``); a sibling ``<stem>.wav`` is used if present.

GRID alignment checks. A popular mirror (the Zenodo release) files alignment folders under the wrong
speakers. For every speaker the listing checks (1) that the align ids match the speaker's video ids, and
(2) that the words of each align match its file id (``grammar.words_from_id``). A folder that fails (1)
for most videos is looked for elsewhere: the align folder of the corpus whose ids cover the speaker's
videos is used instead, with a note. A folder whose aligns mostly fail (2) is reported as misassigned
and dropped; a single mismatching align drops only that clip's alignment. Everything is reported: notes
on the clip, and ``problems`` entries ``{"speaker", "clip_id", "reason"}`` (``clip_id == "*"`` for a
whole speaker or folder).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autalk.corpus.align import read_align, words_of
from autalk.corpus.grammar import words_from_id
from autalk.data.splits import natural_key
from autalk.media import read_audio, read_video, read_wav

CORPORA = ("grid", "synthgrid", "tcd", "folder")
VIDEO_SUFFIXES = (".mp4", ".mpg", ".mpeg", ".avi", ".mov", ".mkv")
_SPEAKER_RE = re.compile(r"^s(\d+)$")
_SKIP_DIRS = {"__MACOSX"}


@dataclass
class ClipSource:
    """Where one clip's pieces are on disk (``None`` for a piece that is absent) and notes about it."""

    corpus: str
    speaker: str
    clip_id: str
    video: Path
    audio: Path | None = None
    align: Path | None = None
    au_csv: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.speaker}/{self.clip_id}"


def _problem(speaker: str, clip_id: str, reason: str) -> dict:
    return {"speaker": speaker, "clip_id": clip_id, "reason": reason}


def _files(d: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """``{stem: path}`` of the files in ``d`` (not recursive) with one of ``suffixes`` (case-insensitive)."""
    if not d.is_dir():
        return {}
    out = {}
    for p in sorted(d.iterdir()):
        if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("._"):
            out.setdefault(p.stem, p)
    return out


def _norm_speaker(s: str) -> str:
    """``"1"``, ``"s01"``, ``"S1"`` -> ``"s1"``; other names unchanged."""
    s = str(s).strip()
    m = re.fullmatch(r"[sS]?0*(\d+)", s)
    return f"s{int(m.group(1))}" if m else s


# ---- GRID ----------------------------------------------------------------------------------------


def _grid_video_dirs(root: Path, spk: str) -> list[Path]:
    return [root / spk / "video", root / spk / "video" / "mpg_6000", root / spk]


def _grid_align_dirs(root: Path, spk: str) -> list[Path]:
    return [root / spk / "align", root / "align" / spk, root / "alignments" / spk]


def _grid_audio_dirs(root: Path, spk: str) -> list[Path]:
    return [root / spk / "audio", root / "audio_25k" / spk, root / "audio_50k" / spk, root / "audio" / spk]


def _speaker_dirs(*bases: Path) -> list[str]:
    names = set()
    for base in bases:
        if base.is_dir():
            names |= {p.name for p in base.iterdir() if p.is_dir() and _SPEAKER_RE.match(p.name)}
    return sorted(names, key=natural_key)


def _first_align_dir(root: Path, spk: str) -> Path | None:
    for d in _grid_align_dirs(root, spk):
        if _files(d, (".align",)):
            return d
    return None


def _align_words_ok(path: Path, clip_id: str) -> tuple[bool | None, str]:
    """(True/False whether the align's words match its id, or None if it cannot be checked; detail)."""
    expected = words_from_id(clip_id)
    try:
        words = words_of(read_align(path))
    except (ValueError, OSError, UnicodeDecodeError) as e:
        return False, f"unreadable alignment ({e})"
    if expected is None:
        return None, "id does not follow the GRID grammar; words not checked"
    if words == expected:
        return True, ""
    return False, f"align words '{' '.join(words)}' do not match id {clip_id} ('{' '.join(expected)}')"


def _list_grid(root: Path, corpus: str, speakers: list[str] | None, max_per_speaker: int):
    clips: list[ClipSource] = []
    problems: list[dict] = []
    all_speakers = _speaker_dirs(root)
    align_speakers = _speaker_dirs(root, root / "align", root / "alignments")
    wanted = [_norm_speaker(s) for s in speakers] if speakers else all_speakers
    align_dir_cache: dict[str, dict[str, Path]] = {}

    def aligns_of_folder(spk: str) -> dict[str, Path]:
        if spk not in align_dir_cache:
            d = _first_align_dir(root, spk)
            align_dir_cache[spk] = _files(d, (".align",)) if d else {}
        return align_dir_cache[spk]

    for spk in sorted(dict.fromkeys(wanted), key=natural_key):
        if not (root / spk).is_dir():
            problems.append(_problem(spk, "*", f"speaker folder {root / spk} not found"))
            continue
        videos: dict[str, Path] = {}
        for d in _grid_video_dirs(root, spk):
            for stem, p in _files(d, (".mpg", ".mpeg", ".mp4", ".avi")).items():
                videos.setdefault(stem, p)
        if not videos:
            extra = " (GRID s21 has no video)" if spk == "s21" else ""
            problems.append(_problem(spk, "*", f"no video files under {root / spk}{extra}"))
            continue

        # --- pick the alignment folder, checking ids against the videos
        speaker_notes: list[str] = []
        aligns = aligns_of_folder(spk)
        ids = set(videos)
        if aligns and len(ids) >= 2 and len(ids & set(aligns)) < 0.5 * min(len(ids), len(aligns)):
            folder = _first_align_dir(root, spk)
            reason = (f"align folder {folder} holds aligns for only {len(ids & set(aligns))}/{len(ids)} of "
                      f"{spk}'s videos: it belongs to another speaker")
            best, best_hits = None, len(ids & set(aligns))
            for other in align_speakers:
                if other == spk:
                    continue
                hits = len(ids & set(aligns_of_folder(other)))
                if hits > best_hits:
                    best, best_hits = other, hits
            if best is not None and best_hits >= 0.5 * len(ids):
                aligns = aligns_of_folder(best)
                reason += f"; using align folder of '{best}' instead ({best_hits}/{len(ids)} ids match)"
            else:
                aligns = {}
                reason += "; its aligns are dropped"
            problems.append(_problem(spk, "*", reason))
            speaker_notes.append(reason)

        # --- check the words of each align against its id
        checked: dict[str, tuple[bool | None, str]] = {
            cid: _align_words_ok(aligns[cid], cid) for cid in sorted(ids & set(aligns))
        }
        n_checked = sum(1 for ok, _ in checked.values() if ok is not None)
        n_bad = sum(1 for ok, _ in checked.values() if ok is False)
        folder_bad = n_checked >= 2 and n_bad > n_checked / 2
        if folder_bad:
            reason = (f"alignment folder misassigned: {n_bad}/{n_checked} aligns' words do not match their "
                      f"file ids (aligns of another speaker); all {len(checked)} aligns of {spk} dropped")
            problems.append(_problem(spk, "*", reason))
            speaker_notes.append(reason)

        # --- audio
        wavs: dict[str, Path] = {}
        for d in _grid_audio_dirs(root, spk):
            for stem, p in _files(d, (".wav",)).items():
                wavs.setdefault(stem, p)

        n_kept = 0
        for cid in sorted(videos, key=natural_key):
            if max_per_speaker and n_kept >= max_per_speaker:
                break
            video = videos[cid]
            if video.stat().st_size == 0:
                problems.append(_problem(spk, cid, f"empty video file {video}"))
                continue
            notes = list(speaker_notes)
            align = None
            if cid in checked and not folder_bad:
                ok, detail = checked[cid]
                if ok is False:
                    notes.append(f"alignment dropped: {detail}")
                else:
                    align = aligns[cid]
                    if ok is None:
                        notes.append(detail)
            elif not folder_bad:
                notes.append("no alignment file")
            audio = wavs.get(cid)
            if audio is None and wavs:
                notes.append("wav missing; audio will come from the video container")
            au_csv = None
            if corpus == "synthgrid":
                p = root / spk / "au" / f"{cid}.csv"
                if p.is_file():
                    au_csv = p
                else:
                    notes.append("no AU ground-truth CSV")
            clips.append(ClipSource(corpus, spk, cid, video, audio, align, au_csv, notes))
            n_kept += 1
    return clips, problems


# ---- TCD-TIMIT -----------------------------------------------------------------------------------


def _list_tcd(root: Path, speakers: list[str] | None, max_per_speaker: int):
    clips: list[ClipSource] = []
    problems: list[dict] = []
    found: dict[str, Path] = {}
    for group in ("volunteers", "lipspeakers"):
        g = root / group
        if g.is_dir():
            for p in sorted(g.iterdir()):
                if p.is_dir():
                    found.setdefault(p.name, p)
    if not found:
        problems.append(_problem("*", "*", f"no {root}/{{volunteers,lipspeakers}}/<speaker> folders"))
    wanted = list(speakers) if speakers else list(found)
    for spk in sorted(dict.fromkeys(wanted), key=natural_key):
        d = found.get(spk)
        if d is None:
            where = f"{root}/{{volunteers,lipspeakers}}"
            problems.append(_problem(spk, "*", f"speaker folder not found under {where}"))
            continue
        videos = _files(d / "Clips" / "straightcam", (".mp4",))
        if not videos:
            problems.append(_problem(spk, "*", f"no mp4 under {d / 'Clips' / 'straightcam'}"))
            continue
        wavs = _files(d / "audio", (".wav",))
        n = 0
        for cid in sorted(videos, key=natural_key):
            if max_per_speaker and n >= max_per_speaker:
                break
            v = videos[cid]
            if v.stat().st_size == 0:
                problems.append(_problem(spk, cid, f"empty video file {v}"))
                continue
            clips.append(ClipSource("tcd", spk, cid, v, wavs.get(cid), None, None, []))
            n += 1
    return clips, problems


# ---- plain folder --------------------------------------------------------------------------------


def _list_folder(root: Path, speakers: list[str] | None, max_per_speaker: int):
    clips: list[ClipSource] = []
    problems: list[dict] = []
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for fn in filenames:
            if Path(fn).suffix.lower() in VIDEO_SUFFIXES and not fn.startswith("._"):
                paths.append(Path(dirpath) / fn)
    if not paths:
        problems.append(_problem("*", "*", f"no video files (*{', *'.join(VIDEO_SUFFIXES)}) under {root}"))

    def speaker_of(p: Path) -> str:
        return p.parent.name if p.parent != root else root.name

    # Clip id: the file stem; where two files of one speaker name share a stem (LRW's <WORD>/train/ folders,
    # clip.mp4 next to clip.avi) their path relative to root, '/' -> '__', suffix kept, for all of them.
    stems: dict[tuple[str, str], int] = {}
    for p in paths:
        stems[(speaker_of(p), p.stem)] = stems.get((speaker_of(p), p.stem), 0) + 1

    def clip_id(p: Path) -> str:
        if stems[(speaker_of(p), p.stem)] == 1:
            return p.stem
        return p.relative_to(root).as_posix().replace("/", "__")

    want = set(speakers) if speakers else None
    per_spk: dict[str, int] = {}
    for p in sorted(paths, key=lambda p: (natural_key(speaker_of(p)), natural_key(clip_id(p)))):
        spk = speaker_of(p)
        if want is not None and spk not in want:
            continue
        cid = clip_id(p)
        if p.stat().st_size == 0:
            problems.append(_problem(spk, cid, f"empty video file {p}"))
            continue
        if max_per_speaker and per_spk.get(spk, 0) >= max_per_speaker:
            continue
        wav = p.with_suffix(".wav")
        rel = p.relative_to(root).as_posix()
        notes = [] if cid == p.stem else [f"clip id made unique from its path ({rel})"]
        clips.append(ClipSource("folder", spk, cid, p, wav if wav.is_file() else None, None, None, notes))
        per_spk[spk] = per_spk.get(spk, 0) + 1
    return clips, problems


def list_clips(
    corpus: str, root: Path | str, speakers: list[str] | None = None, max_per_speaker: int = 0
) -> tuple[list[ClipSource], list[dict]]:
    """List the clips of ``corpus`` under ``root``: ``(clips, problems)``.

    ``clips`` are sorted by (speaker in natural order, clip id); ``problems`` are
    ``{"speaker", "clip_id", "reason"}`` dicts for what was skipped or repaired at listing time.
    ``max_per_speaker`` (0 = all) keeps the first clips of each speaker in that order.
    """
    if corpus not in CORPORA:
        raise ValueError(f"unknown corpus {corpus!r}; choose one of {', '.join(CORPORA)}")
    root = Path(root)
    if not root.is_dir():
        from autalk.profiles import MissingResourceError

        hint = "see data/README.md" + (", or run `autalk download grid`" if corpus == "grid" else "")
        raise MissingResourceError(f"corpus folder {root} not found ({hint})")
    if corpus in ("grid", "synthgrid"):
        clips, problems = _list_grid(root, corpus, speakers, max_per_speaker)
    elif corpus == "tcd":
        clips, problems = _list_tcd(root, speakers, max_per_speaker)
    else:
        clips, problems = _list_folder(root, speakers, max_per_speaker)
    clips.sort(key=lambda c: (natural_key(c.speaker), natural_key(c.clip_id)))
    return clips, problems


# ---- loading -------------------------------------------------------------------------------------


def resample_frames(frames: np.ndarray, src_fps: float, fps: float) -> np.ndarray:
    """Nearest-source-frame resampling: output frame k shows the source frame nearest to time k/fps.

    The output covers the source duration: ``round(T * fps / src_fps)`` frames (90 @ 30 fps -> 75 @ 25).
    """
    t = frames.shape[0]
    n_out = max(1, int(round(t * fps / src_fps)))
    idx = np.minimum(np.round(np.arange(n_out) * src_fps / fps).astype(np.int64), t - 1)
    return frames[idx]


def load_clip_av(
    src: ClipSource, fps: float = 25.0, sr: int = 16000
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Load a clip: frames ``(T,H,W,3)`` RGB uint8 at ``fps``, mono float32 audio at ``sr``, notes.

    Audio comes from the clip's wav when it is usable (resampled to ``sr`` if needed, with a note);
    otherwise — no wav, unreadable wav, or a wav shorter than the video by more than one frame — from
    the video container, with a note. Raises ``ValueError`` with the reason for an empty or corrupt
    video, or when no usable audio exists.
    """
    notes: list[str] = list(src.notes)
    try:
        frames, src_fps = read_video(src.video)
    except ValueError as e:
        raise ValueError(f"{src.key}: unusable video: {e}") from e
    if not src_fps or not np.isfinite(src_fps) or src_fps <= 0:
        notes.append(f"video reports no frame rate; assumed {fps:g} fps")
        src_fps = fps
    if abs(src_fps - fps) > 0.01:
        n_src = frames.shape[0]
        frames = resample_frames(frames, src_fps, fps)
        notes.append(f"video resampled {src_fps:.3f} -> {fps:g} fps (nearest source frame): "
                     f"{n_src} -> {frames.shape[0]} frames")
    duration = frames.shape[0] / fps

    audio = None
    if src.audio is not None:
        try:
            wav, wav_sr = read_wav(src.audio)
        except Exception as e:  # soundfile raises its own error types
            notes.append(f"wav unreadable ({type(e).__name__}: {e}); audio taken from the video container")
        else:
            wav_dur = len(wav) / wav_sr
            if wav_dur < duration - 1.0 / fps:
                try:
                    audio = read_audio(src.video, sr)
                    notes.append(f"wav shorter than video ({wav_dur:.2f} s < {duration:.2f} s); "
                                 f"audio taken from the video container, resampled to {sr} Hz")
                except ValueError as e:
                    audio = read_audio(src.audio, sr)
                    audio = np.pad(audio, (0, max(0, int(round(duration * sr)) - len(audio))))
                    notes.append(f"wav shorter than video ({wav_dur:.2f} s < {duration:.2f} s) and the video "
                                 f"has no usable audio ({e}); wav padded with silence")
            elif wav_sr != sr:
                audio = read_audio(src.audio, sr)
                notes.append(f"wav resampled {wav_sr} -> {sr} Hz")
            else:
                audio = wav
    if audio is None:
        try:
            audio = read_audio(src.video, sr)
        except ValueError as e:
            raise ValueError(f"{src.key}: no usable audio (no usable wav, none in the video): {e}") from e
        if src.audio is None:
            notes.append(f"audio taken from the video container ({src.video.suffix}), resampled to {sr} Hz")
    return frames, np.ascontiguousarray(audio, dtype=np.float32), notes
