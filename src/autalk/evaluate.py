"""Evaluation of trained generators on held-out speakers (``autalk evaluate``, notebooks 04-06).

For every clip of a split: the generator makes the whole clip from the clip's first frame (the identity
image I_id, appendix A.1) and its MFCC windows; the frames are scored against the real ones with
:func:`autalk.metrics.clip_metrics`. Two reference rows are scored on the same clips:

* ``copy_identity``: every frame = the identity frame, a still face: the floor a talking head must beat;
* ``ground_truth``: the real frames themselves: the ceiling of each detector (PSNR capped, SSIM 1, LMD 0).

Landmarks on generated 64/112 px crops are found by dlib's 68-point predictor on the crop upscaled 4x
inside a fixed box where preprocessing puts the face (``metrics.crop_landmarks``); real crops are
measured the same way, so the pipeline is identical on both sides. AU presence of generated frames
comes from (a) the landmark AU detector (``au_detector.json`` fitted in preprocessing, else the
hand-set rules), neutral = the identity frame's landmarks, independent of training, and (b) the AU
classifier trained in notebook 03.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from autalk import metrics
from autalk.audio import NormStats
from autalk.data.cache import load_clip, read_manifest

REFERENCES = ("copy_identity", "ground_truth")
SUMMARY_KEYS = (
    "psnr",
    "ssim",
    "lmd_px",
    "lmd_pct",
    "mouth_r",
    "au_det_f1",
    "au_det_acc",
    "au_cls_f1",
    "au_cls_acc",
)


def load_split(
    cache: str | os.PathLike[str], split: str = "test", max_clips: int = 0
) -> list[dict[str, Any]]:
    """The clips of a split: frames (T,S,S,3) uint8, raw MFCC windows (T,12,28), the clip's MFCCs at 100 Hz
    ``mfcc_raw`` (12,N), AU presence (T,A).
    ``max_clips`` > 0 takes that many clips spread evenly over the split (every speaker included)."""
    cache = Path(cache)
    clips = [c for c in read_manifest(cache)["clips"] if c["split"] == split]
    if not clips:
        raise ValueError(f"{cache}: the {split!r} split has no clips")
    if 0 < max_clips < len(clips):
        clips = [clips[i] for i in np.linspace(0, len(clips) - 1, max_clips).round().astype(int)]
    out = []
    for c in clips:
        d = load_clip(cache / c["path"], keys=["frames", "mfcc", "mfcc_raw", "au_presence"])
        out.append(
            {
                "speaker": c["speaker"],
                "clip_id": c["clip_id"],
                "frames": d["frames"],
                "mfcc": d["mfcc"],
                "mfcc_raw": d["mfcc_raw"],
                "au": d["au_presence"].astype(np.uint8),
            }
        )
    return out


@torch.no_grad()
def generate_split(
    generator: nn.Module, norm: NormStats, clips: Sequence[dict[str, Any]], progress: bool = True
) -> list[np.ndarray]:
    """Generated frames (T,S,S,3) uint8 for each clip, from its first frame and normalised MFCCs."""
    from tqdm.auto import tqdm

    from autalk.generate import render

    generator.eval()
    return [
        render(generator, c["frames"][0], norm.apply(c["mfcc"].astype(np.float32)))
        for c in tqdm(clips, desc="generating", disable=not progress, leave=False)
    ]


@torch.no_grad()
def classifier_presence(classifier: nn.Module, frames: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """AU presence (T,A) 0/1 from the AU classifier on the lower half of uint8 crops (T,S,S,3)."""
    from autalk.stages import lower_to_tensor

    classifier.eval()
    dev = next(classifier.parameters()).device
    lower = lower_to_tensor(frames[:, frames.shape[1] // 2 :]).to(dev)
    return (torch.sigmoid(classifier(lower)) > threshold).cpu().numpy().astype(np.uint8)


def landmark_detector(cache: str | os.PathLike[str]) -> Any:
    """The cache's fitted landmark AU detector (au_detector.json), else the hand-set rules."""
    from autalk import au

    p = Path(cache) / "au_detector.json"
    return au.AUDetector.load(p) if p.is_file() else au.default_detector()


def score_clips(
    fakes: Sequence[np.ndarray],
    clips: Sequence[dict[str, Any]],
    detector: Any,
    classifier: nn.Module | None,
    name: str,
    progress: bool = True,
    real_landmarks: Sequence[np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    """One metrics row per clip (``metrics.clip_metrics``) with the method's name and the clip's ids."""
    from tqdm.auto import tqdm

    rows = []
    for i, (fake, c) in enumerate(
        tqdm(list(zip(fakes, clips, strict=True)), desc=f"scoring {name}", disable=not progress, leave=False)
    ):
        lf = metrics.crop_landmarks(fake)
        lr = metrics.crop_landmarks(c["frames"]) if real_landmarks is None else real_landmarks[i]
        det = detector.predict(lf, neutral=lr[0])[1] if detector is not None else None
        cls = classifier_presence(classifier, fake) if classifier is not None else None
        row = metrics.clip_metrics(fake, c["frames"], lr, c["au"], det, cls, fake_landmarks=lf)
        row["opening_fake_std"] = float(np.std(metrics.mouth_opening(lf)))  # how much the mouth moves (px)
        rows.append({"method": name, "speaker": c["speaker"], "clip_id": c["clip_id"], **row})
    return rows


def pooled_au(fakes_presence: Sequence[np.ndarray], clips: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """AU F1 / accuracy over all frames of all clips stacked (the paper's Table 1/5 way)."""
    pred = np.concatenate(fakes_presence)
    true = np.concatenate([c["au"] for c in clips])
    return metrics.au_scores(pred, true)


def summary_rows(rows: Sequence[dict[str, Any]], keys: Sequence[str] = SUMMARY_KEYS) -> list[dict[str, Any]]:
    """Per method and metric: mean over clips with a bootstrap 95% confidence interval."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        for s in metrics.summarise(mine, [k for k in keys if k in mine[0]]):
            out.append({"method": method, **s})
    return out


def evaluate_generator(
    generator: nn.Module,
    norm: NormStats,
    cache: str | os.PathLike[str],
    split: str = "test",
    classifier: nn.Module | None = None,
    max_clips: int = 0,
    name: str = "ours",
    references: bool = True,
    progress: bool = True,
    clips: Sequence[dict[str, Any]] | None = None,
    cache_real: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Generate and score every clip of ``split``; with ``references`` also the copy-identity and
    ground-truth rows. Returns {"rows", "summary", "fakes", "clips"}. ``cache_real`` (a dict) keeps the
    real clips' landmarks between calls (several generators scored on the same clips)."""
    clips = list(clips) if clips is not None else load_split(cache, split, max_clips)
    detector = landmark_detector(cache)
    memo = cache_real if cache_real is not None else {}
    if "landmarks" not in memo:
        memo["landmarks"] = [metrics.crop_landmarks(c["frames"]) for c in clips]
    real_lm = memo["landmarks"]
    fakes = generate_split(generator, norm, clips, progress)
    rows = score_clips(fakes, clips, detector, classifier, name, progress, real_lm)
    if references:
        for ref, make in _reference_makers().items():
            rows += score_clips([make(c) for c in clips], clips, detector, classifier, ref, progress, real_lm)
    return {"rows": rows, "summary": summary_rows(rows), "fakes": fakes, "clips": clips}


def _reference_makers() -> dict[str, Callable[[dict[str, Any]], np.ndarray]]:
    return {
        "copy_identity": lambda c: np.repeat(c["frames"][:1], len(c["frames"]), 0),
        "ground_truth": lambda c: c["frames"],
    }


def evaluate_run(
    run: str | os.PathLike[str],
    split: str = "test",
    checkpoint: str | os.PathLike[str] | None = None,
    max_clips: int = 0,
    device: str = "cpu",
    progress: bool = True,
    out_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """``autalk evaluate``: score the run's generator (default ``04_gan/checkpoint.pt``) on a split and
    write ``<split>_clips.csv`` (one row per clip and method) and ``<split>_summary.csv`` (mean and
    bootstrap 95% CI) beside the checkpoint (or into ``out_dir``)."""
    from autalk.stages import cache_dir, load_generator, load_pretrained, require_stage

    run = Path(run)
    ckpt = Path(checkpoint) if checkpoint else require_stage(run, "04_gan", "checkpoint.pt")
    gen, norm, _ = load_generator(ckpt, device)
    classifier = None
    try:
        classifier, _ = load_pretrained(run, "au_classifier", device=device)
    except FileNotFoundError:
        print("note: no AU classifier (notebook 03) in this run: the au_cls_* columns stay empty")
    res = evaluate_generator(gen, norm, cache_dir(run), split, classifier, max_clips, progress=progress)
    out = Path(out_dir) if out_dir else ckpt.parent / "eval"
    metrics.write_csv(res["rows"], out / f"{split}_clips.csv")
    metrics.write_csv(res["summary"], out / f"{split}_summary.csv")
    res["out_dir"] = out
    return res


def format_summary(summary: Sequence[dict[str, Any]], keys: Sequence[str] = SUMMARY_KEYS) -> str:
    """A plain-text table: one line per method, ``mean [low, high]`` per metric."""
    methods = list(dict.fromkeys(r["method"] for r in summary))
    keys = [k for k in keys if any(r["metric"] == k for r in summary)]
    lines = ["method".ljust(14) + "".join(k.rjust(22) for k in keys)]
    for m in methods:
        cells = []
        for k in keys:
            r = next((r for r in summary if r["method"] == m and r["metric"] == k), None)
            cells.append(
                "n/a"
                if r is None or not np.isfinite(r["mean"])
                else f"{r['mean']:.3f} [{r['ci_low']:.3f},{r['ci_high']:.3f}]"
            )
        lines.append(m.ljust(14) + "".join(c.rjust(22) for c in cells))
    return "\n".join(lines)



def clip_transcript(cache: str | os.PathLike[str], speaker: str, clip_id: str) -> tuple[list, list]:
    """(words, phonemes) of a cached clip from its corpus (``sN/align/<id>.align``, and the teaching
    corpus's ``sN/phonemes/<id>.phn``); empty lists where the corpus has no such file."""
    from autalk.corpus.align import read_align

    root = Path(read_manifest(cache).get("root", ""))
    out = []
    for sub, ext in (("align", "align"), ("phonemes", "phn")):
        p = root / speaker / sub / f"{clip_id}.{ext}"
        out.append(read_align(p) if p.is_file() else [])
    return out[0], out[1]


def clip_audio(cache: str | os.PathLike[str], speaker: str, clip_id: str, sr: int = 25000) -> np.ndarray:
    """The sound of a cached clip, read from the source file its cache entry names (mono, ``sr`` Hz)."""
    from autalk.data.cache import clip_path, read_meta
    from autalk.media import read_audio

    meta = read_meta(clip_path(cache, speaker, clip_id))
    src = meta.get("audio") or meta.get("video")
    if not src or not Path(src).is_file():
        raise FileNotFoundError(f"the source of {speaker}/{clip_id} ({src}) is gone: its sound cannot be "
                                "played; rebuild the corpus (notebook 00) or point to the real corpus")
    return read_audio(src, sr=sr)


def render_samples(generator: nn.Module, norm: NormStats, clips: Sequence[dict[str, Any]],
                   frame: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(identity, real, generated) (N,S,S,3) uint8: one frame (default: the middle) of each clip."""
    fakes = generate_split(generator, norm, clips, progress=False)
    pick = [frame if frame is not None else len(c["frames"]) // 2 for c in clips]
    ident = np.stack([c["frames"][0] for c in clips])
    real = np.stack([c["frames"][k] for c, k in zip(clips, pick, strict=True)])
    fake = np.stack([f[k] for f, k in zip(fakes, pick, strict=True)])
    return ident, real, fake
