"""Frames per second of ``autalk generate``'s hot path (MFCC windows + every generated frame) against its
targets: >= 50 frames/s at 64 px with the quick profile's widths, >= 25 frames/s at 112 px with the paper
profile's. Weights are random (speed does not depend on them), saved as a checkpoint in a temporary folder
and loaded the way ``autalk generate`` loads them. Prints ratios; asserts nothing about time.

    .venv/bin/python benchmarks/generate.py [--seconds 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from autalk.audio import NormStats
from autalk.checkpoint import save_checkpoint
from autalk.config import ExperimentConfig, LossConfig
from autalk.generate import FPS, audio_features, generate, load_model, render
from autalk.media import read_video
from autalk.networks import Generator
from autalk.profiles import load_profile, project_root
from autalk.stages import model_config

TARGETS = {"quick": 50.0, "paper": 25.0}  # frames/s at the profile's image size
FACE_VIDEO = project_root() / "tests/fixtures/real/grid/s1/video/bbaf2n.mpg"
SPEECH = project_root() / "tests/fixtures/real/speech/arctic_a0007.wav"


def save_random_generator(profile: str, folder: Path) -> Path:
    """A randomly initialised generator of ``profile``'s widths, saved as a 04_gan checkpoint."""
    mcfg = model_config(load_profile(profile))
    exp = ExperimentConfig(name="full", model=mcfg, loss=LossConfig(vgg_weights="random"))
    norm = NormStats(np.zeros(12, np.float32), np.full(12, 20.0, np.float32), 1, [])
    config = {
        "stage": "generator",
        "experiment": exp.to_dict(),
        "baseline": None,
        "train": {},
        "mouth_box_yyxx": [36, 54, 20, 44],
        "data": {},
    }
    return save_checkpoint(
        folder / f"{profile}.pt",
        {"generator": Generator(mcfg)},
        config,
        step=0,
        extra={"mfcc_norm": norm.to_dict(), "epoch": 0, "complete": True},
    )


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench(profile: str, folder: Path, seconds: float, repeats: int) -> None:
    ckpt = save_random_generator(profile, folder)
    gen, norm, _ = load_model(ckpt)
    size = gen.cfg.image_size
    face = read_video(FACE_VIDEO, max_frames=1)[0][0]
    sr = 16000
    audio = np.random.default_rng(0).normal(0, 0.1, int(seconds * sr)).astype(np.float32)
    n = int(round(seconds * FPS))
    from autalk.generate import prepare_face

    crop, _ = prepare_face(face, size)
    render(gen, crop, audio_features(audio, sr, norm))  # warm-up (librosa and torch first calls)

    t_feat = best_of(lambda: audio_features(audio, sr, norm), repeats)
    windows = audio_features(audio, sr, norm)
    t_render = best_of(lambda: render(gen, crop, windows), repeats)
    hot = n / (t_feat + t_render)
    t_all = best_of(lambda: generate(face, audio=(audio, sr), checkpoint=ckpt, progress=False), repeats)
    t_mp4 = best_of(
        lambda: generate(face, audio=(audio, sr), checkpoint=ckpt, out=folder / "b.mp4", progress=False), 1
    )
    target = TARGETS[profile]
    params = sum(p.numel() for p in gen.parameters()) / 1e6
    print(
        f"{profile} profile, {size} px, {params:.1f} M parameters, {seconds:g} s of audio = {n} frames, "
        f"render on 1 torch thread (torch default here {torch.get_num_threads()}; see autalk.generate.render)"
    )
    print(f"  audio features {n / t_feat:8.0f} frames/s   render {n / t_render:7.1f} frames/s")
    print(
        f"  hot path (features + render): {hot:6.1f} frames/s = {hot / target:.2f} x the target "
        f"{target:g} frames/s"
    )
    print(f"  generate() end to end, no file (face detection, checkpoint load): {n / t_all:6.1f} frames/s")
    print(f"  generate() writing the mp4: {n / t_mp4:6.1f} frames/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0, help="audio length (default 4 s = 100 frames)")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    ap.add_argument("--profiles", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for profile in args.profiles:
            bench(profile, Path(tmp), args.seconds, args.repeats)


if __name__ == "__main__":
    main()
