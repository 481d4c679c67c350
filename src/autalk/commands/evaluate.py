"""``autalk evaluate``: score a trained generator on a split against copy-identity and the ground truth."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a trained generator on the test speakers (per-clip and summary CSV)",
        description="Generate every clip of a split from its first frame and its audio, score it "
        "(PSNR, SSIM, "
        "mouth LMD, mouth-opening correlation, AU F1/accuracy from the landmark detector and the AU "
        "classifier, bootstrap 95%% CIs) beside 'copy the identity frame' and the ground truth, and "
        "write <split>_clips.csv and <split>_summary.csv into <checkpoint folder>/eval/.",
    )
    p.add_argument("--run", required=True, help="run folder, e.g. runs/quick")
    p.add_argument(
        "--split", default="test", choices=("test", "train"), help="which speakers (default: test)"
    )
    p.add_argument(
        "--checkpoint",
        default=None,
        help="generator checkpoint (default: <run>/04_gan/checkpoint.pt; an ablation row: "
        "<run>/05_ablations/<row>/checkpoint.pt)",
    )
    p.add_argument("--max-clips", type=int, default=0, help="clips to score, spread over the split (0 = all)")
    p.add_argument("--device", default="cpu", help="cpu | cuda (default: cpu)")
    p.add_argument(
        "--out", default=None, help="folder for the CSVs (default: beside the checkpoint, in eval/)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autalk.evaluate import evaluate_run, format_summary

    if args.max_clips < 0:
        raise ValueError(f"--max-clips must be >= 0, got {args.max_clips}")
    res = evaluate_run(
        args.run, args.split, args.checkpoint, args.max_clips, args.device, not args.quiet, args.out
    )
    print(format_summary(res["summary"]))
    print(f"written to {res['out_dir']}: {args.split}_clips.csv, {args.split}_summary.csv")
    return 0
