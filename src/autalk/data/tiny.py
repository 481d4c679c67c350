"""A tiny synthetic preprocessing cache for tests and benchmarks, written directly with autalk.data.cache
(no corpus, no dlib): 4 speakers x 3 clips x 24 frames of 32 px (or ``size``), with AU labels that the MFCC
windows and the mouth pixels really carry, so training on it can lower its losses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from autalk.audio import NormStats
from autalk.data import cache

SIZE = 32
SPEAKERS = {"s1": "train", "s2": "train", "s3": "train", "s4": "test"}


def make_cache(out: Path, n_clips: int = 3, t: int = 24, seed: int = 0, size: int = 32) -> Path:
    """Write the cache into ``out`` (``size`` px crops; mouth box and landmarks scale with it)."""
    rng = np.random.default_rng(seed)
    clips, train_presence, mfccs = [], [], []
    k = size / 32  # layout drawn for 32 px, scaled
    base_lm = np.zeros((68, 2), np.float32)
    base_lm[:, 0] = np.linspace(6, 26, 68) * k
    base_lm[:, 1] = np.linspace(6, 26, 68) * k
    base_lm[48:68] = np.stack([np.linspace(11, 21, 20), np.full(20, 23.0)], 1) * k  # mouth around row 23
    for n, (spk, split) in enumerate(SPEAKERS.items()):
        skin = rng.integers(80, 200, 3)
        for c in range(n_clips):
            au = (rng.random((t, 5)) < [0.2, 0.3, 0.4, 0.5, 0.4]).astype(np.uint8)
            mfcc = rng.normal(0, 1, (t, 12, 28)).astype(np.float32)
            mfcc[:, :5, :] += 2.0 * au[:, :, None]  # coefficient i carries AU i
            frames = np.tile(skin.astype(np.uint8), (t, size, size, 1))
            mouth = (40 + 150 * au[:, 3, None, None, None]).astype(np.uint8)  # the mouth opens with AU25
            frames[:, int(20 * k) : int(27 * k), int(10 * k) : int(22 * k)] = mouth
            arrays = {
                "frames": frames,
                "identity": frames[0],
                "mfcc": mfcc,
                "mfcc_raw": rng.normal(0, 1, (12, 4 * t + 28)).astype(np.float32),
                "au_presence": au,
                "au_intensity": au.astype(np.float32) * 2,
                "landmarks": np.repeat(base_lm[None], t, 0),
            }
            cid = f"c{n}{c}"
            cache.save_clip(cache.clip_path(out, spk, cid), arrays, {"speaker": spk, "clip_id": cid})
            clips.append(
                {
                    "speaker": spk,
                    "clip_id": cid,
                    "split": split,
                    "path": f"clips/{spk}/{cid}.npz",
                    "n_frames": t,
                    "au_source": "openface-csv",
                }
            )
            if split == "train":
                train_presence.append(au)
                mfccs.append(arrays["mfcc_raw"])
    splits = {"train": [s for s, v in SPEAKERS.items() if v == "train"], "test": ["s4"]}
    manifest = cache.build_manifest(out, clips, splits, train_presence, image_size=size, corpus="tiny")
    cache.write_json(out / cache.MANIFEST, manifest)
    NormStats.from_mfccs(mfccs, splits["train"]).save(out / cache.NORM)
    return out


def tiny_params(**over) -> dict:
    """The smoke profile with a 32 px image and a few whole epochs."""
    from autalk.profiles import load_profile

    p = load_profile("smoke")
    p.update(
        image_size=SIZE,
        max_batches=0,
        a2au_batch=16,
        aucls_batch=16,
        gan_batch=2,
        gan_seq_len=4,
        device="cpu",
    )
    p.update(over)
    return p


def write_params(path: Path, **over) -> Path:
    path.write_text(yaml.safe_dump(tiny_params(**over)))
    return path
