"""OpenFace ``FeatureExtraction`` CSV files: read the paper's AUs, write the same layout.

OpenFace 2.x writes one row per frame with ``frame, face_id, timestamp, confidence, success`` first and
then ~700 more columns (gaze, pose, landmarks, ...), among them ``AUxx_r`` (intensity 0..5) for AUs
01 02 04 05 06 07 09 10 12 14 15 17 20 23 25 26 45 and ``AUxx_c`` (presence 0/1) for the same plus 28.
All five paper AUs (10 14 20 25 26) exist in both forms.

Quirks tolerated by :func:`read_openface_csv`:

* columns separated by ``", "`` so that names carry a leading space (``' AU10_r'``): names are stripped;
* older builds without the ``face_id`` column;
* any number of extra columns, in any order; a UTF-8 byte-order mark; blank trailing lines;
* multi-face files (``FaceLandmarkVidMulti``): only the lowest ``face_id`` of each frame is kept.

Frames are *kept* in the arrays and flagged in ``valid`` (``success == 1`` and
``confidence >= min_confidence``); ``n_dropped`` counts the flagged-out frames, so callers that keep
only valid frames can say how many they dropped and why.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autalk import PAPER_AUS

# AUs for which OpenFace writes a presence column but no intensity column.
PRESENCE_ONLY_AUS: frozenset[int] = frozenset({28})


def au_name(au: int, kind: str) -> str:
    """Column name of an AU: ``au_name(10, "r") == "AU10_r"``."""
    if kind not in ("r", "c"):
        raise ValueError(f"kind must be 'r' (intensity) or 'c' (presence), got {kind!r}")
    return f"AU{int(au):02d}_{kind}"


@dataclass
class OpenFaceAUs:
    """The paper's AUs from one OpenFace CSV, one row per frame (invalid frames included, see ``valid``)."""

    frame: np.ndarray  # (T,) int, OpenFace frame numbers (1-based)
    timestamp: np.ndarray  # (T,) float seconds
    intensity: np.ndarray  # (T, A) float32, AUxx_r; NaN where the file has no intensity column (AU28)
    presence: np.ndarray  # (T, A) uint8, AUxx_c
    valid: np.ndarray  # (T,) bool: success == 1 and confidence >= min_confidence
    n_dropped: int  # number of frames with valid == False
    aus: tuple[int, ...] = PAPER_AUS
    confidence: np.ndarray | None = None  # (T,) float
    success: np.ndarray | None = None  # (T,) float as read (1 = face tracked)
    min_confidence: float = 0.8
    path: str = ""
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    def summary(self) -> str:
        """One line: file, frame counts (and why frames were dropped), mean intensity/presence per AU."""
        name = Path(self.path).name or "<csv>"
        t = len(self)
        if self.n_dropped:
            why = []
            if self.success is not None:
                why.append(f"{int((self.success != 1).sum())} with success==0")
            if self.confidence is not None:
                why.append(f"{int((self.confidence < self.min_confidence).sum())} with confidence"
                           f"<{self.min_confidence:g}")
            head = f"{name}: {t} frames, {t - self.n_dropped} valid, {self.n_dropped} dropped"
            head += f" ({', '.join(why)})"
        else:
            head = f"{name}: {t} frames, all valid"
        v = self.valid
        per_au = []
        for j, au in enumerate(self.aus):
            col = self.intensity[v, j]
            pres = self.presence[v, j]
            mi = f"{np.nanmean(col):.2f}" if col.size and not np.isnan(col).all() else "n/a"
            mp = f"{pres.mean():.2f}" if pres.size else "n/a"
            per_au.append(f"AU{au:02d} r={mi} c={mp}")
        return " | ".join([head, "; ".join(per_au), *self.notes])


def _parse_float(text: str, path: Path, line: int, column: str) -> float:
    try:
        return float(text)
    except ValueError as e:
        raise ValueError(f"{path}:{line}: column {column!r} is not a number: {text!r}") from e


def read_openface_csv(
    path: str | os.PathLike[str], aus: tuple[int, ...] | list[int] = PAPER_AUS, min_confidence: float = 0.8
) -> OpenFaceAUs:
    """Read the ``aus`` of an OpenFace CSV (see the module docstring for the quirks handled).

    Raises ``ValueError`` naming the file and the missing columns when an AU has neither an ``_r``
    nor a ``_c`` column, or has no ``_c`` column (presence is what the AU metrics score), or when
    ``frame``/``success``/``confidence`` are absent.
    """
    path = Path(path)
    aus = tuple(int(a) for a in aus)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: OpenFace CSV not found")
    with open(path, newline="", encoding="utf-8-sig") as f:  # utf-8-sig drops a BOM
        rows = list(csv.reader(f, skipinitialspace=True))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{path}: empty file, not an OpenFace CSV")
    header = [c.strip().lstrip("\ufeff") for c in rows[0]]
    index = {name: i for i, name in reversed(list(enumerate(header)))}  # first occurrence wins

    missing = [c for c in ("frame", "confidence", "success") if c not in index]
    missing += [au_name(a, "c") for a in aus if au_name(a, "c") not in index]
    missing += [
        au_name(a, "r") for a in aus if a not in PRESENCE_ONLY_AUS and au_name(a, "r") not in index
    ]
    if missing:
        n_au = sum(1 for h in header if h.startswith("AU"))
        raise ValueError(
            f"{path}: not a usable OpenFace AU file; missing column(s) {', '.join(missing)} "
            f"({len(header)} columns, {n_au} AU columns). Run OpenFace FeatureExtraction with -aus "
            "(or without output-selection flags) to get AUxx_r and AUxx_c."
        )

    notes: list[str] = []
    body = rows[1:]
    ncol = len(header)
    for k, r in enumerate(body):
        if len(r) < ncol:
            raise ValueError(f"{path}:{k + 2}: row has {len(r)} fields, header has {ncol} (truncated file?)")

    def col(name: str) -> np.ndarray:
        i = index[name]
        return np.array([_parse_float(r[i], path, k + 2, name) for k, r in enumerate(body)], dtype=np.float64)

    frame = col("frame").astype(np.int64)
    timestamp = col("timestamp") if "timestamp" in index else np.full(frame.shape, np.nan)
    if "timestamp" not in index:
        notes.append("no timestamp column (NaN)")
    confidence = col("confidence")
    success = col("success")

    keep = np.ones(frame.shape, dtype=bool)
    if "face_id" in index:
        face_id = col("face_id").astype(np.int64)
        if len(np.unique(face_id)) > 1:
            # Keep, per frame, the row with the lowest face_id.
            order = np.lexsort((face_id, frame))
            first = np.ones(len(order), dtype=bool)
            first[1:] = frame[order][1:] != frame[order][:-1]
            keep = np.zeros(frame.shape, dtype=bool)
            keep[order[first]] = True
            n_other = int((~keep).sum())
            notes.append(f"multi-face file: kept the lowest face_id per frame ({n_other} rows ignored)")

    t = len(body)
    intensity = np.full((t, len(aus)), np.nan, dtype=np.float32)
    presence = np.zeros((t, len(aus)), dtype=np.uint8)
    for j, au in enumerate(aus):
        if au_name(au, "r") in index:
            intensity[:, j] = col(au_name(au, "r"))
        presence[:, j] = (col(au_name(au, "c")) >= 0.5).astype(np.uint8)

    sel = np.flatnonzero(keep)
    frame, timestamp, confidence, success = frame[sel], timestamp[sel], confidence[sel], success[sel]
    intensity, presence = intensity[sel], presence[sel]
    valid = (success == 1) & (confidence >= min_confidence)
    return OpenFaceAUs(
        frame=frame,
        timestamp=timestamp,
        intensity=intensity,
        presence=presence,
        valid=valid,
        n_dropped=int((~valid).sum()),
        aus=aus,
        confidence=confidence,
        success=success,
        min_confidence=float(min_confidence),
        path=str(path),
        notes=notes,
    )


def write_openface_csv(
    path: str | os.PathLike[str],
    intensity: np.ndarray,
    presence: np.ndarray,
    fps: float = 25.0,
    aus: tuple[int, ...] | list[int] = PAPER_AUS,
    confidence: np.ndarray | float | None = None,
    success: np.ndarray | int | None = None,
) -> None:
    """Write AU tracks in OpenFace 2.x ``FeatureExtraction`` layout, ``", "``-separated like real output.

    Columns: ``frame, face_id, timestamp, confidence, success``, then ``AUxx_r`` for ``aus`` (AUs that
    OpenFace reports as presence only, i.e. 28, get no ``_r`` column), then ``AUxx_c``. ``frame`` starts
    at 1 and ``timestamp = (frame - 1) / fps`` with 3 decimals. ``confidence`` defaults to 0.98 and
    ``success`` to 1 for every frame.
    """
    aus = tuple(int(a) for a in aus)
    intensity = np.asarray(intensity, dtype=np.float64)
    presence = np.asarray(presence)
    if intensity.ndim != 2 or intensity.shape[1] != len(aus):
        raise ValueError(f"intensity must be (T, {len(aus)}), got {intensity.shape}")
    if presence.shape != intensity.shape:
        raise ValueError(f"presence must have the shape of intensity {intensity.shape}, got {presence.shape}")
    t = intensity.shape[0]
    conf = np.broadcast_to(np.asarray(0.98 if confidence is None else confidence, dtype=np.float64), (t,))
    succ = np.broadcast_to(np.asarray(1 if success is None else success, dtype=np.int64), (t,))
    r_cols = [j for j, a in enumerate(aus) if a not in PRESENCE_ONLY_AUS]
    header = ["frame", "face_id", "timestamp", "confidence", "success"]
    header += [au_name(aus[j], "r") for j in r_cols] + [au_name(a, "c") for a in aus]
    lines = [", ".join(header)]
    for i in range(t):
        vals = [str(i + 1), "0", f"{i / fps:.3f}", f"{conf[i]:.2f}", str(int(succ[i]))]
        vals += [f"{float(np.clip(intensity[i, j], 0.0, 5.0)):.4f}" for j in r_cols]
        vals += [str(int(presence[i, j] >= 0.5)) for j in range(len(aus))]
        lines.append(", ".join(vals))
    Path(path).write_text("\n".join(lines) + "\n")
