"""Generator training throughput: forward + backward frames/s at 64 and 112 px.

CPU always (fp32); on a CUDA GPU also fp32, bf16 autocast, and bf16 autocast + channels_last, with
ratios to GPU fp32. Paper widths, full model (Audio2AU + GRU), loss = L1 on frames + mean AU logit so
every branch runs backward. Prints only; asserts nothing. About a minute on 2 CPU cores.

    .venv/bin/python benchmarks/nets.py [--iters 3] [--batch 2] [--frames 4]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

import torch

from autalk.config import ModelConfig
from autalk.networks import Generator, count_parameters


def frames_per_second(
    size: int, device: str, batch: int, frames: int, iters: int, bf16: bool = False, cl: bool = False
) -> float:
    """Forward + backward + Adam step throughput; ``cl``: channels_last memory format."""
    torch.manual_seed(0)
    gen = Generator(ModelConfig(image_size=size)).to(device)
    identity = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    mfcc = torch.randn(batch, frames, 12, 28, device=device)
    real = torch.rand(batch, frames, 3, size, size, device=device) * 2 - 1
    if cl:
        gen = gen.to(memory_format=torch.channels_last)
        identity = identity.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(gen.parameters(), lr=2e-4)
    amp = torch.autocast(device_type=device, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def step() -> None:
        with amp:
            out = gen(identity, mfcc)
            loss = (out.frames.float() - real).abs().mean() + out.au_logits.float().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up: allocator, cuDNN algorithm choice
    sync()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    sync()
    return batch * frames * iters / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 112])
    ap.add_argument("--iters", type=int, default=3, help="timed CPU steps (GPU runs 10x as many)")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--frames", type=int, default=4, help="T per clip")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    # The LSTMs' many small steps suffer badly from oversubscribed cores: say how busy the machine is.
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads of {os.cpu_count()} cores "
          f"(load average {load:.1f}), batch {args.batch} x T {args.frames}")  # fmt: skip
    for size in args.sizes:
        n = count_parameters(Generator(ModelConfig(image_size=size)))["total"]
        print(f"generator {size}px: {n / 1e6:.1f} M parameters")
    print(f"{'size':>4}  {'device':<6} {'mode':<26} {'frames/s':>9}  ratio")
    for size in args.sizes:
        cpu = frames_per_second(size, "cpu", args.batch, args.frames, args.iters)
        print(f"{size:>4}  {'cpu':<6} {'fp32':<26} {cpu:>9.1f}")
        if not torch.cuda.is_available():
            continue
        gpu_args = (size, "cuda", 4 * args.batch, 2 * args.frames, 10 * args.iters)
        base = frames_per_second(*gpu_args)
        print(f"{size:>4}  {'cuda':<6} {'fp32':<26} {base:>9.1f}  1.00 (GPU/CPU {base / cpu:.1f}x)")
        for label, kw in (
            ("bf16 autocast", {"bf16": True}),
            ("bf16 autocast+channels_last", {"bf16": True, "cl": True}),
        ):
            fps = frames_per_second(*gpu_args, **kw)
            print(f"{size:>4}  {'cuda':<6} {label:<26} {fps:>9.1f}  {fps / base:.2f}")
    if not torch.cuda.is_available():
        print("no CUDA GPU: bf16 / channels_last rows skipped")


if __name__ == "__main__":
    main()
