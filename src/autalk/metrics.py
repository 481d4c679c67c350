"""Evaluation metrics of the paper's experiments (and the usual talking-head extras), numpy in, floats out.

Conventions (state them beside every reported number):

* Images are uint8 RGB ``(H,W,3)`` frames or ``(T,H,W,3)`` clips, values 0..255, the face crops of the
  cache (64x64 quick profile, 112x112 the paper's), fake and real cut by the same fixed square. Torch
  float images ``(...,3,H,W)`` in [-1,1] are accepted too and converted with
  :func:`autalk.data.dataset.to_uint8`.
* Clip values are means over the clip's frames; dataset values are means over clips
  (:func:`summarise`, with a percentile-bootstrap 95 % CI over clips).
* Landmarks are dlib's 68 points ``(T,68,2)`` (x, y) in crop pixels, pixel-centre convention.

Metrics: :func:`psnr` (dB, RGB, MAX 255), :func:`ssim` (Wang et al., RGB averaged over channels),
:func:`au_scores` (per-AU F1 and accuracy, paper Tables 1/5), :func:`lmd` (mouth landmark distance),
:func:`mouth_opening` + :func:`pearson`, :func:`cpbd` (sharpness), :func:`csim` (identity similarity).
:func:`clip_metrics` gathers one clip's row, :func:`summarise` and :func:`write_csv` make the tables.
"""

from __future__ import annotations

import csv
import functools
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from autalk import PAPER_AUS
from autalk.au import agreement, inner_lip_gap
from autalk.fsutil import atomic_open

__all__ = [
    "PSNR_CAP", "DEFAULT_CROP_BOX", "MOUTH", "CPBD_EDGE_FRACTION",
    "psnr_frames", "psnr", "ssim_frames", "ssim", "au_scores", "crop_landmarks", "lmd_frames", "lmd",
    "mouth_opening", "pearson", "bootstrap_ci", "bootstrap_summary", "cpbd", "face_descriptors",
    "csim_frames", "csim", "clip_metrics", "summarise", "write_csv",
]

#: PSNR of identical frames is +inf; clip means cap every frame at this many dB so they stay finite.
PSNR_CAP = 100.0

#: Default face box in a crop, as fractions of the crop's width/height (x0, y0, x1, y1). It is where
#: dlib's own HOG detector puts the face on crops cut by ``autalk.faces.crop_faces`` with its default
#: landmark square (``LANDMARK_SQUARE`` = 1.45 x the landmark extent, shifted down 0.03 x side): measured on
#: the real GRID s1 fixture clips at 64 and 112 px. With it, landmarks found on the 4x-upscaled crop match
#: the cache's full-frame landmarks mapped into the crop to ~0.4 % of the crop side (mean over all 68
#: points; ~0.3 % for the centred mouth). Crops cut with another scale/shift need their own ``box``.
DEFAULT_CROP_BOX = (0.15, 0.06, 0.85, 0.76)

#: dlib-68 mouth points: outer lips 48-59, inner lips 60-67.
MOUTH = slice(48, 68)

#: A 64x64 CPBD block is an edge block when more than this share of its pixels are Canny edges
#: (Narvekar & Karam's 0.2 %, i.e. more than 8 of 4096 pixels).
CPBD_EDGE_FRACTION = 0.002


# ------------------------------------------------------------------------------------------- inputs
def _as_uint8(x: Any) -> np.ndarray:
    """uint8 (...,H,W,3) from a uint8 array or a torch float tensor (...,3,H,W) in [-1,1]."""
    if hasattr(x, "detach"):  # torch tensor: the dataset's [-1,1] scaling
        from autalk.data.dataset import to_uint8

        return to_uint8(x)
    a = np.asarray(x)
    if a.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (0..255) or torch floats in [-1,1], got {a.dtype}")
    return a


def _as_clip(x: Any) -> np.ndarray:
    """(T,H,W,C) uint8 from one frame (H,W,C) or a clip."""
    a = _as_uint8(x)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[-1] not in (1, 3):
        raise ValueError(f"expected (H,W,3) or (T,H,W,3) images, got {a.shape}")
    return a


def _pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_clip(a), _as_clip(b)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    return a, b


# ---------------------------------------------------------------------------------------------- PSNR
def psnr_frames(a: Any, b: Any, data_range: float = 255.0) -> np.ndarray:
    """Per-frame PSNR in dB ``(T,)``: 10 log10(MAX^2 / MSE), MSE over all pixels and channels.

    ``a``, ``b``: uint8 frames ``(H,W,3)`` or clips ``(T,H,W,3)`` (RGB, 0..255, ``data_range`` = MAX =
    255). Identical frames give ``+inf``.
    """
    a, b = _pair(a, b)
    d = a.astype(np.float64) - b.astype(np.float64)
    mse = (d * d).reshape(len(a), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(float(data_range) ** 2 / mse)


def psnr(a: Any, b: Any, data_range: float = 255.0, cap: float = PSNR_CAP) -> float:
    """PSNR in dB of one frame, or the mean per-frame PSNR of a clip (RGB uint8, MAX 255).

    A single frame ``(H,W,3)`` gives its value (``+inf`` when identical). For a clip ``(T,H,W,3)``
    every frame's PSNR is capped at ``cap`` (100 dB) before averaging, so identical frames count as
    100 dB rather than making the mean infinite. The mean is over frames' PSNRs (not of a pooled MSE),
    the usual talking-head convention.
    """
    a = _as_uint8(a)
    v = psnr_frames(a, b, data_range)
    return float(v[0]) if a.ndim == 3 else float(np.minimum(v, cap).mean())


# ---------------------------------------------------------------------------------------------- SSIM
def ssim_frames(a: Any, b: Any, data_range: float = 255.0) -> np.ndarray:
    """Per-frame SSIM ``(T,)`` in [-1,1] (1 = identical), Wang et al.'s settings.

    scikit-image's ``structural_similarity`` with an 11x11 Gaussian window (sigma 1.5, truncated at
    3.5 sigma), population covariances, C1 = (0.01 L)^2, C2 = (0.03 L)^2 with L = ``data_range`` (255
    for uint8), computed per RGB channel and averaged over channels and over the valid (window inside
    the image) pixels.
    """
    from skimage.metrics import structural_similarity

    a, b = _pair(a, b)
    return np.array([structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
                                           use_sample_covariance=False, data_range=data_range,
                                           channel_axis=-1)
                     for x, y in zip(a, b, strict=True)], dtype=np.float64)


def ssim(a: Any, b: Any, data_range: float = 255.0) -> float:
    """SSIM of one frame, or the mean per-frame SSIM of a clip (see :func:`ssim_frames`)."""
    return float(ssim_frames(a, b, data_range).mean())


# ----------------------------------------------------------------------------------------------- AUs
def au_scores(pred_presence: np.ndarray, true_presence: np.ndarray,
              aus: Sequence[int] = PAPER_AUS) -> dict[str, Any]:
    """Per-AU F1 and accuracy of binary AU presence, and their means over the AUs (paper Tables 1/5).

    ``pred_presence``, ``true_presence``: ``(N,A)`` 0/1 (nonzero = present), columns ordered like
    ``aus``. F1 = 2TP/(2TP+FP+FN), accuracy = (TP+TN)/N, both fractions in [0,1] (x100 for the paper's
    %). An AU with no positive in either matrix has an undefined F1: it is NaN, left out of
    ``f1_mean`` and counted in ``n_f1_undefined``; its accuracy (1.0) still counts. For dataset-level
    numbers like the paper's, stack all test frames and call this once: per-clip F1s averaged over
    clips are a different (noisier) number.

    Returns ``{"f1": {"AU10": ..}, "acc": {..}, "f1_mean", "acc_mean", "n_f1_undefined", "n"}``.
    """
    aus = tuple(int(a) for a in aus)
    p, t = np.asarray(pred_presence), np.asarray(true_presence)
    if p.shape != t.shape or p.ndim != 2 or p.shape[1] != len(aus):
        raise ValueError(f"presence matrices must both be (N,{len(aus)}), got {p.shape} and {t.shape}")
    ag = agreement(p, t, aus=aus)
    names = [f"AU{a:02d}" for a in aus]
    return {"f1": {k: ag["per_au"][k]["f1"] for k in names},
            "acc": {k: ag["per_au"][k]["acc"] for k in names},
            "f1_mean": ag["avg_f1"], "acc_mean": ag["avg_acc"],
            "n_f1_undefined": len(aus) - ag["n_f1_defined"], "n": ag["n"]}


# ----------------------------------------------------------------------------------------- landmarks
@functools.lru_cache(maxsize=1)
def _landmark_predictor():
    from autalk.faces import LandmarkPredictor

    return LandmarkPredictor()


def _frame_boxes(box: Any, t: int, h: int, w: int) -> np.ndarray:
    """(T,4) boxes in crop pixels: ``box`` (4,) or (T,4), or the default crop box when None."""
    if box is None:
        fx0, fy0, fx1, fy1 = DEFAULT_CROP_BOX
        box = (fx0 * w, fy0 * h, fx1 * w, fy1 * h)
    b = np.asarray(box, dtype=np.float64)
    if b.shape == (4,):
        b = np.repeat(b[None], t, axis=0)
    if b.shape != (t, 4):
        raise ValueError(f"box must be (4,) or ({t},4), got {b.shape}")
    return b


def crop_landmarks(frames: Any, box: Any = None, upscale: int = 4, predictor: Any = None) -> np.ndarray:
    """dlib 68-point landmarks ``(T,68,2) float32`` of face crops, in crop pixels.

    ``frames``: uint8 RGB crops ``(T,S,S,3)`` (or one ``(S,S,3)``); ``box``: the face box x0,y0,x1,y1 in
    crop pixels, ``(4,)`` for all frames or ``(T,4)``; None uses :data:`DEFAULT_CROP_BOX` (where the face
    sits in crops made by ``autalk.faces.crop_faces`` with its defaults). Each crop is upscaled
    ``upscale`` x (bicubic) before dlib's predictor runs: on 64 px crops that halves the error against
    full-resolution landmarks, and dlib's integer point coordinates become 1/``upscale`` crop pixel.
    Points are mapped back with the pixel-centre convention of ``cv2.resize``. ``predictor``: an
    ``autalk.faces.LandmarkPredictor`` (default: one loaded once per process).
    """
    clip = _as_clip(frames)
    t, h, w = clip.shape[:3]
    k = max(1, int(upscale))
    boxes = _frame_boxes(box, t, h, w)
    pred = predictor if predictor is not None else _landmark_predictor()
    out = np.empty((t, 68, 2), dtype=np.float32)
    for i in range(t):
        img = clip[i]
        if img.shape[-1] == 1:
            img = np.repeat(img, 3, axis=-1)
        if k > 1:
            img = cv2.resize(img, (w * k, h * k), interpolation=cv2.INTER_CUBIC)
        # box corners scale with the image: (x + 0.5) k - 0.5 for both ends keeps the face centred
        pts = pred.predict(img, (boxes[i] + 0.5) * k - 0.5)
        out[i] = (pts + 0.5) / k - 0.5
    return out


def _mouths(landmarks: Any) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim == 2:
        lm = lm[None]
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (T,68,2) or (68,2), got {lm.shape}")
    m = lm[:, MOUTH]
    return m - m.mean(axis=1, keepdims=True)  # centred: head/crop translation does not count


def lmd_frames(pred_landmarks: Any, true_landmarks: Any, normalise: float | None = None) -> np.ndarray:
    """Per-frame mouth landmark distance ``(T,)``: see :func:`lmd`."""
    p, t = _mouths(pred_landmarks), _mouths(true_landmarks)
    if p.shape != t.shape:
        raise ValueError(f"landmark shapes differ: {p.shape} vs {t.shape}")
    d = np.linalg.norm(p - t, axis=-1).mean(axis=1)
    return d / float(normalise) if normalise else d


def lmd(pred_landmarks: Any, true_landmarks: Any, normalise: float | None = None) -> float:
    """Mouth landmark distance (LMD) of a clip, in crop pixels (or in units of ``normalise``).

    Over dlib's 20 mouth points 48..67: each frame's set is centred on its own centroid (so a shift of
    the whole face or crop does not count; scale and shape changes do), then the MEAN Euclidean
    distance over the 20 points is taken per frame, and averaged over frames. ``pred_landmarks``,
    ``true_landmarks``: ``(T,68,2)`` in the same crop's pixels. ``normalise``: divide by this length;
    pass the crop side (64 or 112) to get a fraction of the crop side, comparable across crop sizes
    (:func:`clip_metrics` reports it as a percentage).
    """
    return float(lmd_frames(pred_landmarks, true_landmarks, normalise).mean())


def mouth_opening(landmarks: Any) -> np.ndarray:
    """Inner-lip opening per frame ``(T,)`` in the landmarks' units (crop pixels): the mean distance of
    the inner-lip pairs 61-67, 62-66, 63-65 (:func:`autalk.au.inner_lip_gap`)."""
    return inner_lip_gap(np.asarray(landmarks, dtype=np.float64))


def pearson(x: Any, y: Any) -> float:
    """Pearson correlation r in [-1,1] of two equally long series (e.g. mouth openings of fake and real).

    Pairs where either value is not finite are dropped. NaN when fewer than 2 pairs remain or either
    series is constant (r is undefined: a closed-mouth clip has no opening to follow).
    """
    a, b = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"series lengths differ: {a.shape} vs {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    a, b = a - a.mean(), b - b.mean()
    return float(np.clip((a @ b) / math.sqrt(float(a @ a) * float(b @ b)), -1.0, 1.0))


# ----------------------------------------------------------------------------------------- bootstrap
def _finite(values: Iterable[float]) -> tuple[np.ndarray, int]:
    v = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64).ravel()
    ok = np.isfinite(v)
    return v[ok], int((~ok).sum())


def bootstrap_ci(values: Iterable[float], n_boot: int = 1000, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of per-clip values and its percentile-bootstrap (1-alpha) CI.

    Clips are resampled with replacement ``n_boot`` times (numpy ``default_rng(seed)``, so the CI is
    reproducible); low/high are the alpha/2 and 1-alpha/2 quantiles of the resampled means. Non-finite
    values (NaN: metric undefined for that clip) are dropped; :func:`bootstrap_summary` also reports
    how many. All equal values give ``low == mean == high``; no finite value gives NaNs.
    """
    v, _ = _finite(values)
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if len(v) == 1 or np.all(v == v[0]):
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(int(n_boot), len(v)))].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return mean, float(low), float(high)


def bootstrap_summary(values: Iterable[float], n_boot: int = 1000, alpha: float = 0.05,
                      seed: int = 0) -> dict[str, float | int]:
    """``{"mean", "ci_low", "ci_high", "n", "n_nan"}``: :func:`bootstrap_ci` plus the number of finite
    values used (``n``) and of non-finite values dropped (``n_nan``)."""
    v, n_nan = _finite(values)
    mean, low, high = bootstrap_ci(v, n_boot, alpha, seed)
    return {"mean": mean, "ci_low": low, "ci_high": high, "n": int(len(v)), "n_nan": n_nan}


# ---------------------------------------------------------------------------------------------- CPBD
def _gray(image: Any) -> np.ndarray:
    """Gray float64 image in 0..255 (ITU-R BT.601 luma for RGB)."""
    a = _as_uint8(image)
    if a.ndim == 3 and a.shape[-1] == 3:
        a = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
    elif a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"cpbd needs one (H,W,3) or (H,W) image, got {a.shape}")
    return a.astype(np.float64)


def _runs(up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a boolean step array ``up (H,W-1)`` (step j: pixel j -> j+1), the number of consecutive
    ``True`` steps ending at each pixel from the left and starting at it to the right, ``(H,W)`` each."""
    h, n = up.shape
    left = np.zeros((h, n + 1), dtype=np.int32)
    right = np.zeros((h, n + 1), dtype=np.int32)
    for j in range(1, n + 1):
        left[:, j] = np.where(up[:, j - 1], left[:, j - 1] + 1, 0)
    for j in range(n - 1, -1, -1):
        right[:, j] = np.where(up[:, j], right[:, j + 1] + 1, 0)
    return left, right


def _edge_widths_rows(g: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """Edge width (pixels) at every pixel measured along its row (Marziliano et al.): from the pixel to
    the local extrema on either side, following the intensity as long as it keeps rising (``sign`` > 0,
    a dark-to-bright edge left to right) or falling (``sign`` < 0). 0 where ``sign`` is 0."""
    d = np.diff(g, axis=1)
    inc_l, inc_r = _runs(d > 0)
    dec_l, dec_r = _runs(d < 0)
    return np.where(sign > 0, inc_l + inc_r, np.where(sign < 0, dec_l + dec_r, 0))


def cpbd(image: Any, edge_fraction: float = CPBD_EDGE_FRACTION, block: int = 64) -> float:
    """Cumulative probability of blur detection (Narvekar & Karam 2011), in [0,1]; higher = sharper.

    ``image``: one uint8 RGB ``(H,W,3)`` or gray ``(H,W)`` image (e.g. a 64 or 112 px face crop),
    converted to BT.601 gray 0..255. Steps:

    1. Edges: Canny (scikit-image, Gaussian sigma 1, hysteresis thresholds 0.1 / 0.2 on the gradient
       magnitude of the gray image scaled to [0,1]).
    2. The image is tiled into ``block`` x ``block`` (64) blocks, the last row/column of blocks being
       smaller when the side is not a multiple of 64 (a 112 px crop has four blocks); a block is an edge
       block when more than ``edge_fraction`` (0.2 %) of its pixels are edges. Others are ignored.
    3. Each edge pixel's width w is measured along the image axis nearest to its Sobel gradient (along
       the row for mostly vertical edges, along the column for mostly horizontal ones; common
       implementations use rows only), from local extremum to local extremum (Marziliano et al.).
    4. JNB width w_JNB = 5 when the block's contrast (max - min gray) <= 50, else 3;
       P = 1 - exp(-|w / w_JNB|^3.6). Edge pixels with w = 0 (no gradient) are skipped.
    5. CPBD = share of the measured edge pixels with P <= 0.63 (P_JNB).

    NaN when the image has no edge block (e.g. a flat image).
    """
    from skimage.feature import canny

    g = _gray(image)
    edges = canny(g / 255.0, sigma=1.0, low_threshold=0.1, high_threshold=0.2)
    gx = cv2.Sobel(g, cv2.CV_64F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_64F, 0, 1, ksize=3)
    along_rows = np.abs(gx) >= np.abs(gy)
    w_rows = _edge_widths_rows(g, np.sign(gx))
    w_cols = _edge_widths_rows(g.T, np.sign(gy.T)).T
    width = np.where(along_rows, w_rows, w_cols).astype(np.float64)
    h, w = g.shape
    n_sharp = n_all = 0
    for y0 in range(0, h, block):
        for x0 in range(0, w, block):
            e = edges[y0:y0 + block, x0:x0 + block]
            if e.sum() <= edge_fraction * e.size:
                continue
            blk = g[y0:y0 + block, x0:x0 + block]
            w_jnb = 5.0 if blk.max() - blk.min() <= 50 else 3.0
            wid = width[y0:y0 + block, x0:x0 + block][e]
            wid = wid[wid > 0]
            p_blur = 1.0 - np.exp(-np.abs(wid / w_jnb) ** 3.6)
            n_sharp += int((p_blur <= 0.63).sum())
            n_all += len(wid)
    return n_sharp / n_all if n_all else float("nan")


# ---------------------------------------------------------------------------------------------- CSIM
@functools.lru_cache(maxsize=1)
def _dlib_models():
    import dlib

    from autalk.dlibmodels import model_path

    return (dlib, dlib.shape_predictor(str(model_path("landmarks68"))),
            dlib.face_recognition_model_v1(str(model_path("recognition"))))


def face_descriptors(frames: Any, box: Any = None, upscale: int = 4) -> np.ndarray:
    """dlib face-recognition embeddings ``(T,128) float64`` of face crops.

    ``frames``: uint8 RGB crops ``(T,S,S,3)`` or one ``(S,S,3)``. Each crop is upscaled ``upscale`` x
    (bicubic; dlib aligns the face to a 150 px chip, which a 64 px crop cannot fill without it), its 68
    landmarks are found in ``box`` (crop pixels; default :data:`DEFAULT_CROP_BOX`) and dlib's ResNet
    (``dlib_face_recognition_resnet_model_v1``, shipped by ``face_recognition_models``) embeds the aligned
    chip (no jitter, padding 0.25).
    """
    dlib, sp, rec = _dlib_models()
    clip = _as_clip(frames)
    t, h, w = clip.shape[:3]
    k = max(1, int(upscale))
    boxes = (_frame_boxes(box, t, h, w) + 0.5) * k - 0.5
    out = np.empty((t, 128), dtype=np.float64)
    for i in range(t):
        img = clip[i] if clip.shape[-1] == 3 else np.repeat(clip[i], 3, axis=-1)
        if k > 1:
            img = cv2.resize(img, (w * k, h * k), interpolation=cv2.INTER_CUBIC)
        img = np.ascontiguousarray(img)
        x0, y0, x1, y1 = (int(round(v)) for v in boxes[i])
        shape = sp(img, dlib.rectangle(x0, y0, max(x0 + 1, x1 - 1), max(y0 + 1, y1 - 1)))  # inclusive
        out[i] = np.asarray(rec.compute_face_descriptor(img, shape), dtype=np.float64)
    return out


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a @ b) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b))


def csim_frames(source_image: Any, frames: Any, upscale: int = 4, box: Any = None) -> np.ndarray:
    """Per-frame CSIM ``(T,)`` in [-1,1]: cosine similarity of each frame's dlib face embedding with the
    source (identity) image's (see :func:`face_descriptors`; ``box`` applies to both)."""
    src = face_descriptors(source_image, box, upscale)[0]
    return _cosine(face_descriptors(frames, box, upscale), src)


def csim(source_image: Any, frames: Any, upscale: int = 4, box: Any = None) -> float:
    """CSIM: mean over frames of :func:`csim_frames` (1 = same embedding as the identity image).

    dlib calibrates its embedding for a Euclidean same-person rule (distance < 0.6; the vectors have
    length ~1.46), not for cosine: use CSIM to compare methods (beside the real clip's own CSIM against
    the same identity image), not as a same/different decision. On the GRID fixture crops (64 px),
    other frames of the same speaker score ~0.99 and a drawn teaching-corpus face ~0.86.
    """
    return float(csim_frames(source_image, frames, upscale, box).mean())


# ------------------------------------------------------------------------------------- per-clip rows
def _au_row(prefix: str, pred: Any, true: Any, aus: Sequence[int]) -> dict[str, float]:
    nan = float("nan")
    if pred is None or true is None:
        return {f"{prefix}_f1": nan, f"{prefix}_acc": nan, f"{prefix}_n_f1_undefined": nan}
    s = au_scores(pred, true, aus)
    return {f"{prefix}_f1": s["f1_mean"], f"{prefix}_acc": s["acc_mean"],
            f"{prefix}_n_f1_undefined": s["n_f1_undefined"]}


def clip_metrics(fake: Any, real: Any, real_landmarks: Any = None, au_true: Any = None,
                 au_pred_detector: Any = None, au_pred_classifier: Any = None, *,
                 fake_landmarks: Any = None, landmarks: bool = True, box: Any = None, upscale: int = 4,
                 identity_image: Any = None, with_cpbd: bool = False, psnr_cap: float = PSNR_CAP,
                 aus: Sequence[int] = PAPER_AUS) -> dict[str, float]:
    """One clip's row of metrics (a flat dict of floats, for :func:`write_csv` / :func:`summarise`).

    ``fake``, ``real``: uint8 RGB crops ``(T,S,S,3)`` (or torch [-1,1] ``(T,3,S,S)``), same T and S.
    ``real_landmarks``: the real crops' landmarks ``(T,68,2)`` in crop pixels (e.g. the cache's); None
    measures them on ``real`` with :func:`crop_landmarks`, like the fake's. Prefer None: the same
    pipeline on both sides keeps pipeline differences out of LMD (the cache's full-frame landmarks
    differ from crop landmarks by ~0.3 % of the side even for identical images, so real-vs-real LMD is
    0 only with None). ``fake_landmarks``: precomputed fake landmarks (else :func:`crop_landmarks`).
    ``landmarks=False`` skips landmark metrics (NaN). ``au_true`` ``(T,A)`` presence of the real frames;
    ``au_pred_detector`` / ``au_pred_classifier`` ``(T,A)`` presence of the fake frames by the landmark
    AU detector / the AU classifier (None: NaN columns).

    Keys: ``n_frames``, ``crop_size``; ``psnr`` (dB, frame mean, frames capped at ``psnr_cap``);
    ``ssim``; ``lmd_px`` (crop pixels) and ``lmd_pct`` (percent of the crop side); ``mouth_r`` (Pearson
    r of fake vs real inner-lip opening over frames; NaN when either is constant); ``au_det_f1``,
    ``au_det_acc``, ``au_det_n_f1_undefined`` and the same with ``au_cls_`` (F1/acc means over the AUs
    within this clip, fractions); optional ``csim`` (with ``identity_image``, the source image of the
    generator) and ``cpbd_fake``/``cpbd_real`` (``with_cpbd``, frame means).
    """
    fake_c, real_c = _pair(fake, real)
    t, h, w = fake_c.shape[:3]
    nan = float("nan")
    row: dict[str, float] = {"n_frames": t, "crop_size": w,
                             "psnr": psnr(fake_c, real_c, cap=psnr_cap), "ssim": ssim(fake_c, real_c)}
    row.update(lmd_px=nan, lmd_pct=nan, mouth_r=nan)
    if landmarks:
        lf = crop_landmarks(fake_c, box, upscale) if fake_landmarks is None else np.asarray(fake_landmarks)
        lr = crop_landmarks(real_c, box, upscale) if real_landmarks is None else np.asarray(real_landmarks)
        row["lmd_px"] = lmd(lf, lr)
        row["lmd_pct"] = 100.0 * row["lmd_px"] / w
        row["mouth_r"] = pearson(mouth_opening(lf), mouth_opening(lr))
    row.update(_au_row("au_det", au_pred_detector, au_true, aus))
    row.update(_au_row("au_cls", au_pred_classifier, au_true, aus))
    if identity_image is not None:
        row["csim"] = csim(identity_image, fake_c, upscale, box)
    if with_cpbd:
        row["cpbd_fake"] = float(np.nanmean([cpbd(f) for f in fake_c]))
        row["cpbd_real"] = float(np.nanmean([cpbd(f) for f in real_c]))
    return row


def summarise(rows: Sequence[Mapping[str, Any]], keys: Sequence[str] | None = None, n_boot: int = 1000,
              alpha: float = 0.05, seed: int = 0) -> list[dict[str, Any]]:
    """Per metric: mean over clips with a percentile-bootstrap (1-alpha) CI, one dict per key.

    ``rows``: per-clip dicts (:func:`clip_metrics`); ``keys``: metrics to summarise (default: every key
    whose values are numbers, in first-seen order). A missing or NaN value is dropped and counted.
    Returns ``[{"metric", "mean", "ci_low", "ci_high", "n", "n_nan"}, ...]`` (for :func:`write_csv`).
    """
    if keys is None:
        keys = []
        for r in rows:
            keys += [k for k, v in r.items() if k not in keys and isinstance(v, int | float | np.number)
                     and not isinstance(v, bool)]
    out = []
    for k in keys:
        vals = [float(r[k]) if r.get(k) is not None else float("nan") for r in rows]
        out.append({"metric": k, **bootstrap_summary(vals, n_boot, alpha, seed)})
    return out


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> None:
    """Write dict rows as CSV atomically (a killed run never leaves half a table). Columns: every key, in
    first-seen order; a row without a key gets an empty cell; floats are written in full precision."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    with atomic_open(path, "w") as f:
        wr = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
        wr.writeheader()
        for r in rows:
            wr.writerow({k: (float(v) if isinstance(v, np.floating) else v) for k, v in r.items()})
