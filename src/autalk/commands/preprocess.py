"""``autalk preprocess``: a corpus -> the training cache (faces, MFCC windows, AU labels, splits).

Scale-out over a cluster job array: ``--shard K/N`` preprocesses only every N-th speaker (natural
order, shard K from position K; the train/test split is still the whole corpus's) and writes its clip
files plus ``shard-K-of-N.json`` into its ``--out`` (one folder per shard, or one shared by all); then
``--merge [SHARD_DIR ...] --out OUT`` hard-links (or, across filesystems, copies) every shard's clip
files into ``OUT/clips/`` and writes ``manifest.json``, ``norm.json``, ``au_detector.json`` and
``report.json`` over all shards, as an unsharded run would. ``--merge`` without folders looks for the
shard files in ``--out`` and its subfolders. See ``autalk.preprocess.merge_shards``.
"""

from __future__ import annotations

import argparse

from autalk.preprocess import CORPORA


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "preprocess", help="crop faces, extract MFCC windows and AU labels into a per-clip cache",
        description="Detect and crop faces (dlib HOG), compute 12 MFCCs in 280 ms windows per video "
                    "frame and AU labels (OpenFace CSV when present, else the built-in landmark detector), "
                    "fit that detector on the train speakers' CSV labels when there are any "
                    "(au_detector.json, evaluated on the held-out test speakers), "
                    "split speakers into train/test and write one cache file per clip plus manifest.json, "
                    "norm.json and report.json. Complete cache files are kept, so reruns resume. "
                    "On a cluster: run the job array with --shard K/N (e.g. K = $SLURM_ARRAY_TASK_ID), "
                    "one --out per shard, then once --merge SHARD_DIR ... --out OUT.",
        epilog="example: autalk preprocess --corpus grid --root data/grid --shard 3/8 "
               "--out runs/paper/01_preprocess/shard-3-of-8 (for K = 1..8), then "
               "autalk preprocess --merge runs/paper/01_preprocess/shard-*-of-8 "
               "--out runs/paper/01_preprocess")
    p.add_argument("--corpus", choices=CORPORA,
                   help="grid / tcd (published speaker splits), synthgrid (teaching corpus), "
                        "folder (any videos); required except with --merge")
    p.add_argument("--root", help="corpus folder (e.g. data/synthgrid); required except with --merge")
    p.add_argument("--out", required=True,
                   help="output folder, e.g. runs/<profile>/01_preprocess (with --shard: that shard's "
                        "folder, e.g. runs/<profile>/01_preprocess/shard-3-of-8; with --merge: the merged "
                        "cache)")
    p.add_argument("--image-size", type=int, default=64,
                   help="face crop size in pixels (paper: 112; default 64)")
    p.add_argument("--workers", type=int, default=2, help="parallel processes (default: 2)")
    p.add_argument("--max-per-speaker", type=int, default=0, help="clips per speaker, 0 = all (default: 0)")
    p.add_argument("--speakers", default=None, help="comma-separated speakers to use (default: all)")
    p.add_argument("--detector", choices=("hog", "cnn"), default="hog",
                   help="dlib face detector: hog (paper, fast) or cnn (slow on CPU)")
    p.add_argument("--seed", type=int, default=0, help="seed of the 8:2 speaker split for synthgrid/folder")
    p.add_argument("--au-detector", default=None, metavar="PATH",
                   help="landmark AU detector JSON that labels frames without an OpenFace CSV row, e.g. the "
                        "au_detector.json a teaching-corpus run fitted (runs/quick/01_preprocess/"
                        "au_detector.json); default: the hand-set rules. One fitted on the synthetic "
                        "teaching corpus is not validated on real faces.")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="process only shard K of N (1 <= K <= N): the speakers at positions K, K+N, K+2N, "
                        "... in natural order (s2 before s10). The train/test split is the whole corpus's. "
                        "Writes the clip files and shard-K-of-N.json into --out, but not the whole-corpus "
                        "files (manifest.json, norm.json, au_detector.json, report.json): --merge does")
    p.add_argument("--merge", nargs="*", default=None, metavar="SHARD_DIR",
                   help="merge the N shards of one --shard run into --out: every shard's clip files are "
                        "hard-linked (copied across filesystems) into --out/clips, then manifest.json "
                        "(AU rates, loss weights), norm.json, au_detector.json and report.json are computed "
                        "over all shards, as an unsharded run does. Without SHARD_DIR: the shard files in "
                        "--out and its subfolders. The corpus and options come from the shards")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autalk.preprocess import merge_shards, parse_shard, preprocess_corpus, shard_file, summary

    if args.merge is not None:
        if args.shard is not None:
            raise ValueError("--shard and --merge do not go together: run every shard with --shard K/N, "
                             "then merge them once with --merge")
        report = merge_shards(args.merge or [args.out], args.out, corpus=args.corpus, root=args.root)
        print(summary(report))
        _print_written(args.out, report)
        return 0 if report["clips_kept"] else _none_kept("report.json")
    missing = [f"--{name}" for name in ("corpus", "root") if not getattr(args, name)]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise ValueError(f"{' and '.join(missing)} {verb} required (only --merge takes them from the shards)")
    shard = parse_shard(args.shard)
    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    if args.max_per_speaker < 0:
        raise ValueError(f"--max-per-speaker must be >= 0, got {args.max_per_speaker}")
    speakers = [s.strip() for s in args.speakers.split(",") if s.strip()] if args.speakers else None
    report = preprocess_corpus(args.corpus, args.root, args.out, image_size=args.image_size,
                               workers=args.workers, max_per_speaker=args.max_per_speaker, speakers=speakers,
                               detector=args.detector, progress=not args.quiet, seed=args.seed,
                               au_detector=args.au_detector, shard=shard)
    print(summary(report))
    if shard is not None:
        print(f"written to {args.out}: clips/, {shard_file(*shard)}; when all {shard[1]} shards are done: "
              f"autalk preprocess --merge SHARD_DIR ... --out OUT")
    else:
        _print_written(args.out, report)
    return 0 if report["clips_kept"] else _none_kept(shard_file(*shard) if shard else "report.json")


def _print_written(out: str, report: dict) -> None:
    norm = ", norm.json" if report["kept_per_split"].get("train") else " (no training clips: no norm.json)"
    fitted = f", {report['au_detector_fitted']}" if report.get("au_detector_fitted") else ""
    print(f"written to {out}: clips/, manifest.json, report.json{norm}{fitted}")


def _none_kept(report_file: str) -> int:
    print(f"error: no clip survived preprocessing; see {report_file} for the reasons")
    return 1
