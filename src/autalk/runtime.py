"""Notebook/CLI setup: seeding, device choice with an explicit GPU message, version report."""

from __future__ import annotations

import platform
import random

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) for repeatable runs."""
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # corpus-only use does not need torch
        pass


def pick_device(prefer: str = "auto", verbose: bool = True) -> str:
    """Return "cuda" or "cpu"; say plainly which one is used and why."""
    import torch

    has_cuda = torch.cuda.is_available()
    if prefer == "cuda" and not has_cuda:
        raise RuntimeError("device='cuda' was requested but no CUDA GPU is visible to torch.")
    device = "cuda" if (prefer in ("auto", "cuda") and has_cuda) else "cpu"
    if verbose:
        if device == "cuda":
            print(f"GPU: using {torch.cuda.get_device_name(0)}")
        else:
            why = "requested" if prefer == "cpu" else "no CUDA GPU found"
            print(f"GPU: none — running on CPU ({why}). The quick and smoke profiles are sized for this.")
    return device


def versions() -> dict[str, str]:
    """Versions of the libraries whose behaviour the results depend on."""
    out = {"python": platform.python_version()}
    for mod in ("numpy", "torch", "cv2", "dlib", "librosa", "matplotlib"):
        try:
            m = __import__(mod)
            out[mod] = str(getattr(m, "__version__", "?"))
        except ImportError:
            out[mod] = "not installed"
    return out


def print_setup(seed: int, device_pref: str | None = "auto") -> str | None:
    """The notebooks' Setup cell: seed everything, report versions and the device."""
    seed_everything(seed)
    print("Versions:", ", ".join(f"{k} {v}" for k, v in versions().items()))
    print(f"Seed: {seed}")
    return pick_device(device_pref) if device_pref else None
