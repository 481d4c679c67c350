"""Our lip-sync expert and the LSE-D / LSE-C metrics (REFERENCE.md, "Metrics").

**Our sync expert, not the public SyncNet weights.** Those weights cannot be downloaded here, so this
module trains a SyncNet-style network on the *training speakers* of a profile's own cache
(``runs/<profile>/05_sync_expert/``). LSE numbers measured with it compare methods scored by the same
expert; they are not comparable with published LSE-D / LSE-C values. Every result says so
(:data:`LABEL`).

The network (:class:`SyncNet`, written from the description in Chung & Zisserman, "Out of time", 2016):

* video stream: 5 consecutive frames (0.2 s at 25 fps) of the **lower half** of the face crop, grayscale,
  resized to ``mouth_h x mouth_w`` (so 64 px and 112 px caches both work) and stacked on channels:
  ``(B, 5, H, W)`` in [-1, 1] -> embedding ``(B, E)``. By default (``video_norm="motion"``) the network
  first subtracts the window's mean frame and divides by the window's contrast: it sees how the mouth
  moves, not skin tone, lighting or a renderer's look;
* audio stream: the 20 MFCC steps (0.2 s at 100 Hz) covering the same 5 frames, taken from ``mfcc_raw``
  and normalised per clip (``audio_norm="clip"``, cepstral mean and variance normalisation: each
  coefficient minus the clip's mean, over the clip's std) or with the cache's ``norm.json``
  (``audio_norm="cache"``): ``(B, 12, 20)`` -> embedding ``(B, E)``;
* both embeddings are **L2-normalised**; the **sync distance** is the Euclidean distance between them,
  ``d = ||e_v - e_a||_2`` in [0, 2] (0: in sync; unrelated directions sit near sqrt(2) ~ 1.41). The unit
  sphere fixes the scale of d, so LSE-D of two runs of the same expert can be compared.

Timing (``autalk.audio``: MFCC step n is centred at ``(n + 0.5) * 10 ms``): video window k holds frames
``k .. k+4`` and spans ``[k, k+5) / 25`` s, exactly MFCC steps ``4k .. 4k+19``. At **offset j** video
window k is paired with the audio window of frames ``k+j .. k+j+4`` (steps ``4(k+j) .. 4(k+j)+19``).
A **positive offset means the audio lags the video**: the sound that belongs to video frame k is heard
j frames later (delaying a clip's audio track by 3 frames gives offset +3).

Training (:class:`SyncStage` through ``autalk.train.fit``): the contrastive loss of Hadsell et al. (2006),
``L = mean_pos d^2 + mean_neg max(0, margin - d)^2``; positives are aligned windows, negatives the same
clip's audio shifted by s frames with ``|s|`` in ``[min_shift, max_shift]`` (3..15: shifts of 1-2
frames are almost in sync, since a mouth shape lasts several frames, so they are neither positive nor
negative). Same-clip negatives keep speaker and sentence fixed: only timing tells the pairs apart.

LSE (:func:`lse`): ``D(j)`` = mean over the video windows k of ``d(video_k, audio_{k+j})``, for
``j in [-15, 15]``, over the windows whose shifted audio exists; ``LSE-D = min_j D(j)``,
``LSE-C = median_j D(j) - min_j D(j)`` and ``offset = argmin_j D(j)`` (frames, sign as above).

Why the defaults "motion" and "clip" (``benchmarks/sync.py``: expert trained 2 epochs on the 13
training speakers of the 64 px teaching-corpus cache, scored on the 3 real GRID fixture clips, which it
never saw): with raw frames and ``norm.json`` it told the held-out synthetic speakers apart as well
(sync accuracy 0.85) but barely reacted to real speech (LSE-C 0.07-0.14, offsets -12..-6 frames, one
clip's aligned distance above its shifted mean); with "motion" + "clip" every real clip's aligned
distance is below its shifted mean (0.60-0.71 vs 0.73-0.83), all three are found in sync (offset 0)
and delaying their audio by 3 frames moves every estimate to +3. Real GRID audio and espeak speech
differ by a constant spectral colouring (MFCC means 54 vs 22 on c1), which per-clip normalisation
removes; ``norm.json`` stays in the checkpoint for ``audio_norm="cache"``. A frozen face (one frame
repeated) gets LSE-C ~0.05 against ~0.6 for the real video of the same clip.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from autalk.audio import NormStats
from autalk.data.cache import NORM, load_clip, read_manifest
from autalk.train import METRICS, Stage, TrainConfig, adam, check_finite, fit

LABEL = "our sync expert (trained on this project's training speakers), not the public SyncNet weights"
SYNC_DIR = "05_sync_expert"
CHECKPOINT = "checkpoint.pt"
STAGE_NAME = "sync_expert"
SYNC_FRAMES = 5  # video frames per window (0.2 s at 25 fps)
STEPS_PER_FRAME = 4  # MFCC steps (100 Hz) per video frame (25 fps)
SYNC_STEPS = SYNC_FRAMES * STEPS_PER_FRAME  # 20 MFCC steps per window
MAX_OFFSET = 15  # LSE offsets j in [-15, 15] frames (REFERENCE.md)


# ---- config ----


@dataclass(frozen=True)
class SyncConfig:
    """The sync expert: network sizes, negatives and (last six fields) training. The defaults train in
    a minute or two on 2 CPU cores on the quick cache; profile keys ``sync_*`` override them
    (:meth:`from_params`)."""

    mouth_h: int = 32  # mouth input height (lower half of the crop, resized)
    mouth_w: int = 64  # mouth input width (64 px crops: the lower half as it is)
    embed_dim: int = 128  # embedding size E of both streams
    video_channels: int = 16  # video conv widths c, 2c, 4c, 4c
    audio_channels: int = 64  # audio conv widths a, 2a, 2a
    margin: float = 1.0  # contrastive margin on d in [0, 2]: negatives are pushed past it
    min_shift: int = 3  # negatives: |shift| >= min_shift frames ...
    max_shift: int = 15  # ... and <= max_shift frames
    negatives: int = 2  # off-sync audio windows per positive (the audio stream is cheap)
    augment: bool = True  # random flips (and brightness / contrast: only seen with video_norm "none")
    audio_norm: str = "clip"  # "clip": each clip's own mean / std (CMVN) | "cache": norm.json
    video_norm: str = "motion"  # "motion": minus the window's mean frame | "window": standardised | "none"
    epochs: int = 2  # passes over every training window (quick cache: ~28k windows, 433 steps each)
    batch_size: int = 64  # video windows per step
    lr: float = 1e-3  # Adam learning rate (betas 0.9, 0.999)
    lr_decay: str = "cosine"  # "none" | "cosine" over the whole run
    seed: int = 0
    max_batches: int = 0  # steps per epoch cap (0 = the whole epoch; smoke runs)

    def __post_init__(self) -> None:
        for name in ("mouth_h", "mouth_w", "embed_dim", "video_channels", "audio_channels", "negatives"):
            if getattr(self, name) < 1:
                raise ValueError(f"SyncConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 1 <= self.min_shift <= self.max_shift:
            raise ValueError(f"need 1 <= min_shift <= max_shift, got {self.min_shift}, {self.max_shift}")
        if self.audio_norm not in ("cache", "clip"):
            raise ValueError(f"audio_norm must be 'cache' or 'clip', got {self.audio_norm!r}")
        if self.video_norm not in ("none", "window", "motion"):
            raise ValueError(f"video_norm must be 'none', 'window' or 'motion', got {self.video_norm!r}")
        if not 0 < self.margin <= 2:
            raise ValueError(f"margin must be in (0, 2] (distances of unit vectors), got {self.margin}")

    @classmethod
    def from_params(cls, p: dict[str, Any], **overrides: Any) -> SyncConfig:
        """From a profile's flat keys (``sync_epochs``, ``sync_batch``, ``sync_lr``, ... ; absent keys keep
        the defaults) and keyword overrides."""
        keys = {"epochs": "sync_epochs", "batch_size": "sync_batch", "lr": "sync_lr",
                "lr_decay": "sync_lr_decay", "video_channels": "sync_video_channels",
                "embed_dim": "sync_embed_dim", "margin": "sync_margin", "negatives": "sync_negatives",
                "seed": "seed", "max_batches": "max_batches"}
        types = {f.name: type(f.default) for f in fields(cls)}
        got = {name: types[name](p[key]) for name, key in keys.items() if p.get(key) is not None}
        return cls(**{**got, **overrides})

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, beta1=0.9,
                           seed=self.seed, lr_decay=self.lr_decay, max_batches=self.max_batches)

    def network(self) -> dict[str, Any]:
        """The fields that define the network and its data (saved as ``config["sync"]``); the training
        fields go to ``config["train"]`` so that a finished run can be extended (more epochs)."""
        train = {"epochs", "batch_size", "lr", "lr_decay", "seed", "max_batches"}
        return {k: v for k, v in asdict(self).items() if k not in train}


# ---- inputs ----


def mouth_crops(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(T, S, S, 3)`` uint8 RGB face crops -> ``(T, H, W)`` uint8 grayscale lower halves, resized to
    ``size = (H, W)``. Works on real and generated frames alike."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, S, S, 3) uint8 RGB face crops, got {frames.shape} "
                         f"{frames.dtype}")
    import cv2

    h, w = size
    s = frames.shape[1]
    lower = frames[:, s // 2 :]
    # Shrinking averages pixels (no aliasing); enlarging (32 px test caches) interpolates.
    interp = cv2.INTER_AREA if lower.shape[1] >= h else cv2.INTER_LINEAR
    out = np.empty((len(frames), h, w), np.uint8)
    for t, img in enumerate(lower):
        out[t] = cv2.resize(cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY), (w, h),
                            interpolation=interp)
    return out


def normalise_mfcc(mfcc_raw: np.ndarray, norm: NormStats | None, mode: str = "cache") -> np.ndarray:
    """``(12, N)`` raw MFCCs -> normalised float32: with the training speakers' ``norm`` ("cache") or
    with the clip's own per-coefficient mean and std ("clip": cepstral mean and variance normalisation,
    which removes a recording channel's constant colouring, e.g. synthetic vs real speech)."""
    m = np.asarray(mfcc_raw, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"mfcc_raw must be (12, N) MFCCs at 100 Hz, got shape {m.shape}")
    if mode == "clip":
        return ((m - m.mean(1, keepdims=True)) / np.maximum(m.std(1, keepdims=True), 1e-3)).astype(np.float32)
    if norm is None:
        raise ValueError("pass the MFCC normalisation (norm.json of the cache the expert was trained on)")
    return norm.apply(m).astype(np.float32)


def to_unit_range(x: np.ndarray) -> Tensor:
    """uint8 -> float32 tensor in [-1, 1]."""
    return torch.from_numpy(x.astype(np.float32) / 127.5 - 1.0)


def n_audio_windows(n_steps: int) -> int:
    """Audio windows (start frames 0, 1, ...) that fit in ``n_steps`` MFCC steps."""
    return max(0, (n_steps - SYNC_STEPS) // STEPS_PER_FRAME + 1)


def gather_video(mouth: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``(T, H, W)`` mouths, window start frames ``(B,)`` -> ``(B, 5, H, W)``."""
    return mouth[starts[:, None] + np.arange(SYNC_FRAMES)[None, :]]


def gather_audio(mfcc: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``(12, N)`` normalised MFCCs, window start *frames* ``(...,)`` -> ``(..., 12, 20)``."""
    steps = STEPS_PER_FRAME * starts[..., None] + np.arange(SYNC_STEPS)  # (..., 20)
    return np.moveaxis(mfcc[:, steps], 0, -2)  # (12, ..., 20) -> (..., 12, 20)


# ---- network ----


def _conv2d(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))


def _conv1d(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm1d(cout), nn.ReLU(True))


class VideoEncoder(nn.Module):
    """``(B, 5, H, W)`` stacked grayscale mouths -> ``(B, E)`` (not normalised)."""

    def __init__(self, cfg: SyncConfig) -> None:
        super().__init__()
        c = cfg.video_channels
        self.norm = cfg.video_norm
        self.convs = nn.Sequential(_conv2d(SYNC_FRAMES, c, 2), _conv2d(c, 2 * c, 2), _conv2d(2 * c, 4 * c, 2),
                                   _conv2d(4 * c, 4 * c, 1))
        h, w = math.ceil(cfg.mouth_h / 8), math.ceil(cfg.mouth_w / 8)
        # Flatten rather than pool: the crops are aligned, so where a change happens (lips vs chin) matters.
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * c * h * w, 256), nn.ReLU(True),
                                  nn.Linear(256, cfg.embed_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.convs(standardise_window(x, self.norm)))


def standardise_window(x: Tensor, mode: str) -> Tensor:
    """``(B, 5, H, W)`` -> the same, per ``SyncConfig.video_norm``: "window" removes each window's
    brightness and contrast; "motion" keeps only what changes (minus the window's mean frame), in units
    of the window's contrast, so a still mouth gives zeros and lighting or skin tone does not matter."""
    if mode == "none":
        return x
    std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-2)
    if mode == "motion":
        return (x - x.mean(1, keepdim=True)) / std
    return (x - x.mean(dim=(1, 2, 3), keepdim=True)) / std


class AudioEncoder(nn.Module):
    """``(B, 12, 20)`` normalised MFCCs -> ``(B, E)`` (not normalised); 1-D convolutions over time."""

    def __init__(self, cfg: SyncConfig, n_mfcc: int = 12) -> None:
        super().__init__()
        a = cfg.audio_channels
        self.convs = nn.Sequential(_conv1d(n_mfcc, a, 1), _conv1d(a, 2 * a, 2), _conv1d(2 * a, 2 * a, 2))
        steps = math.ceil(SYNC_STEPS / 4)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * a * steps, 256), nn.ReLU(True),
                                  nn.Linear(256, cfg.embed_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.convs(x))


class SyncModel(Protocol):
    """What :func:`lse` needs: the mouth size and two embedding functions (real or fake models)."""

    mouth_size: tuple[int, int]
    audio_norm: str  # "cache" or "clip" (normalise_mfcc)

    def embed_video(self, video: Tensor) -> Tensor: ...

    def embed_audio(self, audio: Tensor) -> Tensor: ...


class SyncNet(nn.Module):
    """The two streams; ``embed_*`` return L2-normalised embeddings. ``norm`` (the MFCC normalisation
    it was trained with) is set by :func:`load_sync_expert` and used by :func:`lse` by default."""

    def __init__(self, cfg: SyncConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.video = VideoEncoder(cfg)
        self.audio = AudioEncoder(cfg)
        self.norm: NormStats | None = None
        self.label = LABEL

    @property
    def mouth_size(self) -> tuple[int, int]:
        return (self.cfg.mouth_h, self.cfg.mouth_w)

    @property
    def audio_norm(self) -> str:
        return self.cfg.audio_norm

    def embed_video(self, video: Tensor) -> Tensor:
        return F.normalize(self.video(video), dim=-1)

    def embed_audio(self, audio: Tensor) -> Tensor:
        return F.normalize(self.audio(audio), dim=-1)

    def forward(self, video: Tensor, audio: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, 5, H, W)``, ``(B', 12, 20)`` -> unit embeddings ``(B, E)``, ``(B', E)`` (one call, so
        DistributedDataParallel sees both streams)."""
        return self.embed_video(video), self.embed_audio(audio)


def sq_distance(a: Tensor, b: Tensor) -> Tensor:
    """Squared Euclidean distance over the last axis (broadcasting)."""
    return (a - b).pow(2).sum(-1)


def sync_distance(a: Tensor, b: Tensor) -> Tensor:
    """The sync distance: Euclidean distance over the last axis (the floor keeps sqrt's gradient finite
    at 0)."""
    return sq_distance(a, b).clamp_min(1e-12).sqrt()


def contrastive_loss(video: Tensor, audio_pos: Tensor, audio_neg: Tensor, margin: float) -> dict[str, Tensor]:
    """Hadsell et al.'s contrastive loss on embeddings: video ``(B, E)``, aligned audio ``(B, E)``,
    off-sync audio ``(B, K, E)``. ``L_pos = mean d_pos^2``, ``L_neg = mean max(0, margin - d_neg)^2``,
    ``L_sync = L_pos + L_neg`` (each averaged on its own, so K negatives weigh as much as 1 positive)."""
    pos = sq_distance(video, audio_pos).mean()
    neg = F.relu(margin - sync_distance(video[:, None], audio_neg)).pow(2).mean()
    return {"L_sync": pos + neg, "L_pos": pos, "L_neg": neg}


# ---- data ----


class SyncWindows(Dataset):
    """Every 5-frame window of one split, in memory: grayscale mouths and normalised ``mfcc_raw``.

    ``ds[[i, j, ...]]`` -> a batch dict: ``video`` (B,5,H,W) in [-1,1], ``audio`` (B,12,20) aligned,
    ``audio_neg`` (B,K,12,20) the same clip's audio shifted by ``shift`` (B,K) frames,
    ``min_shift <= |shift| <= max_shift``. Shifts (and augmentations) are drawn from numpy's global RNG,
    which ``autalk.train.fit`` reseeds every epoch, so a resumed run draws the same ones."""

    def __init__(self, cache: str | os.PathLike[str], split: str, cfg: SyncConfig, augment: bool = False,
                 norm: NormStats | None = None) -> None:
        self.cache, self.cfg, self.split, self.augment = Path(cache), cfg, split, augment
        self.norm = norm if norm is not None else NormStats.load(self.cache / NORM)
        clips = [c for c in read_manifest(self.cache)["clips"] if c["split"] == split]
        mouths, audios, rows, n_audio, kept = [], [], [], [], []
        v_off = a_off = 0
        for c in clips:
            d = load_clip(self.cache / c["path"], keys=["frames", "mfcc_raw"])
            m = mouth_crops(d["frames"], (cfg.mouth_h, cfg.mouth_w))
            a = normalise_mfcc(d["mfcc_raw"], self.norm, cfg.audio_norm)
            n_win = min(len(m) - SYNC_FRAMES + 1, n_audio_windows(a.shape[1]))
            if n_win <= cfg.min_shift:  # no off-sync negative fits in this clip
                continue
            k = np.arange(n_win)
            rows.append(np.stack([np.full(n_win, len(kept)), k, v_off + k, np.full(n_win, a_off)], 1))
            mouths.append(m)
            audios.append(a)
            n_audio.append(n_audio_windows(a.shape[1]))
            kept.append(c)
            v_off += len(m)
            a_off += a.shape[1]
        if not kept:
            raise ValueError(f"{self.cache}: the {split!r} split has no clip of at least "
                             f"{SYNC_FRAMES + cfg.min_shift} frames with its audio")
        self.clips = kept
        self.mouth = np.concatenate(mouths)  # (sum T, H, W) uint8
        self.mfcc = np.concatenate(audios, axis=1)  # (12, sum N) normalised
        self.rows = np.concatenate(rows)  # (N_windows, 4): clip, start frame, video row, audio column offset
        self.n_audio = np.asarray(n_audio)  # audio windows per clip
        self.shifts = np.array([*range(-cfg.max_shift, -cfg.min_shift + 1), *range(cfg.min_shift,
                                                                                    cfg.max_shift + 1)])

    def __len__(self) -> int:
        return len(self.rows)

    def draw_shifts(self, clip: np.ndarray, start: np.ndarray) -> np.ndarray:
        """``(B, K)`` off-sync shifts, uniform over those whose audio window lies inside the clip."""
        target = start[:, None] + self.shifts[None, :]  # (B, C) candidate audio start frames
        valid = (target >= 0) & (target < self.n_audio[clip][:, None])
        count = np.cumsum(valid, axis=1)  # (B, C)
        pick = np.floor(np.random.random((len(start), self.cfg.negatives)) * count[:, -1:]).astype(int)
        idx = (count[:, None, :] <= pick[:, :, None]).sum(-1)  # the (pick+1)-th valid candidate
        return self.shifts[idx]

    def __getitem__(self, idx: list[int] | int) -> dict[str, Tensor]:
        rows = self.rows[[idx] if isinstance(idx, int) else list(idx)]
        clip, start, vrow, aoff = rows.T
        shift = self.draw_shifts(clip, start)
        video = to_unit_range(gather_video(self.mouth, vrow))  # (B, 5, H, W)
        # Audio windows are gathered from the concatenated array: column offset + clip-local steps.
        pos = self._audio(aoff, start)  # (B, 12, 20)
        neg = self._audio(aoff[:, None], start[:, None] + shift)  # (B, K, 12, 20)
        if self.augment:
            video = augment_mouths(video)
        return {"video": video, "audio": torch.from_numpy(pos), "audio_neg": torch.from_numpy(neg),
                "shift": torch.from_numpy(shift)}

    def _audio(self, offset: np.ndarray, start: np.ndarray) -> np.ndarray:
        steps = offset[..., None] + STEPS_PER_FRAME * start[..., None] + np.arange(SYNC_STEPS)
        return np.ascontiguousarray(np.moveaxis(self.mfcc[:, steps], 0, -2))


def augment_mouths(video: Tensor) -> Tensor:
    """Random horizontal flips and brightness / contrast changes per window (all 5 frames alike): what
    lips do in time matters, not the skin tone or lighting. ``(B, 5, H, W)`` in [-1, 1]."""
    b = video.shape[0]
    rng = np.random
    flip = torch.from_numpy(rng.random(b) < 0.5)
    video = torch.where(flip[:, None, None, None], video.flip(-1), video)
    contrast = torch.from_numpy(rng.uniform(0.7, 1.3, b).astype(np.float32))[:, None, None, None]
    bright = torch.from_numpy(rng.uniform(-0.2, 0.2, b).astype(np.float32))[:, None, None, None]
    mean = video.mean(dim=(1, 2, 3), keepdim=True)
    return ((video - mean) * contrast + mean + bright).clamp(-1, 1)


# ---- training ----


def _data_fingerprint(cache: Path) -> dict[str, Any]:
    m = read_manifest(cache)
    return {"train_speakers": m["splits"]["train"], "test_speakers": m["splits"]["test"],
            "n_clips": m["n_clips"], "image_size": m.get("image_size")}


class SyncStage(Stage):
    """The sync expert as a stage of ``autalk.train.fit``: :class:`SyncNet` on the training speakers'
    windows of a cache, under :func:`contrastive_loss` with same-clip off-sync negatives."""

    name = STAGE_NAME

    def __init__(self, cache: str | os.PathLike[str], cfg: SyncConfig, device: str = "cpu") -> None:
        super().__init__()
        self.cache = Path(cache)
        if not (self.cache / "manifest.json").is_file():
            from autalk.profiles import MissingStageError

            raise MissingStageError(f"{self.cache / 'manifest.json'} not found: preprocess the corpus first "
                                    "(notebooks/01_preprocessing.ipynb or `autalk preprocess`)")
        self.cfg, self.device = cfg, device
        self.train_cfg = cfg.train_config()
        self.model = SyncNet(cfg).to(device)
        self.modules = {"sync": self.model}
        self.optimizers = {"sync": adam(self.model.parameters(), self.train_cfg)}
        self._data: SyncWindows | None = None

    def config(self) -> dict[str, Any]:
        return {
            "stage": self.name,
            "label": LABEL,
            "sync": self.cfg.network(),
            "train": asdict(self.train_cfg),
            "loss": "contrastive: mean_pos d^2 + mean_neg max(0, margin - d)^2, d = ||e_v - e_a||, unit e",
            "data": _data_fingerprint(self.cache),
        }

    def dataset(self) -> SyncWindows:
        if self._data is None:
            self._data = SyncWindows(self.cache, "train", self.cfg, augment=self.cfg.augment)
        return self._data

    def train_step(self, batch: dict[str, Any], epoch: int) -> dict[str, Tensor]:
        self.model.train()
        neg = batch["audio_neg"]  # (B, K, 12, 20)
        b, k = neg.shape[:2]
        audio = torch.cat([batch["audio"], neg.flatten(0, 1)])  # (B + B*K, 12, 20): one pass, one BN batch
        ev, ea = self.nets.get("sync", self.model)(batch["video"], audio)
        terms = contrastive_loss(ev, ea[:b], ea[b:].view(b, k, -1), self.cfg.margin)
        check_finite(terms)
        opt = self.optimizers["sync"]
        opt.zero_grad(set_to_none=True)
        terms["L_sync"].backward()
        opt.step()
        with torch.no_grad():  # share of negatives already farther than their positive (train batch)
            d_pos = sync_distance(ev, ea[:b])
            d_neg = sync_distance(ev[:, None], ea[b:].view(b, k, -1))
            terms["pair_acc"] = (d_neg > d_pos[:, None]).float().mean()
        return {n: v.detach() for n, v in terms.items()}

    def frames_in(self, batch: dict[str, Any]) -> int:
        return int(batch["video"].shape[0]) * SYNC_FRAMES

    def extra(self) -> dict[str, Any]:
        return {"mfcc_norm": NormStats.load(self.cache / NORM).to_dict(), "label": LABEL}


def train_sync_expert(
    run: str | os.PathLike[str],
    params: dict[str, Any] | None = None,
    device: str = "cpu",
    progress: bool = True,
    resume: bool = True,
    cfg: SyncConfig | None = None,
    dist: Any = None,
    eval_clips: int = 0,
) -> dict[str, Any]:
    """Train our sync expert on the TRAINING speakers of ``run/01_preprocess`` into ``run/05_sync_expert``
    (checkpoint.pt, log.csv, tb/ via ``autalk.train.fit``) and write ``metrics.json``: how well it tells
    sync from off-sync on the TEST speakers (:func:`evaluate_sync`). ``cfg`` (else the profile's
    ``sync_*`` keys, else the defaults) says what to train; ``eval_clips`` > 0 scores only that many
    test clips. Returns the metrics."""
    from autalk.fsutil import atomic_write_json
    from autalk.train import Dist

    d = dist or Dist()
    run = Path(run)
    cfg = cfg or SyncConfig.from_params(params or {})
    stage = SyncStage(run / "01_preprocess", cfg, device)
    out = run / SYNC_DIR
    res = fit(stage, out, resume=resume, progress=progress, dist=d)
    if not d.main:
        return {}
    t0 = time.perf_counter()
    cache = run / "01_preprocess"
    stage.model.norm = NormStats.load(cache / NORM)
    metrics = evaluate_sync(stage.model.eval(), cache, "test", max_clips=eval_clips)
    metrics.update({
        "stage": STAGE_NAME, "epochs": cfg.epochs, "config": asdict(cfg),
        "train_speakers": read_manifest(cache)["splits"]["train"],
        "train_seconds_this_call": res.seconds,
        "train_seconds_total": sum(h["seconds"] for h in res.history),
        "eval_seconds": time.perf_counter() - t0,
        "last_epoch": res.history[-1] if res.history else {},
        "device": device, "threads": torch.get_num_threads(),
    })
    atomic_write_json(out / METRICS, metrics)
    return metrics


def _checkpoint_path(run_or_path: str | os.PathLike[str]) -> Path:
    p = Path(run_or_path)
    for cand in (p, p / CHECKPOINT, p / SYNC_DIR / CHECKPOINT):
        if cand.is_file():
            return cand
    from autalk.profiles import MissingStageError

    raise MissingStageError(f"no sync expert checkpoint at {p} (nor {p / CHECKPOINT}, "
                            f"{p / SYNC_DIR / CHECKPOINT}): train it first with "
                            "autalk.sync.train_sync_expert(run, params)")


def load_sync_expert(run_or_path: str | os.PathLike[str], device: str = "cpu") -> SyncNet:
    """Our trained sync expert in eval mode, with its MFCC normalisation as ``.norm``. Accepts a run
    folder (``runs/quick``), its ``05_sync_expert`` folder or the checkpoint file."""
    from autalk.checkpoint import CheckpointError, load_checkpoint

    path = _checkpoint_path(run_or_path)
    ck = load_checkpoint(path)
    if ck.config.get("stage") != STAGE_NAME:
        raise CheckpointError(f"{path} is an autalk checkpoint of stage {ck.config.get('stage')!r}, not the "
                              f"sync expert: pass runs/<profile>/{SYNC_DIR}")
    model = SyncNet(SyncConfig(**ck.config["sync"]))
    load_checkpoint(path, modules={"sync": model})
    model.norm = NormStats.from_dict(ck.extra["mfcc_norm"])
    if not ck.extra.get("complete", False):
        print(f"note: {path} is from an unfinished run (epoch {ck.extra.get('epoch', 0) + 1} of "
              f"{ck.extra.get('epochs')})")
    return model.to(device).eval()


# ---- LSE-D / LSE-C ----


def _embed(fn: Any, x: np.ndarray | Tensor, device: str, chunk: int = 256) -> Tensor:
    x = torch.as_tensor(x)
    return torch.cat([fn(x[i : i + chunk].to(device)).float().cpu() for i in range(0, len(x), chunk)])


def _device_of(model: Any) -> str:
    try:
        return str(next(model.parameters()).device)
    except (AttributeError, StopIteration):
        return "cpu"


@torch.no_grad()
def window_distances(model: SyncModel, frames: np.ndarray, mfcc_raw: np.ndarray,
                     norm: NormStats | None = None, max_offset: int = MAX_OFFSET) -> np.ndarray:
    """``(n_windows, 2 * max_offset + 1)`` sync distances: row k = video window k (frames k..k+4),
    column ``j + max_offset`` = the audio window at offset j (frames k+j..k+j+4); NaN where that audio
    window lies outside the clip's audio. ``frames`` (T,S,S,3) uint8 crops (real or generated),
    ``mfcc_raw`` (12, N) raw MFCCs at 100 Hz of the clip's audio, ``norm`` the MFCC normalisation
    (default: the model's own; unused by an expert that normalises per clip)."""
    norm = norm if norm is not None else getattr(model, "norm", None)
    mfcc = normalise_mfcc(mfcc_raw, norm, model.audio_norm)
    mouth = mouth_crops(frames, model.mouth_size)
    n_video, n_audio = len(mouth) - SYNC_FRAMES + 1, n_audio_windows(mfcc.shape[1])
    if n_video < 1 or n_audio < 1:
        raise ValueError(f"clip too short for one {SYNC_FRAMES}-frame window: {len(mouth)} frames, "
                         f"{mfcc.shape[1]} MFCC steps")
    was_training = isinstance(model, nn.Module) and model.training
    if was_training:  # BatchNorm must use its running statistics, not this clip's
        model.eval()
    try:
        device = _device_of(model)
        ev = _embed(model.embed_video, to_unit_range(gather_video(mouth, np.arange(n_video))), device)
        audio = np.ascontiguousarray(gather_audio(mfcc, np.arange(n_audio)))  # (n_audio, 12, 20)
        ea = _embed(model.embed_audio, audio, device)  # (n_audio, E)
    finally:
        if was_training:
            model.train()
    offsets = np.arange(-max_offset, max_offset + 1)
    target = np.arange(n_video)[:, None] + offsets[None, :]  # (n_video, O) audio window per pair
    valid = (target >= 0) & (target < n_audio)
    d = sync_distance(ev[:, None], ea[torch.from_numpy(np.clip(target, 0, n_audio - 1))]).numpy()
    return np.where(valid, d, np.nan).astype(np.float64)


def lse(model: SyncModel, frames: np.ndarray, mfcc_raw: np.ndarray, norm: NormStats | None = None,
        max_offset: int = MAX_OFFSET) -> dict[str, Any]:
    """LSE-D, LSE-C and the offset estimate of one clip (module doc; :data:`LABEL`: our expert).

    ``D(j)`` = mean over video windows of the sync distance at offset j, j in [-max_offset, max_offset],
    over the windows whose shifted audio exists (a 75-frame clip has 56..71 windows per offset).
    Returns ``lse_d = min D``, ``lse_c = median D - min D``, ``offset = argmin D`` (frames; positive =
    audio lags video), ``dists`` (2*max_offset+1,) = D, ``offsets`` and ``n_windows`` per offset."""
    return lse_from_windows(window_distances(model, frames, mfcc_raw, norm, max_offset))


def lse_from_windows(wd: np.ndarray) -> dict[str, Any]:
    """:func:`lse` from the ``(n_windows, 2 * max_offset + 1)`` table of :func:`window_distances`."""
    max_offset = (wd.shape[1] - 1) // 2
    counts = np.isfinite(wd).sum(0)
    if (counts == 0).any():
        raise ValueError(f"clip too short for offsets +-{max_offset}: every offset needs a window, i.e. at "
                         f"least {SYNC_FRAMES + max_offset} frames with audio (or use a smaller max_offset)")
    dists = np.nansum(wd, 0) / counts
    best = int(np.argmin(dists))
    return {"lse_d": float(dists[best]), "lse_c": float(np.median(dists) - dists[best]),
            "offset": best - max_offset, "dists": dists, "offsets": np.arange(-max_offset, max_offset + 1),
            "n_windows": counts, "label": LABEL}


@torch.no_grad()
def evaluate_sync(model: SyncNet, cache: str | os.PathLike[str], split: str = "test", max_clips: int = 0,
                  max_offset: int = MAX_OFFSET) -> dict[str, Any]:
    """How well the expert tells sync from off-sync on the real clips of ``split`` (of the cache):

    * ``aligned`` / ``shifted``: mean distance at offset 0 / over ``|j|`` in [min_shift, max_shift];
    * ``sync_accuracy``: over every window and off-sync shift, the share where the aligned audio is
      nearer than the shifted one (0.5 = chance);
    * ``offset_accuracy``: share of clips whose offset estimate is within +-1 frame of 0
      (``offset_exact``: exactly 0; chance ~ 3/31 and 1/31);
    * ``lse_d`` / ``lse_c``: the real clips' LSE (the reference a generator is compared with)."""
    model.eval()
    cache = Path(cache)
    norm = model.norm if model.norm is not None else NormStats.load(cache / NORM)
    clips = [c for c in read_manifest(cache)["clips"] if c["split"] == split]
    if not clips:
        raise ValueError(f"{cache}: the {split!r} split has no clips")
    if 0 < max_clips < len(clips):
        clips = [clips[i] for i in np.linspace(0, len(clips) - 1, max_clips).round().astype(int)]
    lo, hi = model.cfg.min_shift, model.cfg.max_shift
    off = np.arange(-max_offset, max_offset + 1)
    far = (np.abs(off) >= lo) & (np.abs(off) <= hi)
    per_clip, wins, losses = [], 0, 0
    for c in clips:
        dat = load_clip(cache / c["path"], keys=["frames", "mfcc_raw"])
        wd = window_distances(model, dat["frames"], dat["mfcc_raw"], norm, max_offset)
        r = lse_from_windows(wd)
        aligned = wd[:, max_offset : max_offset + 1]
        cmp = wd[:, far]
        ok = np.isfinite(cmp) & np.isfinite(aligned)
        wins += int(((aligned < cmp) & ok).sum())
        losses += int(ok.sum())
        per_clip.append({"speaker": c["speaker"], "clip_id": c["clip_id"], "lse_d": r["lse_d"],
                         "lse_c": r["lse_c"], "offset": r["offset"], "aligned": float(r["dists"][max_offset]),
                         "shifted": float(np.mean(r["dists"][far]))})
    offsets = np.array([p["offset"] for p in per_clip])
    mean = {k: float(np.mean([p[k] for p in per_clip])) for k in ("aligned", "shifted", "lse_d", "lse_c")}
    return {
        "label": LABEL,
        "split": split,
        "speakers": sorted({c["speaker"] for c in clips}),
        "n_clips": len(per_clip),
        **mean,
        "sync_accuracy": wins / max(losses, 1),
        "offset_accuracy": float(np.mean(np.abs(offsets) <= 1)),
        "offset_exact": float(np.mean(offsets == 0)),
        "clips_aligned_below_shifted": float(np.mean([p["aligned"] < p["shifted"] for p in per_clip])),
        "shift_range": [lo, hi],
        "clips": per_clip,
    }

