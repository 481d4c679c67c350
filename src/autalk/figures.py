"""The paper's figures and tables, rebuilt from trained checkpoints (notebook 06).

========================  ===========================================  ==================================
paper                     here                                         file under ``figures/``
========================  ===========================================  ==================================
Fig. 3 / Fig. 4           :func:`frame_strip` of :func:`method_frames`  ``fig03_qualitative`` (``fig04_``
                                                                       with a TCD-TIMIT profile)
Fig. 5                    the same, Table 2 rows                       ``fig05_ablation``
Fig. 7                    :func:`difference_flow_figure`               ``fig07_difference_flow``
Fig. 8                    :func:`frame_strip` + :func:`gap_curves`     ``fig08_silent_audio*``
Fig. 9                    :func:`frame_strip` of :func:`same_audio_frames`  ``fig09_same_audio``
Fig. 10 / Fig. 11         :func:`frame_strip` of :func:`cross_frames`   ``fig10_cross_dataset_video``,
                                                                       ``fig11_cross_dataset_speech``
Table 4                   :func:`table4_rows`, :func:`table4_figure`    ``table4_au_classifier``
Table 5                   :func:`table5_rows`                           ``table5_au_detection``
========================  ===========================================  ==================================

Every figure is a function that takes arrays and returns a matplotlib ``Figure``; :func:`save` writes it
as ``figures/<name>.png`` and ``figures/<name>.pdf``. Tables go to ``figures/<name>.csv`` and ``.md``
(:func:`write_table`). The helpers of the last section load the trained rows (notebooks 04 and 05) and
make the arrays the figures show: they read checkpoints and metric files and never train.

Units: images are uint8 RGB face crops (``S`` x ``S`` px, 0-255); landmark distances are crop pixels;
optical flow is crop pixels per video frame (25 fps); AU accuracy is shown in percent, F1 in [0, 1].
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from autalk import FPS, PAPER_AUS

if TYPE_CHECKING:
    from torch import nn

    from autalk.audio import NormStats
    from autalk.corpus.align import Segment

AU_COLUMNS = tuple(f"AU{a}" for a in PAPER_AUS)
N_FRAMES = 8  # consecutive frames shown per row (the paper's figures show 7-10)
MISMATCH_GID = "au-mismatch"  # gid of the red boxes, so tests (and users) can find them
SILENT_NOISE_RMS = 1e-3  # "only slight noise": Gaussian noise of RMS 1e-3 full scale (-60 dBFS)
SILENT_SECONDS = 1.2  # length of the silent-audio videos (30 frames at 25 fps)
SPEECH_SR = 16000  # audio is read at the MFCC rate (autalk.audio.SAMPLE_RATE)
FARNEBACK = {  # cv2.calcOpticalFlowFarneback settings for 64-112 px crops
    "pyr_scale": 0.5,
    "levels": 3,
    "winsize": 9,
    "iterations": 3,
    "poly_n": 5,
    "poly_sigma": 1.1,
    "flags": 0,
}
OURS = "ours"  # notebook 04's model (longer training than the notebook-05 rows)
TABLE1_KEYS = ("cran", "speech2vid", "baseline", "full", OURS)
TABLE2_KEYS = ("baseline", "+per", "+id", "+adv", "+au", "full")
VIDEO_SUFFIXES = (".mp4", ".mpg", ".mpeg", ".avi", ".mov", ".mkv", ".webm")
MAX_EXTRA_VIDEOS = 4  # videos of extra_video_dir shown in Fig. 10 (sorted by name)

# Columns of the Markdown tables (the CSVs hold every column) and what their units are.
TABLE4_COLUMNS = ("AU", "train_f1", "train_acc_pct", "test_f1", "test_acc_pct", "prior_test_f1",
                  "prior_test_acc_pct", "paper_train_f1", "paper_train_acc_pct", "paper_test_f1",
                  "paper_test_acc_pct")
TABLE5_COLUMNS = ("detector", "frames", "n_frames", "f1", "acc_pct", *(f"{a}_f1" for a in AU_COLUMNS),
                  "paper_f1", "paper_acc_pct")
BOXED_COLUMNS = ("clip", "row", "frames", "boxed_pct")
FLOW_COLUMNS = ("method", "clips", "flow_mean_px", "flow_lower_share", "diff_mean_grey")
FLOW_NOTE = ("flow: mean |optical flow| between consecutive frames in px/frame (25 fps); lower share: "
             "fraction of it in the crop's lower half; diff: mean |generated - truth| over RGB in grey "
             "levels (0-255).")
SILENT_COLUMNS = ("input", "method", "gap_input_px", "gap_std_px", "gap_dev_px", "gap_max_dev_px")
SILENT_NOTE = ("gap = inner-lip opening from dlib landmarks on the generated crops, crop px; std over time = "
               "mouth motion; dev = mean |gap - gap of the input image|; lower is better for both.")
CROSS_COLUMNS = ("video", "method", "frames", "psnr_db", "ssim", "mouth_r")
CROSS_NOTE = ("Each method against the video's own frames cut with the identity's crop square: PSNR in dB "
              "(RGB, 0-255), SSIM (Gaussian 11x11, sigma 1.5), mouth_r = Pearson r of the inner-lip gap over "
              "time (dlib landmarks on the crops).")


# ---- saving ----------------------------------------------------------------------------------------


def figures_dir(folder: str | os.PathLike[str] | None = None) -> Path:
    """``folder``, or ``figures/`` under the project root; created if missing."""
    from autalk.profiles import project_root

    out = Path(folder) if folder is not None else project_root() / "figures"
    out.mkdir(parents=True, exist_ok=True)
    return out


def save(fig: plt.Figure, name: str, folder: str | os.PathLike[str] | None = None,
         dpi: int = 150) -> tuple[Path, Path]:
    """Write ``<folder>/<name>.png`` (``dpi`` dots per inch) and ``<folder>/<name>.pdf``; returns both."""
    out = figures_dir(folder)
    png, pdf = out / f"{name}.png", out / f"{name}.pdf"
    fig.savefig(png, dpi=dpi, bbox_inches="tight")
    fig.savefig(pdf, bbox_inches="tight")
    return png, pdf


def _cell(v: Any, digits: int) -> str:
    if isinstance(v, float | np.floating):
        return "n/a" if not np.isfinite(v) else f"{v:.{digits}f}"
    return str(v)


def markdown_table(rows: Sequence[Mapping[str, Any]], cols: Sequence[str], title: str = "",
                   note: str = "", digits: int = 3) -> str:
    """A Markdown table of ``cols`` (floats with ``digits`` decimals, NaN as n/a), a bold title, a note."""
    lines = [f"**{title}**", ""] if title else []
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r.get(c, ""), digits) for c in cols) + " |" for r in rows]
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def write_table(rows: Sequence[Mapping[str, Any]], name: str, cols: Sequence[str], title: str = "",
                note: str = "", folder: str | os.PathLike[str] | None = None) -> tuple[Path, Path]:
    """``<folder>/<name>.csv`` (every key of every row) and ``<folder>/<name>.md`` (``cols`` only)."""
    from autalk.fsutil import atomic_write_text
    from autalk.metrics import write_csv

    out = figures_dir(folder)
    csv_path, md_path = out / f"{name}.csv", out / f"{name}.md"
    write_csv(list(rows), csv_path)
    atomic_write_text(md_path, markdown_table(rows, cols, title, note))
    return csv_path, md_path


# ---- measures --------------------------------------------------------------------------------------


def au_mismatch(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """``(T,)`` bool: frames where any of the AUs of ``pred`` (T,A) differs from ``true`` (T,A) (0/1)."""
    p, t = np.asarray(pred) > 0, np.asarray(true) > 0
    if p.shape != t.shape or p.ndim != 2:
        raise ValueError(f"AU presence must be two (T,A) arrays, got {p.shape} and {t.shape}")
    return (p != t).any(axis=1)


def busiest_window(au: np.ndarray, n: int = N_FRAMES) -> int:
    """First frame of the ``n``-frame window with the most AU label changes (ties: the earliest)."""
    a = np.asarray(au) > 0
    if len(a) <= n:
        return 0
    changes = np.r_[0, (a[1:] != a[:-1]).sum(axis=1)]  # changes[k]: labels differ between k-1 and k
    per_window = np.convolve(changes, np.ones(n, dtype=int), mode="valid")  # window k..k+n-1
    per_window -= changes[: len(per_window)]  # the change into the window's first frame is outside it
    return int(np.argmax(per_window))


def word_window(words: Sequence[Segment], n_frames: int, n: int = N_FRAMES,
                fps: float = FPS) -> tuple[int, str]:
    """(first frame, word): the ``n``-frame window centred on the longest spoken word (``words`` in s);
    ``(-1, "")`` when there is no spoken word."""
    from autalk.corpus.align import SILENCE_TOKENS

    spoken = [w for w in words if w.label not in SILENCE_TOKENS]
    if not spoken:
        return -1, ""
    w = max(spoken, key=lambda s: s.duration)
    centre = (w.start + w.end) / 2 * fps
    return int(np.clip(round(centre - n / 2), 0, max(0, n_frames - n))), w.label


def loudest_window(audio: np.ndarray, sr: int, n_frames: int, n: int = N_FRAMES, fps: float = FPS) -> int:
    """First frame of the ``n``-frame window whose audio (mono, ``sr`` Hz) has the most energy."""
    if n_frames <= n:
        return 0
    hop = sr / fps
    energy = np.array([np.sum(np.square(audio[int(k * hop): int((k + 1) * hop)], dtype=np.float64))
                       for k in range(n_frames)])
    return int(np.argmax(np.convolve(energy, np.ones(n), mode="valid")))


def difference_maps(fake: np.ndarray, real: np.ndarray) -> np.ndarray:
    """``(T,S,S) float32``: |generated - truth| averaged over R, G, B, in grey levels 0-255."""
    f, r = np.asarray(fake, dtype=np.float32), np.asarray(real, dtype=np.float32)
    if f.shape != r.shape:
        raise ValueError(f"generated and real frames differ in shape: {f.shape} vs {r.shape}")
    return np.abs(f - r).mean(axis=-1)


def optical_flow(frames: np.ndarray) -> np.ndarray:
    """Dense optical flow between consecutive frames ``(T,S,S,3) uint8`` -> ``(T-1,S,S,2) float32`` in
    px/frame, (dx, dy), OpenCV's Farneback method on the grey images (:data:`FARNEBACK`):
    frame k at (x, y) moves to (x + dx, y + dy) in frame k+1."""
    import cv2

    clip = np.asarray(frames, dtype=np.uint8)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in clip]
    pairs = zip(grey[:-1], grey[1:], strict=True)
    out = [cv2.calcOpticalFlowFarneback(a, b, None, **FARNEBACK) for a, b in pairs]
    return np.stack(out).astype(np.float32) if out else np.zeros((0, *clip.shape[1:3], 2), np.float32)


def flow_magnitude(flow: np.ndarray) -> np.ndarray:
    """|flow| in px/frame, one value per pixel: ``(...,S,S,2) -> (...,S,S)``."""
    return np.linalg.norm(np.asarray(flow, dtype=np.float32), axis=-1)


def flow_summary(flow: np.ndarray) -> dict[str, float]:
    """``flow_mean_px``: mean |flow| over all pixels and frame pairs (px/frame); ``flow_lower_share``:
    the share of the summed |flow| that lies in the lower half of the crop (the mouth), 0-1."""
    mag = flow_magnitude(flow)
    total = float(mag.sum())
    lower = float(mag[..., mag.shape[-2] // 2:, :].sum())
    return {"flow_mean_px": float(mag.mean()) if mag.size else float("nan"),
            "flow_lower_share": lower / total if total > 0 else float("nan")}


def flow_to_rgb(flow: np.ndarray, max_px: float) -> np.ndarray:
    """Flow ``(...,S,S,2)`` as colour ``(...,S,S,3) uint8``: hue = direction, brightness = |flow| / max_px
    (black: still; full brightness: ``max_px`` px/frame or more)."""
    import cv2

    f = np.asarray(flow, dtype=np.float32)
    mag = flow_magnitude(f)
    hsv = np.zeros((*f.shape[:-1], 3), dtype=np.uint8)
    hsv[..., 0] = ((np.degrees(np.arctan2(f[..., 1], f[..., 0])) % 360) / 2).astype(np.uint8)
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(mag / max(max_px, 1e-6) * 255, 0, 255).astype(np.uint8)
    flat = hsv.reshape(-1, *hsv.shape[-3:])
    rgb = np.stack([cv2.cvtColor(h, cv2.COLOR_HSV2RGB) for h in flat])
    return rgb.reshape(hsv.shape)


def mouth_motion(landmarks: np.ndarray, input_landmarks: np.ndarray) -> dict[str, float]:
    """How much a mouth moves against the input face, in crop px, from 68-point landmarks.

    ``landmarks`` (T,68,2) of the generated frames, ``input_landmarks`` (68,2) of the input image;
    gap = inner-lip opening (:func:`autalk.metrics.mouth_opening`). Returns ``gap_input_px``,
    ``gap_mean_px``, ``gap_std_px`` (std over time: mouth motion), ``gap_dev_px`` (mean |gap - input
    gap|: drift from the input mouth) and ``gap_max_dev_px``.
    """
    from autalk.metrics import mouth_opening

    gaps = mouth_opening(landmarks)
    g0 = float(mouth_opening(np.asarray(input_landmarks)[None])[0])
    dev = np.abs(gaps - g0)
    return {"gap_input_px": g0, "gap_mean_px": float(gaps.mean()), "gap_std_px": float(gaps.std()),
            "gap_dev_px": float(dev.mean()), "gap_max_dev_px": float(dev.max())}


def silent_audio(seconds: float = SILENT_SECONDS, noise_rms: float = SILENT_NOISE_RMS,
                 sr: int = SPEECH_SR, seed: int = 0) -> np.ndarray:
    """``(N,) float32`` "silence with slight noise": zeros plus Gaussian noise of RMS ``noise_rms``."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(round(seconds * sr))) * noise_rms).astype(np.float32)


# ---- figures ---------------------------------------------------------------------------------------


@dataclass
class StripRow:
    """One row of :func:`frame_strip`: ``frames`` (n,S,S,3) uint8; ``boxed`` (n,) bool: a red box around
    those frames; ``input`` (S,S,3): shown in an extra first column (the identity image)."""

    label: str
    frames: np.ndarray
    boxed: np.ndarray | None = None
    input: np.ndarray | None = None


GAP_PX = 2  # white pixels between the frames of a row


def _mosaic(images: Sequence[np.ndarray | None], side: int, gap: int = GAP_PX) -> np.ndarray:
    """Images (S,S,3) uint8 or (S,S) float side by side with ``gap`` px between them: a uint8 RGB row
    on white, or a float row with NaN (drawn blank) in the gaps. ``None`` leaves a blank slot."""
    rgb = any(im is not None and im.ndim == 3 for im in images)
    shape = (side, len(images) * (side + gap) - gap) + ((3,) if rgb else ())
    out = np.full(shape, 255, np.uint8) if rgb else np.full(shape, np.nan, np.float32)
    for k, im in enumerate(images):
        if im is not None:
            out[: im.shape[0], k * (side + gap): k * (side + gap) + im.shape[1]] = im
    return out


def _slot_x(k: int, side: int, gap: int = GAP_PX) -> float:
    """Left edge (data coordinates of :func:`_mosaic`) of image slot ``k``."""
    return k * (side + gap) - 0.5


def _row_axes(ax: plt.Axes, label: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)


def _column_titles(ax: plt.Axes, titles: Sequence[str], first_slot: int, side: int) -> None:
    """Titles above the image slots ``first_slot``, ``first_slot + 1``, ... of a mosaic row."""
    for k, t in enumerate(titles):
        ax.text(_slot_x(first_slot + k, side) + side / 2, -2, t, ha="center", va="bottom", fontsize=7)


def _red_box(ax: plt.Axes, slot: int, side: int) -> None:
    ax.add_patch(Rectangle((_slot_x(slot, side), -0.5), side, side, fill=False, edgecolor="red", lw=2.0,
                           clip_on=False, gid=MISMATCH_GID))


def boxed_slots(ax: plt.Axes, side: int) -> list[int]:
    """Which image slots of a :func:`frame_strip` row carry a red mismatch box (0 = first slot)."""
    return sorted(int(round((p.get_x() + 0.5) / (side + GAP_PX))) for p in ax.patches
                  if p.get_gid() == MISMATCH_GID)


def frame_strip(rows: Sequence[StripRow], col_titles: Sequence[str] | None = None, title: str = "",
                size: float = 0.9) -> plt.Figure:
    """Rows of consecutive frames (rows = methods or identities, columns = frames), about ``size`` inches
    per image, one axes per row; a red box around every frame a row marks in ``boxed``; an "input"
    column first when any row has an ``input`` image."""
    side = max(r.frames.shape[1] for r in rows)
    n = max(len(r.frames) for r in rows)
    lead = int(any(r.input is not None for r in rows))
    fig, axes = plt.subplots(len(rows), 1, figsize=((n + lead) * size + 1.6, len(rows) * size + 0.6),
                             squeeze=False)
    for ax, row in zip(axes[:, 0], rows, strict=True):
        slots = ([row.input] if lead else []) + list(row.frames) + [None] * (n - len(row.frames))
        ax.imshow(_mosaic(slots, side), interpolation="nearest")
        for k in np.flatnonzero(row.boxed if row.boxed is not None else []):
            _red_box(ax, lead + int(k), side)
        _row_axes(ax, row.label)
    _column_titles(axes[0, 0], (["input"] if lead else []) + list(col_titles or []), 0, side)
    _strip_layout(fig, title)
    return fig


def _strip_layout(fig: plt.Figure, title: str, right: float = 0.99) -> None:
    """Rows stacked tightly, room above the first row for column titles; the title above the figure.
    Row labels stick out on the left: ``save`` (bbox_inches="tight") and the notebook display keep them."""
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.01, right=right, bottom=0.01, top=1 - 0.4 / height, hspace=0.08)
    if title:
        fig.suptitle(title, fontsize=9, y=1.0, va="bottom")


def frame_titles(start: int, n: int, fps: float = FPS) -> list[str]:
    """Column titles ``frame k`` with the time of the frame's centre in seconds."""
    return [f"frame {k}\n{(k + 0.5) / fps:.2f} s" for k in range(start, start + n)]


def difference_flow_figure(real: np.ndarray, fakes: Mapping[str, np.ndarray], title: str = "",
                           max_flow_px: float | None = None, diff_max: float = 96.0,
                           size: float = 0.9) -> plt.Figure:
    """Fig. 7: for ``real`` and each method's ``fakes`` (n+1,S,S,3), columns = frames 1..n: the truth,
    then per method the generated frame, |generated - truth| (grey levels, 0 to ``diff_max``) and the
    optical flow from the previous generated frame (colour: hue = direction, brightness = |flow| up to
    ``max_flow_px`` px/frame, default the 99th percentile over all methods)."""
    flows = {m: optical_flow(f) for m, f in fakes.items()}
    if max_flow_px is None:
        mags = np.concatenate([flow_magnitude(f).ravel() for f in flows.values()])
        max_flow_px = max(float(np.percentile(mags, 99)), 0.05)
    side, n = real.shape[1], len(real) - 1
    panels: list[tuple[str, np.ndarray]] = [("ground truth", _mosaic(list(real[1:]), side))]
    for m, fake in fakes.items():
        diff = difference_maps(fake, real)
        s = flow_summary(flows[m])
        panels += [(f"{m}\ngenerated", _mosaic(list(fake[1:]), side)),
                   (f"{m}\n|gen - truth|\nmean {diff[1:].mean():.1f} / 255", _mosaic(list(diff[1:]), side)),
                   (f"{m}\noptical flow\nmean {s['flow_mean_px']:.2f} px/frame\n"
                    f"{100 * s['flow_lower_share']:.0f}% in lower half",
                    _mosaic(list(flow_to_rgb(flows[m], max_flow_px)), side))]
    fig, axes = plt.subplots(len(panels), 1, figsize=(n * size + 2.6, len(panels) * size + 0.8),
                             squeeze=False)
    im = None
    for ax, (label, mosaic) in zip(axes[:, 0], panels, strict=True):
        if mosaic.ndim == 2:
            im = ax.imshow(mosaic, cmap="magma", vmin=0, vmax=diff_max, interpolation="nearest")
        else:
            ax.imshow(mosaic, interpolation="nearest")
        _row_axes(ax, label)
    _column_titles(axes[0, 0], [f"frame {k}" for k in range(1, n + 1)], 0, side)
    head = title + "\n" if title else ""
    _strip_layout(fig, head + "optical flow colour: hue = direction, brightness = |flow| (black 0, full "
                  f"{max_flow_px:.2f} px/frame or more)", right=0.9)
    if im is not None:
        cax = fig.add_axes((0.92, 0.1, 0.015, 0.6))
        fig.colorbar(im, cax=cax, label="|generated - truth|, mean over RGB\n(grey levels 0-255)")
    return fig


def gap_curves(gaps: Mapping[str, Mapping[str, np.ndarray]], input_gaps: Mapping[str, float],
               fps: float = FPS, title: str = "") -> plt.Figure:
    """Fig. 8's numbers over time: one panel per input (e.g. closed / open mouth), one line per method:
    the inner-lip gap (crop px) of each generated frame; dashed: the input image's gap."""
    fig, axes = plt.subplots(1, len(gaps), figsize=(5.2 * len(gaps), 3.2), squeeze=False, sharey=True)
    for ax, (name, per_method) in zip(axes[0], gaps.items(), strict=True):
        for m, g in per_method.items():
            ax.plot((np.arange(len(g)) + 0.5) / fps, g, lw=1.3, label=m)
        ax.axhline(input_gaps[name], color="k", ls="--", lw=1, label="input image")
        ax.set_title(f"{name} input mouth", fontsize=9)
        ax.set_xlabel("time (s)")
    axes[0, 0].set_ylabel("inner-lip gap (crop px)")
    axes[0, -1].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def table4_figure(rows: Sequence[Mapping[str, Any]]) -> plt.Figure:
    """Table 4 as bars: per AU, F1 and accuracy (%) of the AU classifier on real training / test frames,
    ours beside the paper's (GRID, OpenFace labels)."""
    names = [r["AU"] for r in rows]
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.3))
    for ax, (metric, unit) in zip(axes, (("f1", "F1 (0-1)"), ("acc_pct", "accuracy (%)")), strict=True):
        bars = (("train", "ours, train", "tab:blue", 0.6), ("test", "ours, test", "tab:blue", 1.0),
                ("paper_train", "paper, train", "tab:gray", 0.6),
                ("paper_test", "paper, test", "tab:gray", 1.0))
        for i, (key, lab, colour, alpha) in enumerate(bars):
            ax.bar(x + (i - 1.5) * 0.2, [r[f"{key}_{metric}"] for r in rows], 0.2, label=lab, color=colour,
                   alpha=alpha, edgecolor="k", lw=0.3)
        ax.set_xticks(x, names)
        ax.set_ylabel(unit)
        ax.set_ylim(0, 1.0 if metric == "f1" else 100)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=8)
    fig.suptitle("Table 4: AU classifier on real frames (ours: this corpus; paper: GRID)", fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


# ---- tables ----------------------------------------------------------------------------------------


def table4_rows(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Table 4 from notebook 03's ``metrics.json``: per AU and the mean, F1 and accuracy (%) on the
    training and test speakers, the prior (always-majority) predictor on the test speakers, and the
    paper's numbers (``autalk.paper.TABLE4_*``)."""
    from autalk import paper

    rows = []
    for au in (*AU_COLUMNS, "mean"):
        row: dict[str, Any] = {"AU": "Average" if au == "mean" else au}
        for split, key in (("train", "train"), ("test", "test"), ("prior_test", "trivial_test")):
            m = metrics[key]
            row[f"{split}_f1"] = float(m["mean_f1"] if au == "mean" else m["f1"][au])
            row[f"{split}_acc_pct"] = 100 * float(m["mean_acc"] if au == "mean" else m["acc"][au])
        for split, ref in (("paper_train", paper.TABLE4_TRAIN), ("paper_test", paper.TABLE4_TEST)):
            row[f"{split}_f1"], row[f"{split}_acc_pct"] = ref[au]
        rows.append(row)
    return rows


def au_detection_row(detector: str, frames: str, pred: np.ndarray, true: np.ndarray,
                     paper_key: str | None = None) -> dict[str, Any]:
    """One Table 5 line: F1 (0-1) and accuracy (%) of ``pred`` against ``true`` (N,A), frames of all clips
    stacked (the paper's pooling), per AU and averaged; the paper's GRID numbers when ``paper_key``."""
    from autalk import metrics, paper

    s = metrics.au_scores(pred, true)
    row: dict[str, Any] = {"detector": detector, "frames": frames, "n_frames": int(s["n"]),
                           "f1": float(s["f1_mean"]), "acc_pct": 100 * float(s["acc_mean"])}
    for au, name in zip(PAPER_AUS, AU_COLUMNS, strict=True):
        row[f"{name}_f1"] = float(s["f1"][f"AU{au:02d}"])
    ref = paper.TABLE5_GRID.get(paper_key or "", (np.nan, np.nan))
    row["paper_f1"], row["paper_acc_pct"] = float(ref[0]), float(ref[1])
    return row


def openface_presence(folder: str | os.PathLike[str], names: Sequence[str],
                      lengths: Sequence[int]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """AU presence of generated clips from OpenFace CSVs ``<folder>/<name>.csv`` (one per clip, frames
    in order): ``(pred (N,A) uint8, valid (N,) bool, notes)`` over all clips stacked (N = sum of
    ``lengths``). Frames OpenFace did not track (success 0, confidence < 0.8), rows past a clip's end,
    and clips without a CSV are invalid; the notes count them."""
    from autalk.openface import read_openface_csv

    preds, valid, notes = [], [], []
    for name, t in zip(names, lengths, strict=True):
        p = np.zeros((t, len(PAPER_AUS)), np.uint8)
        v = np.zeros(t, bool)
        path = Path(folder) / f"{name}.csv"
        if not path.is_file():
            notes.append(f"{name}: no {path.name}: its {t} frames left out")
        else:
            of = read_openface_csv(path)
            idx = of.frame - 1  # OpenFace frames are 1-based
            ok = (idx >= 0) & (idx < t)
            p[idx[ok]] = of.presence[ok]
            v[idx[ok]] = of.valid[ok]
            if (~v).sum():
                notes.append(f"{name}: {int((~v).sum())} of {t} frames untracked or missing in the CSV, "
                             "left out")
        preds.append(p)
        valid.append(v)
    return np.concatenate(preds), np.concatenate(valid), notes


# ---- loading and generating (reads checkpoints, never trains) --------------------------------------

Model = tuple["nn.Module", "NormStats"]


def method_label(key: str) -> str:
    """A row's name in the figures: the Table 1/2 labels of ``autalk.experiments`` (same budget, notebook
    05; the full row is "ours: full, nb 05 budget") and "ours: full, nb 04" for notebook 04's model."""
    from autalk.experiments import LABELS

    return {OURS: "ours: full, nb 04", "full": "ours: full, nb 05 budget"}.get(key, LABELS.get(key, key))


def load_models(run: str | os.PathLike[str], seed: int = 0, device: str = "cpu",
                keys: Sequence[str] = (*TABLE2_KEYS, "cran", "speech2vid", OURS)) -> dict[str, Model]:
    """(generator, MFCC norm) per row: notebook 05's ``05_ablations/<row>/seed<seed>`` and notebook 04's
    model (``OURS``). A missing checkpoint raises ``MissingStageError`` naming the notebook to run."""
    from autalk.experiments import row_checkpoint
    from autalk.stages import load_generator, require_stage

    models = {}
    for key in keys:
        if key == OURS:
            path = require_stage(run, "04_gan", "checkpoint.pt")
        else:
            rel = row_checkpoint(run, key, seed).relative_to(Path(run) / "05_ablations")
            path = require_stage(run, "05_ablations", str(rel))
        gen, norm, _ = load_generator(path, device)
        models[key] = (gen, norm)
    return models


def generate_all(models: Mapping[str, Model], clip: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Each model's frames (T,S,S,3) uint8 for a test clip: its first frame + its own audio."""
    from autalk.generate import render

    return {k: render(g, clip["frames"][0], n.apply(clip["mfcc"].astype(np.float32)))
            for k, (g, n) in models.items()}


def pick_clips(clips: Sequence[Mapping[str, Any]], n: int) -> list[Mapping[str, Any]]:
    """``n`` clips, one per speaker first (in split order), then further clips."""
    first: list[Mapping[str, Any]] = []
    for c in clips:
        if all(c["speaker"] != f["speaker"] for f in first):
            first.append(c)
    rest = [c for c in clips if all(c is not f for f in first)]
    return (first + rest)[:n]


def qualitative_name(corpus_kind: str) -> str:
    """``fig04_qualitative`` for a TCD-TIMIT corpus (the paper's Fig. 4), else ``fig03_qualitative``."""
    return "fig04_qualitative" if corpus_kind == "tcd" else "fig03_qualitative"


def offset_titles(n: int = N_FRAMES, fps: float = FPS) -> list[str]:
    """Column titles of consecutive frames: time after the first shown frame, in ms."""
    return [f"+{1000 * k / fps:.0f} ms" for k in range(n)]


def method_frames(models: Mapping[str, Model], clip: Mapping[str, Any], keys: Sequence[str],
                  classifier: nn.Module | None, n: int = N_FRAMES) -> tuple[list[StripRow], list[dict]]:
    """Figs. 3-5 for one test clip: the truth and each method in ``keys`` over the ``n`` consecutive
    frames with the most AU label changes. A generated frame is boxed when the AU classifier's presence
    on its lower half disagrees with the truth labels in any AU. Returns (rows, one dict per row with the
    share of boxed frames over the whole clip, in %; for the truth it is the classifier's own error rate
    on real frames)."""
    from autalk.evaluate import classifier_presence

    start = busiest_window(clip["au"], n)
    fakes = generate_all({k: models[k] for k in keys}, clip)
    sel = slice(start, start + n)
    src = f"{clip['speaker']}/{clip['clip_id']}"
    everything = {"ground truth": clip["frames"], **{method_label(k): fakes[k] for k in keys}}
    rows, shares = [], []
    for label, frames in everything.items():
        miss = None
        if classifier is not None:
            miss = au_mismatch(classifier_presence(classifier, frames), clip["au"])
            shares.append({"clip": src, "row": label, "frames": len(miss),
                           "boxed_pct": 100 * float(miss.mean())})
        boxed = None if miss is None or label == "ground truth" else miss[sel]
        name = f"{src}, frames {start}-{start + n - 1}\n{label}" if label == "ground truth" else label
        rows.append(StripRow(name, frames[sel], boxed))
    return rows, shares


def qualitative(models: Mapping[str, Model], clips: Sequence[Mapping[str, Any]], keys: Sequence[str],
                classifier: nn.Module | None, n: int = N_FRAMES) -> tuple[list[StripRow], list[dict]]:
    """:func:`method_frames` of several clips, stacked (the paper shows two speakers)."""
    rows, shares = [], []
    for clip in clips:
        r, s = method_frames(models, clip, keys, classifier, n)
        rows += r
        shares += s
    return rows, shares


def flow_frames(models: Mapping[str, Model], clip: Mapping[str, Any], keys: Sequence[str],
                n: int = N_FRAMES) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Fig. 7 input: (truth, {method: generated}) over ``n + 1`` consecutive frames of the busiest window."""
    start = busiest_window(clip["au"], n + 1)
    fakes = generate_all({k: models[k] for k in keys}, clip)
    sel = slice(start, start + n + 1)
    return clip["frames"][sel], {method_label(k): fakes[k][sel] for k in keys}


def flow_table(models: Mapping[str, Model], clips: Sequence[Mapping[str, Any]],
               keys: Sequence[str]) -> list[dict[str, Any]]:
    """Fig. 7 in numbers, per method in ``keys`` over whole clips: mean |optical flow| between
    consecutive frames (px/frame), its share in the lower half of the crop, and the mean |generated -
    truth| (grey levels); the real frames first as the reference."""
    made = [generate_all({k: models[k] for k in keys}, c) for c in clips]
    out = []
    for key in ("ground truth", *keys):
        frames = [c["frames"] for c in clips] if key == "ground truth" else [m[key] for m in made]
        s = flow_summary(np.concatenate([optical_flow(f) for f in frames]))
        pairs = zip(frames, clips, strict=True)
        diff = float(np.mean([difference_maps(f, c["frames"]).mean() for f, c in pairs]))
        out.append({"method": key if key == "ground truth" else method_label(key), "clips": len(clips),
                    **s, "diff_mean_grey": diff})
    return out


def extreme_mouths(clips: Sequence[Mapping[str, Any]], max_frames: int = 300) -> dict[str, dict[str, Any]]:
    """Fig. 8 inputs: the test frames with the smallest ("closed") and largest ("open") inner-lip gap,
    searched over at most ``max_frames`` frames evenly spread over ``clips``. Each: image (S,S,3),
    landmarks (68,2) in crop px, gap (px) and where it came from."""
    from autalk.metrics import crop_landmarks, mouth_opening

    total = sum(len(c["frames"]) for c in clips)
    step = max(1, int(np.ceil(total / max_frames)))
    cands = [(c, k) for c in clips for k in range(0, len(c["frames"]), step)]
    lm = crop_landmarks(np.stack([c["frames"][k] for c, k in cands]))
    gaps = mouth_opening(lm)
    out = {}
    for name, i in (("closed", int(np.argmin(gaps))), ("open", int(np.argmax(gaps)))):
        c, k = cands[i]
        out[name] = {"image": c["frames"][k], "landmarks": lm[i], "gap_px": float(gaps[i]),
                     "source": f"{c['speaker']}/{c['clip_id']} frame {k}"}
    return out


@dataclass
class SilentRun:
    """One model driven by silent audio from one input image (Fig. 8)."""

    method: str
    input_name: str
    frames: np.ndarray  # (T,S,S,3) uint8
    gaps: np.ndarray  # (T,) inner-lip gap per frame, crop px
    motion: dict[str, float] = field(default_factory=dict)  # mouth_motion()


def silent_runs(models: Mapping[str, Model], inputs: Mapping[str, Mapping[str, Any]],
                audio: np.ndarray, sr: int = SPEECH_SR) -> list[SilentRun]:
    """Every model x input image driven by ``audio`` (silence with slight noise): frames, gaps, motion.
    The MFCC windows use each model's own normalisation (``generate.audio_features``)."""
    from autalk.generate import audio_features, render
    from autalk.metrics import crop_landmarks, mouth_opening

    out = []
    for key, (gen, norm) in models.items():
        windows = audio_features(audio, sr, norm)
        for name, inp in inputs.items():
            frames = render(gen, inp["image"], windows)
            lm = crop_landmarks(frames)
            out.append(SilentRun(method_label(key), name, frames, mouth_opening(lm),
                                 mouth_motion(lm, inp["landmarks"])))
    return out


def silent_rows(runs: Sequence[SilentRun], inputs: Mapping[str, Mapping[str, Any]], methods: Sequence[str],
                n: int = N_FRAMES, fps: float = FPS) -> tuple[list[StripRow], list[str]]:
    """Fig. 8 strip: per input (closed, open) the input image and ``n`` frames spread over the silent
    video of each method in ``methods`` (labels). A frame whose inner-lip gap differs from the input's
    by more than 1 crop px is boxed. Returns (rows, column titles)."""
    rows, idx = [], np.zeros(0, int)
    for name, inp in inputs.items():
        for r in runs:
            if r.input_name != name or r.method not in methods:
                continue
            idx = np.linspace(0, len(r.frames) - 1, n).round().astype(int)
            moved = np.abs(r.gaps[idx] - inp["gap_px"]) > 1.0
            rows.append(StripRow(f"{name} mouth\n{r.method}", r.frames[idx], moved, inp["image"]))
    return rows, [f"{(k + 0.5) / fps:.2f} s" for k in idx]


def silent_gaps(runs: Sequence[SilentRun], inputs: Mapping[str, Mapping[str, Any]],
                methods: Sequence[str]) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, float]]:
    """:func:`gap_curves` input: ({input: {method: gap per frame (px)}}, {input: the input's gap (px)})."""
    gaps = {name: {r.method: r.gaps for r in runs if r.input_name == name and r.method in methods}
            for name in inputs}
    return gaps, {name: float(inp["gap_px"]) for name, inp in inputs.items()}


def silent_table(runs: Sequence[SilentRun], inputs: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Fig. 8 in numbers: one row per input image and method with :func:`mouth_motion` (crop px)."""
    return [{"input": r.input_name, "input_frame": inputs[r.input_name]["source"], "method": r.method,
             "frames": len(r.frames), **r.motion} for r in runs]


def same_audio_inputs(cache: str | os.PathLike[str], clips: Sequence[Mapping[str, Any]],
                      n_identities: int = 3) -> tuple[Mapping[str, Any], list[Mapping[str, Any]], list]:
    """Fig. 9 inputs: (the first test clip, whose sound drives every face; ``n_identities`` other test
    clips, other speakers first, whose first frames are the faces; the sound clip's words)."""
    from autalk.evaluate import clip_transcript

    audio_clip = clips[0]
    others = pick_clips([c for c in clips if c is not audio_clip and c["speaker"] != audio_clip["speaker"]]
                        + [c for c in clips if c is not audio_clip and c["speaker"] == audio_clip["speaker"]],
                        n_identities)
    words, _ = clip_transcript(cache, audio_clip["speaker"], audio_clip["clip_id"])
    return audio_clip, others, words


def same_audio_frames(
    model: Model, audio_clip: Mapping[str, Any], identities: Sequence[Mapping[str, Any]],
    words: Sequence[Segment] = (), n: int = N_FRAMES,
) -> tuple[list[StripRow], list[str], str]:
    """Fig. 9: one test clip's audio driving several identities (first frames of ``identities``' clips),
    over the ``n`` frames around its longest word (else its busiest AU window). Returns (rows: the
    truth, then one per identity; column titles; the word)."""
    from autalk.generate import render

    gen, norm = model
    start, word = word_window(words, len(audio_clip["frames"]), n)
    if start < 0:
        start = busiest_window(audio_clip["au"], n)
    sel = slice(start, start + n)
    windows = norm.apply(audio_clip["mfcc"].astype(np.float32))
    src = f"{audio_clip['speaker']}/{audio_clip['clip_id']}"
    rows = [StripRow(f"ground truth\n{src}", audio_clip["frames"][sel], None, audio_clip["frames"][0])]
    for c in identities:
        fake = render(gen, c["frames"][0], windows)
        rows.append(StripRow(f"identity\n{c['speaker']}/{c['clip_id']}", fake[sel], None, c["frames"][0]))
    return rows, frame_titles(start, n), word


@dataclass
class Source:
    """A face and a sound from outside the training corpus (Figs. 10/11)."""

    name: str
    identity: np.ndarray  # (S,S,3) uint8 crop, as preprocessing cuts it
    audio: np.ndarray  # (N,) float32 mono
    sr: int
    n_frames: int  # generated frames at 25 fps
    real: np.ndarray | None = None  # (n_frames,S,S,3) the video's own frames, same crop, or None


def video_source(path: str | os.PathLike[str], size: int) -> Source:
    """A real video: its first frame's face crop as identity, its own sound, and its frames cut with the
    same square (resampled to 25 fps by nearest frame) as the truth."""
    from autalk.faces import crop_faces
    from autalk.generate import n_video_frames, prepare_face
    from autalk.media import read_audio, read_video

    frames, fps = read_video(path)
    crop, info = prepare_face(frames[0], size)
    audio = read_audio(path, sr=SPEECH_SR)
    idx = np.round(np.arange(n_video_frames(len(audio), SPEECH_SR)) * (fps or FPS) / FPS).astype(int)
    idx = idx[idx < len(frames)]
    real = crop_faces(frames[idx], None, None, size, square=info.square)[0]
    return Source(Path(path).stem, crop, audio, SPEECH_SR, len(idx), real)


def speech_source(path: str | os.PathLike[str], identity: np.ndarray, face_name: str) -> Source:
    """A speech recording (any rate; mixed to mono) driving a given identity crop."""
    from autalk.generate import n_video_frames, read_speech

    audio, sr = read_speech(path, [])
    return Source(f"{Path(path).stem} + {face_name}", identity, audio, sr, n_video_frames(len(audio), sr))


def cross_sources(grid_dir: str | os.PathLike[str], speech_dir: str | os.PathLike[str], size: int,
                  extra_video_dir: str = "") -> tuple[list[Source], list[Source], list[str]]:
    """Figs. 10/11 inputs: (real videos: the GRID clips under ``grid_dir`` then up to
    :data:`MAX_EXTRA_VIDEOS` of ``extra_video_dir``; speech recordings of ``speech_dir`` (wav) with the
    first GRID face; notes on anything skipped, e.g. no face found)."""
    notes: list[str] = []
    paths = sorted(Path(grid_dir).glob("*/video/*.mpg"))
    if extra_video_dir:
        if not Path(extra_video_dir).is_dir():
            raise FileNotFoundError(f"extra_video_dir {extra_video_dir!r} is not a folder: give a folder of "
                                    f"videos ({', '.join(VIDEO_SUFFIXES)}) or leave it empty")
        extra = sorted(p for p in Path(extra_video_dir).iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        if len(extra) > MAX_EXTRA_VIDEOS:
            notes.append(f"{extra_video_dir}: {len(extra)} videos; the first {MAX_EXTRA_VIDEOS} by name used")
        paths += extra[:MAX_EXTRA_VIDEOS]
    videos = []
    for p in paths:
        try:
            videos.append(video_source(p, size))
        except ValueError as e:
            notes.append(f"skipped {p.name}: {e}")
    speech = [speech_source(p, videos[0].identity, videos[0].name)
              for p in sorted(Path(speech_dir).glob("*.wav"))] if videos else []
    return videos, speech, notes


def cross_frames(models: Mapping[str, Model], sources: Sequence[Source], keys: Sequence[str],
                 n: int = N_FRAMES) -> tuple[list[StripRow], dict[str, dict[str, np.ndarray]]]:
    """Figs. 10/11: every source's real frames (when it has them) and each model in ``keys`` over the
    ``n`` frames with the loudest audio. Returns (rows, {source: {label: all generated frames}})."""
    from autalk.generate import audio_features, render

    rows, made = [], {}
    for s in sources:
        start = loudest_window(s.audio, s.sr, s.n_frames, n)
        sel = slice(start, start + n)
        made[s.name] = {method_label(k): render(g, s.identity, audio_features(s.audio, s.sr, nm, s.n_frames))
                        for k, (g, nm) in ((k, models[k]) for k in keys)}
        span = f"frames {start}-{start + n - 1}"
        if s.real is not None:
            rows.append(StripRow(f"{s.name}\nreal, {span}", s.real[sel], None, s.identity))
        for i, (label, frames) in enumerate(made[s.name].items()):
            first = s.real is None and i == 0
            rows.append(StripRow(f"{s.name}\n{label}" + (f", {span}" if first else ""), frames[sel], None,
                                 s.identity))
    return rows, made


def cross_scores(sources: Sequence[Source], made: Mapping[str, Mapping[str, np.ndarray]]) -> list[dict]:
    """Per real video and method: PSNR (dB) and SSIM against the video's own cropped frames, and the
    Pearson r of the inner-lip gap over time (generated vs real; dlib landmarks on the crops)."""
    from autalk import metrics

    rows = []
    for s in sources:
        if s.real is None:
            continue
        real_gap = metrics.mouth_opening(metrics.crop_landmarks(s.real))
        for label, fake in made[s.name].items():
            fake = fake[: len(s.real)]
            rows.append({"video": s.name, "method": label, "frames": len(fake),
                         "psnr_db": metrics.psnr(fake, s.real), "ssim": metrics.ssim(fake, s.real),
                         "mouth_r": metrics.pearson(metrics.mouth_opening(metrics.crop_landmarks(fake)),
                                                    real_gap)})
    return rows


def detect_aus(model: Model, clips: Sequence[Mapping[str, Any]], classifier: nn.Module | None,
               detector: Any) -> dict[str, Any]:
    """Table 5 input: the model's frames for ``clips`` and, stacked over all their frames, the AU presence
    (N,A) that the AU classifier and the landmark AU detector (neutral = the clip's real first frame)
    find on generated and on real frames, and the truth labels."""
    from autalk.evaluate import classifier_presence, generate_split
    from autalk.metrics import crop_landmarks

    gen, norm = model
    fakes = generate_split(gen, norm, clips, progress=False)
    out: dict[str, Any] = {"fakes": fakes, "true": np.concatenate([c["au"] for c in clips])}
    for name, frames in (("generated", fakes), ("real", [c["frames"] for c in clips])):
        if classifier is not None:
            out[f"classifier_{name}"] = np.concatenate([classifier_presence(classifier, f) for f in frames])
        pres = []
        for f, c in zip(frames, clips, strict=True):
            neutral = crop_landmarks(c["frames"][:1])[0]
            pres.append(detector.predict(crop_landmarks(f), neutral=neutral)[1])
        out[f"detector_{name}"] = np.concatenate(pres).astype(np.uint8)
    return out


def table5_rows(det: Mapping[str, Any], openface: tuple[np.ndarray, np.ndarray] | None = None) -> list[dict]:
    """Table 5 from :func:`detect_aus`: each detector on generated frames (the paper's rows), then on
    real frames (their ceiling); ``openface`` = (presence, valid) of the generated frames when given."""
    true = det["true"]
    rows = []
    for name in ("generated", "real"):
        if f"classifier_{name}" in det:
            rows.append(au_detection_row("AU classifier (nb 03)", name, det[f"classifier_{name}"], true,
                                         "AU classifier" if name == "generated" else None))
        rows.append(au_detection_row("landmark AU detector", name, det[f"detector_{name}"], true))
        if name == "generated" and openface is not None:
            pred, valid = openface
            rows.append(au_detection_row("OpenFace (your CSVs)", name, pred[valid], true[valid], "OpenFace"))
    return rows


def load_openface(folder: str, clips: Sequence[Mapping[str, Any]]) -> tuple[tuple | None, list[str]]:
    """Table 5's OpenFace row input: (presence, valid) of the generated clips from ``<folder>/<speaker>_
    <clip_id>.csv``, or None with a note saying how to get it when ``folder`` is empty."""
    if not folder:
        return None, ["OpenFace is not available here: no openface_dir given. Run OpenFace 2.x "
                      "`FeatureExtraction -f <video> -aus` on the generated clips this notebook writes "
                      "(runs/<profile>/06_figures/generated_nb04/) and pass the folder of its CSVs as "
                      "openface_dir to add the paper's OpenFace row."]
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"openface_dir {folder!r} is not a folder: give the folder of OpenFace's "
                                "CSVs (<speaker>_<clip_id>.csv) or leave it empty")
    names = [f"{c['speaker']}_{c['clip_id']}" for c in clips]
    pred, valid, notes = openface_presence(folder, names, [len(c["frames"]) for c in clips])
    return (pred, valid), notes


def write_clips(frames: Sequence[np.ndarray], clips: Sequence[Mapping[str, Any]],
                folder: str | os.PathLike[str]) -> list[Path]:
    """Generated clips as ``<folder>/<speaker>_<clip_id>.mp4`` (H.264, 25 fps, no sound), to run OpenFace
    ``FeatureExtraction -f`` on; the CSVs it writes (``<speaker>_<clip_id>.csv``) feed Table 5."""
    from autalk.media import write_video

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for f, c in zip(frames, clips, strict=True):
        p = out / f"{c['speaker']}_{c['clip_id']}.mp4"
        write_video(p, f, fps=FPS, codec="h264")
        paths.append(p)
    return paths
