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

import os
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


def preprocess_corpus(corpus: str, root: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                      image_size: int = 64, workers: int = 2, max_per_speaker: int = 0,
                      speakers: list[str] | None = None, detector: str = "hog", progress: bool = True,
                      seed: int = 0, stride: int = 5, au_detector: Any = None,
                      calibrate: bool = True) -> dict[str, Any]:
    """Preprocess a whole corpus into ``out_dir`` (see the module docstring); returns the report dict.

    ``corpus``: ``grid``, ``tcd`` (published speaker splits), ``synthgrid`` (the teaching corpus) or
    ``folder`` (any GRID-layout folder); the last two get a seeded 8:2 speaker split.
    ``au_detector``: the landmark AU detector that labels frames without a CSV row: None for the
    hand-set rules, or a path to a saved ``autalk.au.AUDetector`` JSON (or the object), e.g. the
    ``au_detector.json`` a teaching-corpus run fitted. A detector fitted on synthetic faces is not
    validated on real ones; the report and every clip's metadata record which detector was used.
    Cached clips labelled by another detector are redone. ``calibrate``: fit and evaluate the detector
    on the CSV labels (:func:`calibrate_au_detector`) when the train split has them.
    """
    from tqdm.auto import tqdm

    from autalk.data.readers import list_clips

    if corpus not in CORPORA:
        raise ValueError(f"unknown corpus {corpus!r}; choose one of {', '.join(CORPORA)}")
    if detector not in ("hog", "cnn"):
        raise ValueError(f"unknown detector {detector!r}; use 'hog' or 'cnn'")
    if image_size < 16:
        raise ValueError(f"image_size must be at least 16, got {image_size}")
    from autalk.au import AUDetector, default_detector

    if au_detector is None:
        au_det = default_detector()
    elif isinstance(au_detector, AUDetector):
        au_det = au_detector
    else:
        if not Path(au_detector).is_file():
            raise FileNotFoundError(f"AU detector {au_detector} not found (a fitted one is written to "
                                    f"<out>/{AU_DETECTOR_FILE} by preprocessing a corpus with CSV labels)")
        au_det = AUDetector.load(au_detector)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"corpus folder {root} not found (for the teaching corpus run "
                                "notebooks/00_teaching_corpus.ipynb or `autalk corpus` first)")
    out = Path(out_dir)
    if (calibrate and isinstance(au_detector, (str, os.PathLike))
            and Path(au_detector).resolve() == (out / AU_DETECTOR_FILE).resolve()):
        # Calibration rewrites that file: the clips would name a detector that no longer exists.
        raise ValueError(f"--au-detector {au_detector} is the file this run's calibration writes; copy it "
                         f"elsewhere first (or preprocess into another --out)")
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    n_tmp = cache.remove_temp_files(out)

    clips, problems = list_clips(corpus, root, speakers=speakers, max_per_speaker=max_per_speaker)
    dropped: list[dict[str, Any]] = [{"speaker": p.get("speaker"), "clip_id": p.get("clip_id"),
                                      "reason": p.get("reason"), "stage": "listing"} for p in problems]
    if not clips:
        raise ValueError(f"no usable clips found under {root} for corpus {corpus!r}"
                         + (f" ({len(problems)} problems, e.g. {problems[0]['reason']})" if problems else ""))
    found = sorted({c.speaker for c in clips})
    splits, split_source = assign_splits(corpus, found, seed=seed)
    split_of = {s: name for name, spk in splits.items() for s in spk}
    kept_src = []
    for c in clips:
        if c.speaker in split_of:
            kept_src.append(c)
        else:
            dropped.append({"speaker": c.speaker, "clip_id": c.clip_id, "stage": "split",
                            "reason": f"speaker not in the speaker split ({split_source})"})
    sett = settings(image_size, detector, stride)
    jobs = [(c, str(cache.clip_path(out, c.speaker, c.clip_id)), sett, corpus, au_det) for c in kept_src]

    status: Counter[str] = Counter()
    results: list[dict[str, Any]] = []
    t_work = time.perf_counter()
    t_first: float | None = None  # when the first processed clip came back (workers started, models loaded)
    frames_after_first = 0
    with tqdm(total=len(jobs), desc="preprocess", unit="clip", disable=not progress) as bar:
        for r in _run_jobs(jobs, workers, detector):
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
    n_redone = sum(1 for r in results if r.get("redone"))

    # Everything below is read back from the cache files, so a resumed run reports the whole corpus.
    good = sorted((r for r in results if r["status"] in ("kept", "cached")),
                  key=lambda r: (r["speaker"], r["clip_id"]))
    entries, train_pres, train_mfcc = [], [], []
    decisions: Counter[str] = Counter()
    au_sources: Counter[str] = Counter()
    for r in good:
        d = cache.load_clip(r["path"], keys=("au_presence", "mfcc_raw"))
        meta = d["meta"]
        split = split_of[r["speaker"]]
        decisions.update(meta.get("counts", {}))
        au_sources[meta["au_source"]] += 1
        entries.append({"speaker": r["speaker"], "clip_id": r["clip_id"], "split": split,
                        "path": str(Path(r["path"]).relative_to(out)), "n_frames": int(meta["n_frames"]),
                        "au_source": meta["au_source"]})
        if split == "train":
            train_pres.append(d["au_presence"])
            train_mfcc.append(d["mfcc_raw"])

    info = {"corpus": corpus, "root": str(root), **sett, "split_source": split_source,
            "mfcc": {"n_mfcc": A.N_MFCC, "sr": A.SAMPLE_RATE, "hop_ms": A.HOP_MS, "win_ms": A.WIN_MS,
                     "window_ms": A.WINDOW_MS, "window_steps": A.WINDOW_STEPS}}
    manifest = cache.build_manifest(out, entries, splits, train_pres, **info)
    cache.write_json(out / cache.MANIFEST, manifest)
    norm_note = None
    notes: list[str] = []
    if train_mfcc:
        train_speakers = sorted({e["speaker"] for e in entries if e["split"] == "train"})
        A.NormStats.from_mfccs(train_mfcc, train_speakers).save(out / cache.NORM)
    else:
        norm_note = "no training clips: norm.json not written"

    t_cal = time.perf_counter()
    agreement = calibrate_au_detector(out, entries, splits, corpus=corpus) if calibrate else None
    calibration_s = round(time.perf_counter() - t_cal, 2)
    stale = out / AU_DETECTOR_FILE
    if (calibrate and not (agreement and agreement["fitted"]) and stale.is_file()
            and not (au_det.path and Path(au_det.path).resolve() == stale.resolve())):
        stale.unlink()  # from an earlier run on other clips: it no longer describes this cache
        notes.append(f"removed a stale {AU_DETECTOR_FILE} (no detector was fitted this time)")

    n_frames_total = sum(e["n_frames"] for e in entries)
    report = {
        "corpus": corpus, "root": str(root), "out_dir": str(out), **sett, "workers": workers,
        "seed": seed, "splits": splits, "split_source": split_source,
        "clips_listed": len(clips) + len(problems), "clips_kept": len(entries),
        "clips_processed_now": status["kept"], "clips_resumed_from_cache": status["cached"],
        "clips_redone_for_au_detector": n_redone,
        "clips_dropped": len(dropped), "frames_kept": n_frames_total,
        "kept_per_split": {s: sum(e["split"] == s for e in entries) for s in splits},
        "dropped": dropped,
        "drop_reasons": dict(Counter(_reason_kind(d["reason"]) for d in dropped)),
        "decisions": dict(sorted(decisions.items())),
        "au_sources": dict(au_sources),
        "au_detector": {**_describe(au_det),
                        "labels": "frames without a usable CSV row (all frames of clips without a CSV)"},
        "detector_agreement": agreement,
        "au_detector_fitted": agreement["fitted"]["path"] if agreement and agreement["fitted"] else None,
        "calibration_seconds": calibration_s,
        "temp_files_removed": n_tmp,
        "au_occurrence_rates": manifest["au_occurrence_rates"],
        "au_loss_weights": manifest["au_loss_weights"],
        "seconds": round(time.perf_counter() - t_start, 2),
        "frames_per_second": round(new_frames / work_s, 1) if new_frames and work_s > 0 else None,
        "seconds_to_first_clip": round(t_first - t_work, 2) if t_first is not None else None,
        "frames_per_second_after_first_clip": (round(frames_after_first / (t_end - t_first), 1)
                                               if t_first is not None and t_end > t_first
                                               and frames_after_first else None),
        "notes": [n for n in (norm_note,) if n] + notes,
    }
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
