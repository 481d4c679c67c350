"""Helpers shared by the network tests (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import torch


def frame_influence(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """Max |a - b| per frame of two (B,T,...) outputs. Untrained nets are nearly constant (default init
    shrinks signals layer by layer), so time tests compare influences with each other, not with a fixed
    tolerance."""
    return [(a[:, k] - b[:, k]).abs().max().item() for k in range(a.shape[1])]


def make_inputs(b: int, t: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded identity image batch (B,3,H,W) in [-1,1] and MFCC windows (B,T,12,28)."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, size, size, generator=g) * 2 - 1, torch.randn(b, t, 12, 28, generator=g)
