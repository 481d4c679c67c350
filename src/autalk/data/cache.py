"""The preprocessing cache: one compressed ``.npz`` per clip plus ``manifest.json``.

Layout under ``runs/<profile>/01_preprocess/``::

    clips/<speaker>/<clip_id>.npz   one clip (arrays below), written atomically
    manifest.json                   clips with their split, AU occurrence rates r_i and loss weights w_i
    norm.json                       MFCC normalisation statistics (training speakers only)
    report.json                     what preprocessing kept, dropped and decided; the landmark AU
                                    detector's agreement with the CSV labels (autalk.preprocess)
    au_detector.json                the landmark AU detector fitted on the train speakers' CSV labels
                                    (only when the train split has CSVs; autalk.au.AUDetector.load)

Arrays of a clip file (T video frames at 25 fps, S = image size, A = 5 paper AUs)::

    frames             (T,S,S,3) uint8   RGB face crops
    identity           (S,S,3)   uint8   identity image = first crop (paper, appendix A.1)
    mfcc               (T,12,28) float32 280 ms MFCC window per frame (autalk.audio.mfcc_windows)
    mfcc_raw           (12,N)    float32 the clip's MFCCs at 100 Hz (for normalisation statistics)
    au_presence        (T,A)     uint8   AU labels 0/1
    au_intensity       (T,A)     float32 AU intensities 0..5
    au_from_detector   (T,)      uint8   1 where the label came from the landmark detector (not a CSV)
    au_presence_detector (T,A)   uint8   the landmark detector's labels (only when a CSV exists)
    landmarks          (T,68,2)  float32 dlib-68 landmarks in crop pixel coordinates
    boxes              (T,4)     float32 face box (x0, y0, x1, y1) in source-frame pixels
    detected           (T,)      uint8   1 where the detector found the face (0: interpolated)
    crop_transform     (3,3)     float64 maps source-frame pixels to crop pixels (homogeneous)
    meta               ()        str     JSON: corpus, speaker, clip_id, au_source, au_detector (the
                                         landmark detector that labelled non-CSV frames), settings,
                                         source files and their source_stamp (size + mtime), notes, counts

A file exists under its final name only once it is complete (temp name + ``os.replace``), so a killed
run never leaves a partial clip behind and a rerun skips every clip already done.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from autalk import PAPER_AUS
from autalk.fsutil import atomic_open, atomic_write_json

CACHE_VERSION = 1
REQUIRED_KEYS = ("frames", "identity", "mfcc", "mfcc_raw", "au_presence", "au_intensity", "landmarks", "meta")
MANIFEST = "manifest.json"
NORM = "norm.json"
REPORT = "report.json"
TMP_MARK = ".tmp-"


def clip_path(out_dir: str | os.PathLike[str], speaker: str, clip_id: str) -> Path:
    """Where the cache file of one clip lives."""
    return Path(out_dir) / "clips" / speaker / f"{clip_id}.npz"


def _meta_of(z: Any) -> dict:
    return json.loads(str(z["meta"][()]))


def read_meta(path: str | os.PathLike[str]) -> dict:
    """The metadata of a cache file (reads only that member)."""
    with np.load(path, allow_pickle=False) as z:
        return _meta_of(z)


def is_complete(path: str | os.PathLike[str], expect: dict | None = None) -> bool:
    """True if ``path`` is a readable cache file of this version holding every required array, and its
    metadata matches ``expect`` (e.g. ``{"image_size": 64}``) key by key."""
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        return False
    try:
        with np.load(p, allow_pickle=False) as z:
            if any(k not in z.files for k in REQUIRED_KEYS):
                return False
            meta = _meta_of(z)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
        return False
    if meta.get("cache_version") != CACHE_VERSION:
        return False
    return all(meta.get(k) == v for k, v in (expect or {}).items())


def save_clip(path: str | os.PathLike[str], arrays: dict[str, np.ndarray], meta: dict,
              overwrite: bool = False, expect: dict | None = None) -> bool:
    """Write one clip atomically; returns False (and writes nothing) when a complete file is already
    there and ``overwrite`` is False. ``expect`` is passed to :func:`is_complete` for that check.

    The arrays go to a temp file in the same folder that is renamed over ``path`` only after it was
    written and flushed; on any error the temp file is removed and ``path`` is untouched.
    """
    p = Path(path)
    missing = [k for k in REQUIRED_KEYS if k != "meta" and k not in arrays]
    if missing:
        raise ValueError(f"cache arrays missing: {missing}")
    if not overwrite and is_complete(p, expect):
        return False
    p.parent.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "cache_version": CACHE_VERSION}
    with atomic_open(p, "wb", prefix=p.stem + TMP_MARK, suffix=".npz") as f:
        np.savez_compressed(f, **arrays, meta=np.array(json.dumps(meta)))
    return True


def load_clip(path: str | os.PathLike[str], keys: Iterable[str] | None = None,
              optional: Iterable[str] = ()) -> dict[str, Any]:
    """Arrays of one cache file (all, or only ``keys``; only those are decompressed) and ``meta``.
    Names in ``optional`` are loaded when the file has them and silently left out otherwise."""
    with np.load(path, allow_pickle=False) as z:
        names = list(keys) if keys is not None else [k for k in z.files if k != "meta"]
        names += [k for k in optional if k in z.files and k not in names]
        out: dict[str, Any] = {k: z[k] for k in names if k != "meta"}
        out["meta"] = _meta_of(z)
    return out


def remove_temp_files(out_dir: str | os.PathLike[str], speakers: Iterable[str] | None = None) -> int:
    """Delete temp files left by an interrupted run; returns how many. With ``speakers``, only in those
    speakers' folders (a preprocessing shard: other shards may be writing into the same ``out_dir``)."""
    n = 0
    patterns = ([f"clips/**/*{TMP_MARK}*"] if speakers is None
                else [f"clips/{s}/*{TMP_MARK}*" for s in speakers])
    for pattern in patterns:
        for t in Path(out_dir).glob(pattern):
            t.unlink(missing_ok=True)
            n += 1
    return n


# ---- AU statistics (paper Eq. 1) -------------------------------------------------------------------


def au_occurrence_rates(presence: Iterable[np.ndarray]) -> tuple[np.ndarray, int]:
    """r_i: the fraction of frames in which AU i is present, over all given ``(T, A)`` arrays.
    Returns the rates ``(A,)`` and the number of frames counted."""
    total = None
    n = 0
    for p in presence:
        p = np.asarray(p)
        s = (p > 0).sum(axis=0)
        total = s if total is None else total + s
        n += p.shape[0]
    if total is None or n == 0:
        raise ValueError("no frames to compute AU occurrence rates from (empty training split?)")
    return total / n, n


MIN_RATE = 0.01  # floor of r_i in Eq. 1


def au_loss_weights(rates: np.ndarray, min_rate: float = MIN_RATE) -> np.ndarray:
    """Paper Eq. 1: ``w_i = (1/r_i) n_au / sum_j (1/r_j)`` (the weights average to 1).

    An AU that never occurs (r_i = 0) would get an infinite weight and leave none for the others, so
    rates are floored at ``min_rate`` (1% of frames; our choice, the paper has no such case).
    """
    r = np.maximum(np.asarray(rates, dtype=np.float64), min_rate)
    inv = 1.0 / r
    return inv * len(r) / inv.sum()


# ---- manifest --------------------------------------------------------------------------------------


def write_json(path: str | os.PathLike[str], data: dict) -> None:
    """Write JSON atomically (temp file + rename)."""
    atomic_write_json(path, data)


def build_manifest(out_dir: str | os.PathLike[str], clips: list[dict], splits: dict[str, list[str]],
                   train_presence: list[np.ndarray], aus: tuple[int, ...] = PAPER_AUS,
                   **info: Any) -> dict:
    """The manifest dict: ``clips`` (each with speaker, clip_id, split, path relative to ``out_dir``,
    n_frames), ``splits``, and the train split's AU occurrence rates and Eq. 1 loss weights."""
    manifest: dict[str, Any] = {"cache_version": CACHE_VERSION, **info, "aus": list(aus), "splits": splits,
                                "n_clips": {s: sum(c["split"] == s for c in clips) for s in splits},
                                "clips": clips}
    if train_presence:
        rates, n = au_occurrence_rates(train_presence)
        weights = au_loss_weights(rates)
        manifest.update({
            "au_occurrence_rates": {f"AU{a:02d}": float(r) for a, r in zip(aus, rates, strict=True)},
            "au_loss_weights": {f"AU{a:02d}": float(w) for a, w in zip(aus, weights, strict=True)},
            "au_stats_frames": int(n),
            "au_loss_weights_formula": "w_i = (1/r_i) n_au / sum_j(1/r_j), r_i = train-split occurrence "
                                       f"rate (paper Eq. 1); r_i floored at {MIN_RATE}",
            "au_rates_floored": [f"AU{a:02d}" for a, r in zip(aus, rates, strict=True) if r < MIN_RATE],
        })
    else:
        manifest.update({"au_occurrence_rates": None, "au_loss_weights": None, "au_stats_frames": 0})
    return manifest


def read_manifest(cache_dir: str | os.PathLike[str]) -> dict:
    p = Path(cache_dir) / MANIFEST
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found: run preprocessing (notebooks/01_preprocessing.ipynb or "
                                "`autalk preprocess`) first")
    return json.loads(p.read_text())


def loss_weights(cache_dir: str | os.PathLike[str]) -> np.ndarray:
    """The Eq. 1 weights w_i of a cache, in PAPER_AUS order."""
    m = read_manifest(cache_dir)
    if not m.get("au_loss_weights"):
        raise ValueError(f"{cache_dir}: the manifest has no AU loss weights (no training clips)")
    return np.array([m["au_loss_weights"][f"AU{a:02d}"] for a in m["aus"]], dtype=np.float32)
