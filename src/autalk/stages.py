"""The training stages that ``autalk.train.fit`` runs, and the profile keys that configure them.

==========  ==============================  =====================================  ======================
stage       notebook                        what is trained                        writes
==========  ==============================  =====================================  ======================
audio2au    02_audio2au_pretraining         5 Audio2AU modules on MFCC windows     runs/<p>/02_audio2au/
au_cls      03_au_classifier_pretraining    AU classifier on real lower faces      runs/<p>/03_au_classifier/
generator   04_gan_training                 generator + frame D (+ fine-tuning)    runs/<p>/04_gan/
==========  ==============================  =====================================  ======================

The pretraining stages see single frames: :class:`FrameTable` holds every frame of a split in memory
(MFCC window, AU labels, lower half of the face crop) and returns a whole batch per index list.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from autalk import PAPER_AUS
from autalk.audio import NormStats
from autalk.checkpoint import load_checkpoint
from autalk.config import LossConfig, ModelConfig, to_dict
from autalk.data.cache import NORM, load_clip, loss_weights, read_manifest
from autalk.fsutil import atomic_write_json
from autalk.losses import weighted_bce_loss, weighted_dice_loss
from autalk.networks import AUClassifier, Audio2AUBank
from autalk.profiles import STAGES, MissingStageError
from autalk.train import METRICS, Stage, TrainConfig, adam, check_finite, fit

AU_NAMES = tuple(f"AU{a}" for a in PAPER_AUS)

# Stage name (CLI) -> (run folder, the notebook that trains it).
STAGE_DIRS: dict[str, str] = {
    "audio2au": "02_audio2au",
    "au_classifier": "03_au_classifier",
    "generator": "04_gan",
}


# ---- profiles -> configs ----

# The ModelConfig fields each pretrained module depends on: only these must match between stages.
MODULE_FIELDS: dict[str, tuple[str, ...]] = {
    "audio2au": ("n_mfcc", "mfcc_steps", "aus", "au_feature_dim", "a2au_channels", "a2au_lstm_hidden"),
    "au_classifier": ("image_size", "aus", "au_cls_channels", "au_cls_hidden"),
}


def model_config(p: dict[str, Any], **overrides: Any) -> ModelConfig:
    """The one ModelConfig every stage of a profile shares (so 02/03 weights load into 04)."""
    c, a, k = int(p["base_channels"]), int(p["audio_channels"]), int(p["au_cls_channels"])
    return ModelConfig(
        image_size=int(p["image_size"]),
        id_dim=int(p["id_dim"]),
        audio_dim=int(p["audio_dim"]),
        au_feature_dim=int(p["au_feature_dim"]),
        rnn_hidden=int(p["rnn_hidden"]),
        base_channels=c,
        audio_channels=(a, 2 * a, 4 * a, 4 * a, 8 * a),
        a2au_channels=int(p["a2au_channels"]),
        a2au_lstm_hidden=int(p["a2au_lstm_hidden"]),
        au_cls_channels=(k, k, 2 * k, 2 * k),
        au_cls_hidden=(int(p["au_cls_hidden"]), int(p["au_cls_hidden"]) // 4),
        disc_channels=int(p["disc_channels"]),
        **overrides,
    )


def train_config(p: dict[str, Any], stage: str) -> TrainConfig:
    """TrainConfig of one stage from the flat profile keys (``a2au_*``, ``aucls_*``, ``gan_*``)."""
    seed = int(p.get("seed", 0))
    if stage in ("audio2au", "au_classifier"):
        k = "a2au" if stage == "audio2au" else "aucls"  # the two pretraining stages share their key names
        return TrainConfig(
            epochs=int(p[f"{k}_epochs"]),
            batch_size=int(p[f"{k}_batch"]),
            lr=float(p[f"{k}_lr"]),
            seed=seed,
            max_batches=int(p["max_batches"]),
            lr_decay=str(p[f"{k}_lr_decay"]),
            augment=bool(p.get(f"{k}_augment", False)),
        )
    if stage == "generator":
        e1, e2 = int(p["gan_epochs_phase1"]), int(p["gan_epochs_phase2"])
        return TrainConfig(
            epochs=e1 + e2,
            phase1_epochs=e1,
            batch_size=int(p["gan_batch"]),
            seq_len=int(p["gan_seq_len"]),
            samples_per_clip=int(p["gan_samples_per_clip"]),
            lr=float(p["gan_lr"]),
            lr_d=float(p["gan_lr_d"]),
            seed=seed,
            lr_audio2au=float(p["finetune_lr_audio2au"]),
            lr_au_classifier=float(p["finetune_lr_au_classifier"]),
            finetune_audio2au=float(p["finetune_lr_audio2au"]) > 0,
            finetune_au_classifier=float(p["finetune_lr_au_classifier"]) > 0,
            mouth_weight=float(p["gan_mouth_weight"]),
            max_batches=int(p["max_batches"]),
            lr_decay=str(p["gan_lr_decay"]),
            per_frames=int(p["gan_per_frames"]),
        )
    raise ValueError(f"unknown stage {stage!r}; expected one of {list(STAGE_DIRS)}")


def cache_dir(run: str | os.PathLike[str]) -> Path:
    return Path(run) / "01_preprocess"


def require_stage(run: str | os.PathLike[str], stage_dir: str, what: str = "manifest.json") -> Path:
    """``runs/<p>/<stage_dir>/<what>`` or a :class:`MissingStageError` naming the notebook and command."""
    p = Path(run) / stage_dir / what
    if p.exists():
        return p
    nb = STAGES.get(stage_dir, stage_dir)
    cli = {
        "01_preprocess": "autalk preprocess ... --out " + str(Path(run) / "01_preprocess"),
        "02_audio2au": f"autalk train audio2au --run {run}",
        "03_au_classifier": f"autalk train au-classifier --run {run}",
        "04_gan": f"autalk train generator --run {run}",
    }.get(stage_dir, "")
    raise MissingStageError(f"{p} not found. Run {nb} first" + (f" (or `{cli}`)." if cli else "."))


# ---- data ----


class FrameTable(Dataset):
    """Every frame of one split, in memory: ``mfcc`` (N,12,28) normalised with the cache's norm.json,
    ``au`` (N,A) 0/1, and (``images=True``) ``lower`` (N,S/2,S,3) uint8 lower face halves.

    ``table[[i, j, ...]]`` -> a batch dict: ``mfcc`` (B,1,12,28) (one-frame sequences, as Audio2AU takes
    (B,T,12,28)), ``au`` (B,A), ``lower`` (B,3,S/2,S) float in [-1,1] when images are loaded."""

    def __init__(
        self, cache: str | os.PathLike[str], split: str, images: bool = False, augment: bool = False
    ) -> None:
        self.cache = Path(cache)
        manifest = read_manifest(self.cache)
        clips = [c for c in manifest["clips"] if c["split"] == split]
        if not clips:
            raise ValueError(f"{self.cache}: the {split!r} split has no clips")
        norm = NormStats.load(self.cache / NORM)
        keys = ["mfcc", "au_presence"] + (["frames"] if images else [])
        mf, au, lo, idx = [], [], [], []
        for k, c in enumerate(clips):
            d = load_clip(self.cache / c["path"], keys=keys)
            mf.append(norm.apply(d["mfcc"].astype(np.float32)).astype(np.float32))
            au.append(d["au_presence"].astype(np.float32))
            if images:
                s = d["frames"].shape[1]
                lo.append(np.ascontiguousarray(d["frames"][:, s // 2 :]))
            idx.append(np.stack([np.full(len(d["mfcc"]), k), np.arange(len(d["mfcc"]))], 1))
        self.clips = clips
        self.mfcc = torch.from_numpy(np.concatenate(mf))
        self.au = torch.from_numpy(np.concatenate(au))
        self.lower = np.concatenate(lo) if images else None
        self.index = np.concatenate(idx)  # (N, 2): clip number, frame number
        self.split = split
        self.augment = augment  # random horizontal flips of the lower face (training only)

    def __len__(self) -> int:
        return len(self.au)

    def __getitem__(self, idx: list[int] | int) -> dict[str, Tensor]:
        ids = [idx] if isinstance(idx, int) else list(idx)
        out = {"mfcc": self.mfcc[ids].unsqueeze(1), "au": self.au[ids]}
        if self.lower is not None:
            x = self.lower[ids]
            if self.augment:  # the five mouth AUs are (near) symmetric: a mirrored mouth keeps its labels
                flip = np.random.random(len(ids)) < 0.5
                x = np.where(flip[:, None, None, None], x[:, :, ::-1], x)
            out["lower"] = lower_to_tensor(x).contiguous(memory_format=torch.channels_last)
        return out

    def occurrence(self) -> np.ndarray:
        return self.au.mean(0).numpy()


def lower_to_tensor(x: np.ndarray) -> Tensor:
    """uint8 (B,h,w,3) -> float (B,3,h,w) in [-1,1]: the dataset's image scaling (``dataset.to_image``)."""
    from autalk.data.dataset import to_image

    return to_image(x)


# ---- scores ----


def au_scores(prob: np.ndarray, labels: np.ndarray, threshold: float | np.ndarray = 0.5) -> dict[str, Any]:
    """Per-AU F1 = 2TP/(2TP+FP+FN) and accuracy (TP+TN)/N of ``prob > threshold`` against 0/1 labels
    (N,A), their means over the AUs (the paper's Table 4 layout) and the AUs' occurrence rates."""
    from autalk.metrics import au_scores as scores

    s = scores(np.asarray(prob) > np.asarray(threshold), np.asarray(labels))
    return {
        "f1": s["f1"],
        "acc": s["acc"],
        "mean_f1": s["f1_mean"],
        "mean_acc": s["acc_mean"],
        "n_frames": s["n"],
        "rate": {n: float(r) for n, r in zip(AU_NAMES, np.asarray(labels).mean(0), strict=True)},
    }


def trivial_prior_prob(train_rates: np.ndarray, n: int) -> np.ndarray:
    """The "always the training prior" predictor: every frame gets the training occurrence rate, so an
    AU is predicted present everywhere iff it is present in more than half of the training frames."""
    return np.broadcast_to(np.asarray(train_rates, dtype=np.float32), (n, len(train_rates))).copy()


@torch.no_grad()
def predict_table(
    model: nn.Module,
    table: FrameTable,
    key: str,
    device: str = "cpu",
    batch: int = 1024,
    features: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """AU probabilities (N,A) of ``model`` over every frame of ``table`` (``key`` "mfcc" or "lower");
    with ``features`` also the Audio2AU bank's penultimate features (N, A*F)."""
    model.eval()
    probs, feats = [], []
    for s in range(0, len(table), batch):
        b = table[list(range(s, min(s + batch, len(table))))]
        x = b[key].to(device)
        if isinstance(model, Audio2AUBank):
            logits, f = model(x)
            logits, f = logits[:, 0], f[:, 0]
            feats.append(f.cpu().numpy())
        else:
            logits = model(x)
        probs.append(torch.sigmoid(logits.float()).cpu().numpy())
    p = np.concatenate(probs)
    return (p, np.concatenate(feats)) if features else p


def classifier_report(
    model: nn.Module, cache: str | os.PathLike[str], key: str, train: FrameTable, device: str = "cpu"
) -> dict[str, Any]:
    """Scores on the train and the held-out test speakers, beside the trivial prior predictor."""
    test = FrameTable(cache, "test", images=key == "lower")
    rates = train.occurrence()
    p_train, p_test = predict_table(model, train, key, device), predict_table(model, test, key, device)
    return {
        "threshold": 0.5,
        "train_speakers": sorted({c["speaker"] for c in train.clips}),
        "test_speakers": sorted({c["speaker"] for c in test.clips}),
        "train": au_scores(p_train, train.au.numpy()),
        "test": au_scores(p_test, test.au.numpy()),
        "trivial_test": au_scores(trivial_prior_prob(rates, len(test)), test.au.numpy()),
        "trivial_train": au_scores(trivial_prior_prob(rates, len(train)), train.au.numpy()),
    }


# ---- stage 02: Audio2AU ----


def _data_fingerprint(cache: Path) -> dict[str, Any]:
    m = read_manifest(cache)
    return {
        "train_speakers": m["splits"]["train"],
        "test_speakers": m["splits"]["test"],
        "n_clips": m["n_clips"],
        "image_size": m.get("image_size"),
    }


class _FrameStage(Stage):
    """Shared by the two pretraining stages: one model, Adam, L_au (Eq. 3) with the cache's w_i."""

    key = "mfcc"
    module_name = "model"

    def __init__(
        self,
        cache: str | os.PathLike[str],
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        device: str = "cpu",
        dice_eps: float = 1.0,
    ) -> None:
        super().__init__()
        self.cache = Path(cache)
        require_stage(self.cache.parent, self.cache.name)
        self.model_cfg, self.train_cfg, self.device, self.dice_eps = model_cfg, train_cfg, device, dice_eps
        self.weights = torch.as_tensor(loss_weights(self.cache)).to(device)
        self.model = self.build().to(device)
        self.modules = {self.module_name: self.model}
        self.optimizers = {self.module_name: adam(self.model.parameters(), train_cfg)}
        self.nets = dict(self.modules)
        self._table: FrameTable | None = None

    def build(self) -> nn.Module:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {
            "stage": self.name,
            "model": to_dict(self.model_cfg),
            "model_fields_used": list(MODULE_FIELDS[self.name]),
            "train": to_dict(self.train_cfg),
            "loss": {
                "L_au": "Eq. 3 = weighted BCE (Eq. 1) + weighted Dice (Eq. 2)",
                "weights_w_i": [round(float(w), 6) for w in self.weights],
                "dice_eps": self.dice_eps,
            },
            "data": _data_fingerprint(self.cache),
        }

    def dataset(self) -> FrameTable:
        if self._table is None:
            self._table = FrameTable(
                self.cache, "train", images=self.key == "lower", augment=self.train_cfg.augment
            )
        return self._table

    def logits(self, batch: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError

    def train_step(self, batch: dict[str, Any], epoch: int) -> dict[str, Tensor]:
        self.model.train()
        logits = self.logits(batch)  # (B,A)
        y = batch["au"]
        bce = weighted_bce_loss(logits, y, self.weights)
        dice = weighted_dice_loss(logits, y, self.weights, self.dice_eps)
        loss = bce + dice  # L_au, Eq. 3
        check_finite({"L_au": loss})
        opt = self.optimizers[self.module_name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"L_au": loss.detach(), "L_bce": bce.detach(), "L_dice": dice.detach()}

    def frames_in(self, batch: dict[str, Any]) -> int:
        return int(batch["au"].shape[0])

    def extra(self) -> dict[str, Any]:
        return {"mfcc_norm": NormStats.load(self.cache / NORM).to_dict()}


class Audio2AUStage(_FrameStage):
    """Notebook 02: the five Audio2AU modules (sec. 3.1), each predicting its AU from one 280 ms MFCC
    window, trained jointly under L_au with the training split's w_i."""

    name = "audio2au"
    key = "mfcc"
    module_name = "audio2au"

    def build(self) -> nn.Module:
        return Audio2AUBank(self.model_cfg)

    def logits(self, batch: dict[str, Tensor]) -> Tensor:
        return self.nets[self.module_name](batch["mfcc"])[0][:, 0]  # (B,1,A) -> (B,A)


class AUClassifierStage(_FrameStage):
    """Notebook 03: the AU classifier on the lower half of real face crops (sec. 3.1), under L_au."""

    name = "au_classifier"
    key = "lower"
    module_name = "au_classifier"

    def build(self) -> nn.Module:
        # channels_last: measured 1.2-1.3x faster for these small convolutions on this CPU as well
        return AUClassifier(self.model_cfg).to(memory_format=torch.channels_last)

    def logits(self, batch: dict[str, Tensor]) -> Tensor:
        return self.nets[self.module_name](batch["lower"])


def pretrain(
    stage_name: str,
    run: str | os.PathLike[str],
    params: dict[str, Any],
    device: str = "cpu",
    resume: bool = True,
    progress: bool = True,
    dist: Any = None,
) -> dict[str, Any]:
    """Train stage 02 or 03 of a profile into ``run/<stage dir>`` and write its metrics.json.

    The function the notebooks and ``autalk train audio2au|au-classifier`` call."""
    from autalk.train import Dist

    d = dist or Dist()
    run = Path(run)
    cache = cache_dir(run)
    require_stage(run, "01_preprocess")
    mcfg, tcfg = model_config(params), train_config(params, stage_name)
    cls = {"audio2au": Audio2AUStage, "au_classifier": AUClassifierStage}[stage_name]
    stage = cls(cache, mcfg, tcfg, device)
    out = run / STAGE_DIRS[stage_name]
    t0 = time.perf_counter()
    res = fit(stage, out, resume=resume, progress=progress, dist=d)
    metrics: dict[str, Any] = {}
    if d.main:
        metrics = classifier_report(stage.model, cache, stage.key, stage.dataset(), device)
        metrics.update(
            {
                "stage": stage_name,
                "epochs": tcfg.epochs,
                "train_seconds_this_call": res.seconds,
                "train_seconds_total": sum(h["seconds"] for h in res.history),
                "wall_seconds": time.perf_counter() - t0,
                "device": device,
                "threads": torch.get_num_threads(),
                "world": d.world,
            }
        )
        atomic_write_json(out / METRICS, metrics)
    return metrics


def load_pretrained(
    run: str | os.PathLike[str], stage_name: str, model_cfg: ModelConfig | None = None, device: str = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """The trained module of stage 02 or 03 and its checkpoint config; refuses another model config."""
    folder = STAGE_DIRS[stage_name]
    path = require_stage(run, folder, "checkpoint.pt")
    ck = load_checkpoint(path)
    saved = ModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in ck.config["model"].items()})
    if model_cfg is not None:
        from autalk.checkpoint import ConfigMismatchError, config_diff

        keep = MODULE_FIELDS[stage_name]
        diff = config_diff(
            {k: v for k, v in to_dict(saved).items() if k in keep},
            {k: v for k, v in to_dict(model_cfg).items() if k in keep},
        )
        if diff:
            raise ConfigMismatchError(
                f"{path} was trained with another model config:\n  "
                + "\n  ".join(diff)
                + f"\nRetrain it: {STAGES[folder]} or `autalk train "
                f"{stage_name.replace('_', '-')} --fresh`."
            )
    model = (Audio2AUBank if stage_name == "audio2au" else AUClassifier)(saved)
    name = {"audio2au": "audio2au", "au_classifier": "au_classifier"}[stage_name]
    load_checkpoint(path, modules={name: model})
    if not ck.extra.get("complete", False):
        print(
            f"note: {path} is from an unfinished run (epoch {ck.extra.get('epoch', 0) + 1} of "
            f"{ck.extra.get('epochs')})"
        )
    return model.to(device).eval(), ck.config


def read_metrics(run: str | os.PathLike[str], stage_name: str) -> dict[str, Any]:
    return json.loads(require_stage(run, STAGE_DIRS[stage_name], METRICS).read_text())


# ---- stage 04: the GAN ----


class BatchedClips(Dataset):
    """``ClipDataset`` (random sub-sequences) indexed by a list -> one collated batch."""

    def __init__(self, clips: Any) -> None:
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, idx: list[int]) -> dict[str, Any]:
        from torch.utils.data import default_collate

        return default_collate([self.clips[i] for i in idx])


def mouth_box(cache: str | os.PathLike[str], split: str = "train", margin: float = 0.25) -> tuple[int, ...]:
    """(y0, y1, x0, x1) in crop pixels: the box around dlib mouth points 48..67 averaged over every frame
    of ``split`` (the training speakers), widened by ``margin`` of its size on each side. The crops are
    aligned per clip, so one box covers the mouth of every frame well enough to weight L_rec."""
    cache = Path(cache)
    m = read_manifest(cache)
    pts = [
        load_clip(cache / c["path"], keys=["landmarks"])["landmarks"][:, 48:68]
        for c in m["clips"]
        if c["split"] == split
    ]
    allp = np.concatenate(pts).reshape(-1, 2)
    lo, hi = np.percentile(allp, 2, axis=0), np.percentile(allp, 98, axis=0)  # robust to a bad landmark
    size = np.maximum(hi - lo, 0.1 * float(read_manifest(cache).get("image_size") or 64))  # never empty
    lo, hi = lo - margin * size, hi + margin * size
    s = int(m.get("image_size") or read_manifest(cache)["clips"][0].get("image_size", 64))
    x0, y0 = (int(max(0, np.floor(v))) for v in lo)
    x1, y1 = (int(min(s, np.ceil(v))) for v in hi)
    return (y0, y1, x0, x1)


def mouth_weight_map(size: int, box: tuple[int, ...], weight: float) -> Tensor:
    """(1,1,1,S,S) map: ``weight`` inside the mouth box, 1 elsewhere (broadcasts over B,T,C)."""
    w = torch.ones(size, size)
    y0, y1, x0, x1 = box
    w[y0:y1, x0:x1] = weight
    return w.view(1, 1, 1, size, size)


class GANStage(Stage):
    """Notebook 04: the generator (with the pretrained Audio2AU bank), the pretrained AU classifier on
    the lower half of generated frames, the frame discriminator, and L_total of Eq. 8 (sec. 3.2, 4.2).

    Phase 1 (``train_cfg.phase1_epochs``) trains without the frame discriminator, phase 2 with it. The
    generator optimizer has one parameter group per learning rate: the generator proper (lr), the
    Audio2AU bank (``lr_audio2au``, paper 1e-6) and the AU classifier (``lr_au_classifier``, 1e-7)."""

    name = "generator"

    def __init__(
        self,
        cache: str | os.PathLike[str],
        exp: Any,
        train_cfg: TrainConfig,
        device: str = "cpu",
        audio2au: nn.Module | None = None,
        au_classifier: nn.Module | None = None,
        baseline: str | None = None,
        mouth: tuple[int, ...] | None = None,
    ) -> None:
        from autalk.config import ExperimentConfig
        from autalk.networks import FrameDiscriminator, Generator

        super().__init__()
        self.cache = Path(cache)
        self.exp: ExperimentConfig = exp
        self.train_cfg, self.device, self.baseline = train_cfg, device, baseline
        mcfg, lcfg = exp.model, exp.loss
        if lcfg.au_occurrence_rates is None:
            rates = read_manifest(self.cache)["au_occurrence_rates"]
            lcfg = replace(lcfg, au_occurrence_rates=tuple(float(rates[f"AU{a:02d}"]) for a in mcfg.aus))
            self.exp = exp = replace(exp, loss=lcfg)
        self.seq_d: nn.Module | None = None
        if baseline is None:
            self.generator: nn.Module = Generator(mcfg)
        else:
            from autalk.baselines import build_baseline

            self.generator, ds = build_baseline(baseline, mcfg)
            self.seq_d = ds.get("sequence")
        if mcfg.use_audio2au and baseline is None:
            if audio2au is None:
                raise ValueError("the generator uses Audio2AU: pass the pretrained bank (stage 02)")
            self.generator.audio2au.load_state_dict(audio2au.state_dict())
        self.modules = {"generator": self.generator}
        uses_d = (lcfg.adv and baseline is None) or baseline == "cran"
        self.discriminator = FrameDiscriminator(mcfg) if uses_d else None
        if self.discriminator is not None:
            self.modules["discriminator"] = self.discriminator
        if self.seq_d is not None:
            self.modules["sequence_discriminator"] = self.seq_d
        self.au_classifier = None
        if lcfg.au and baseline is None:
            if au_classifier is None:
                raise ValueError("L_au is on: pass the pretrained AU classifier (stage 03)")
            self.au_classifier = AUClassifier(mcfg)
            self.au_classifier.load_state_dict(au_classifier.state_dict())
            self.modules["au_classifier"] = self.au_classifier
        for m in self.modules.values():
            # channels_last: the small convolutions run ~1.25x faster on this CPU too (benchmarks/train.py)
            m.to(device, memory_format=torch.channels_last)
        self.vgg = None
        if lcfg.per and baseline is None:
            from autalk.vgg import VGG19Features

            self.vgg = VGG19Features(lcfg.vgg_layers, weights=lcfg.vgg_weights).to(
                device, memory_format=torch.channels_last
            )
        self.mouth = mouth or mouth_box(self.cache)
        self.weight_map = mouth_weight_map(mcfg.image_size, self.mouth, train_cfg.mouth_weight).to(device)
        self.optimizers = {
            "generator": torch.optim.Adam(self.param_groups(), betas=(train_cfg.beta1, train_cfg.beta2))
        }
        if self.discriminator is not None or self.seq_d is not None:
            d_params = [p for m in (self.discriminator, self.seq_d) if m is not None for p in m.parameters()]
            self.optimizers["discriminator"] = adam(d_params, train_cfg, lr=train_cfg.lr_d)
        self._data: BatchedClips | None = None
        self.nets = dict(self.modules)  # fit() swaps in DDP wrappers under torchrun
        self.sample_dir: Path | None = None  # train_generator sets it on the rank that writes
        self.n_samples = 6
        self._samples: list[dict[str, Any]] | None = None

    def param_groups(self) -> list[dict[str, Any]]:
        """Adam parameter groups named "generator", "audio2au", "au_classifier" (sec. 4.2's rates)."""
        cfg = self.train_cfg
        a2au = getattr(self.generator, "audio2au", None)
        a2au_ids = {id(p) for p in a2au.parameters()} if a2au is not None else set()
        groups = [
            {
                "name": "generator",
                "lr": cfg.lr,
                "params": [p for p in self.generator.parameters() if id(p) not in a2au_ids],
            }
        ]
        if a2au is not None:
            a2au.requires_grad_(cfg.finetune_audio2au)
            if cfg.finetune_audio2au:
                groups.append({"name": "audio2au", "lr": cfg.lr_audio2au, "params": list(a2au.parameters())})
        if self.au_classifier is not None:
            self.au_classifier.requires_grad_(cfg.finetune_au_classifier)
            if cfg.finetune_au_classifier:
                groups.append(
                    {
                        "name": "au_classifier",
                        "lr": cfg.lr_au_classifier,
                        "params": list(self.au_classifier.parameters()),
                    }
                )
        return groups

    def trainable(self) -> list[str]:
        return [n for n, m in self.modules.items() if any(p.requires_grad for p in m.parameters())]

    def config(self) -> dict[str, Any]:
        return {
            "stage": self.name,
            "experiment": self.exp.to_dict(),
            "baseline": self.baseline,
            "train": to_dict(self.train_cfg),
            "mouth_box_yyxx": list(self.mouth),
            "data": _data_fingerprint(self.cache),
        }

    def extra(self) -> dict[str, Any]:
        return {
            "mfcc_norm": NormStats.load(self.cache / NORM).to_dict(),
            "vgg": None if self.vgg is None else self.vgg.weights_source,
        }

    def end_epoch(self, epoch: int) -> dict[str, float]:
        """Save a sample grid of fixed test clips (``sample_dir`` set on the writing rank only)."""
        if self.sample_dir is None:
            return {}
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        from autalk import evaluate, viz

        if self._samples is None:
            clips = evaluate.load_split(self.cache, "test", max_clips=self.n_samples)
            self._samples = clips
        norm = NormStats.load(self.cache / NORM)
        was = self.generator.training
        ident, real, fake = evaluate.render_samples(self.generator, norm, self._samples)
        self.generator.train(was)
        fig = viz.gan_samples(
            ident,
            real,
            fake,
            title=f"epoch {epoch + 1} (phase {self.phase(epoch)}): test speakers, middle frame of each clip",
            labels=[f"{c['speaker']}/{c['clip_id']}" for c in self._samples],
        )
        self.sample_dir.mkdir(parents=True, exist_ok=True)
        fig.savefig(self.sample_dir / f"epoch_{epoch + 1:03d}.png", dpi=90)
        plt.close(fig)
        mouth = tuple(slice(a, b) for a, b in (self.mouth[:2], self.mouth[2:]))
        err = np.abs(fake.astype(float) - real.astype(float))[:, mouth[0], mouth[1]].mean()
        return {"sample_mouth_l1": float(err)}  # test clips: shown, never used to choose anything

    def dataset(self) -> BatchedClips:
        from autalk.data.dataset import ClipDataset

        if self._data is None:
            c = self.train_cfg
            self._data = BatchedClips(
                ClipDataset(
                    self.cache,
                    "train",
                    seq_len=c.seq_len,
                    mode="random",
                    normalize=True,
                    samples_per_clip=c.samples_per_clip,
                    preload=True,
                )
            )
        return self._data

    def frames_in(self, batch: dict[str, Any]) -> int:
        return int(batch["frames"].shape[0] * batch["frames"].shape[1])

    def phase(self, epoch: int) -> int:
        return 1 if epoch < self.train_cfg.phase1_epochs else 2

    def loss_config(self, epoch: int) -> LossConfig:
        """The Eq. 8 switches of this epoch: no L_adv in phase 1."""
        lcfg = self.exp.loss
        return replace(lcfg, adv=lcfg.adv and self.phase(epoch) == 2)

    def train_step(self, batch: dict[str, Any], epoch: int) -> dict[str, Tensor]:
        from autalk.losses import frame_discriminator_loss, generator_loss_terms, total_loss

        for m in self.modules.values():
            m.train()
        if self.au_classifier is not None:
            self.au_classifier.eval()  # BatchNorm statistics stay those of real faces
        real, identity = batch["frames"], batch["identity"]
        out = self.nets["generator"](identity.contiguous(memory_format=torch.channels_last), batch["mfcc"])
        logged: dict[str, Tensor] = {}
        if self.baseline == "cran":
            return self._cran_step(out.frames, real, epoch)
        lcfg = self.loss_config(epoch)
        if lcfg.adv:  # discriminator step of Eq. 4 on real vs detached generated frames
            d_loss = frame_discriminator_loss(self.nets["discriminator"], real, out.frames)
            check_finite({"L_D": d_loss})
            opt = self.optimizers["discriminator"]
            opt.zero_grad(set_to_none=True)
            d_loss.backward()
            opt.step()
            logged["L_D"] = d_loss.detach()
        if self.discriminator is not None:
            self.discriminator.requires_grad_(False)  # G step: gradients flow through D, not into it
        try:
            sub = self.train_cfg.per_frames > 0 and lcfg.per
            terms = generator_loss_terms(
                replace(lcfg, per=False) if sub else lcfg,
                out,
                real,
                identity,
                vgg=self.vgg,
                discriminator=self.discriminator,
                au_classifier=self.nets.get("au_classifier"),
                au_labels=batch["au"],
            )
            if sub:  # L_per on a few random frames of every sub-sequence (CPU profiles: VGG is costly)
                from autalk.losses import perceptual_loss

                k = torch.randperm(real.shape[1])[: self.train_cfg.per_frames].to(real.device)
                terms["per"] = perceptual_loss(self.vgg, out.frames[:, k], real[:, k])
            if lcfg.rec and self.train_cfg.mouth_weight != 1.0:
                from autalk.losses import weighted_reconstruction_loss

                terms["rec"] = weighted_reconstruction_loss(out.frames, real, self.weight_map)
            total = total_loss(terms, lcfg)
            check_finite({**terms, "total": total})
            opt = self.optimizers["generator"]
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
        finally:
            if self.discriminator is not None:
                self.discriminator.requires_grad_(True)
        logged.update({f"L_{k}": v.detach() for k, v in terms.items()})
        logged["L_total"] = total.detach()
        return logged

    def _cran_step(self, fake: Tensor, real: Tensor, epoch: int) -> dict[str, Tensor]:
        from autalk.baselines import cran_discriminator_loss, cran_generator_losses

        logged: dict[str, Tensor] = {}
        adv = self.phase(epoch) == 2
        if adv:
            d_loss = cran_discriminator_loss(
                self.nets["discriminator"], self.nets["sequence_discriminator"], real, fake
            )
            check_finite({"L_D": d_loss})
            opt = self.optimizers["discriminator"]
            opt.zero_grad(set_to_none=True)
            d_loss.backward()
            opt.step()
            logged["L_D"] = d_loss.detach()
        fd, sd = self.discriminator, self.seq_d
        fd.requires_grad_(False)
        sd.requires_grad_(False)
        try:
            terms = cran_generator_losses(fake, real, fd, sd, self.exp.loss)
            total = terms["total"] if adv else self.exp.loss.lambda_rec * terms["rec"]
            check_finite({"rec": terms["rec"], "total": total})
            opt = self.optimizers["generator"]
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
        finally:
            fd.requires_grad_(True)
            sd.requires_grad_(True)
        logged.update({"L_rec": terms["rec"].detach(), "L_total": total.detach()})
        return logged


def experiment_config(params: dict[str, Any], ablation: str | None = None) -> Any:
    """The ExperimentConfig of the full model (or one Table 2 row) in a profile's sizes."""
    from autalk.config import ExperimentConfig, LossConfig, ablation_config

    mcfg = model_config(params)
    vgg = str(params["vgg_weights"])
    layers = tuple(x.strip() for x in str(params["vgg_layers"]).split(",") if x.strip())
    if ablation is None or ablation == "full":
        return ExperimentConfig(name="full", model=mcfg, loss=LossConfig(vgg_weights=vgg, vgg_layers=layers))
    row = ablation_config(ablation, mcfg.image_size, vgg_weights=vgg, vgg_layers=layers)
    return replace(row, model=replace(mcfg, use_audio2au=row.model.use_audio2au))


def gan_dir(
    run: str | os.PathLike[str], ablation: str | None = None, baseline: str | None = None, seed: int = 0
) -> Path:
    """runs/<p>/04_gan for the model of notebook 04; runs/<p>/05_ablations/<row>/seed<N> for a Table 2 row
    ("full" included: notebook 05 retrains it in the rows' budget) or a Table 1 baseline."""
    if baseline or ablation:
        name = baseline or str(ablation).replace("+", "plus_")
        return Path(run) / "05_ablations" / name / f"seed{seed}"
    return Path(run) / STAGE_DIRS["generator"]


def ablation_params(params: dict[str, Any]) -> dict[str, Any]:
    """A profile with the ablation budget (``ablation_epochs_phase1/2``) in place of notebook 04's epochs:
    every Table 1 / Table 2 row of notebook 05 trains in these same conditions."""
    return {
        **params,
        "gan_epochs_phase1": int(params["ablation_epochs_phase1"]),
        "gan_epochs_phase2": int(params["ablation_epochs_phase2"]),
    }


def build_gan_stage(
    run: str | os.PathLike[str],
    params: dict[str, Any],
    device: str = "cpu",
    ablation: str | None = None,
    baseline: str | None = None,
) -> GANStage:
    """A GANStage for a profile: loads what stages 02 and 03 wrote (and says which notebook is missing)."""
    run = Path(run)
    require_stage(run, "01_preprocess")
    exp = experiment_config(params, ablation if baseline is None else "baseline")
    tcfg = train_config(params, "generator")
    a2au = cls = None
    if exp.model.use_audio2au and baseline is None:
        a2au, _ = load_pretrained(run, "audio2au", model_config(params), device)
    if exp.loss.au and baseline is None:
        cls, _ = load_pretrained(run, "au_classifier", model_config(params), device)
    return GANStage(cache_dir(run), exp, tcfg, device, audio2au=a2au, au_classifier=cls, baseline=baseline)


def train_generator(
    run: str | os.PathLike[str],
    params: dict[str, Any],
    device: str = "cpu",
    resume: bool = True,
    progress: bool = True,
    dist: Any = None,
    ablation: str | None = None,
    baseline: str | None = None,
    samples: bool = True,
) -> dict[str, Any]:
    """Train the GAN of a profile (or an ablation row / baseline); the function notebook 04, notebook 05
    and ``autalk train generator`` call. Returns a summary dict (also written as train_summary.json)."""
    from autalk.train import Dist

    d = dist or Dist()
    if ablation or baseline:
        params = ablation_params(params)
    stage = build_gan_stage(run, params, device, ablation, baseline)
    out = gan_dir(run, ablation, baseline, int(params.get("seed", 0)))
    if d.main and samples:
        stage.sample_dir = out / "samples"
    res = fit(stage, out, resume=resume, progress=progress, dist=d)
    summary = {
        "stage": "generator",
        "name": baseline or ablation or "full",
        "out_dir": str(out),
        "epochs": stage.train_cfg.epochs,
        "phase1_epochs": stage.train_cfg.phase1_epochs,
        "train_seconds_total": sum(h["seconds"] for h in res.history),
        "train_seconds_this_call": res.seconds,
        "history": res.history,
        "device": device,
        "threads": torch.get_num_threads(),
        "world": d.world,
    }
    if d.main:
        atomic_write_json(out / "train_summary.json", summary)
    return summary


def describe_result(stage: str, res: dict[str, Any]) -> str:
    """One paragraph for the CLI: where things went and the headline numbers."""
    if stage == "generator":
        last = res["history"][-1] if res["history"] else {}
        terms = ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k.startswith("L_"))
        return (
            f"generator ({res['name']}): {res['epochs']} epochs in {res['train_seconds_total'] / 60:.1f} min "
            f"of training; last epoch {terms}\nwritten to {res['out_dir']} (checkpoint.pt, log.csv, tb/)"
        )
    t = res["test"]
    per = ", ".join(f"{k} {v:.3f}" for k, v in t["f1"].items())
    return (
        f"{stage}: {res['epochs']} epochs in {res['train_seconds_total']:.0f} s of training\n"
        f"test speakers {', '.join(res['test_speakers'])}: mean F1 {t['mean_f1']:.3f} ({per}), mean acc "
        f"{t['mean_acc']:.3f}; trivial prior predictor mean F1 {res['trivial_test']['mean_f1']:.3f}"
    )


def load_generator(path: str | os.PathLike[str], device: str = "cpu") -> tuple[nn.Module, NormStats, Any]:
    """(generator in eval mode, the MFCC normalisation it was trained with, the Checkpoint) from a
    ``04_gan`` (or ``05_ablations/<row>``) checkpoint.pt; a file that is not a generator checkpoint is
    refused with a message saying what it is."""
    from autalk.checkpoint import CheckpointError
    from autalk.config import ExperimentConfig
    from autalk.networks import Generator

    ck = load_checkpoint(path)
    if ck.config.get("stage") != "generator" or "generator" not in ck.state_dicts:
        raise CheckpointError(
            f"{path} is an autalk checkpoint of stage {ck.config.get('stage')!r}, not a "
            "generator: pass runs/<profile>/04_gan/checkpoint.pt"
        )
    exp = ExperimentConfig.from_dict(ck.config["experiment"])
    baseline = ck.config.get("baseline")
    if baseline:
        from autalk.baselines import build_baseline

        gen = build_baseline(baseline, exp.model)[0]
    else:
        gen = Generator(exp.model)
    load_checkpoint(path, modules={"generator": gen})
    return gen.to(device).eval(), NormStats.from_dict(ck.extra["mfcc_norm"]), ck
