"""``ClipDataset``: training / evaluation samples read from the preprocessing cache.

Each item is a dict of torch tensors (T frames, S image size)::

    identity      (3,S,S)    float32 in [-1,1]  first frame of the clip (paper, appendix A.1)
    frames        (T,3,S,S)  float32 in [-1,1]  ground-truth face crops
    mfcc          (T,12,28)  float32            280 ms MFCC window per frame (normalised if asked)
    au            (T,5)      float32 0/1        AU presence labels (PAPER_AUS order)
    au_intensity  (T,5)      float32 0..5
    start         ()         int64              first frame of the sub-sequence within the clip
    speaker, clip_id         str

``mode="random"``: a random sub-sequence of ``seq_len`` frames per item (clips shorter than
``seq_len`` are left out and listed in ``skipped``); ``len`` is ``samples_per_clip`` x clips.
``mode="whole"``: whole clips in manifest order (their lengths differ: use ``batch_size=1``).

Speed: decompressing a clip costs ~5 ms (75 frames at 64 px), so decoded clips (frames as uint8) are kept
in an LRU memory cache of at most ``cache_bytes`` (per DataLoader worker; ``preload=True`` fills it up
front). ``benchmarks/preprocess.py`` measures the read rate.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from autalk.audio import NormStats
from autalk.data.cache import NORM, load_clip, read_manifest

_KEYS = ("frames", "mfcc", "au_presence", "au_intensity")


class ClipDataset(Dataset):
    def __init__(self, cache_dir: str | os.PathLike[str], split: str = "train", seq_len: int = 16,
                 mode: str = "random", normalize: NormStats | str | os.PathLike[str] | bool | None = None,
                 samples_per_clip: int = 1, cache_bytes: int = 2 * 1024**3,
                 speakers: list[str] | None = None, preload: bool = False) -> None:
        """``normalize``: a :class:`NormStats`, a path to a ``norm.json``, ``True`` for the cache's own
        ``norm.json``, or ``None``/``False`` for raw MFCCs. ``preload``: decompress every clip now (into
        the memory cache, as far as ``cache_bytes`` allows) so the first epoch is as fast as later ones."""
        if mode not in ("random", "whole"):
            raise ValueError(f"mode must be 'random' or 'whole', got {mode!r}")
        if mode == "random" and seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        self.cache_dir = Path(cache_dir)
        self.manifest = read_manifest(self.cache_dir)
        if split not in self.manifest["splits"]:
            raise ValueError(f"unknown split {split!r}; the cache has {sorted(self.manifest['splits'])}")
        self.split, self.seq_len, self.mode = split, int(seq_len), mode
        self.samples_per_clip = max(1, int(samples_per_clip))
        clips = [c for c in self.manifest["clips"] if c["split"] == split
                 and (speakers is None or c["speaker"] in speakers)]
        self.skipped: list[dict[str, Any]] = []
        if mode == "random":
            self.skipped = [c for c in clips if c["n_frames"] < self.seq_len]
            clips = [c for c in clips if c["n_frames"] >= self.seq_len]
        self.clips = clips
        if normalize is True:
            normalize = self.cache_dir / NORM
        if isinstance(normalize, (str, os.PathLike)):
            normalize = NormStats.load(normalize)
        self.norm: NormStats | None = normalize or None
        self.cache_bytes = int(cache_bytes)
        self._lru: OrderedDict[int, dict[str, torch.Tensor]] = OrderedDict()
        self._lru_bytes = 0
        if preload:
            for i in range(len(self.clips)):
                self._clip(i)

    def __len__(self) -> int:
        return len(self.clips) * (self.samples_per_clip if self.mode == "random" else 1)

    @property
    def n_frames(self) -> int:
        """Frames in the clips of this dataset (whole clips)."""
        return sum(c["n_frames"] for c in self.clips)

    def _clip(self, i: int) -> dict[str, torch.Tensor]:
        hit = self._lru.get(i)
        if hit is not None:
            self._lru.move_to_end(i)
            return hit
        d = load_clip(self.cache_dir / self.clips[i]["path"], keys=_KEYS)
        mfcc = d["mfcc"].astype(np.float32)
        if self.norm is not None:
            mfcc = self.norm.apply(mfcc).astype(np.float32)
        arr = {"frames": d["frames"], "mfcc": torch.from_numpy(np.ascontiguousarray(mfcc)),
               "au": torch.from_numpy(d["au_presence"].astype(np.float32)),
               "au_intensity": torch.from_numpy(d["au_intensity"].astype(np.float32))}
        size = _nbytes(arr)
        if size <= self.cache_bytes:
            self._lru[i] = arr
            self._lru_bytes += size
            while self._lru_bytes > self.cache_bytes:
                _, old = self._lru.popitem(last=False)
                self._lru_bytes -= _nbytes(old)
        return arr

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        i = index % len(self.clips)
        arr = self._clip(i)
        n = arr["frames"].shape[0]
        if self.mode == "random":
            start = int(torch.randint(0, n - self.seq_len + 1, ()).item())
            stop = start + self.seq_len
        else:
            start, stop = 0, n
        c = self.clips[i]
        return {
            "identity": to_image(arr["frames"][0]),
            "frames": to_image(arr["frames"][start:stop]),
            "mfcc": arr["mfcc"][start:stop],
            "au": arr["au"][start:stop],
            "au_intensity": arr["au_intensity"][start:stop],
            "start": torch.tensor(start, dtype=torch.int64),
            "speaker": c["speaker"],
            "clip_id": c["clip_id"],
        }


def _nbytes(arr: dict) -> int:
    return sum(v.nbytes if isinstance(v, np.ndarray) else v.numel() * v.element_size() for v in arr.values())


def to_image(x: np.ndarray) -> torch.Tensor:
    """uint8 (...,H,W,3) -> contiguous float32 (...,3,H,W) in [-1, 1].

    Done in numpy on purpose: torch's multi-threaded element-wise ops on these small tensors stall badly
    when the CPU is shared (measured ~1,000 instead of ~300,000 frames/s on 2 busy cores).
    """
    y = np.moveaxis(x, -1, -3).astype(np.float32, order="C")
    y *= np.float32(1 / 127.5)
    y -= np.float32(1.0)
    return torch.from_numpy(y)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Inverse of the dataset's image scaling: float (...,3,H,W) in [-1,1] -> uint8 (...,H,W,3)."""
    y = ((x.detach().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return y.movedim(-3, -1).numpy()
