"""Training throughput of every stage on this machine: frames/s and the share of step time spent waiting
for data, at the quick (64 px) and paper (112 px) sizes. Prints numbers and ratios; asserts nothing.

    .venv/bin/python benchmarks/train.py            # CPU (and CUDA rows, with and without bf16 / compile,
                                                    # when a GPU is visible)

It trains each stage for a few steps on a synthetic cache (``autalk.data.tiny``) of the right image size, so
it needs no corpus. GPU rows are printed only when measured; nothing is extrapolated.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch

from autalk import profiles, stages
from autalk.data.tiny import make_cache
from autalk.train import fit

warnings.filterwarnings("ignore", message="VGG-19 has RANDOM")
STEPS = 12


def bench(stage_name: str, profile: str, device: str, amp: bool = True, compile: bool = False) -> dict:
    p = profiles.load_profile(profile)
    size = int(p["image_size"])
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        make_cache(run / "01_preprocess", n_clips=12, t=40, size=size)
        params = {
            **p,
            "max_batches": STEPS,
            "a2au_epochs": 1,
            "aucls_epochs": 1,
            "gan_epochs_phase1": 0,
            "gan_epochs_phase2": 1,
            "vgg_weights": "random",
            "gan_samples_per_clip": 16,
        }
        if stage_name == "generator":
            stages.pretrain("audio2au", run, {**params, "max_batches": 1}, device=device, progress=False)
            stages.pretrain("au_classifier", run, {**params, "max_batches": 1}, device=device, progress=False)
            st = stages.build_gan_stage(run, params, device)
        else:
            cls = stages.Audio2AUStage if stage_name == "audio2au" else stages.AUClassifierStage
            st = cls(
                run / "01_preprocess",
                stages.model_config(params),
                stages.train_config(params, stage_name),
                device,
            )
        st.train_cfg = replace(st.train_cfg, amp=amp, compile=compile)
        t0 = time.perf_counter()
        res = fit(st, run / "out", progress=False)
        h = res.history[-1]
        return {
            "frames_per_s": h["frames_per_s"],
            "data_wait": h["data_wait_share"],
            "seconds": time.perf_counter() - t0,
        }


def main() -> None:
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"CUDA: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}"
    )
    print(f"{'stage':14s} {'profile':8s} {'device':10s} {'frames/s':>10s} {'data wait':>10s}   (target < 5%)")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for stage_name in ("audio2au", "au_classifier", "generator"):
        for profile in ("quick", "paper"):
            for device in devices:
                variants = [("", True, False)]
                if device == "cuda":
                    variants = [
                        (" fp32", False, False),
                        (" bf16", True, False),
                        (" bf16+compile", True, True),
                    ]
                for tag, amp, comp in variants:
                    r = bench(stage_name, profile, device, amp, comp)
                    print(
                        f"{stage_name:14s} {profile:8s} {device + tag:10s} {r['frames_per_s']:10.0f} "
                        f"{100 * r['data_wait']:9.1f}%"
                    )


if __name__ == "__main__":
    main()
