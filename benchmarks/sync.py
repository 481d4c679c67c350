"""Our sync expert (autalk.sync; not the public SyncNet weights): training time on a profile's cache, how
well it tells sync from off-sync on the test speakers, and its LSE / offset estimates on the real GRID
clips of tests/fixtures/real/grid (cropped by the project's preprocessing), also with their audio
delayed by 3 frames (expected offset +3: audio lags video).

Run: ``.venv/bin/python benchmarks/sync.py --run runs/quick [--work /tmp/sync] [--epochs 4]``. The expert is
trained into ``WORK/05_sync_expert`` (``WORK/01_preprocess`` links to ``RUN/01_preprocess``), so the run
folder itself is not written. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from autalk.sync import SyncConfig, lse, train_sync_expert

REAL = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "real" / "grid"


def real_grid_clips(image_size: int) -> list[dict]:
    """The real GRID fixture clips as the preprocessing crops them: frames and mfcc_raw."""
    from autalk.data.readers import list_clips
    from autalk.preprocess import load_models, preprocess_clip

    models = load_models()
    sources, _ = list_clips("grid", REAL)
    out = []
    for src in sources:
        r = preprocess_clip(src, image_size, models["detector"], models["predictor"], models["au"])
        out.append({"clip_id": src.clip_id, "frames": r.arrays["frames"], "mfcc_raw": r.arrays["mfcc_raw"]})
    return out


def delayed(mfcc_raw: np.ndarray, frames: int) -> np.ndarray:
    """The audio delayed by ``frames`` video frames (4 MFCC steps each; the first step repeated)."""
    pad = np.repeat(mfcc_raw[:, :1], 4 * frames, axis=1)
    return np.concatenate([pad, mfcc_raw], axis=1)[:, : mfcc_raw.shape[1]]


def _typed(field: str, text: str) -> object:
    kind = type(getattr(SyncConfig(), field))
    return text.lower() in ("1", "true", "yes") if kind is bool else kind(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/quick")
    ap.add_argument("--work", default=None, help="where 05_sync_expert goes (default: a temp folder)")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--eval-clips", type=int, default=0)
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="other SyncConfig fields")
    a = ap.parse_args()
    torch.set_num_threads(1)
    work = Path(a.work or tempfile.mkdtemp(prefix="sync-"))
    work.mkdir(parents=True, exist_ok=True)
    link = work / "01_preprocess"
    if not link.exists():
        link.symlink_to(Path(a.run).resolve() / "01_preprocess")
    over = dict(kv.split("=", 1) for kv in a.set)
    if a.epochs:
        over["epochs"] = str(a.epochs)
    cfg = SyncConfig.from_params({}, **{k: _typed(k, v) for k, v in over.items()})
    t = time.perf_counter()
    m = train_sync_expert(work, cfg=cfg, progress=False, eval_clips=a.eval_clips)
    print(f"{m['label']}\ntrained {cfg.epochs} epochs on {a.run} in {m['train_seconds_total']:.0f} s "
          f"(wall {time.perf_counter() - t:.0f} s incl. loading and evaluation)")
    print(f"test speakers {m['speakers']} ({m['n_clips']} clips): aligned {m['aligned']:.3f}, shifted "
          f"{m['shifted']:.3f}, sync accuracy {m['sync_accuracy']:.3f}, offset within +-1: "
          f"{m['offset_accuracy']:.3f} (exact {m['offset_exact']:.3f}), LSE-D {m['lse_d']:.3f}, "
          f"LSE-C {m['lse_c']:.3f}")
    from autalk.sync import load_sync_expert

    model = load_sync_expert(work)
    size = int(np.load(next((link / "clips").glob("*/*.npz")))["frames"].shape[1])
    for c in real_grid_clips(size):
        r = lse(model, c["frames"], c["mfcc_raw"])
        late = lse(model, c["frames"], delayed(c["mfcc_raw"], 3))
        shifted = float(np.mean(r["dists"][np.abs(r["offsets"]) >= cfg.min_shift]))
        print(f"real GRID s1/{c['clip_id']}: aligned {r['dists'][15]:.3f}, mean shifted {shifted:.3f}, "
              f"offset {r['offset']:+d}, LSE-D {r['lse_d']:.3f}, LSE-C {r['lse_c']:.3f}; "
              f"audio delayed 3 frames -> offset {late['offset']:+d}")

if __name__ == "__main__":
    main()
