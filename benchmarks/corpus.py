"""Teaching-corpus throughput: clips per minute with 1 and 2 workers (target >= 120 clips/min with 2).

Run: ``.venv/bin/python benchmarks/corpus.py [--clips 24]``. Prints numbers and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from autalk.corpus import build_corpus

TARGET = 120.0  # clips per minute with 2 workers (issue 2)


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
    print(f"teaching corpus, {args.clips} clips of 75 frames 360x288 + audio + align + AU csv")
    print(f"  1 worker : {one:7.1f} clips/min")
    print(f"  2 workers: {two:7.1f} clips/min   (speed-up x{two / one:.2f}; target {TARGET:.0f} -> "
          f"{two / TARGET:.2f} of target)")


if __name__ == "__main__":
    main()
