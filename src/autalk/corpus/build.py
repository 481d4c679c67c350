"""Build the teaching corpus: synthetic talking faces in GRID's exact on-disk layout.

For every speaker ``sN`` and clip ``<id>`` (GRID word initials) the builder writes::

    <root>/sN/video/<id>.mpg      MPEG-1 video 360x288 @ 25 fps, 75 frames, MP2 audio inside (as GRID)
    <root>/sN/audio/<id>.wav      25 kHz mono 16-bit, 3.0 s (GRID's audio_25k)
    <root>/sN/align/<id>.align    word alignment, 1/25000 s units, sil/sp tokens (as GRID)
    <root>/sN/au/<id>.csv         ground-truth AUs as an OpenFace FeatureExtraction CSV
    <root>/sN/phonemes/<id>.phn   phoneme timings, same "start end label" format (not in GRID)
    <root>/sN/speaker.json        the speaker's identity and voice parameters
    <root>/corpus.json            how the corpus was built (seed, counts, version)

Everything derives from ``seed``: speaker ``n`` uses ``rng([seed, n, ...])`` and clip ``k`` of it
``rng([seed, n, k])``, so a smaller corpus is a prefix of a larger one and reruns are byte-identical.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from autalk import FPS, PAPER_AUS, __version__
from autalk.corpus import face, speech, visemes
from autalk.corpus.align import Segment, format_align
from autalk.corpus.grammar import N_SENTENCES, sample_sentence, sentence_id
from autalk.data.splits import natural_key
from autalk.fsutil import atomic_write_json
from autalk.media import write_video, write_wav

N_FRAMES = 75  # 3.0 s at 25 fps, as every GRID clip
DURATION = N_FRAMES / FPS
SAMPLE_RATE = 25000  # GRID's audio_25k
MAX_SPEAKERS = 1000
_IDENTITY_STREAM = 0xFACE  # separates the identity's random stream from the clips' streams
SUBDIRS = ("video", "audio", "align", "au", "phonemes")


@dataclass(frozen=True)
class ClipJob:
    """One clip to build; everything it needs to be reproduced independently of the others."""

    root: str
    speaker: int
    index: int
    words: tuple[str, ...]
    seed: int
    voices: tuple[str, ...] | None

    @property
    def clip_id(self) -> str:
        return sentence_id(list(self.words))

    @property
    def speaker_name(self) -> str:
        return f"s{self.speaker}"

    def final_paths(self) -> dict[str, Path]:
        d = Path(self.root) / self.speaker_name
        cid = self.clip_id
        return {
            "video": d / "video" / f"{cid}.mpg",
            "audio": d / "audio" / f"{cid}.wav",
            "align": d / "align" / f"{cid}.align",
            "phonemes": d / "phonemes" / f"{cid}.phn",
            "au": d / "au" / f"{cid}.csv",  # renamed last: its presence marks a complete clip
        }

    def is_complete(self) -> bool:
        return all(p.is_file() and p.stat().st_size > 0 for p in self.final_paths().values())


# ---- speakers ------------------------------------------------------------------------------------


def speaker_identity(speaker: int, seed: int) -> face.Identity:
    """The face of speaker ``sN`` (deterministic in ``seed`` and ``speaker`` only)."""
    return face.sample_identity(np.random.default_rng([seed, speaker, _IDENTITY_STREAM]))


def speaker_voice(speaker: int, seed: int, voices: tuple[str, ...] | None = None) -> speech.Voice:
    """The voice of speaker ``sN``; ``voices`` (variant names) overrides the variant, cycling."""
    v = speech.voice_for_speaker(speaker, seed)
    if voices:
        v = speech.make_voice(v.language, voices[(speaker - 1) % len(voices)], v.pitch, v.rate, v.pitch_range)
    return v


def speaker_sentences(speaker: int, n_clips: int, seed: int) -> list[list[str]]:
    """``n_clips`` distinct GRID sentences for one speaker (a prefix-stable sequence)."""
    rng = np.random.default_rng([seed, speaker, _IDENTITY_STREAM + 2])
    seen: set[str] = set()
    out: list[list[str]] = []
    while len(out) < n_clips:
        words = sample_sentence(rng)
        cid = sentence_id(words)
        if cid not in seen:  # GRID ids are unique per speaker
            seen.add(cid)
            out.append(words)
    return out


# ---- one clip --------------------------------------------------------------------------------------


@dataclass
class Clip:
    """A rendered clip in memory (what :func:`render_clip_job` returns before writing)."""

    frames: np.ndarray  # (T,H,W,3) uint8 RGB
    audio: np.ndarray  # (N,) float32 at SAMPLE_RATE
    words: list[Segment]  # sil/sp-completed alignment over [0, DURATION]
    phonemes: list[Segment]
    intensity: np.ndarray  # (T,A) float32 in [0,5], A = PAPER_AUS
    presence: np.ndarray  # (T,A) uint8
    motion: face.Motion


def render_clip_job(job: ClipJob) -> Clip:
    """Synthesise speech, derive the AU tracks from its phonemes and render the face."""
    rng = np.random.default_rng([job.seed, job.speaker, job.index])
    voice = speaker_voice(job.speaker, job.seed, job.voices)
    audio = speech.make_clip_audio(list(job.words), voice, rng, duration=DURATION, sr=SAMPLE_RATE)
    intensity = visemes.au_tracks(audio.phonemes, n_frames=N_FRAMES, fps=FPS, rng=rng,
                                  style=visemes.style_for_speaker(job.speaker, job.seed))
    presence = visemes.au_presence(intensity)
    motion = face.sample_motion(N_FRAMES, rng, fps=FPS)
    frames = face.render_clip(speaker_identity(job.speaker, job.seed), intensity, motion)
    return Clip(frames, audio.audio, audio.words, audio.phonemes, intensity, presence, motion)


def write_clip(job: ClipJob, clip: Clip) -> None:
    """Write one clip atomically: every file goes to ``*.tmp`` first, then all are renamed."""
    from autalk.openface import write_openface_csv

    final = job.final_paths()
    tmp = {k: p.with_name(p.name + ".tmp") for k, p in final.items()}
    for p in final.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_video(tmp["video"], clip.frames, fps=FPS, audio=clip.audio, sr=SAMPLE_RATE, codec="mpeg1")
        write_wav(tmp["audio"], clip.audio, SAMPLE_RATE)
        tmp["align"].write_text(format_align(clip.words))
        tmp["phonemes"].write_text(format_align(clip.phonemes))
        write_openface_csv(tmp["au"], clip.intensity, clip.presence, fps=FPS, aus=PAPER_AUS)
        for key in final:  # dict order: the AU csv last
            os.replace(tmp[key], final[key])
    finally:
        for p in tmp.values():
            p.unlink(missing_ok=True)


def build_clip(job: ClipJob) -> str:
    """Worker entry point: build one clip unless it is already complete. Returns its status."""
    if job.is_complete():
        return "skipped"
    write_clip(job, render_clip_job(job))
    return "built"


# ---- the corpus ----------------------------------------------------------------------------------


def _check_args(out: Path, speakers: int, clips: int, workers: int, voices: tuple[str, ...] | None) -> None:
    if not 1 <= speakers <= MAX_SPEAKERS:
        raise ValueError(f"--speakers must be between 1 and {MAX_SPEAKERS}, got {speakers}")
    if not 1 <= clips <= N_SENTENCES:
        raise ValueError(f"--clips must be between 1 and {N_SENTENCES} (GRID grammar size), got {clips}")
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    for v in voices or ():
        if v not in speech.VOICES:
            raise ValueError(f"unknown voice {v!r}; choose from: {', '.join(speech.VOICES)}")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise PermissionError(f"cannot write to the output folder {out}: {e.strerror or e}") from e


def _check_existing(out: Path, seed: int) -> None:
    meta = out / "corpus.json"
    if meta.is_file():
        old = json.loads(meta.read_text())
        if old.get("seed") != seed:
            raise ValueError(f"{out} already holds a teaching corpus built with seed {old.get('seed')}; "
                             f"use another --out for seed {seed} (clips of two seeds must not mix)")


def plan(out: str | os.PathLike[str], speakers: int, clips: int, seed: int = 0,
         voices: tuple[str, ...] | None = None) -> list[ClipJob]:
    """Every clip of a corpus of ``speakers`` x ``clips``, speaker-major."""
    return [ClipJob(str(out), s, k, tuple(words), seed, voices)
            for s in range(1, speakers + 1)
            for k, words in enumerate(speaker_sentences(s, clips, seed))]


def _run(jobs: list[ClipJob], workers: int) -> Iterator[str]:
    if workers == 1:
        yield from map(build_clip, jobs)
        return
    # spawn, not fork: libespeak-ng keeps global state that must be initialised per process.
    with get_context("spawn").Pool(workers) as pool:
        yield from pool.imap_unordered(build_clip, jobs, chunksize=1)


def build_corpus(out: str | os.PathLike[str], speakers: int = 8, clips: int = 30, seed: int = 0,
                 workers: int = 2, voices: tuple[str, ...] | None = None, progress: bool = True) -> dict:
    """Build (or complete) a teaching corpus; returns a summary dict also saved as ``corpus.json``.

    Complete clips are skipped, so an interrupted build resumes where it stopped.
    """
    out = Path(out)
    voices = tuple(voices) if voices else None
    _check_args(out, speakers, clips, workers, voices)
    _check_existing(out, seed)
    for tmp in out.glob("s*/*/*.tmp"):  # debris of an interrupted run
        tmp.unlink()
    for s in range(1, speakers + 1):
        d = out / f"s{s}"
        for sub in SUBDIRS:
            (d / sub).mkdir(parents=True, exist_ok=True)
        spk = {"speaker": f"s{s}", "identity": dataclasses.asdict(speaker_identity(s, seed)),
               "voice": dataclasses.asdict(speaker_voice(s, seed, voices)),
               "style": visemes.style_for_speaker(s, seed)}
        (d / "speaker.json").write_text(json.dumps(spk, indent=1, default=_jsonable))
    jobs = plan(out, speakers, clips, seed, voices)
    counts = {"built": 0, "skipped": 0}
    with tqdm(total=len(jobs), desc="teaching corpus", unit="clip", disable=not progress) as bar:
        for status in _run(jobs, workers):
            counts[status] += 1
            bar.update()
    # Describe what is on disk (a rerun with other counts may have grown the corpus).
    on_disk = {spk: len(ids) for spk, ids in list_corpus(out).items()}
    summary = {"format": "GRID", "generator": f"autalk {__version__}", "seed": seed,
               "speakers": list(on_disk), "clips_per_speaker": on_disk, "n_clips": sum(on_disk.values()),
               "n_frames": N_FRAMES, "fps": FPS, "sample_rate": SAMPLE_RATE, "aus": list(PAPER_AUS),
               "voices": list(voices) if voices else None}
    atomic_write_json(out / "corpus.json", summary)
    return {**summary, "root": str(out), **counts}


def _jsonable(x: object) -> object:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


# ---- reading back --------------------------------------------------------------------------------


@dataclass
class CorpusClip:
    """One teaching-corpus clip read back from disk through the same readers GRID uses."""

    speaker: str
    clip_id: str
    frames: np.ndarray  # (T,H,W,3) uint8 RGB, decoded from the .mpg
    audio: np.ndarray  # (N,) float32 from the .wav
    sr: int
    words: list[Segment]
    phonemes: list[Segment]
    intensity: np.ndarray  # (T,A) from the OpenFace-format CSV
    presence: np.ndarray  # (T,A)


def load_clip(root: str | os.PathLike[str], speaker: str, clip_id: str) -> CorpusClip:
    """Read one clip of a teaching corpus (video, wav, alignment, phonemes, AU csv)."""
    from autalk.corpus.align import read_align
    from autalk.media import read_video, read_wav
    from autalk.openface import read_openface_csv

    d = Path(root) / speaker
    frames, _ = read_video(d / "video" / f"{clip_id}.mpg")
    audio, sr = read_wav(d / "audio" / f"{clip_id}.wav")
    aus = read_openface_csv(d / "au" / f"{clip_id}.csv", aus=PAPER_AUS)
    return CorpusClip(speaker, clip_id, frames, audio, sr, read_align(d / "align" / f"{clip_id}.align"),
                      read_align(d / "phonemes" / f"{clip_id}.phn"), aus.intensity, aus.presence)


def list_corpus(root: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Complete clips per speaker of a teaching corpus: ``{"s1": ["bbaf2n", ...], ...}``."""
    root = Path(root)
    out: dict[str, list[str]] = {}
    for d in sorted(root.glob("s*"), key=lambda d: natural_key(d.name)):
        ids = sorted(p.stem for p in (d / "au").glob("*.csv"))
        if ids:
            out[d.name] = ids
    return out
