"""Preprocessing speed: end-to-end frames/s with 1 and 2 workers, the per-stage cost of one clip, and the
cache read rate through ClipDataset. Prints numbers and ratios against the targets; asserts nothing.

    .venv/bin/python benchmarks/preprocess.py [--clips N]

The corpus is a small teaching corpus built with ``autalk.corpus`` when that works, otherwise the real
GRID fixture clips (tests/fixtures/real/grid/s1) copied under several speaker folders.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_PREPROCESS = 500.0  # frames/s end to end
TARGET_READ = 5000.0  # frames/s from the cache
REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "real" / "grid" / "s1" / "video"


def make_corpus(root: Path, n_clips: int) -> tuple[str, str]:
    """Returns (corpus kind, description)."""
    speakers = 4
    per = max(1, n_clips // speakers)
    try:
        from autalk.corpus import build_corpus

        build_corpus(root, speakers=speakers, clips=per, seed=0, workers=2, progress=False)
        return "synthgrid", f"teaching corpus, {speakers} speakers x {per} clips"
    except Exception as e:  # the builder is optional here
        print(f"(teaching corpus unavailable: {type(e).__name__}: {e}; using the GRID fixtures)")
    shutil.rmtree(root, ignore_errors=True)
    videos = sorted(FIXTURES.glob("*.mpg"))
    k = 0
    for s in range(1, speakers + 1):
        d = root / f"s{s}" / "video"
        d.mkdir(parents=True, exist_ok=True)
        for j in range(per):
            src = videos[j % len(videos)]
            shutil.copy(src, d / f"{src.stem}{j // len(videos) or ''}.mpg")
            k += 1
    return "synthgrid", f"real GRID fixture clips repeated: {speakers} speakers x {per} clips"


def stage_breakdown(root: Path, corpus: str) -> dict[str, float]:
    """Seconds per stage for each clip (after a warm-up clip), in this process."""
    from autalk import audio as A
    from autalk.data.readers import list_clips, load_clip_av
    from autalk.faces import crop_faces, track_face
    from autalk.preprocess import load_models

    models = load_models("hog")
    clips, _ = list_clips(corpus, root, max_per_speaker=2)
    tot = {"decode (video + audio)": 0.0, "detect (HOG, stride 5)": 0.0, "landmarks (68)": 0.0,
           "crop + resize": 0.0, "MFCC + windows": 0.0, "AU labels": 0.0}
    frames_n = 0
    A.mfcc(np.zeros(16000, np.float32))  # warm librosa
    for src in clips:
        t0 = time.perf_counter()
        frames, audio, _ = load_clip_av(src)
        t1 = time.perf_counter()
        track = track_face(frames, models["detector"])
        t2 = time.perf_counter()
        lm = models["predictor"](frames, track.boxes)
        t3 = time.perf_counter()
        _, lmc, _ = crop_faces(frames, track.boxes, lm, 64)
        t4 = time.perf_counter()
        A.mfcc_windows(A.mfcc(audio), len(frames))
        t5 = time.perf_counter()
        models["au"].predict(lmc, neutral=lmc[0])
        t6 = time.perf_counter()
        for key, dt in zip(tot, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5), strict=True):
            tot[key] += dt
        frames_n += len(frames)
    return {k: 1000 * v / frames_n for k, v in tot.items()}  # ms per frame


def _rate(fn, min_seconds: float = 1.0) -> float:
    """Frames per second of ``fn() -> frames served``, repeated for at least ``min_seconds``."""
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds:
        n += fn()
    return n / (time.perf_counter() - t0)


def read_rates(cache_dir: Path) -> dict[str, float]:
    import torch

    from autalk.data.dataset import ClipDataset

    seq = 16
    warm = ClipDataset(cache_dir, "train", seq_len=seq, mode="random", samples_per_clip=10)
    for i in range(len(warm)):  # fills the LRU cache; also torch's one-off kernel initialisation
        warm[i]
    cold_whole = ClipDataset(cache_dir, "train", mode="whole", cache_bytes=0)
    cold_rand = ClipDataset(cache_dir, "train", seq_len=seq, mode="random", cache_bytes=0)
    loader = torch.utils.data.DataLoader(warm, batch_size=8, shuffle=True, num_workers=0)
    return {
        "whole clips, no memory cache (decompress every read)":
            _rate(lambda: sum(cold_whole[i]["frames"].shape[0] for i in range(len(cold_whole)))),
        f"random {seq}-frame sequences, no memory cache":
            _rate(lambda: sum(cold_rand[i]["frames"].shape[0] for i in range(len(cold_rand)))),
        f"random {seq}-frame sequences, LRU warm":
            _rate(lambda: sum(warm[i]["frames"].shape[0] for i in range(len(warm)))),
        "DataLoader batch 8 x 16 frames, LRU warm (with collate)":
            _rate(lambda: sum(b["frames"].shape[0] * b["frames"].shape[1] for b in loader)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clips", type=int, default=24, help="clips in the benchmark corpus (default 24)")
    ap.add_argument("--image-size", type=int, default=64)
    args = ap.parse_args()

    from autalk.preprocess import preprocess_corpus

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = tmp / "corpus"
        t = time.perf_counter()
        corpus, desc = make_corpus(root, args.clips)
        print(f"corpus: {desc} ({time.perf_counter() - t:.1f} s to make)")

        print("\nper-stage cost, one process (ms per frame):")
        per = stage_breakdown(root, corpus)
        for k, v in per.items():
            print(f"  {k:26s} {v:7.2f}")
        total = sum(per.values())
        print(f"  {'total':26s} {total:7.2f}  -> {1000 / total:.0f} frames/s per worker, steady state")

        print(f"\nend to end, preprocess_corpus (image size {args.image_size}; with 1 worker the clips run "
              "in this process, whose models are already loaded above):")
        outs = {}
        for workers in (1, 2):
            out = tmp / f"cache{workers}"
            t = time.perf_counter()
            rep = preprocess_corpus(corpus, root, out, image_size=args.image_size, workers=workers,
                                    progress=False)
            wall = time.perf_counter() - t
            fps = rep["frames_kept"] / wall
            steady = rep["frames_per_second_after_first_clip"] or float("nan")
            outs[workers] = (out, fps, steady)
            print(f"  {workers} worker(s): {rep['clips_kept']} clips ({rep['clips_dropped']} dropped), "
                  f"{rep['frames_kept']} frames in {wall:.1f} s = {fps:.0f} frames/s "
                  f"({fps / TARGET_PREPROCESS:.2f}x the {TARGET_PREPROCESS:.0f} frames/s target)")
            print(f"      {rep['seconds_to_first_clip']} s to the first clip (start workers, load models), "
                  f"then {steady:.0f} frames/s ({steady / TARGET_PREPROCESS:.2f}x target)")
        print(f"  2 vs 1 workers: {outs[2][1] / outs[1][1]:.2f}x end to end, "
              f"{outs[2][2] / outs[1][2]:.2f}x after the first clip")

        print("\ncache read through ClipDataset (frames/s):")
        for k, v in read_rates(outs[2][0]).items():
            print(f"  {k:60s} {v:9.0f}  ({v / TARGET_READ:.1f}x the {TARGET_READ:.0f} frames/s target)")
        size = sum(p.stat().st_size for p in outs[2][0].glob("clips/*/*.npz"))
        n_frames = sum(1 for _ in outs[2][0].glob("clips/*/*.npz")) * 75
        print(f"  cache size: {size / 1e6:.1f} MB, {size / max(1, n_frames) / 1e3:.1f} kB per frame")


if __name__ == "__main__":
    main()
