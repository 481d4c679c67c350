"""``autalk download``: fetch GRID into the layout the readers expect (see data/README.md)."""

from __future__ import annotations

import argparse
import sys

TCD_HELP = """TCD-TIMIT cannot be downloaded automatically: it is distributed after registration at
https://sigmedia.tcd.ie (TCD-TIMIT, Harte & Gillen 2015) under a research licence. Download the
volunteers' straightcam clips there and unpack them as
    <root>/volunteers/<speaker>/Clips/straightcam/<sentence>.mp4
then run e.g. `autalk preprocess --corpus tcd --root <root>` (see data/README.md)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from autalk.download import GRID_SOURCES

    p = sub.add_parser(
        "download",
        help="download GRID (verified, resumable) into data/grid",
        description="Download GRID speakers (CC BY 4.0) from the official distribution, verify every "
        "archive (size, checksum where published, archive integrity), unpack into "
        "<out>/sN/{video,align,audio}/ and skip speakers already complete. Interrupted downloads "
        "resume on the next run.",
    )
    p.add_argument("corpus", choices=["grid", "tcd"], help="grid (tcd only prints how to obtain it)")
    p.add_argument("--speakers", nargs="+", default=None, metavar="S",
                   help="speakers, e.g. s1 s2 s3, or 'all' (the 33 with video)")
    p.add_argument("--out", default="data/grid", help="output folder (default: data/grid)")
    p.add_argument("--source", choices=sorted(GRID_SOURCES), default="zenodo",
                   help="URL table to use (default: zenodo, DOI 10.5281/zenodo.3625687)")
    p.add_argument("--base-url", default=None, help="override the source's base URL (e.g. a local mirror)")
    p.add_argument("--audio", action=argparse.BooleanOptionalAction, default=False,
                   help="also fetch the separate 25 kHz wavs (default: no; the .mpg carries the sound)")
    p.add_argument("--quality", choices=["normal", "high"], default="normal",
                   help="video quality; 'high' (mpg_6000) exists only on --source sheffield")
    p.add_argument("--retries", type=int, default=3, help="resume attempts per archive (default: 3)")
    p.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds (default: 60)")
    p.add_argument("--keep-archives", action="store_true", help="keep per-speaker archives after unpacking")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.corpus == "tcd":
        print(TCD_HELP, file=sys.stderr)
        return 2
    from autalk.download import DownloadError, download_grid

    if not args.speakers:
        print("autalk download: error: give --speakers (e.g. --speakers s1 s2, or --speakers all)",
              file=sys.stderr)
        return 2
    try:
        status = download_grid(
            args.speakers, args.out, source=args.source, base_url=args.base_url, audio=args.audio,
            quality=args.quality, retries=args.retries, timeout=args.timeout,
            keep_archives=args.keep_archives, progress=not args.quiet,
        )
    except DownloadError as e:
        print(f"autalk download: error: {e}", file=sys.stderr)
        return 1
    n_new = sum(1 for v in status.values() if v == "downloaded")
    print(f"GRID in {args.out}: {n_new} speaker(s) downloaded, {len(status) - n_new} skipped. "
          f"Next: autalk preprocess --corpus grid --root {args.out}")
    return 0
