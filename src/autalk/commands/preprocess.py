"""``autalk preprocess``: a corpus -> the training cache (faces, MFCC windows, AU labels, splits)."""

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
                    "norm.json and report.json. Complete cache files are kept, so reruns resume.")
    p.add_argument("--corpus", required=True, choices=CORPORA,
                   help="grid / tcd (published speaker splits), synthgrid (teaching corpus), "
                        "folder (any videos)")
    p.add_argument("--root", required=True, help="corpus folder (e.g. data/synthgrid)")
    p.add_argument("--out", required=True, help="output folder, e.g. runs/<profile>/01_preprocess")
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
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autalk.preprocess import preprocess_corpus, summary

    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    if args.max_per_speaker < 0:
        raise ValueError(f"--max-per-speaker must be >= 0, got {args.max_per_speaker}")
    speakers = [s.strip() for s in args.speakers.split(",") if s.strip()] if args.speakers else None
    report = preprocess_corpus(args.corpus, args.root, args.out, image_size=args.image_size,
                               workers=args.workers, max_per_speaker=args.max_per_speaker, speakers=speakers,
                               detector=args.detector, progress=not args.quiet, seed=args.seed,
                               au_detector=args.au_detector)
    print(summary(report))
    norm = ", norm.json" if report["kept_per_split"].get("train") else " (no training clips: no norm.json)"
    fitted = f", {report['au_detector_fitted']}" if report.get("au_detector_fitted") else ""
    print(f"written to {args.out}: clips/, manifest.json, report.json{norm}{fitted}")
    if report["clips_kept"] == 0:
        print("error: no clip survived preprocessing; see report.json for the reasons")
        return 1
    return 0
