"""Audio features of the paper (section 4.1, appendix A.1): 12 MFCCs at 100 Hz, one 280 ms window per
video frame, and per-coefficient normalisation statistics from the training speakers.

Choices the paper leaves open, fixed here for every corpus:

* **Sample rate 16 kHz.** GRID (25/50 kHz wav, 44.1 kHz in the .mpg), TCD-TIMIT and the teaching corpus
  are all resampled to 16 kHz before analysis, so the mel filters cover 0-8 kHz everywhere.
* **Frames:** 25 ms Hann window (``n_fft = win_length = 400`` samples), 10 ms hop (160 samples), 40 mel
  bands, 13 cepstral coefficients from librosa of which c0 (the log-energy term) is dropped: 12 remain.
* **Timing:** MFCC step ``n`` is centred at ``(n + 0.5) * 10 ms`` (the signal is zero-padded by 7.5 ms on
  the left), so a clip of ``D`` seconds gives ``floor(D * 100)`` steps (3 s -> 300) and the steps tile the
  clip exactly like the video frames do (frame ``k`` at 25 fps spans steps ``4k .. 4k+3``).
* **Windows:** video frame ``k`` is centred at ``(k + 0.5) / fps``; its window holds the 28 steps (280 ms)
  whose centres lie within +-140 ms of it, i.e. steps ``4k - 12 .. 4k + 15`` at 25 fps. The frame centre
  falls between window columns 13 and 14. Near the clip borders the missing steps are **edge-padded**
  (the first / last MFCC column repeated), as is a short tail when the audio ends before the video.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autalk.fsutil import atomic_write_json

SAMPLE_RATE = 16000  # every corpus is resampled to this before MFCC extraction
HOP_MS = 10.0  # 100 MFCC steps per second
WIN_MS = 25.0  # analysis window (n_fft) length
N_MELS = 40
N_MFCC = 12  # after dropping c0
MFCC_RATE = 1000.0 / HOP_MS  # steps per second (100)
WINDOW_MS = 280  # paper: 280 ms of audio per video frame
WINDOW_STEPS = int(round(WINDOW_MS / HOP_MS))  # 28


def mfcc(audio: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """12 MFCCs (c1..c12, energy c0 dropped) at 100 Hz: ``(12, N)`` float32, ``N = len(audio) // hop``.

    Step ``n`` is centred at ``(n + 0.5)`` hops. ``sr`` should be :data:`SAMPLE_RATE` (16 kHz); other
    rates work (hop 10 ms, window 25 ms in samples) but give other mel ranges, so the corpus loaders
    always resample to 16 kHz.
    """
    import librosa

    y = np.asarray(audio, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"audio must be mono 1-D, got shape {y.shape}")
    hop = int(round(sr * HOP_MS / 1000))
    n_fft = int(round(sr * WIN_MS / 1000))
    n_steps = len(y) // hop
    if n_steps < 1:
        raise ValueError(f"audio too short for one MFCC step: {len(y)} samples at {sr} Hz")
    left = n_fft // 2 - hop // 2  # centre of frame n = n*hop - left + n_fft/2 = (n + 0.5) * hop
    need = (n_steps - 1) * hop + n_fft  # padded length so that frame n_steps-1 fits
    right = max(0, need - left - len(y))
    y = np.pad(y, (left, right))
    m = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=N_MFCC + 1, n_fft=n_fft, hop_length=hop, win_length=n_fft,
                             window="hann", center=False, n_mels=N_MELS, fmin=0.0, fmax=sr / 2)
    return np.ascontiguousarray(m[1:, :n_steps], dtype=np.float32)


def window_starts(n_frames: int, fps: float = 25.0, window_ms: float = WINDOW_MS,
                  rate: float = MFCC_RATE) -> np.ndarray:
    """First MFCC step of each video frame's window (may be negative or run past the end: edge-padded)."""
    steps = int(round(window_ms * rate / 1000))
    centres = (np.arange(n_frames) + 0.5) / fps * rate  # frame centre in MFCC-step units
    return np.round(centres - steps / 2).astype(np.int64)


def mfcc_windows(m: np.ndarray, n_frames: int, fps: float = 25.0, window_ms: float = WINDOW_MS,
                 rate: float = MFCC_RATE) -> np.ndarray:
    """One window of ``window_ms`` per video frame, centred on the frame: ``(T, 12, 28)`` float32.

    ``m`` is ``(12, N)`` from :func:`mfcc`. Steps before the first / after the last column are filled
    with the first / last column (edge padding, see the module docstring).
    """
    m = np.asarray(m)
    if m.ndim != 2 or m.shape[1] == 0:
        raise ValueError(f"mfcc must be (n_coeff, N) with N > 0, got {m.shape}")
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    steps = int(round(window_ms * rate / 1000))
    idx = window_starts(n_frames, fps, window_ms, rate)[:, None] + np.arange(steps)[None, :]
    idx = np.clip(idx, 0, m.shape[1] - 1)
    return np.ascontiguousarray(m[:, idx].transpose(1, 0, 2), dtype=np.float32)  # (T, C, W)


@dataclass
class NormStats:
    """Per-coefficient mean and standard deviation of the MFCCs (from the training speakers only)."""

    mean: np.ndarray  # (12,)
    std: np.ndarray  # (12,)
    n_steps: int = 0  # MFCC steps the statistics were computed from
    speakers: list[str] = field(default_factory=list)  # the speakers they came from (training split)

    @classmethod
    def from_mfccs(cls, mfccs: Iterable[np.ndarray], speakers: Iterable[str] = ()) -> NormStats:
        """Statistics over every step of every ``(12, N)`` array (float64 sums; std floored at 1e-6)."""
        total = None
        sq = None
        n = 0
        for m in mfccs:
            m = np.asarray(m, dtype=np.float64)
            if m.ndim != 2:
                raise ValueError(f"expected (n_coeff, N) MFCC arrays, got {m.shape}")
            total = m.sum(axis=1) if total is None else total + m.sum(axis=1)
            sq = (m**2).sum(axis=1) if sq is None else sq + (m**2).sum(axis=1)
            n += m.shape[1]
        if n == 0 or total is None or sq is None:
            raise ValueError("no MFCC steps to compute normalisation statistics from (empty training split?)")
        mean = total / n
        var = np.maximum(sq / n - mean**2, 0.0)
        std = np.maximum(np.sqrt(var), 1e-6)
        return cls(mean.astype(np.float32), std.astype(np.float32), n, sorted(set(speakers)))

    def apply(self, x: np.ndarray):
        """Normalise MFCCs whose coefficient axis is the second last: ``(12, N)``, ``(T, 12, 28)``,
        ``(B, T, 12, 28)``; works on numpy arrays and torch tensors alike."""
        if x.shape[-2] != self.mean.shape[0]:
            raise ValueError(f"expected {self.mean.shape[0]} coefficients on axis -2, "
                             f"got shape {tuple(x.shape)}")
        mean, std = self.mean[:, None], self.std[:, None]
        if not isinstance(x, np.ndarray):  # torch tensor
            import torch

            mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device)
            std = torch.as_tensor(std, dtype=x.dtype, device=x.device)
        return (x - mean) / std

    def to_dict(self) -> dict:
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std],
                "n_steps": int(self.n_steps), "speakers": list(self.speakers),
                "features": f"{N_MFCC} MFCCs (c0 dropped), {SAMPLE_RATE} Hz, hop {HOP_MS} ms, "
                             f"win {WIN_MS} ms"}

    @classmethod
    def from_dict(cls, d: dict) -> NormStats:
        return cls(np.asarray(d["mean"], dtype=np.float32), np.asarray(d["std"], dtype=np.float32),
                   int(d.get("n_steps", 0)), list(d.get("speakers", [])))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write as JSON (atomically: temp file then rename)."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NormStats:
        return cls.from_dict(json.loads(Path(path).read_text()))
