"""One small trainer for every stage (Audio2AU, AU classifier, GAN): nanoGPT-sized, no framework.

``fit(stage, out_dir)`` runs the epochs of a :class:`Stage` (``autalk.stages``) and gives every stage the
same guarantees:

* device: CUDA when visible (bf16 autocast, channels_last, optional ``torch.compile``), else the CPU,
  said plainly by :func:`autalk.runtime.pick_device`;
* a tqdm bar per epoch (loss, frames/s), ``log.csv`` (one row per logged step) and TensorBoard event files
  under ``tb/`` (``tensorboard --logdir runs/quick``);
* ``checkpoint.pt`` after **every** epoch, written atomically and self-describing (weights, optimizers,
  epoch/step, the config as JSON, the RNG states of python / numpy / torch and the data order), loaded with
  ``weights_only=True`` through :mod:`autalk.checkpoint`;
* **resume**: calling ``fit`` again continues after the last complete epoch. Every epoch reseeds all RNGs
  from ``(seed, epoch, rank)`` and draws its data order from a ``DistributedSampler`` seeded the same way,
  so a run killed mid-epoch and resumed ends with the same weights as one never interrupted (same
  machine, same thread count);
* a NaN / infinite loss stops training with :class:`NonFiniteLossError` naming the step and the term;
  the last good checkpoint stays on disk untouched;
* a checkpoint made with another config is refused with a readable diff (only ``epochs`` may change,
  so a finished run can be extended);
* several processes through PyTorch's own engine: under ``torchrun`` the trainable modules are wrapped in
  ``DistributedDataParallel`` (gloo on CPU, nccl on GPU) and only rank 0 writes logs and checkpoints.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler

from autalk.checkpoint import ConfigMismatchError, config_diff, load_checkpoint, save_checkpoint

CHECKPOINT = "checkpoint.pt"
LOG = "log.csv"
METRICS = "metrics.json"


# ---- config ----


@dataclass(frozen=True)
class TrainConfig:
    """How one stage is trained. The paper gives Adam (lr 2e-4, beta1 0.5) and 20 + 20 GAN epochs
    (sec. 4.2); everything else is a per-stage choice recorded in ``params/<profile>.yaml``."""

    epochs: int = 10  # passes over the training split (GAN: phase 1 + phase 2)
    batch_size: int = 64  # samples per step (frames, or clips of seq_len frames for the GAN)
    lr: float = 2e-4  # Adam learning rate (paper: 2e-4)
    beta1: float = 0.5  # Adam beta1 (paper: 0.5)
    beta2: float = 0.999  # Adam beta2 (PyTorch default; not stated in the paper)
    seed: int = 0  # seeds every epoch's data order and RNGs
    seq_len: int = 1  # GAN: frames per training sub-sequence
    samples_per_clip: int = 1  # GAN: random sub-sequences drawn from each clip per epoch
    phase1_epochs: int = 0  # GAN: epochs without the frame discriminator (paper: 20 of 40)
    lr_d: float = 2e-4  # GAN: frame discriminator learning rate
    finetune_audio2au: bool = True  # GAN: fine-tune the pretrained Audio2AU under L_au (sec. 4.2)
    lr_audio2au: float = 1e-6  # GAN: its learning rate (paper: 1e-6)
    finetune_au_classifier: bool = True  # GAN: fine-tune the pretrained AU classifier under L_au
    lr_au_classifier: float = 1e-7  # GAN: its learning rate (paper: 1e-7)
    lr_decay: str = "none"  # "none" or "cosine": lr * (1 + cos(pi * progress)) / 2 over the whole run
    augment: bool = False  # pretraining of the AU classifier: random horizontal flips of the lower face
    per_frames: int = 0  # GAN: frames per sub-sequence that enter L_per (0 = all; the CPU profile uses 1)
    mouth_weight: float = 1.0  # GAN: L_rec weight inside the mouth box (1 = the paper's plain L1)
    compile: bool = False  # torch.compile the trainable modules (CUDA only; slow to start)
    amp: bool = True  # bf16 autocast on CUDA (ignored on the CPU)
    log_every: int = 10  # steps between log.csv / TensorBoard rows
    max_batches: int = 0  # stop each epoch after this many steps (0 = the whole epoch; smoke runs)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "seq_len", "samples_per_clip", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "lr_d"):
            if not getattr(self, name) > 0:
                raise ValueError(f"TrainConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.lr_decay not in ("none", "cosine"):
            raise ValueError(f"lr_decay must be 'none' or 'cosine', got {self.lr_decay!r}")
        if not 0 <= self.phase1_epochs <= self.epochs:
            raise ValueError(f"phase1_epochs must be in [0, epochs={self.epochs}], got {self.phase1_epochs}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"TrainConfig has no field(s) {sorted(unknown)}")
        return cls(**d)


# Fields that may differ between a checkpoint and a resumed run: extending training is allowed.
RESUMABLE_CHANGES = ("train.epochs", "train.log_every")


# ---- errors ----


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; training stopped, the last good checkpoint is kept."""


def check_finite(terms: Mapping[str, Tensor], where: str = "") -> None:
    """Raise :class:`NonFiniteLossError` naming the first loss term that is NaN or infinite."""
    for name, v in terms.items():
        if not bool(torch.isfinite(v.detach()).all()):
            raise NonFiniteLossError(f"loss term {name!r} is {float(v.detach().float().mean())}{where}")


# ---- distributed ----


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> Dist:
    """Join the process group that ``torchrun`` describes in the environment (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return Dist(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local)


def sync_buffers(modules: Iterable[nn.Module], d: Dist) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank. DDP broadcasts them before each
    forward, so after the last step every rank would otherwise hold its own; this makes replicas equal."""
    if d.world > 1:
        import torch.distributed as dist

        for m in modules:
            for b in m.buffers():
                dist.broadcast(b, 0)


def barrier(d: Dist) -> None:
    if d.world > 1:
        import torch.distributed as dist

        dist.barrier()


# ---- RNG ----


def seed_epoch(seed: int, epoch: int, rank: int = 0) -> int:
    """Reseed python, numpy and torch for one epoch; returns the seed used. Why per epoch: a resumed run
    then replays exactly the epochs an uninterrupted run would have, whatever happened before."""
    s = (int(seed) * 1_000_003 + int(epoch) * 7_919 + int(rank) * 104_729) % (2**31 - 1)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)
    return s


def rng_state() -> dict[str, Any]:
    """The RNG states of python, numpy and torch as JSON-ready lists (stored in every checkpoint)."""
    np_state = np.random.get_state()
    return {
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
        "numpy": [
            np_state[0],
            np_state[1].tolist(),
            *[float(v) if isinstance(v, float) else int(v) for v in np_state[2:]],
        ],
        "torch": torch.get_rng_state().tolist(),
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), int(n[2]), int(n[3]), float(n[4])))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))


# ---- stages ----


class Stage:
    """What ``fit`` trains. Subclasses (``autalk.stages``) set ``name``, ``modules`` (everything saved),
    ``optimizers``, ``train_cfg`` and implement ``config``, ``dataset``, ``train_step``, ``frames_in``.

    ``self.nets[name]`` is the module to call in a training step: the module itself, or its
    ``DistributedDataParallel`` wrapper under torchrun (set up by ``fit``)."""

    name: str = "stage"
    modules: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    train_cfg: TrainConfig
    device: str = "cpu"

    def __init__(self) -> None:
        self.nets: dict[str, nn.Module] = {}

    def config(self) -> dict[str, Any]:  # saved in the checkpoint and compared on resume
        raise NotImplementedError

    def dataset(self) -> Dataset:
        """The training dataset; ``ds[list_of_indices]`` returns one batch (a dict of tensors)."""
        raise NotImplementedError

    def train_step(self, batch: dict[str, Any], epoch: int) -> dict[str, Tensor]:
        """One optimisation step (backward + optimizer step inside); returns detached loss terms.
        Call :func:`check_finite` on the terms before ``backward``."""
        raise NotImplementedError

    def frames_in(self, batch: dict[str, Any]) -> int:
        raise NotImplementedError

    def trainable(self) -> list[str]:
        """Names of modules that receive gradients (wrapped in DDP under torchrun)."""
        return list(self.modules)

    def extra(self) -> dict[str, Any]:
        """JSON-ready facts saved with every checkpoint (e.g. the MFCC normalisation)."""
        return {}

    def end_epoch(self, epoch: int) -> dict[str, float]:
        """Optional numbers logged at the end of an epoch (never computed on the test split)."""
        return {}


@dataclass
class FitResult:
    out_dir: Path
    epochs_run: list[int]
    history: list[dict[str, float]]  # one summary per epoch (mean loss terms, frames/s, data wait share)
    seconds: float
    resumed_from: int | None = None
    checkpoint: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _to_device(batch: dict[str, Any], device: str) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def _loader(ds: Dataset, cfg: TrainConfig, epoch: int, d: Dist) -> tuple[DataLoader, DistributedSampler]:
    # One code path for 1 and N processes: a DistributedSampler (num_replicas=1 alone) seeded by the run's
    # seed and shuffled by set_epoch, so the data order of epoch e is a pure function of (seed, e).
    sampler = DistributedSampler(
        ds, num_replicas=d.world, rank=d.rank, shuffle=True, seed=cfg.seed, drop_last=d.world > 1
    )
    sampler.set_epoch(epoch)
    batches = BatchSampler(sampler, cfg.batch_size, drop_last=False)
    return DataLoader(ds, sampler=batches, batch_size=None, num_workers=0), sampler


class _Log:
    """log.csv (one row per logged step) and TensorBoard; rank 0 only."""

    def __init__(self, out_dir: Path, keep_before_epoch: int, enabled: bool) -> None:
        self.enabled = enabled
        self.path = out_dir / LOG
        self.rows: list[dict[str, Any]] = []
        self.tb = None
        if not enabled:
            return
        if self.path.is_file():  # resume: keep only rows of complete epochs
            with open(self.path) as f:
                self.rows = [r for r in csv.DictReader(f) if int(r["epoch"]) < keep_before_epoch]
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:  # pragma: no cover - tensorboard is a pinned dependency
            raise ImportError(
                "TensorBoard logging needs the `tensorboard` package (pip install "
                "tensorboard, pinned in requirements.txt)"
            ) from e
        self.tb = SummaryWriter(str(out_dir / "tb"), purge_step=None)

    def add(self, row: dict[str, Any], step: int) -> None:
        if not self.enabled:
            return
        self.rows.append(row)
        for k, v in row.items():
            if k not in ("epoch", "step") and isinstance(v, float | int):
                self.tb.add_scalar(k, v, step)

    def flush(self) -> None:
        if not self.enabled or not self.rows:
            return
        from autalk.fsutil import atomic_open

        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        with atomic_open(self.path, "w") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(self.rows)
        self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def read_log(out_dir: str | os.PathLike[str]) -> list[dict[str, float]]:
    """The rows of a run's log.csv as floats (empty cells -> NaN)."""
    p = Path(out_dir) / LOG
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found: the stage has not been trained yet")
    with open(p) as f:
        return [
            {k: float(v) if v not in ("", None) else math.nan for k, v in r.items()}
            for r in csv.DictReader(f)
        ]


def _check_resume_config(path: Path, saved: dict[str, Any], expected: dict[str, Any]) -> None:
    # A pretraining stage names the model fields it uses; the others (e.g. GAN widths) may change freely.
    used = expected.get("model_fields_used")
    ignore = {f"model.{k}" for k in expected.get("model", {}) if used is not None and k not in used}
    diff = [
        line
        for line in config_diff(saved, expected)
        if line.split(":")[0] not in RESUMABLE_CHANGES and line.split(":")[0] not in ignore
    ]
    if diff:
        raise ConfigMismatchError(
            f"{path} was saved with a different config ({len(diff)} field(s) differ):\n  "
            + "\n  ".join(diff)
            + f"\nTo start this stage afresh, delete {path.parent} (or pass --fresh); to keep it, use its "
            "config."
        )


def set_lr(optimizers: Iterable[torch.optim.Optimizer], cfg: TrainConfig, progress: float) -> None:
    """Apply ``cfg.lr_decay`` at ``progress`` in [0, 1) of the run. The schedule is a pure function of the
    position in the run (each group keeps its ``initial_lr``), so a resumed run gets the same rates."""
    if cfg.lr_decay == "none":
        return
    factor = 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    for opt in optimizers:
        for g in opt.param_groups:
            g.setdefault("initial_lr", g["lr"])
            g["lr"] = g["initial_lr"] * factor


def fit(
    stage: Stage,
    out_dir: str | os.PathLike[str],
    *,
    resume: bool = True,
    progress: bool = True,
    dist: Dist | None = None,
) -> FitResult:
    """Train ``stage`` for ``stage.train_cfg.epochs`` epochs, writing into ``out_dir`` (see module doc)."""
    from tqdm.auto import tqdm

    cfg = stage.train_cfg
    d = dist or Dist()
    out = Path(out_dir)
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT
    config = stage.config()
    history: list[dict[str, float]] = []
    start_epoch, step, resumed_from = 0, 0, None
    if resume and ckpt_path.is_file():
        ckpt = load_checkpoint(ckpt_path)
        _check_resume_config(ckpt_path, ckpt.config, json.loads(json.dumps(config)))
        load_checkpoint(ckpt_path, modules=stage.modules, optimizers=stage.optimizers)
        start_epoch = int(ckpt.extra["epoch"]) + 1
        step = int(ckpt.step)
        history = list(ckpt.extra.get("history", []))
        set_rng_state(ckpt.extra["rng"])
        resumed_from = start_epoch - 1
        if d.main and progress:
            print(f"{stage.name}: resuming after epoch {start_epoch} of {cfg.epochs} from {ckpt_path}")
    elif not resume and ckpt_path.is_file() and d.main:
        ckpt_path.unlink()

    stage.nets = dict(stage.modules)
    if d.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        dev_ids = [d.local_rank] if stage.device.startswith("cuda") else None
        for name in stage.trainable():
            stage.nets[name] = DDP(stage.modules[name], device_ids=dev_ids)
    if cfg.compile and stage.device.startswith("cuda"):
        for name in stage.trainable():
            stage.nets[name] = torch.compile(stage.nets[name])

    amp = bool(cfg.amp and stage.device.startswith("cuda"))  # bf16 needs no GradScaler
    ds = stage.dataset()
    log = _Log(out, start_epoch, enabled=d.main)
    t_start = time.perf_counter()
    epochs_run: list[int] = []
    try:
        for epoch in range(start_epoch, cfg.epochs):
            seed_epoch(cfg.seed, epoch, d.rank)
            loader, _ = _loader(ds, cfg, epoch, d)
            n_batches = len(loader) if not cfg.max_batches else min(len(loader), cfg.max_batches)
            bar = tqdm(
                total=n_batches,
                desc=f"{stage.name} epoch {epoch + 1}/{cfg.epochs}",
                disable=not (progress and d.main),
                leave=False,
                unit="step",
            )
            sums: dict[str, float] = {}
            n_frames, t_data, t_epoch = 0, 0.0, time.perf_counter()
            it: Iterator[dict[str, Any]] = iter(loader)
            for i in range(n_batches):
                set_lr(stage.optimizers.values(), cfg, (epoch + i / n_batches) / cfg.epochs)
                t0 = time.perf_counter()
                batch = _to_device(next(it), stage.device)
                t_data += time.perf_counter() - t0
                try:
                    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):  # no-op on the CPU
                        terms = stage.train_step(batch, epoch)
                except NonFiniteLossError as e:
                    last = (
                        f"the last good checkpoint {ckpt_path} (after epoch {start_epoch + len(epochs_run)}) "
                        "is kept"
                        if ckpt_path.is_file()
                        else "no checkpoint was written yet"
                    )
                    raise NonFiniteLossError(
                        f"{stage.name}: {e} at epoch {epoch + 1}, step {step + 1}; "
                        f"training stopped and {last}. Try a lower learning rate."
                    ) from e
                step += 1
                n_frames += stage.frames_in(batch) * d.world
                vals = {k: float(v) for k, v in terms.items()}
                for k, v in vals.items():
                    sums[k] = sums.get(k, 0.0) + v
                elapsed = time.perf_counter() - t_epoch
                fps = n_frames / max(elapsed, 1e-9)
                if step % cfg.log_every == 0 or i == n_batches - 1:
                    log.add(
                        {
                            "epoch": epoch,
                            "step": step,
                            **vals,
                            "frames_per_s": fps,
                            "data_wait_share": t_data / max(elapsed, 1e-9),
                        },
                        step,
                    )
                bar.set_postfix({**{k: f"{v:.3f}" for k, v in list(vals.items())[:3]}, "fr/s": f"{fps:.0f}"})
                bar.update(1)
            bar.close()
            elapsed = time.perf_counter() - t_epoch
            summary = {
                "epoch": epoch,
                "steps": n_batches,
                "seconds": elapsed,
                "frames_per_s": n_frames / max(elapsed, 1e-9),
                "data_wait_share": t_data / max(elapsed, 1e-9),
                **{k: v / max(n_batches, 1) for k, v in sums.items()},
            }
            sync_buffers(stage.modules.values(), d)
            summary.update(stage.end_epoch(epoch))
            history.append(summary)
            epochs_run.append(epoch)
            if d.main:
                log.flush()
                save_checkpoint(
                    ckpt_path,
                    stage.modules,
                    config,
                    step,
                    optimizers=stage.optimizers,
                    extra={
                        "epoch": epoch,
                        "epochs": cfg.epochs,
                        "history": history,
                        "rng": rng_state(),
                        "stage": stage.name,
                        "data_order": {
                            "sampler": "DistributedSampler",
                            "seed": cfg.seed,
                            "epoch": epoch,
                            "world": d.world,
                            "batch_size": cfg.batch_size,
                        },
                        "complete": epoch + 1 >= cfg.epochs,
                        **stage.extra(),
                    },
                )
                if progress:
                    terms_txt = ", ".join(
                        f"{k} {v:.4f}"
                        for k, v in summary.items()
                        if k not in ("epoch", "steps", "seconds", "frames_per_s", "data_wait_share")
                    )
                    print(
                        f"{stage.name} epoch {epoch + 1}/{cfg.epochs}: {terms_txt} | {elapsed:.1f} s, "
                        f"{summary['frames_per_s']:.0f} frames/s, "
                        f"data wait {100 * summary['data_wait_share']:.1f}%"
                    )
            barrier(d)
    finally:
        log.close()
    return FitResult(
        out_dir=out,
        epochs_run=epochs_run,
        history=history,
        seconds=time.perf_counter() - t_start,
        resumed_from=resumed_from,
        checkpoint=ckpt_path if ckpt_path.is_file() else None,
    )


def adam(params: Iterable[Any], cfg: TrainConfig, lr: float | None = None) -> torch.optim.Adam:
    """Adam with the run's betas (paper: beta1 0.5)."""
    return torch.optim.Adam(params, lr=cfg.lr if lr is None else lr, betas=(cfg.beta1, cfg.beta2))
