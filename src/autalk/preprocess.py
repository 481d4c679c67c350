"""Preprocessing (paper section 4.1, appendix A.1): from a GRID-layout corpus to the training cache.

Per clip (:func:`preprocess_clip`):

1. decode the video (RGB, 25 fps) and its audio (mono 16 kHz; from the ``.wav`` or, when that is
   missing or short, from the video container: ``autalk.data.readers.load_clip_av``);
2. find the face with dlib's HOG detector every ``stride`` frames, interpolating the boxes between
   detections (``autalk.faces.track_face``); a clip with too many frames without a face is dropped;
3. 68 dlib landmarks per frame, one fixed square crop per clip resized to ``image_size``;
4. 12 MFCCs at 100 Hz and one 280 ms window centred on every video frame (``autalk.audio``);
5. AU labels of the five paper AUs: from the clip's OpenFace CSV when there is one (frames OpenFace
   marks as failed or low-confidence fall back, frame by frame, to the landmark detector and are
   counted), otherwise from the landmark detector ``autalk.au`` calibrated on the clip's first frame.
   Which landmark detector: the hand-set rules (``autalk.au.default_detector``) unless
   ``preprocess_corpus(..., au_detector=PATH)`` / ``autalk preprocess --au-detector PATH`` names a
   fitted one (e.g. ``runs/quick/01_preprocess/au_detector.json``); every clip's metadata and the report
   say which (``au_detector``: source, path, fingerprint).

:func:`preprocess_corpus` runs that over a corpus in a process pool, writes one cache file per clip
(``autalk.data.cache``), then ``norm.json`` (MFCC statistics of the training speakers),
``manifest.json`` (clips, splits, AU occurrence rates and Eq. 1 loss weights) and ``report.json``
(what was kept, dropped and why, every counted decision, and the landmark detector's agreement with
the OpenFace / ground-truth labels). It is resumable: complete cache files are not redone (unless they
were labelled by a different landmark AU detector than the one asked for).

The run is in steps shared by every way of running it: :func:`plan_corpus` (list the corpus, split
ALL its speakers, pick this run's clips), the clip jobs, reading the cache files back into manifest
entries, then the whole-corpus files (manifest, norm, calibration) and the report.

Sharding (a cluster job array): ``preprocess_corpus(..., shard="K/N")`` / ``autalk preprocess --shard
K/N`` processes only the speakers of shard K (:func:`shard_speakers`: natural order, positions K-1,
K-1+N, ...), assigns their clips to train/test under the whole corpus's split, and writes their clip
files plus ``shard-K-of-N.json`` (their manifest entries and this shard's report) into its ``out_dir``
(one per shard is safest on shared filesystems; a shared one works too: shards touch only their own
speakers' folders). Statistics over the training split are NOT computed per shard: :func:`merge_shards`
/ ``autalk preprocess --merge SHARD_DIR ... --out OUT`` checks that all N shards of one run are there
with the same corpus and options, hard-links each clip file into ``OUT/clips/`` (copies it when the
shard lies on another filesystem; cache files are only ever replaced by rename, so a link never sees a
later change), and then writes ``manifest.json``, ``norm.json``, ``au_detector.json`` and
``report.json`` with the very code an unsharded run uses, over the same clips in the same order: the
same files as one unsharded run.

Detector calibration (:func:`calibrate_au_detector`, from the cache, so resumed runs do it too): when
training-split clips have a CSV (the teaching corpus always does), the landmark detector is fitted by
least squares on the TRAIN speakers' cached landmarks (neutral = each clip's first frame) against their
CSV intensities / presence and saved as ``<out>/au_detector.json``; the hand-set rules and the fitted
detector are then both evaluated on the TEST speakers only (held out from the fit) and reported in
``report.json["detector_agreement"]``. On the teaching corpus the fitted detector has learnt the
synthetic renderer's faces: it is not validated on real faces, and using it on real GRID is a choice
to state, not a measured improvement.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from autalk import FPS, PAPER_AUS, __version__
from autalk import audio as A
from autalk.data import cache

CORPORA = ("grid", "tcd", "synthgrid", "folder")
PUBLISHED_SPLITS = {"grid": "grid", "tcd": "tcd"}  # corpora whose speaker split is a file in data/splits
TEST_FRACTION = 0.2  # paper: 8:2 split of the speakers
AU_DETECTOR_FILE = "au_detector.json"  # the detector fitted on the train speakers' CSVs, in the output folder
MIN_FIT_FRAMES = 100  # fewer CSV frames in the train split than this: no detector is fitted


class SkipClip(Exception):
    """A clip that cannot be used; ``reason`` says why (it goes to report.json)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ClipResult:
    """One preprocessed clip: the cache arrays, metadata and counted decisions.

    ``source`` (only with ``keep_source=True``) holds the decoded frames and audio, the face track and
    the full-frame landmarks, for the step-by-step view in notebook 01.
    """

    speaker: str
    clip_id: str
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    counts: dict[str, int]
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return int(self.arrays["frames"].shape[0])


def settings(image_size: int, detector: str = "hog", stride: int = 5, fps: float = FPS,
             sr: int = A.SAMPLE_RATE) -> dict[str, Any]:
    """The settings a cache file must match to be reused on resume."""
    return {"image_size": int(image_size), "detector": detector, "stride": int(stride), "fps": float(fps),
            "sr": int(sr)}


def preprocess_clip(src: Any, image_size: int, detector: Any, predictor: Any, au_detector: Any,
                    fps: float = FPS, sr: int = A.SAMPLE_RATE, stride: int = 5,
                    max_missing_fraction: float = 0.2, max_audio_shortfall_s: float = 0.2,
                    min_frames: int = 8, keep_source: bool = False, corpus: str | None = None,
                    ) -> ClipResult:
    """Preprocess one ``ClipSource``; raises :class:`SkipClip` with a reason for an unusable clip.

    ``detector`` is an ``autalk.faces.FaceDetector``, ``predictor`` a ``LandmarkPredictor``,
    ``au_detector`` an ``autalk.au.AUDetector``. Audio may end up to ``max_audio_shortfall_s`` before
    the video (the missing MFCC steps are edge-padded and counted); shorter audio drops the clip.
    """
    from autalk.data.readers import load_clip_av
    from autalk.faces import crop_faces, track_face

    counts: Counter[str] = Counter()
    try:
        frames, audio, notes = load_clip_av(src, fps=fps, sr=sr)  # notes include src.notes
    except ValueError as e:
        raise SkipClip(f"unreadable media: {e}") from e
    notes = list(notes)
    if any("taken from the video container" in n for n in notes):
        counts["audio_from_video"] += 1
    if any("resampled" in n and "fps" in n for n in notes):
        counts["video_fps_resampled"] += 1
    t = int(len(frames))
    if t < min_frames:
        raise SkipClip(f"video too short: {t} frames (< {min_frames})")
    counts["frames"] = t

    # Audio length against the video: a short tail is edge-padded, more than that drops the clip.
    dur_v, dur_a = t / fps, len(audio) / sr
    if dur_a < dur_v - max_audio_shortfall_s:
        raise SkipClip(f"audio shorter than video: {dur_a:.2f} s of audio for {dur_v:.2f} s of video")
    m = A.mfcc(audio, sr)
    windows = A.mfcc_windows(m, t, fps=fps)
    if dur_a < dur_v - 0.5 / A.MFCC_RATE:
        short_ms = int(round(1000 * (dur_v - dur_a)))
        counts["audio_shorter_than_video_clips"] += 1
        counts["audio_shorter_than_video_ms"] += short_ms
        notes.append(f"audio {short_ms} ms shorter than video: last MFCC step repeated (edge padding)")

    # Face: detect (strided), landmarks, one fixed crop per clip.
    track = track_face(frames, detector, stride=stride, max_missing_fraction=max_missing_fraction)
    if not track.ok:
        raise SkipClip(f"face detection failed: {track.reason}")
    counts["detector_runs"] += int(track.n_detector_runs)
    counts["frames_detected"] += int(np.asarray(track.detected).sum())
    counts["frames_box_interpolated"] += int(t - np.asarray(track.detected).sum())
    counts["sampled_frames_without_face"] += int(track.interpolated)
    landmarks = predictor(frames, track.boxes)
    crops, lm_crop, transform = crop_faces(frames, track.boxes, landmarks, image_size)

    # AU labels.
    det_int, det_pres = au_detector.predict(lm_crop, neutral=lm_crop[0])
    det_int = np.asarray(det_int, dtype=np.float32)
    det_pres = (np.asarray(det_pres) > 0).astype(np.uint8)
    from_detector = np.ones(t, dtype=np.uint8)
    intensity, presence = det_int.copy(), det_pres.copy()
    arrays_extra: dict[str, np.ndarray] = {}
    au_csv = getattr(src, "au_csv", None)
    if au_csv is not None:
        from autalk.openface import read_openface_csv

        try:
            of = read_openface_csv(au_csv, aus=PAPER_AUS)
        except (ValueError, FileNotFoundError) as e:
            raise SkipClip(f"OpenFace CSV unusable: {e}") from e
        idx = np.asarray(of.frame, dtype=np.int64) - 1  # OpenFace frames are 1-based
        ok = np.asarray(of.valid, dtype=bool) & (idx >= 0) & (idx < t)
        ok &= ~np.isnan(of.intensity).any(axis=1)
        intensity[idx[ok]] = of.intensity[ok]
        presence[idx[ok]] = of.presence[ok]
        from_detector[idx[ok]] = 0
        counts["openface_frames_dropped"] += int(of.n_dropped)
        counts["openface_rows_outside_video"] += int(((idx < 0) | (idx >= t)).sum())
        au_source = "openface-csv"
        arrays_extra["au_presence_detector"] = det_pres
        if of.n_dropped:
            notes.append(f"OpenFace: {of.n_dropped} frames failed success/confidence >= "
                         f"{of.min_confidence:g}; their labels come from the landmark detector")
    else:
        au_source = "landmark-detector"
    counts["au_frames_from_detector"] += int(from_detector.sum())
    counts["au_frames_from_csv"] += int(t - from_detector.sum())

    arrays = {
        "frames": crops,
        "identity": crops[0].copy(),
        "mfcc": windows,
        "mfcc_raw": m,
        "au_presence": presence.astype(np.uint8),
        "au_intensity": intensity.astype(np.float32),
        "au_from_detector": from_detector,
        "landmarks": lm_crop.astype(np.float32),
        "boxes": np.asarray(track.boxes, dtype=np.float32),
        "detected": np.asarray(track.detected).astype(np.uint8),
        "crop_transform": np.asarray(transform, dtype=np.float64),
        **arrays_extra,
    }
    meta = {
        "corpus": corpus or getattr(src, "corpus", None), "speaker": src.speaker, "clip_id": src.clip_id,
        "au_source": au_source, "notes": notes, "counts": dict(counts), "n_frames": t,
        "video": str(src.video), "audio": str(src.audio) if getattr(src, "audio", None) else None,
        "au_csv": str(au_csv) if au_csv else None, "aus": list(PAPER_AUS), "autalk": __version__,
        "au_detector": _describe(au_detector), "source_stamp": source_stamp(src),
        **settings(image_size, getattr(detector, "kind", "hog"), stride, fps, sr),
    }
    source = {}
    if keep_source:
        source = {"frames": frames, "audio": audio, "sr": sr, "track": track, "landmarks": landmarks,
                  "au_detector_intensity": det_int, "au_detector_presence": det_pres}
    return ClipResult(src.speaker, src.clip_id, arrays, meta, dict(counts), source)


# ---- workers ---------------------------------------------------------------------------------------

_MODELS: dict[str, Any] = {}


def load_models(detector: str = "hog") -> dict[str, Any]:
    """Face detector, landmark predictor and AU detector (loaded once per process)."""
    if _MODELS.get("kind") != detector:
        from autalk.au import default_detector
        from autalk.faces import FaceDetector, LandmarkPredictor

        _MODELS.update(kind=detector, detector=FaceDetector(kind=detector), predictor=LandmarkPredictor(),
                       au=default_detector())
        A.mfcc(np.zeros(A.SAMPLE_RATE // 10, np.float32))  # librosa's first call imports a lot (~2 s)
    return _MODELS


def _init_worker(detector: str) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover
        pass
    load_models(detector)


def _describe(au_detector: Any) -> dict[str, Any]:
    """Which landmark AU detector produced labels (``AUDetector.describe``), for metadata and reports."""
    if hasattr(au_detector, "describe"):
        return au_detector.describe()
    return {"source": type(au_detector).__name__, "path": None, "fingerprint": None}


def _labelled_by(path: str) -> str | None:
    """Fingerprint of the AU detector that labelled a cache file. Files written before detectors were
    recorded were all labelled by the hand-set rules, so a missing record means those."""
    from autalk.au import default_detector

    rec = cache.read_meta(path).get("au_detector")
    return rec.get("fingerprint") if rec else default_detector().fingerprint()


def source_stamp(src: Any) -> str:
    """Size and modification time of a clip's source files (video, audio, AU CSV), for resume checks."""
    parts = []
    for name in ("video", "audio", "au_csv"):
        p = getattr(src, name, None)
        if p is not None and Path(p).is_file():
            st = Path(p).stat()
            parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    return ";".join(parts)


def _job(job: tuple[Any, str, dict[str, Any], str, Any]) -> dict[str, Any]:
    """Worker: one clip -> cache file. Never raises: failures come back as status "dropped"."""
    src, path, sett, corpus, au_det = job
    base = {"speaker": src.speaker, "clip_id": src.clip_id, "path": path}
    t0 = time.perf_counter()
    redo = None
    try:
        # The cached file must also come from this very clip: another corpus written to the same output
        # folder (e.g. the teaching corpus, then GRID) can hold a clip with the same speaker and id.
        # The stamp (size + mtime of video, wav, CSV) catches a corpus rebuilt or relabelled in place.
        expect = {**sett, "corpus": corpus, "video": str(src.video), "source_stamp": source_stamp(src)}
        if cache.is_complete(path, expect=expect):
            if _labelled_by(path) == au_det.fingerprint():
                return {**base, "status": "cached"}
            redo = "labelled by another AU detector"
        models = load_models(sett["detector"])
        res = preprocess_clip(src, sett["image_size"], models["detector"], models["predictor"], au_det,
                              fps=sett["fps"], sr=sett["sr"], stride=sett["stride"], corpus=corpus)
        cache.save_clip(path, res.arrays, res.meta, overwrite=True)
        return {**base, "status": "kept", "n_frames": res.n_frames, "seconds": time.perf_counter() - t0,
                "redone": redo}
    except SkipClip as e:
        return {**base, "status": "dropped", "reason": e.reason}
    except Exception as e:  # one bad clip never stops the run
        return {**base, "status": "dropped", "reason": f"unexpected error: {type(e).__name__}: {e}"}


def _run_jobs(jobs: list[tuple], workers: int, detector: str):
    if workers <= 1 or len(jobs) <= 1:
        load_models(detector)
        yield from map(_job, jobs)
        return
    # spawn: dlib / torch state is not fork-safe inside a Jupyter kernel; each worker loads models once.
    with get_context("spawn").Pool(min(workers, len(jobs)), initializer=_init_worker,
                                   initargs=(detector,)) as pool:
        yield from pool.imap_unordered(_job, jobs, chunksize=1)


# ---- the corpus ------------------------------------------------------------------------------------


def assign_splits(corpus: str, speakers: list[str], seed: int = 0) -> tuple[dict[str, list[str]], str]:
    """Speaker split: the published file for GRID / TCD-TIMIT (``data/splits/<name>.json``), else a
    seeded 8:2 split of the speakers found. Returns ``({"train": [...], "test": [...]}, source)``."""
    from autalk.data import splits as S

    if corpus in PUBLISHED_SPLITS:
        sp = S.assign(speakers, PUBLISHED_SPLITS[corpus])  # matched on the speaker number
        return {"train": sp["train"], "test": sp["test"]}, f"data/splits/{PUBLISHED_SPLITS[corpus]}.json"
    if len(set(speakers)) < 2:
        return ({"train": sorted(set(speakers)), "test": []},
                "a single speaker: all clips in train, no test split")
    sp = S.split_speakers(speakers, test_fraction=TEST_FRACTION, seed=seed)
    return ({"train": list(sp["train"]), "test": list(sp["test"])},
            f"split_speakers(test_fraction={TEST_FRACTION}, seed={seed})")


def _agreement_entry(feats: list[dict[str, Any]], presence_key: str, **head: Any) -> dict[str, Any]:
    from autalk.au import agreement

    pred = np.concatenate([f[presence_key] for f in feats])
    true = np.concatenate([f["presence"] for f in feats])
    return {**head, "speakers": sorted({f["speaker"] for f in feats}), "n_clips": len(feats),
            "n_frames": int(len(true)), **_jsonable(agreement(pred, true))}


def calibrate_au_detector(out_dir: str | os.PathLike[str], clips: list[dict[str, Any]],
                          splits: dict[str, list[str]], corpus: str = "", ridge: float = 1e-3,
                          min_fit_frames: int = MIN_FIT_FRAMES) -> dict[str, Any] | None:
    """Fit the landmark AU detector on the train speakers' CSV frames, evaluate it held out; from the cache.

    ``clips``: manifest entries (``speaker``, ``clip_id``, ``split``, ``path`` relative to ``out_dir``).
    Only frames whose label came from a CSV count (``au_from_detector == 0``); their features are
    measured against each clip's first frame, the same per-clip calibration the labels use. Returns the
    report's ``detector_agreement`` (None when no clip has a CSV frame):

    * ``default_rules``: the hand-set rules on every clip with a CSV (they saw no data: nothing to hold
      out), as before calibration existed;
    * ``default_rules_on_test`` and ``fitted_on_train``: the hand-set rules and the detector fitted on
      the TRAIN speakers, both on the TEST speakers' frames only (held out), same frames for both;
    * ``fitted``: what was fitted on which speakers and frames, and where it was saved
      (``<out_dir>/au_detector.json``, :meth:`autalk.au.AUDetector.save`, provenance in its ``info``).

    On the teaching corpus the truth is the renderer's: the fitted detector is calibrated to synthetic
    faces and nothing here validates it on real ones.
    """
    from autalk.au import au_features, default_detector, fit_detector_features

    out = Path(out_dir)
    default = default_detector()
    feats: list[dict[str, Any]] = []
    for e in clips:
        d = cache.load_clip(out / e["path"], keys=("landmarks", "au_intensity", "au_presence",
                                                   "au_from_detector"))
        csv = d["au_from_detector"] == 0
        if not csv.any():
            continue
        f = au_features(d["landmarks"], d["landmarks"][0])[csv]  # neutral = the clip's first frame
        feats.append({"speaker": e["speaker"], "clip_id": e["clip_id"], "split": e["split"], "features": f,
                      "intensity": d["au_intensity"][csv], "presence": d["au_presence"][csv],
                      "default": default.presence_from_features(f)})
    if not feats:
        return None
    train = [f for f in feats if f["split"] == "train"]
    test = [f for f in feats if f["split"] == "test"]
    result: dict[str, Any] = {
        "reference": "the CSV labels of each clip (teaching corpus: the renderer's ground truth), "
                     "frames whose CSV row failed excluded",
        "default_rules": _agreement_entry(feats, "default", detector=default.source,
                                          evaluated_on="all clips with a CSV (hand-set rules: no fitting)"),
        "default_rules_on_test": None, "fitted_on_train": None, "fitted": None, "notes": [],
    }
    n_fit = sum(len(f["features"]) for f in train)
    if n_fit < min_fit_frames:
        result["notes"].append(f"no detector fitted: {n_fit} CSV frames in the train split "
                               f"(< {min_fit_frames})")
        return result
    train_speakers = sorted({f["speaker"] for f in train})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # corrcoef of a constant AU column
        fitted = fit_detector_features([f["features"] for f in train], [f["intensity"] for f in train],
                                       [f["presence"] for f in train], ridge=ridge)
    fitted.source = (f"fit_detector least squares on the {corpus or 'corpus'} train speakers' CSV labels "
                     "(neutral = each clip's first frame)")
    fitted.info = {**fitted.info, "corpus": corpus, "fitted_on_speakers": train_speakers,
                   "fitted_on_split": "train", "held_out_speakers": sorted(splits.get("test", [])),
                   "frames": "CSV frames only (rows OpenFace marked as failed excluded)",
                   "caveat": "calibrated to this corpus's faces; on the teaching corpus that is the "
                             "synthetic renderer, not validated on real faces"}
    fitted.info = _jsonable(fitted.info)
    path = out / AU_DETECTOR_FILE
    fitted.save(path)
    result["fitted"] = {"path": AU_DETECTOR_FILE, "fingerprint": fitted.fingerprint(), "ridge": ridge,
                        "speakers": train_speakers, "n_clips": len(train), "n_frames": n_fit,
                        "train_avg_f1": fitted.info.get("train_avg_f1"),
                        "thresholds": {f"AU{a:02d}": float(t) for a, t in
                                       zip(PAPER_AUS, fitted.thresholds, strict=True)}}
    if not test:
        result["notes"].append("not evaluated held out: no test-speaker clip has CSV labels")
        return result
    for f in test:
        f["fitted"] = fitted.presence_from_features(f["features"])
    held = "test speakers (held out: not used to fit)"
    result["default_rules_on_test"] = _agreement_entry(test, "default", detector=default.source,
                                                       evaluated_on=held)
    result["fitted_on_train"] = _agreement_entry(test, "fitted", detector=AU_DETECTOR_FILE,
                                                 evaluated_on=held, fitted_on_speakers=train_speakers,
                                                 fit_frames=n_fit)
    return result


# ---- one run: plan, process, read back -------------------------------------------------------------


def parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"K/N"`` (or ``(K, N)``) -> ``(K, N)``: shard K (1-based) of N; None stays None.

    Raises ``ValueError`` with the expected form for anything else (``"0/4"``, ``"5/4"``, ``"2"``).
    """
    if shard is None:
        return None
    hint = "--shard takes K/N, shard K of N with 1 <= K <= N (e.g. 3/8)"
    if isinstance(shard, str):
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", shard)
        if not m:
            raise ValueError(f"{hint}; got {shard!r}")
        k, n = int(m.group(1)), int(m.group(2))
    else:
        try:
            k, n = (int(v) for v in shard)
        except (TypeError, ValueError):
            raise ValueError(f"{hint}; got {shard!r}") from None
    if n < 1:
        raise ValueError(f"{hint}; got {k}/{n}: N must be at least 1")
    if not 1 <= k <= n:
        raise ValueError(f"{hint}; got {k}/{n}: K must be between 1 and {n}")
    return k, n


def shard_speakers(speakers: list[str], index: int, count: int) -> list[str]:
    """The speakers of shard ``index`` of ``count`` (1-based): in natural order (``splits.natural_key``),
    positions ``index - 1``, ``index - 1 + count``, ... ."""
    from autalk.data.splits import natural_sorted

    return natural_sorted(set(speakers))[index - 1::count]


def shard_file(index: int, count: int) -> str:
    """Name of a shard's manifest + report in its output folder: ``shard-K-of-N.json``."""
    return f"shard-{index}-of-{count}.json"


@dataclass
class CorpusPlan:
    """What one run processes: the whole corpus's listing and speaker split, and this run's clips.

    The split always comes from every speaker listed, so a shard assigns its clips exactly as an
    unsharded run does.
    """

    corpus: str
    root: Path
    splits: dict[str, list[str]]
    split_source: str
    speakers: list[str]  # every speaker with a usable clip (natural order)
    clips: list[Any]  # ClipSource of this run's speakers that are in the split
    dropped: list[dict[str, Any]]  # listing problems (whole corpus) + this run's clips outside the split
    n_listed: int  # clips + listing problems of the whole corpus
    shard: tuple[int, int] | None = None
    shard_speakers: list[str] | None = None  # None: every speaker

    @property
    def split_of(self) -> dict[str, str]:
        return {s: name for name, spk in self.splits.items() for s in spk}


def plan_corpus(corpus: str, root: str | os.PathLike[str], speakers: list[str] | None = None,
                max_per_speaker: int = 0, seed: int = 0,
                shard: str | tuple[int, int] | None = None) -> CorpusPlan:
    """List the corpus, split its speakers (:func:`assign_splits`, over all of them) and pick this run's
    clips: all, or with ``shard=(K, N)`` those of :func:`shard_speakers`."""
    from autalk.data.readers import list_clips
    from autalk.data.splits import natural_sorted

    shard = parse_shard(shard)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"corpus folder {root} not found (for the teaching corpus run "
                                "notebooks/00_teaching_corpus.ipynb or `autalk corpus` first)")
    clips, problems = list_clips(corpus, root, speakers=speakers, max_per_speaker=max_per_speaker)
    dropped: list[dict[str, Any]] = [{"speaker": p.get("speaker"), "clip_id": p.get("clip_id"),
                                      "reason": p.get("reason"), "stage": "listing"} for p in problems]
    if not clips:
        raise ValueError(f"no usable clips found under {root} for corpus {corpus!r}"
                         + (f" ({len(problems)} problems, e.g. {problems[0]['reason']})" if problems else ""))
    found = sorted({c.speaker for c in clips})
    splits, split_source = assign_splits(corpus, found, seed=seed)
    mine = None
    if shard is not None:
        mine = shard_speakers(found, *shard)
        if not mine:
            raise ValueError(f"shard {shard[0]}/{shard[1]} gets no speaker: the corpus has {len(found)} "
                             f"speaker(s) with usable clips, so use at most {len(found)} shards")
    plan = CorpusPlan(corpus, root, splits, split_source, natural_sorted(found), [], dropped,
                      len(clips) + len(problems), shard, mine)
    split_of, chosen = plan.split_of, set(found if mine is None else mine)
    for c in clips:
        if c.speaker not in chosen:
            continue
        if c.speaker in split_of:
            plan.clips.append(c)
        else:
            dropped.append({"speaker": c.speaker, "clip_id": c.clip_id, "stage": "split",
                            "reason": f"speaker not in the speaker split ({split_source})"})
    return plan


def _load_au_detector(au_detector: Any) -> Any:
    """None -> the hand-set rules; an ``AUDetector`` as is; a path -> the saved detector."""
    from autalk.au import AUDetector, default_detector

    if au_detector is None:
        return default_detector()
    if isinstance(au_detector, AUDetector):
        return au_detector
    if not Path(au_detector).is_file():
        raise FileNotFoundError(f"AU detector {au_detector} not found (a fitted one is written to "
                                f"<out>/{AU_DETECTOR_FILE} by preprocessing a corpus with CSV labels)")
    return AUDetector.load(au_detector)


def _refuse_overwritten_detector(au_detector_path: Any, out: Path, calibrate: bool) -> None:
    if (calibrate and isinstance(au_detector_path, (str, os.PathLike))
            and Path(au_detector_path).resolve() == (out / AU_DETECTOR_FILE).resolve()):
        # Calibration rewrites that file: the clips would name a detector that no longer exists.
        raise ValueError(f"--au-detector {au_detector_path} is the file this run's calibration writes; copy "
                         f"it elsewhere first (or preprocess into another --out)")


def _process_clips(plan: CorpusPlan, out: Path, sett: dict[str, Any], au_det: Any, workers: int,
                   progress: bool) -> tuple[list[tuple[str, str, Path]], list[dict], dict[str, Any]]:
    """Run (or resume) the plan's clips into ``out``. Returns the usable clips ``(speaker, clip_id,
    path)``, the dropped ones and the run's counts and speeds (report fields)."""
    from tqdm.auto import tqdm

    jobs = [(c, str(cache.clip_path(out, c.speaker, c.clip_id)), sett, plan.corpus, au_det)
            for c in plan.clips]
    status: Counter[str] = Counter()
    results: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    t_work = time.perf_counter()
    t_first: float | None = None  # when the first processed clip came back (workers started, models loaded)
    frames_after_first = 0
    with tqdm(total=len(jobs), desc="preprocess", unit="clip", disable=not progress) as bar:
        for r in _run_jobs(jobs, workers, sett["detector"]):
            status[r["status"]] += 1
            results.append(r)
            if r["status"] == "kept":
                if t_first is None:
                    t_first = time.perf_counter()
                else:
                    frames_after_first += r["n_frames"]
            if r["status"] == "dropped":
                dropped.append({"speaker": r["speaker"], "clip_id": r["clip_id"], "stage": "preprocess",
                                "reason": r["reason"]})
            bar.update()
            bar.set_postfix(kept=status["kept"], cached=status["cached"], dropped=status["dropped"],
                            refresh=False)
    t_end = time.perf_counter()
    work_s = t_end - t_work
    new_frames = sum(r.get("n_frames", 0) for r in results if r["status"] == "kept")
    good = [(r["speaker"], r["clip_id"], Path(r["path"])) for r in results
            if r["status"] in ("kept", "cached")]
    speed = {
        "clips_processed_now": status["kept"], "clips_resumed_from_cache": status["cached"],
        "clips_redone_for_au_detector": sum(1 for r in results if r.get("redone")),
        "frames_per_second": round(new_frames / work_s, 1) if new_frames and work_s > 0 else None,
        "seconds_to_first_clip": round(t_first - t_work, 2) if t_first is not None else None,
        "frames_per_second_after_first_clip": (round(frames_after_first / (t_end - t_first), 1)
                                               if t_first is not None and t_end > t_first
                                               and frames_after_first else None),
    }
    return good, dropped, speed


def _read_entries(out: Path, clips: list[tuple[str, str, Path]], split_of: dict[str, str],
                  ) -> tuple[list[dict[str, Any]], Counter[str], Counter[str]]:
    """Manifest entries of cached clips, sorted by (speaker, clip id), with their summed decision counts
    and AU sources; read back from the cache files, so a resumed run describes every clip."""
    entries: list[dict[str, Any]] = []
    decisions: Counter[str] = Counter()
    au_sources: Counter[str] = Counter()
    for speaker, clip_id, path in sorted(clips, key=lambda c: (c[0], c[1])):
        meta = cache.read_meta(path)
        decisions.update(meta.get("counts", {}))
        au_sources[meta["au_source"]] += 1
        entries.append({"speaker": speaker, "clip_id": clip_id, "split": split_of[speaker],
                        "path": Path(path).relative_to(out).as_posix(), "n_frames": int(meta["n_frames"]),
                        "au_source": meta["au_source"]})
    return entries, decisions, au_sources


def _sorted_drops(dropped: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Dropped clips by stage (listing, split, preprocess), then speaker and clip id in natural order:
    the same list whatever order the workers (or shards) finished in."""
    from autalk.data.splits import natural_key

    stages = {"listing": 0, "split": 1, "preprocess": 2}
    return sorted(dropped, key=lambda d: (stages.get(d.get("stage"), 3), natural_key(d.get("speaker") or ""),
                                          natural_key(d.get("clip_id") or "")))


def _run_report(plan: CorpusPlan, out: Path, sett: dict[str, Any], seed: int, entries: list[dict[str, Any]],
                dropped: list[dict[str, Any]], decisions: Counter[str], au_sources: Counter[str],
                au_detector: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The report fields every run has (unsharded, shard, merge); ``fields`` go in after the splits."""
    dropped = _sorted_drops(dropped)
    return {
        "corpus": plan.corpus, "root": str(plan.root), "out_dir": str(out), **sett, "seed": seed,
        "splits": plan.splits, "split_source": plan.split_source, **fields,
        "clips_listed": plan.n_listed, "clips_kept": len(entries),
        "clips_dropped": len(dropped), "frames_kept": sum(e["n_frames"] for e in entries),
        "kept_per_split": {s: sum(e["split"] == s for e in entries) for s in plan.splits},
        "dropped": dropped,
        "drop_reasons": dict(Counter(_reason_kind(d["reason"]) for d in dropped)),
        "decisions": dict(sorted(decisions.items())),
        "au_sources": dict(au_sources),
        "au_detector": {**au_detector,
                        "labels": "frames without a usable CSV row (all frames of clips without a CSV)"},
    }


def _write_corpus_files(out: Path, entries: list[dict[str, Any]], plan: CorpusPlan, sett: dict[str, Any],
                        calibrate: bool, au_detector_path: str | None) -> dict[str, Any]:
    """The whole-corpus files of a cache, from its clip files: ``manifest.json`` (train-split AU rates and
    Eq. 1 weights), ``norm.json`` (train speakers' MFCCs) and, with ``calibrate``, ``au_detector.json``
    (:func:`calibrate_au_detector`). An unsharded run and a merge of shards both end here, with the
    entries in the same order, so they write the same files. Returns the report fields they add."""
    train_pres, train_mfcc = [], []
    for e in entries:
        if e["split"] == "train":
            d = cache.load_clip(out / e["path"], keys=("au_presence", "mfcc_raw"))
            train_pres.append(d["au_presence"])
            train_mfcc.append(d["mfcc_raw"])
    info = {"corpus": plan.corpus, "root": str(plan.root), **sett, "split_source": plan.split_source,
            "mfcc": {"n_mfcc": A.N_MFCC, "sr": A.SAMPLE_RATE, "hop_ms": A.HOP_MS, "win_ms": A.WIN_MS,
                     "window_ms": A.WINDOW_MS, "window_steps": A.WINDOW_STEPS}}
    manifest = cache.build_manifest(out, entries, plan.splits, train_pres, **info)
    cache.write_json(out / cache.MANIFEST, manifest)
    notes: list[str] = []
    if train_mfcc:
        train_speakers = sorted({e["speaker"] for e in entries if e["split"] == "train"})
        A.NormStats.from_mfccs(train_mfcc, train_speakers).save(out / cache.NORM)
    else:
        notes.append("no training clips: norm.json not written")

    t_cal = time.perf_counter()
    agreement = calibrate_au_detector(out, entries, plan.splits, corpus=plan.corpus) if calibrate else None
    calibration_s = round(time.perf_counter() - t_cal, 2)
    stale = out / AU_DETECTOR_FILE
    if (calibrate and not (agreement and agreement["fitted"]) and stale.is_file()
            and not (au_detector_path and Path(au_detector_path).resolve() == stale.resolve())):
        stale.unlink()  # from an earlier run on other clips: it no longer describes this cache
        notes.append(f"removed a stale {AU_DETECTOR_FILE} (no detector was fitted this time)")
    return {
        "detector_agreement": agreement,
        "au_detector_fitted": agreement["fitted"]["path"] if agreement and agreement["fitted"] else None,
        "calibration_seconds": calibration_s,
        "au_occurrence_rates": manifest["au_occurrence_rates"],
        "au_loss_weights": manifest["au_loss_weights"],
        "notes": notes,
    }


def preprocess_corpus(corpus: str, root: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                      image_size: int = 64, workers: int = 2, max_per_speaker: int = 0,
                      speakers: list[str] | None = None, detector: str = "hog", progress: bool = True,
                      seed: int = 0, stride: int = 5, au_detector: Any = None,
                      calibrate: bool = True, shard: str | tuple[int, int] | None = None) -> dict[str, Any]:
    """Preprocess a whole corpus into ``out_dir`` (see the module docstring); returns the report dict.

    ``corpus``: ``grid``, ``tcd`` (published speaker splits), ``synthgrid`` (the teaching corpus) or
    ``folder`` (any GRID-layout folder); the last two get a seeded 8:2 speaker split.
    ``au_detector``: the landmark AU detector that labels frames without a CSV row: None for the
    hand-set rules, or a path to a saved ``autalk.au.AUDetector`` JSON (or the object), e.g. the
    ``au_detector.json`` a teaching-corpus run fitted. A detector fitted on synthetic faces is not
    validated on real ones; the report and every clip's metadata record which detector was used.
    Cached clips labelled by another detector are redone. ``calibrate``: fit and evaluate the detector
    on the CSV labels (:func:`calibrate_au_detector`) when the train split has them.

    ``shard``: ``"K/N"`` or ``(K, N)`` processes only the speakers of shard K of N
    (:func:`shard_speakers`) and writes their clip files plus ``shard-K-of-N.json`` (their manifest
    entries, under the whole corpus's split, and this shard's report), but no ``manifest.json``,
    ``norm.json``, ``au_detector.json`` or ``report.json``: :func:`merge_shards` writes those over all
    shards. Shards may share one ``out_dir`` or use one each.
    """
    if corpus not in CORPORA:
        raise ValueError(f"unknown corpus {corpus!r}; choose one of {', '.join(CORPORA)}")
    if detector not in ("hog", "cnn"):
        raise ValueError(f"unknown detector {detector!r}; use 'hog' or 'cnn'")
    if image_size < 16:
        raise ValueError(f"image_size must be at least 16, got {image_size}")
    shard = parse_shard(shard)
    au_det = _load_au_detector(au_detector)
    out = Path(out_dir)
    if shard is None:
        _refuse_overwritten_detector(au_detector, out, calibrate)
    t_start = time.perf_counter()
    plan = plan_corpus(corpus, root, speakers=speakers, max_per_speaker=max_per_speaker, seed=seed,
                       shard=shard)
    out.mkdir(parents=True, exist_ok=True)
    # A shard cleans only its own speakers' folders: other shards may be writing into the same out_dir.
    n_tmp = cache.remove_temp_files(out, speakers=plan.shard_speakers)
    sett = settings(image_size, detector, stride)
    good, dropped, speed = _process_clips(plan, out, sett, au_det, workers, progress)
    entries, decisions, au_sources = _read_entries(out, good, plan.split_of)
    report = _run_report(plan, out, sett, seed, entries, plan.dropped + dropped, decisions, au_sources,
                         _describe(au_det), workers=workers)
    report.update(clips_processed_now=speed["clips_processed_now"],
                  clips_resumed_from_cache=speed["clips_resumed_from_cache"],
                  clips_redone_for_au_detector=speed["clips_redone_for_au_detector"])
    if shard is not None:
        k, n = shard
        report = {"shard": {"index": k, "count": n, "speakers": plan.shard_speakers,
                            "file": shard_file(k, n)},
                  **report, "max_per_speaker": max_per_speaker, "speakers_requested": speakers,
                  "speakers": plan.speakers, "temp_files_removed": n_tmp,
                  "seconds": round(time.perf_counter() - t_start, 2), **speed,
                  "notes": [f"shard {k}/{n}: AU rates, loss weights, norm.json and au_detector.json are "
                            f"computed over all shards by `autalk preprocess --merge`"],
                  "clips": entries}
        cache.write_json(out / shard_file(k, n), report)
        return report
    report.update(_write_corpus_files(out, entries, plan, sett, calibrate, au_det.path))
    report.update(temp_files_removed=n_tmp, seconds=round(time.perf_counter() - t_start, 2), **speed)
    report["notes"] = report.pop("notes")  # last, as before
    cache.write_json(out / cache.REPORT, report)
    return report


# ---- shards ----------------------------------------------------------------------------------------

# Report fields every shard of one run has alike (plus the AU detector's fingerprint).
SHARD_KEYS = ("corpus", "image_size", "detector", "stride", "fps", "sr", "seed", "max_per_speaker",
              "speakers_requested", "speakers", "splits", "split_source", "clips_listed")


def find_shard_files(dirs: list[str | os.PathLike[str]]) -> list[Path]:
    """The ``shard-K-of-N.json`` files in each folder or, for a folder without any, in its subfolders."""
    files: list[Path] = []
    for d in map(Path, dirs):
        if not d.is_dir():
            raise FileNotFoundError(f"shard folder {d} not found")
        found = sorted(d.glob("shard-*-of-*.json")) or sorted(d.glob("*/shard-*-of-*.json"))
        if not found:
            raise FileNotFoundError(f"no shard-K-of-N.json in {d} nor in its subfolders: run "
                                    "`autalk preprocess --shard K/N --out ...` for every shard first")
        files += [f for f in found if f not in files]
    return files


def _check_shards(shards: list[tuple[Path, dict[str, Any]]]) -> None:
    """Refuse a merge that would not be the whole corpus under one set of options."""
    for path, rep in shards:
        if not isinstance(rep.get("shard"), dict) or "clips" not in rep:
            raise ValueError(f"{path} is not a shard report written by `autalk preprocess --shard`")
    counts = sorted({rep["shard"]["count"] for _, rep in shards})
    if len(counts) > 1:
        raise ValueError(f"shards of different runs: shard counts {counts} in "
                         + ", ".join(str(p) for p, _ in shards) + "; merge the files of one run")
    n = counts[0]
    by_index: dict[int, list[Path]] = {}
    for path, rep in shards:
        by_index.setdefault(rep["shard"]["index"], []).append(path)
    twice = {k: v for k, v in by_index.items() if len(v) > 1}
    if twice:
        raise ValueError("the same shard more than once: " + "; ".join(
            f"{k}/{n} in {', '.join(map(str, v))}" for k, v in sorted(twice.items())))
    missing = [k for k in range(1, n + 1) if k not in by_index]
    if missing:
        raise ValueError(f"missing shard(s) {', '.join(f'{k}/{n}' for k in missing)} (found "
                         f"{', '.join(str(k) for k in sorted(by_index))}): run them before merging")
    p0, r0 = shards[0]
    for path, rep in shards[1:]:
        for key in SHARD_KEYS + ("au_detector_fingerprint",):
            a = r0["au_detector"]["fingerprint"] if key == "au_detector_fingerprint" else r0.get(key)
            b = rep["au_detector"]["fingerprint"] if key == "au_detector_fingerprint" else rep.get(key)
            if a != b:
                raise ValueError(f"shards disagree on {key}: {a!r} in {p0}, {b!r} in {path}; "
                                 "run every shard with the same corpus and options")
    for path, rep in shards:
        k = rep["shard"]["index"]
        if rep["shard"]["speakers"] != shard_speakers(rep["speakers"], k, n):
            raise ValueError(f"{path}: its speakers are not those of shard {k}/{n}")


def _place_clip(src: Path, dst: Path) -> str:
    """Put a shard's cache file at ``dst``: a hard link (no copy, the same file), or a copy where the two
    folders are on different filesystems. Atomic (temp name, then rename). Returns what was done.

    Linking is safe because cache files are never modified in place, only replaced by rename."""
    if dst.exists():
        if os.path.samefile(src, dst):
            return "in_place"  # a shared out_dir, or linked by an earlier merge
        s, d = src.stat(), dst.stat()
        if (s.st_size, s.st_mtime_ns) == (d.st_size, d.st_mtime_ns):
            return "in_place"  # copied by an earlier merge (copy2 keeps the modification time)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f"{dst.stem}{cache.TMP_MARK}merge-{os.getpid()}.npz")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(src, tmp)
            how = "linked"
        except OSError:  # another filesystem (or no hard links there)
            shutil.copy2(src, tmp)
            how = "copied"
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return how


def merge_shards(shard_dirs: list[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
                 calibrate: bool = True, corpus: str | None = None,
                 root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Merge the shards of one sharded run (``preprocess_corpus(..., shard="K/N")``) into one cache.

    ``shard_dirs``: the shards' output folders (or folders holding them, see :func:`find_shard_files`);
    all N shards must be there, run with the same corpus and options. Each clip file is hard-linked into
    ``out_dir/clips/`` (copied when the shard is on another filesystem; left alone when ``out_dir`` is the
    shard's own folder), then ``manifest.json``, ``norm.json``, ``au_detector.json`` and ``report.json``
    are computed from the merged cache exactly as an unsharded run computes them. ``corpus`` / ``root``,
    when given, must be those of the shards. Returns the report (with ``shards`` and ``merge``).
    """
    t_start = time.perf_counter()
    out = Path(out_dir)
    files = find_shard_files(shard_dirs)
    shards = [(p, json.loads(p.read_text())) for p in files]
    _check_shards(shards)
    shards.sort(key=lambda s: s[1]["shard"]["index"])
    first = shards[0][1]
    if corpus is not None and corpus != first["corpus"]:
        raise ValueError(f"--corpus {corpus} but the shards preprocessed {first['corpus']}")
    if root is not None and Path(root).resolve() != Path(first["root"]).resolve():
        raise ValueError(f"--root {root} but the shards preprocessed {first['root']}")
    au_path = first["au_detector"].get("path")
    _refuse_overwritten_detector(au_path, out, calibrate)
    out.mkdir(parents=True, exist_ok=True)
    n_tmp = cache.remove_temp_files(out)
    sett = settings(first["image_size"], first["detector"], first["stride"], first["fps"], first["sr"])
    plan = CorpusPlan(first["corpus"], Path(first["root"]), first["splits"], first["split_source"],
                      first["speakers"], [], [d for d in first["dropped"] if d.get("stage") == "listing"],
                      first["clips_listed"])
    placed: Counter[str] = Counter()
    clips, dropped = [], list(plan.dropped)
    for path, rep in shards:
        for e in rep["clips"]:
            src = path.parent / e["path"]
            if not cache.is_complete(src, expect={**sett, "corpus": plan.corpus}):
                raise ValueError(f"{src} (a clip of {path}) is missing or incomplete: rerun that shard")
            dst = cache.clip_path(out, e["speaker"], e["clip_id"])
            placed[_place_clip(src, dst)] += 1
            clips.append((e["speaker"], e["clip_id"], dst))
        dropped += [d for d in rep["dropped"] if d.get("stage") != "listing"]
    entries, decisions, au_sources = _read_entries(out, clips, plan.split_of)
    report = _run_report(plan, out, sett, first["seed"], entries, dropped, decisions, au_sources,
                         {k: v for k, v in first["au_detector"].items() if k != "labels"}, workers=None)
    report.update({k: sum(rep[k] for _, rep in shards) for k in
                   ("clips_processed_now", "clips_resumed_from_cache", "clips_redone_for_au_detector")})
    report.update(_write_corpus_files(out, entries, plan, sett, calibrate, au_path))
    roots = sorted({rep["root"] for _, rep in shards})
    if len(roots) > 1:
        report["notes"].append(f"the shards named the corpus folder differently: {roots}")
    report.update(
        temp_files_removed=n_tmp, seconds=round(time.perf_counter() - t_start, 2),
        frames_per_second=None, seconds_to_first_clip=None, frames_per_second_after_first_clip=None,
        shards=[{"index": rep["shard"]["index"], "file": str(path), "speakers": rep["shard"]["speakers"],
                 "workers": rep["workers"], "clips_kept": rep["clips_kept"],
                 "clips_processed_now": rep["clips_processed_now"], "clips_dropped": rep["clips_dropped"],
                 "seconds": rep["seconds"], "frames_per_second": rep["frames_per_second"]}
                for path, rep in shards],
        merge={"clips_linked": placed["linked"], "clips_copied": placed["copied"],
               "clips_already_in_place": placed["in_place"]})
    report["notes"] = report.pop("notes")
    cache.write_json(out / cache.REPORT, report)
    return report


def _f(x: Any) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _reason_kind(reason: str) -> str:
    """The reason up to its first colon (e.g. "face detection failed"), for counting."""
    return (reason or "unknown").split(":")[0].strip()


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None  # NaN (e.g. an F1 with no positives) -> null in JSON
    return x


def summary(report: dict[str, Any]) -> str:
    """A few lines describing a preprocessing report (printed by the CLI and the notebook)."""
    lines = [f"{report['corpus']} at {report['root']} -> {report['out_dir']}",
             f"clips: {report['clips_kept']} kept ({report['clips_processed_now']} processed now, "
             f"{report['clips_resumed_from_cache']} already cached), {report['clips_dropped']} dropped; "
             f"{report['frames_kept']} frames; split " + ", ".join(f"{k} {v}" for k, v in
                                                                report["kept_per_split"].items())]
    sh = report.get("shard")
    if sh:
        lines.append(f"shard {sh['index']}/{sh['count']}: speakers {', '.join(sh['speakers'])} "
                     f"(of {len(report['speakers'])}); the whole-corpus files (manifest.json, norm.json, "
                     "au_detector.json, report.json) are written by `autalk preprocess --merge`")
    if report.get("shards"):
        m = report["merge"]
        lines.append(f"merged {len(report['shards'])} shards: {m['clips_linked']} clip files hard-linked, "
                     f"{m['clips_copied']} copied, {m['clips_already_in_place']} already in place")
    if report["drop_reasons"]:
        lines.append("dropped because: " + "; ".join(f"{k} x{v}" for k, v in report["drop_reasons"].items()))
    if report["decisions"]:
        lines.append("decisions: " + ", ".join(f"{k} {v}" for k, v in report["decisions"].items()))
    if report.get("frames_per_second"):
        lines.append(f"speed: {report['frames_per_second']} frames/s with {report['workers']} worker(s) "
                     f"({report['seconds_to_first_clip']} s until the first clip: starting workers, loading "
                     f"models; {report['frames_per_second_after_first_clip'] or '-'} frames/s after that)")
    ag = report.get("detector_agreement")
    if ag:
        held, dflt = ag.get("fitted_on_train"), ag.get("default_rules_on_test")
        rules = ag["default_rules"]
        line = (f"landmark AU detector vs CSV labels, mean F1: hand-set rules {_f(rules['avg_f1'])} "
                f"on all {rules['n_clips']} clips")
        if held:
            line += (f"; on the held-out test speakers: rules {_f(dflt['avg_f1'])}, fitted on train "
                     f"{_f(held['avg_f1'])} (saved as {ag['fitted']['path']})")
        lines.append(line)
    if report.get("au_loss_weights"):
        lines.append("AU loss weights (Eq. 1): " + ", ".join(f"{k} {v:.2f}" for k, v in
                                                            report["au_loss_weights"].items()))
    return "\n".join(lines)
