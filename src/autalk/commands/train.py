"""``autalk train``: the training stages (02 Audio2AU, 03 AU classifier, 04 GAN), as the notebooks run them.

Several GPUs or machines: ``torchrun --nproc_per_node N -m autalk train STAGE ...`` runs
DistributedDataParallel (see the README); only rank 0 writes logs and checkpoints.
"""

from __future__ import annotations

import argparse

STAGE_ARGS = {"audio2au": "audio2au", "au-classifier": "au_classifier", "generator": "generator"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a stage: audio2au, au-classifier or generator",
        description="Train one stage of the paper's method into runs/<profile>/<stage>/ (checkpoint.pt after "
        "every epoch, log.csv, TensorBoard events under tb/, metrics.json). Rerunning the same "
        "command resumes after the last complete epoch.",
    )
    p.add_argument("stage", choices=list(STAGE_ARGS), help="which stage to train")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--profile", default=None, help="smoke | quick | paper (reads params/<profile>.yaml)")
    g.add_argument("--config", default=None, metavar="YAML", help="a profile file, e.g. params/quick.yaml")
    p.add_argument("--run", default=None, help="run folder holding 01_preprocess/ (default: runs/<profile>)")
    p.add_argument("--epochs", type=int, default=None, help="override the profile's epochs for this stage")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any profile key, e.g. --set a2au_lr=5e-4 (repeatable)",
    )
    p.add_argument("--device", default=None, help="auto | cpu | cuda (default: the profile's)")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint and start over")
    p.add_argument(
        "--ablation",
        default=None,
        help="generator only: a Table 2 row (baseline, +per, +id, +adv, "
        "+au, full); its run goes to 05_ablations/<row>",
    )
    p.add_argument(
        "--baseline",
        default=None,
        choices=("cran", "speech2vid"),
        help="generator only: a Table 1 baseline; its run goes to 05_ablations/<name>",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def load_params(args: argparse.Namespace) -> dict:
    from autalk import profiles

    params = profiles.load_profile(args.config or args.profile or "quick")
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or key not in params:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE with KEY one of the profile's keys")
        old = params[key]
        params[key] = (
            type(old)(float(value)) if isinstance(old, int | float) and not isinstance(old, bool) else value
        )
    return params


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from autalk import profiles, runtime, stages
    from autalk.train import init_distributed

    params = load_params(args)
    stage = STAGE_ARGS[args.stage]
    if args.epochs is not None:
        key = {"audio2au": "a2au_epochs", "au_classifier": "aucls_epochs"}.get(stage)
        if key is None:  # generator: phase 1 keeps its length, phase 2 takes the rest
            params["gan_epochs_phase2"] = max(0, args.epochs - int(params["gan_epochs_phase1"]))
            params["gan_epochs_phase1"] = min(int(params["gan_epochs_phase1"]), args.epochs)
        else:
            params[key] = args.epochs
    if (args.ablation or args.baseline) and stage != "generator":
        raise ValueError("--ablation and --baseline apply to `autalk train generator` only")
    run_dir = Path(args.run) if args.run else profiles.project_root() / "runs" / str(params["profile"])
    device = runtime.pick_device(args.device or str(params.get("device", "auto")), verbose=True)
    dist = init_distributed(device)
    if dist.world > 1 and device.startswith("cuda"):
        import torch

        device = f"cuda:{dist.local_rank}"
        torch.cuda.set_device(dist.local_rank)
    runtime.seed_everything(int(params.get("seed", 0)))
    if stage == "generator":
        res = stages.train_generator(
            run_dir,
            params,
            device=device,
            resume=not args.fresh,
            progress=not args.quiet,
            dist=dist,
            ablation=args.ablation,
            baseline=args.baseline,
        )
    else:
        res = stages.pretrain(
            stage, run_dir, params, device=device, resume=not args.fresh, progress=not args.quiet, dist=dist
        )
    if dist.main:
        print(stages.describe_result(stage, res))
    return 0
