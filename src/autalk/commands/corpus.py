"""``autalk corpus``: build the GRID-format teaching corpus."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("corpus", help="build the GRID-format teaching corpus",
                       description="Render synthetic talking faces with speech, alignments and ground-truth "
                                   "AUs in GRID's layout. Complete clips are skipped, so reruns resume.")
    p.add_argument("--out", default="data/synthgrid", help="output folder (default: data/synthgrid)")
    p.add_argument("--speakers", type=int, default=8, help="number of speakers s1..sN (default: 8)")
    p.add_argument("--clips", type=int, default=30, help="clips per speaker (default: 30)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same corpus (default: 0)")
    p.add_argument("--workers", type=int, default=2, help="parallel processes (default: 2)")
    p.add_argument("--voices", default=None,
                   help="comma-separated espeak voice variants to cycle over speakers, e.g. m1,f2")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autalk.corpus import build_corpus

    voices = tuple(v.strip() for v in args.voices.split(",") if v.strip()) if args.voices else None
    s = build_corpus(args.out, speakers=args.speakers, clips=args.clips, seed=args.seed,
                     workers=args.workers, voices=voices, progress=not args.quiet)
    print(f"teaching corpus at {s['root']}: {len(s['speakers'])} speakers, {s['n_clips']} clips "
          f"({s['built']} built, {s['skipped']} already complete)")
    return 0
