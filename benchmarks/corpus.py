"""Teaching-corpus throughput: clips per minute with 1 and 2 workers (target >= 120 clips/min with 2).

Run: ``.venv/bin/python benchmarks/corpus.py [--clips 24]``. Prints numbers and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from autalk.corpus import build_corpus

TARGET = 120.0  # clips per minute with 2 workers (issue 2)
RENDER_BUDGET_MS = 5.0  # per frame: what leaves room for speech, encoding and writing within the target


def render_ms_per_frame(n_frames: int = 25) -> float:
    """Best-of-3 cost of rendering one 360x288 frame (identity layers cached, as in the builder)."""
    import numpy as np

    from autalk.corpus import face

    rng = np.random.default_rng(0)
    renderer = face.Renderer(face.sample_identity(rng))
    au, motion = rng.uniform(0, 5, (n_frames, 5)), face.sample_motion(n_frames, rng)
    renderer.render_clip(au, motion)  # warm-up
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        renderer.render_clip(au, motion)
        best = min(best, (time.perf_counter() - t) * 1000 / n_frames)
    return best


def clips_per_minute(n_clips: int, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        speakers = 2
        t = time.perf_counter()
        build_corpus(tmp, speakers=speakers, clips=n_clips // speakers, seed=0, workers=workers,
                     progress=False)
        return n_clips / (time.perf_counter() - t) * 60


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=24, help="clips per measurement")
    args = ap.parse_args()
    one = clips_per_minute(args.clips, 1)
    two = clips_per_minute(args.clips, 2)
    ms = render_ms_per_frame()
    print(f"face renderer: {ms:.2f} ms/frame "
          f"({ms / RENDER_BUDGET_MS:.2f} of the {RENDER_BUDGET_MS:.0f} ms budget)")
    print(f"teaching corpus, {args.clips} clips of 75 frames 360x288 + audio + align + AU csv")
    print(f"  1 worker : {one:7.1f} clips/min")
    print(f"  2 workers: {two:7.1f} clips/min   (speed-up x{two / one:.2f}; target {TARGET:.0f} -> "
          f"{two / TARGET:.2f} of target)")


if __name__ == "__main__":
    main()
