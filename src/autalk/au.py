"""A built-in landmark-based detector for the paper's five speech-related AUs (10, 14, 20, 25, 26).

The paper labels every real frame with OpenFace. Where no OpenFace CSV exists, this module gives
labels from dlib's 68 landmarks instead, calibrated per clip against the neutral identity frame (the
clip's first frame, as the paper's identity image; GRID clips start in silence with the mouth closed):

1. Landmarks of every frame are mapped into the neutral face's frame: the neutral face is rotated so
   the eye line is horizontal, centred between the eyes and scaled so the inter-ocular distance (IOD,
   between the eye centres) is 1; each frame is then registered to it by a least-squares similarity
   transform on points that speech does not move (eye corners, nose bridge and nose base). Head
   translation, in-plane roll and zoom therefore cancel out.
2. :func:`au_features` measures mouth geometry (in IOD units) and subtracts the neutral's value.
3. Each AU intensity is a clipped linear function of the rectified features ``[max(f,0), max(-f,0)]``
   (so widening and narrowing can have different weights); presence = intensity >= a threshold.

:func:`default_detector` holds hand-set rules (no training data); :func:`fit_detector` calibrates the
same model by least squares on clips with ground-truth intensities (the teaching corpus's CSVs; fit
on TRAIN speakers only). :func:`agreement` computes the paper's per-AU F1 and accuracy.
``autalk.preprocess.preprocess_corpus`` does that calibration itself whenever the training speakers have
CSVs: it fits on the train speakers' cached landmarks, saves ``<out>/au_detector.json`` and reports the
agreement of both detectors on the held-out test speakers. A detector fitted on the teaching corpus has
learnt how the *synthetic* renderer moves landmarks; it has not been validated on real faces.

The detector sees 2-D geometry only: it cannot see texture cues (dimples, nasolabial furrows) that
OpenFace uses, so AU10 and AU14 are its weakest. Treat its labels as a stand-in, and say so.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autalk import PAPER_AUS
from autalk.fsutil import atomic_write_text

__all__ = [
    "AU_FEATURES", "STABLE_POINTS", "normalise_landmarks", "inner_lip_gap", "au_features",
    "AUDetector", "default_detector", "fit_detector", "fit_detector_features", "f1_accuracy", "agreement",
]

#: Geometric features, each the change from the neutral frame in inter-ocular distances (y points down).
AU_FEATURES: tuple[str, ...] = (
    "lip_gap",          # inner-lip opening: mean of lower-minus-upper inner lip (61-67, 62-66, 63-65)
    "mouth_height",     # outer-lip height: 57 (lower lip bottom) - 51 (upper lip top)
    "jaw_drop",         # chin (8) below nose base (33)
    "mouth_width",      # outer lip corners 48-54
    "inner_width",      # inner lip corners 60-64
    "upper_lip_nose",   # upper-lip top (50, 51, 52) below nose base (33); AU10 shrinks it
    "corner_raise",     # lip corners (48, 54) above the inner-lip midline (62+66)/2
    "corner_depth",     # outer-to-inner corner distance ((48-54) - (60-64)) / 2
)

#: Points used to register a frame to the neutral face (not moved by the mouth or jaw).
STABLE_POINTS: tuple[int, ...] = (27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45)

_INNER_PAIRS = ((61, 67), (62, 66), (63, 65))


def _as_seq(landmarks: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim == 2:
        lm = lm[None]
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (T,68,2) or (68,2), got {lm.shape}")
    return lm


def inner_lip_gap(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip opening in pixels per frame ``(T,)``: mean distance of 61-67, 62-66, 63-65."""
    lm = _as_seq(landmarks)
    return np.mean([np.linalg.norm(lm[:, b] - lm[:, a], axis=-1) for a, b in _INNER_PAIRS], axis=0)


def _eye_frame(neutral: np.ndarray) -> np.ndarray:
    """The neutral face in its eye frame: origin between eye centres, eye line along +x, IOD = 1."""
    le = neutral[36:42].mean(axis=0)
    re = neutral[42:48].mean(axis=0)
    z = neutral[:, 0] + 1j * neutral[:, 1]
    zl, zr = complex(*le), complex(*re)
    d = zr - zl
    if abs(d) < 1e-6:
        raise ValueError("degenerate neutral landmarks (eye centres coincide)")
    out = (z - (zl + zr) / 2) / d  # rotation + scale in one complex division
    return np.stack([out.real, out.imag], axis=-1)


def normalise_landmarks(landmarks: np.ndarray, neutral: np.ndarray | None = None) -> np.ndarray:
    """Landmarks ``(T,68,2)`` registered to the neutral face's eye frame (IOD units).

    ``neutral`` defaults to the first frame. Each frame is mapped by the least-squares similarity
    transform (rotation, uniform scale, translation) of its :data:`STABLE_POINTS` onto the neutral's.
    """
    lm = _as_seq(landmarks)
    neu = lm[0] if neutral is None else np.asarray(neutral, dtype=np.float64).reshape(68, 2)
    ref = _eye_frame(neu)
    idx = list(STABLE_POINTS)
    z = lm[..., 0] + 1j * lm[..., 1]                        # (T,68)
    zr = ref[:, 0] + 1j * ref[:, 1]                         # (68,)
    zs, zt = z[:, idx], zr[idx]
    ms, mt = zs.mean(axis=1, keepdims=True), zt.mean()
    cs, ct = zs - ms, zt - mt
    norm = np.maximum((np.abs(cs) ** 2).sum(axis=1, keepdims=True), 1e-12)
    a = (np.conj(cs) * ct).sum(axis=1, keepdims=True) / norm
    out = a * (z - ms) + mt
    return np.stack([out.real, out.imag], axis=-1)


def _raw_features(n: np.ndarray) -> np.ndarray:
    """Absolute features (T,F) from normalised landmarks (T,68,2)."""
    x, y = n[..., 0], n[..., 1]
    lip_gap = np.mean([y[:, b] - y[:, a] for a, b in _INNER_PAIRS], axis=0)
    mouth_height = y[:, 57] - y[:, 51]
    jaw_drop = y[:, 8] - y[:, 33]
    mouth_width = np.hypot(x[:, 54] - x[:, 48], y[:, 54] - y[:, 48])
    inner_width = np.hypot(x[:, 64] - x[:, 60], y[:, 64] - y[:, 60])
    upper_lip_nose = y[:, 50:53].mean(axis=1) - y[:, 33]
    corner_raise = (y[:, 62] + y[:, 66]) / 2 - (y[:, 48] + y[:, 54]) / 2
    corner_depth = (mouth_width - inner_width) / 2
    return np.stack([lip_gap, mouth_height, jaw_drop, mouth_width, inner_width, upper_lip_nose,
                     corner_raise, corner_depth], axis=1)


def au_features(landmarks: np.ndarray, neutral: np.ndarray | None = None) -> np.ndarray:
    """Features ``(T,F)`` (:data:`AU_FEATURES`): change from the neutral frame in IOD units.

    ``neutral`` is the identity frame's ``(68,2)`` landmarks (default: the first frame).
    """
    lm = _as_seq(landmarks)
    neu = lm[0] if neutral is None else np.asarray(neutral, dtype=np.float64).reshape(68, 2)
    f = _raw_features(normalise_landmarks(lm, neu))
    f0 = _raw_features(normalise_landmarks(neu[None], neu))
    return (f - f0).astype(np.float32)


def _basis(features: np.ndarray) -> np.ndarray:
    """Rectified basis ``[max(f,0), max(-f,0)]`` -> (T, 2F)."""
    f = np.asarray(features, dtype=np.float64)
    return np.concatenate([np.maximum(f, 0), np.maximum(-f, 0)], axis=1)


def basis_names(features: tuple[str, ...] = AU_FEATURES) -> list[str]:
    """Names of the rectified basis columns: ``+lip_gap`` ... then ``-lip_gap`` ..."""
    return [f"+{n}" for n in features] + [f"-{n}" for n in features]


@dataclass
class AUDetector:
    """Clipped linear map from rectified landmark features to the five AU intensities (0..5).

    ``coef`` is ``(5, 2F)`` over :func:`basis_names` columns, ``intercept`` ``(5,)``, ``thresholds``
    ``(5,)`` the intensity at which an AU counts as present; ``aus`` the AU numbers of the rows.
    ``source`` and ``info`` describe where it came from (saved in the JSON); ``path`` is the file it was
    loaded from (not saved; empty for one built in memory).
    """

    coef: np.ndarray
    intercept: np.ndarray
    thresholds: np.ndarray
    aus: tuple[int, ...] = PAPER_AUS
    features: tuple[str, ...] = AU_FEATURES
    source: str = ""
    info: dict = field(default_factory=dict)
    path: str = ""

    def __post_init__(self) -> None:
        self.coef = np.asarray(self.coef, dtype=np.float64)
        self.intercept = np.asarray(self.intercept, dtype=np.float64)
        self.thresholds = np.asarray(self.thresholds, dtype=np.float64)
        self.aus = tuple(int(a) for a in self.aus)
        self.features = tuple(self.features)
        k, nf = len(self.aus), 2 * len(self.features)
        if self.coef.shape != (k, nf) or self.intercept.shape != (k,) or self.thresholds.shape != (k,):
            raise ValueError(f"AUDetector shapes: coef {self.coef.shape} (want {(k, nf)}), intercept "
                             f"{self.intercept.shape}, thresholds {self.thresholds.shape} (want ({k},))")
        if self.features != AU_FEATURES:
            raise ValueError(f"detector features {self.features} differ from this version's {AU_FEATURES}")

    def intensity_from_features(self, features: np.ndarray) -> np.ndarray:
        """Intensities ``(T,5)`` in 0..5 from :func:`au_features` output."""
        raw = _basis(features) @ self.coef.T + self.intercept
        return np.clip(raw, 0.0, 5.0).astype(np.float32)

    def predict(self, landmarks: np.ndarray, neutral: np.ndarray | None = None,
                ) -> tuple[np.ndarray, np.ndarray]:
        """``(intensity (T,5) float32 in 0..5, presence (T,5) uint8)`` for one clip's landmarks.

        ``neutral``: the identity frame's landmarks ``(68,2)``; default the clip's first frame.
        """
        inten = self.intensity_from_features(au_features(landmarks, neutral))
        return inten, (inten >= self.thresholds).astype(np.uint8)

    def presence_from_features(self, features: np.ndarray) -> np.ndarray:
        """Presence ``(T,5)`` uint8 (intensity >= threshold) from :func:`au_features` output."""
        return (self.intensity_from_features(features) >= self.thresholds).astype(np.uint8)

    def fingerprint(self) -> str:
        """A short hash of what decides the labels (AUs, features, coefficients, intercepts, thresholds;
        not ``source``/``info``): two detectors with the same fingerprint label every frame alike."""
        key = json.dumps({"aus": list(self.aus), "features": list(self.features),
                          "coef": self.coef.round(8).tolist(), "intercept": self.intercept.round(8).tolist(),
                          "thresholds": self.thresholds.round(8).tolist()})
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def describe(self) -> dict:
        """``{"source", "path", "fingerprint"}``: which detector this is (for reports and cache metadata)."""
        return {"source": self.source, "path": self.path or None, "fingerprint": self.fingerprint()}

    def to_json(self) -> str:
        return json.dumps({
            "format": "autalk.au.AUDetector/1", "aus": list(self.aus), "features": list(self.features),
            "basis": basis_names(self.features), "coef": self.coef.round(8).tolist(),
            "intercept": self.intercept.round(8).tolist(), "thresholds": self.thresholds.round(8).tolist(),
            "source": self.source, "info": self.info,
        }, indent=1)

    @classmethod
    def from_json(cls, text: str) -> AUDetector:
        d = json.loads(text)
        if d.get("format") != "autalk.au.AUDetector/1":
            raise ValueError(f"not an AUDetector JSON (format={d.get('format')!r})")
        return cls(coef=np.array(d["coef"]), intercept=np.array(d["intercept"]),
                   thresholds=np.array(d["thresholds"]), aus=tuple(d["aus"]), features=tuple(d["features"]),
                   source=d.get("source", ""), info=d.get("info", {}))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the JSON atomically (a killed run never leaves a truncated detector file)."""
        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AUDetector:
        det = cls.from_json(Path(path).read_text())
        det.path = str(path)
        return det


# Hand-set rules: (AU, {basis column: weight per IOD}, intercept). One IOD is ~50 px on GRID, so
# e.g. AU25 = 1 at a 0.05 IOD (~2.5 px) inner-lip gap beyond the neutral's and 5 at 0.25 IOD.
_DEFAULT_RULES: tuple[tuple[int, dict[str, float], float], ...] = (
    # AU10 upper-lip raiser: the upper lip moves towards the nose base.
    (10, {"-upper_lip_nose": 15.0}, 0.0),
    # AU14 dimpler: corners tightened and pulled in (mouth narrower, corners deeper/raised), lips closed.
    (14, {"-mouth_width": 12.0, "+corner_raise": 8.0, "-corner_depth": 8.0, "+lip_gap": -10.0}, 0.0),
    # AU20 lip stretcher: mouth widens horizontally.
    (20, {"+mouth_width": 12.0}, 0.0),
    # AU25 lips part: inner-lip gap.
    (25, {"+lip_gap": 20.0}, 0.0),
    # AU26 jaw drop: the chin moves away from the nose, or the lips part further than lips alone do
    # (the intercept makes the lip-gap term start at 0.1 IOD).
    (26, {"+jaw_drop": 12.0, "+lip_gap": 8.0}, -0.8),
)


def default_detector() -> AUDetector:
    """The hand-set geometric rules (no training data; see ``_DEFAULT_RULES``); presence at intensity 1."""
    names = basis_names()
    coef = np.zeros((len(PAPER_AUS), len(names)))
    intercept = np.zeros(len(PAPER_AUS))
    for au, weights, b in _DEFAULT_RULES:
        k = PAPER_AUS.index(au)
        for col, wgt in weights.items():
            coef[k, names.index(col)] = wgt
        intercept[k] = b
    return AUDetector(coef, intercept, np.ones(len(PAPER_AUS)), source="default hand-set rules")


def fit_detector(landmarks_list, neutral_list, intensity_list, presence_list=None, ridge: float = 1e-3,
                 presence_at: float = 1.0) -> AUDetector:
    """Least-squares calibration of the per-AU linear maps on clips with ground truth.

    landmarks_list: clips' landmarks ``(T_i,68,2)``; neutral_list: their neutral ``(68,2)`` (or None
    for the clip's first frame); intensity_list: true intensities ``(T_i,5)`` (OpenFace-style 0..5, AU
    order :data:`autalk.PAPER_AUS`); presence_list: true presence ``(T_i,5)`` (default: intensity >=
    ``presence_at``). Fit on TRAIN speakers only. ``ridge`` is the L2 penalty on standardised basis
    columns (relative to the number of frames). Each AU's presence threshold is the one maximising F1
    on the fitting data. See :func:`fit_detector_features` to fit on precomputed features.
    """
    if not (len(landmarks_list) == len(neutral_list) == len(intensity_list)) or not landmarks_list:
        raise ValueError("landmarks_list, neutral_list and intensity_list must be equally long, non-empty")
    feats = [au_features(lm, neu) for lm, neu in zip(landmarks_list, neutral_list, strict=True)]
    return fit_detector_features(feats, intensity_list, presence_list, ridge=ridge, presence_at=presence_at)


def fit_detector_features(features_list, intensity_list, presence_list=None, ridge: float = 1e-3,
                          presence_at: float = 1.0) -> AUDetector:
    """:func:`fit_detector` on features already computed by :func:`au_features` (one ``(T_i,F)`` array
    per clip, each against its own neutral frame): lets a caller keep only some frames of a clip (e.g.
    those with a valid CSV row) without changing their neutral."""
    if len(features_list) != len(intensity_list) or not len(features_list):
        raise ValueError("features_list and intensity_list must be equally long and non-empty")
    feats = np.concatenate([np.asarray(f, dtype=np.float64).reshape(-1, len(AU_FEATURES))
                            for f in features_list])
    x = _basis(feats)
    y = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1, len(PAPER_AUS)) for v in intensity_list])
    if len(x) != len(y):
        raise ValueError(f"{len(x)} landmark frames but {len(y)} intensity rows")
    if len(x) == 0:
        raise ValueError("no frames to fit on")
    if presence_list is None:
        pres = y >= presence_at
    else:
        pres = np.concatenate([np.asarray(p).reshape(-1, len(PAPER_AUS)) for p in presence_list]) > 0
    mu, sd = x.mean(axis=0), x.std(axis=0)
    sd[sd < 1e-9] = 1.0
    xs = (x - mu) / sd
    n, nf = xs.shape
    a = np.concatenate([xs, np.ones((n, 1))], axis=1)
    reg = np.eye(nf + 1) * ridge * n
    reg[-1, -1] = 0.0  # no penalty on the intercept
    w = np.linalg.solve(a.T @ a + reg, a.T @ y)             # (nf+1, 5)
    coef = (w[:-1] / sd[:, None]).T
    intercept = w[-1] - coef @ mu
    det = AUDetector(coef, intercept, np.ones(len(PAPER_AUS)), source="fit_detector least squares")
    pred = det.intensity_from_features(feats)
    grid = np.round(np.arange(0.1, 4.01, 0.05), 2)
    thr = []
    for k in range(len(PAPER_AUS)):
        f1s = [f1_accuracy(pred[:, k] >= g, pres[:, k], zero_division=0.0)[0] for g in grid]
        thr.append(float(grid[int(np.argmax(f1s))]))
    det.thresholds = np.array(thr)
    r = [float(np.corrcoef(pred[:, k], y[:, k])[0, 1]) if pred[:, k].std() > 0 and y[:, k].std() > 0
         else float("nan") for k in range(len(PAPER_AUS))]
    fit = agreement((pred >= det.thresholds).astype(np.uint8), pres.astype(np.uint8))
    det.info = {"n_clips": len(features_list), "n_frames": int(n), "ridge": ridge,
                "train_r": dict(zip([f"AU{a:02d}" for a in PAPER_AUS], r, strict=True)),
                "train_avg_f1": fit["avg_f1"], "train_avg_acc": fit["avg_acc"]}
    return det


def f1_accuracy(pred, true, zero_division: float = float("nan")) -> tuple[float, float]:
    """F1 = 2TP/(2TP+FP+FN) and accuracy = (TP+TN)/N for one AU's binary presence vectors.

    When neither side has a positive (2TP+FP+FN = 0) F1 is undefined and ``zero_division`` is returned.
    """
    p = np.asarray(pred).reshape(-1) > 0
    t = np.asarray(true).reshape(-1) > 0
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and true {t.shape} differ")
    if p.size == 0:
        return float("nan"), float("nan")
    tp = int(np.sum(p & t))
    fp = int(np.sum(p & ~t))
    fn = int(np.sum(~p & t))
    tn = int(np.sum(~p & ~t))
    den = 2 * tp + fp + fn
    f1 = 2 * tp / den if den else float(zero_division)
    return f1, (tp + tn) / p.size


def agreement(pred_presence, true_presence, aus: tuple[int, ...] = PAPER_AUS,
              zero_division: float = float("nan")) -> dict:
    """Per-AU F1 and accuracy between presence matrices ``(N,5)`` and their averages over the AUs.

    Returns ``{"per_au": {"AU10": {"f1", "acc", "tp", "fp", "fn", "tn", "n_true", "n_pred"}, ...},
    "avg_f1", "avg_acc", "n"}``. An AU with no positive in either matrix has an undefined F1
    (``zero_division``, NaN by default); ``avg_f1`` averages the defined ones and
    ``n_f1_defined`` says how many there were. Accuracy is a fraction (x100 for the paper's %).
    """
    p = np.asarray(pred_presence).reshape(-1, len(aus)) > 0
    t = np.asarray(true_presence).reshape(-1, len(aus)) > 0
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and true {t.shape} differ")
    per = {}
    for k, au in enumerate(aus):
        f1, acc = f1_accuracy(p[:, k], t[:, k], zero_division)
        tp = int(np.sum(p[:, k] & t[:, k]))
        fp = int(np.sum(p[:, k] & ~t[:, k]))
        fn = int(np.sum(~p[:, k] & t[:, k]))
        per[f"AU{au:02d}"] = {"f1": f1, "acc": acc, "tp": tp, "fp": fp, "fn": fn,
                              "tn": int(len(p) - tp - fp - fn), "n_true": tp + fn, "n_pred": tp + fp}
    f1s = [v["f1"] for v in per.values() if not math.isnan(v["f1"])]
    accs = [v["acc"] for v in per.values() if not math.isnan(v["acc"])]
    return {"per_au": per, "avg_f1": float(np.mean(f1s)) if f1s else float("nan"),
            "avg_acc": float(np.mean(accs)) if accs else float("nan"), "n": int(len(p)),
            "n_f1_defined": len(f1s)}
