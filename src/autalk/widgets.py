"""Steering the generator's Action Units by hand: the AU-control demo of notebook 07.

At frame k the generator's GRU reads f_k = f_id ⊕ f_a_k ⊕ f_au_k, where f_au_k = (f_au10, f_au14, f_au20,
f_au25, f_au26) are the five Audio2AU modules' F-d features (F = ``cfg.au_feature_dim``, 64 in the paper).
Those blocks are the only place where the paper's model names an AU, so they are where a user can steer
one: each slider adds to one AU's block a multiple of a fixed direction, for every frame,

    f_au_i' = max(0, f_au_i + amount_i * scale_i * u_i)

* ``u_i`` (unit length) points from the mean of f_au_i over training frames where AU i is **absent** to the
  mean over frames where it is **present** (labels of the training cache); ``scale_i`` is the length of
  that difference of class means. So amount +1 moves a typical "absent" frame's features by one typical
  present-vs-absent difference, -1 the other way; the units mean the same for every AU.
* Why the plain difference of means in the features' own units, not a direction whitened by the pooled
  covariance (LDA): the GRU reads raw feature values, and the mean difference is exactly what the bank's
  features do when the AU really switches on in training data; a whitened direction would point where
  the classes are best *separated*, which may be a direction the generator never saw the features move
  in. The separation along u_i (d' = scale_i / pooled std of the projections) is reported beside it, so
  a weak direction (an AU the audio barely predicts) is visible.
* ``max(0, .)``: the features are ReLU outputs, the GRU never saw a negative one.

Speed: a slider moves only f_au, so the identity encoder (f_id and the U-Net skips), the audio encoder
(f_a) and the unsteered f_au are computed once per (identity, audio) pair (:func:`encode_inputs`); a
preview reruns only the GRU up to the shown frame (its state carries over frames) and the decoder for that
one frame. :func:`frames_from_features` is tested to equal ``Generator.encode(..., f_au=...)`` + decoder.

:class:`AUControl` holds that state and has plain methods (``set_amount``, ``preview``, ``render``) that
tests call directly; :func:`build_demo` wires it to ipywidgets.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from autalk import FPS, PAPER_AUS
from autalk.generate import DECODE_CHUNK, audio_features, torch_threads
from autalk.viz import AU_NAMES

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

    from autalk.audio import NormStats
    from autalk.stages import FrameTable

AMOUNT_RANGE = (-2.0, 2.0)  # slider limits, in units of one present-vs-absent difference


# ---- directions --------------------------------------------------------------------------------------


@dataclass
class AUDirections:
    """One steering direction per AU in its own F-d feature block (see the module docstring)."""

    aus: tuple[int, ...]
    directions: np.ndarray  # (A,F) unit vectors u_i; zero for an AU whose training frames have one class
    scale: np.ndarray  # (A,) |mean_present - mean_absent|: amount +1 moves f_au_i by scale_i * u_i
    separation: np.ndarray  # (A,) d': scale / pooled std of the training projections on u_i
    n_present: np.ndarray  # (A,) training frames with the AU present
    n_absent: np.ndarray  # (A,)
    notes: list[str] = field(default_factory=list)

    @property
    def feature_dim(self) -> int:
        return int(self.directions.shape[1])

    def index(self, au: int) -> int:
        """Position of AU ``au`` (e.g. 26) in the feature blocks."""
        if au not in self.aus:
            raise ValueError(f"AU{au} is not steerable; the generator's AUs are {list(self.aus)}")
        return self.aus.index(au)

    def offsets(self, amounts: Sequence[float] | np.ndarray) -> np.ndarray:
        """(A*F,) what steering adds to f_au (before the clamp at 0) for ``amounts`` (A,)."""
        a = _check_amounts(amounts, len(self.aus))
        return ((a * self.scale)[:, None] * self.directions).reshape(-1).astype(np.float32)


def _check_amounts(amounts: Sequence[float] | np.ndarray, n_aus: int) -> np.ndarray:
    a = np.asarray(amounts, dtype=np.float64).reshape(-1)
    if a.shape != (n_aus,) or not np.isfinite(a).all():
        raise ValueError(f"amounts must be {n_aus} finite numbers (one per AU), got {np.asarray(amounts)!r}")
    return a


def training_features(
    generator: nn.Module, data: FrameTable | str | os.PathLike[str], norm: NormStats | None = None,
    device: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The Audio2AU bank's features over every training frame: (features (N,A*F), AU labels (N,A) 0/1).

    ``data``: a :class:`autalk.stages.FrameTable` (its MFCCs are already normalised) or a preprocessing
    cache folder, whose training clips are read and normalised with ``norm`` (the checkpoint's
    statistics; default the cache's own norm.json, from which the checkpoint's were copied).
    """
    from autalk.stages import FrameTable, predict_table

    bank = _bank(generator)
    if not isinstance(data, FrameTable):
        data = FrameTable(data, "train")
        if norm is not None:  # FrameTable normalised with norm.json: redo it with the statistics given
            data.mfcc = torch.from_numpy(_renormalise(data, norm))
    dev = device or str(next(generator.parameters()).device)
    _, feats = predict_table(bank, data, "mfcc", dev, features=True)
    return feats, data.au.numpy().astype(np.uint8)


def _renormalise(table: FrameTable, norm: NormStats) -> np.ndarray:
    from autalk.audio import NormStats
    from autalk.data.cache import NORM

    cache_norm = NormStats.load(table.cache / NORM)
    raw = table.mfcc.numpy() * cache_norm.std[None, :, None] + cache_norm.mean[None, :, None]
    return np.ascontiguousarray(norm.apply(raw), dtype=np.float32)


def directions_from_features(
    features: np.ndarray, labels: np.ndarray, aus: Sequence[int] = PAPER_AUS
) -> AUDirections:
    """Difference-of-class-means directions from features (N,A*F) and labels (N,A) (module docstring)."""
    feats, lab = np.asarray(features, dtype=np.float64), np.asarray(labels) > 0.5
    n_aus = len(aus)
    if feats.ndim != 2 or lab.shape != (len(feats), n_aus) or feats.shape[1] % n_aus:
        raise ValueError(f"features must be (N, {n_aus}*F) and labels (N, {n_aus}); "
                         f"got {feats.shape} and {lab.shape}")
    f = feats.shape[1] // n_aus
    dirs, scale, sep = np.zeros((n_aus, f)), np.zeros(n_aus), np.zeros(n_aus)
    notes = []
    for i, au in enumerate(aus):
        block, on = feats[:, i * f : (i + 1) * f], lab[:, i]  # (N,F), (N,)
        if on.all() or not on.any():
            notes.append(f"AU{au}: {'every' if on.all() else 'no'} training frame has it: no direction "
                         "(its slider does nothing)")
            continue
        diff = block[on].mean(0) - block[~on].mean(0)  # (F,)
        scale[i] = np.linalg.norm(diff)
        if scale[i] == 0:
            notes.append(f"AU{au}: the features do not differ between present and absent frames")
            continue
        dirs[i] = diff / scale[i]
        proj = block @ dirs[i]  # (N,) position of every frame along u_i
        pooled = np.sqrt((proj[on].var() * on.sum() + proj[~on].var() * (~on).sum()) / len(proj))
        sep[i] = scale[i] / max(pooled, 1e-12)
    return AUDirections(
        aus=tuple(int(a) for a in aus), directions=dirs.astype(np.float32), scale=scale.astype(np.float32),
        separation=sep.astype(np.float32), n_present=lab.sum(0), n_absent=(~lab).sum(0), notes=notes,
    )


def au_directions(
    generator: nn.Module, data: FrameTable | str | os.PathLike[str], norm: NormStats | None = None
) -> AUDirections:
    """Steering directions of a generator's Audio2AU bank from the training frames of ``data``
    (:func:`training_features` then :func:`directions_from_features`)."""
    feats, labels = training_features(generator, data, norm)
    return directions_from_features(feats, labels, generator.cfg.aus)


def projections(features: np.ndarray, directions: AUDirections) -> np.ndarray:
    """Each frame's position along each AU's direction: features (N,A*F) -> (N,A)."""
    n, f = len(features), directions.feature_dim
    blocks = np.asarray(features, dtype=np.float32).reshape(n, len(directions.aus), f)  # (N,A,F)
    return np.einsum("naf,af->na", blocks, directions.directions)


def steer(
    f_au: Tensor | np.ndarray, directions: AUDirections | np.ndarray, amounts: Sequence[float] | np.ndarray,
    clamp: bool = True,
) -> Tensor | np.ndarray:
    """Move every frame's AU features: f_au (B,T,A*F) -> the same shape and type, steered.

    ``directions``: an :class:`AUDirections` (amounts in units of its ``scale``) or a raw (A,F) array
    (amounts in feature units). ``clamp`` keeps the features >= 0, as the ReLU made them.
    """
    if isinstance(directions, AUDirections):
        step = directions.offsets(amounts)  # (A*F,)
    else:
        d = np.asarray(directions, dtype=np.float32)
        step = (_check_amounts(amounts, len(d))[:, None] * d).reshape(-1).astype(np.float32)
    if f_au.shape[-1] != len(step):
        raise ValueError(f"f_au has {f_au.shape[-1]} features per frame, the directions {len(step)} (A*F)")
    if isinstance(f_au, Tensor):
        out = f_au + torch.as_tensor(step, dtype=f_au.dtype, device=f_au.device)
        return out.clamp_min(0) if clamp else out
    out = np.asarray(f_au, dtype=np.float32) + step
    return np.maximum(out, 0) if clamp else out


# ---- generating with steered features ----------------------------------------------------------------


@dataclass
class Encoded:
    """The slider-independent part of the generator's work for one (identity, audio) pair."""

    f_static: Tensor  # (1,T,id+audio) f_id ⊕ f_a_k: identity and audio encoder outputs
    f_au: Tensor  # (1,T,A*F) the Audio2AU features, unsteered
    au_logits: Tensor  # (1,T,A) Audio2AU's own AU logits: what the audio says
    skips: list[Tensor]  # U-Net skips [e1..e4], each (1,C,h,w)

    @property
    def n_frames(self) -> int:
        return int(self.f_au.shape[1])


def _bank(generator: nn.Module) -> nn.Module:
    bank = getattr(generator, "audio2au", None)
    if bank is None:
        raise ValueError("this generator has no Audio2AU features to steer (an ablation row or a baseline); "
                         "use the full model, runs/<profile>/04_gan/checkpoint.pt")
    return bank


def _image_tensor(image: np.ndarray, device: torch.device) -> Tensor:
    """uint8 (S,S,3) -> (1,3,S,S) in [-1,1], the dataset's scaling."""
    from autalk.stages import lower_to_tensor

    return lower_to_tensor(np.asarray(image, dtype=np.uint8)[None]).to(device)


@torch.inference_mode()
def encode_inputs(generator: nn.Module, identity: np.ndarray, mfcc: np.ndarray) -> Encoded:
    """Run everything the sliders do not change: identity ``(S,S,3) uint8``, normalised MFCC windows
    ``(T,12,28)`` -> :class:`Encoded` (the same modules and order as ``Generator.encode``)."""
    from autalk.networks import check_generator_inputs

    bank = _bank(generator)
    dev = next(generator.parameters()).device
    ident = _image_tensor(identity, dev)  # (1,3,S,S)
    m = torch.from_numpy(np.ascontiguousarray(mfcc, dtype=np.float32))[None].to(dev)  # (1,T,12,28)
    _, t = check_generator_inputs(generator.cfg, ident, m)
    f_id, skips = generator.identity_encoder(ident)  # (1,id), [e1..e4]
    f_a = generator.audio_encoder(m.flatten(0, 1)).reshape(1, t, -1)  # (1,T,audio)
    logits, f_au = bank(m)  # (1,T,A), (1,T,A*F)
    f_static = torch.cat([f_id.unsqueeze(1).expand(1, t, f_id.shape[-1]), f_a], dim=-1)
    if dev.type == "cpu":  # the decoder runs channels-last on CPU (generate.render: ~1.6x faster)
        skips = [e.contiguous(memory_format=torch.channels_last) for e in skips]
    return Encoded(f_static=f_static, f_au=f_au, au_logits=logits, skips=skips)


@torch.inference_mode()
def frames_from_features(
    generator: nn.Module, enc: Encoded, f_au: Tensor, frames: Sequence[int] | None = None,
    chunk: int = DECODE_CHUNK, raw: bool = False,
) -> np.ndarray:
    """Frames ``(len(frames),S,S,3) uint8`` (default every frame) from cached inputs and AU features
    f_au (1,T,A*F): the GRU runs from frame 0 to the last frame asked for, the decoder only on those.
    ``raw``: float32 grey levels in [0,255] before rounding (``round`` of it is the uint8 frame), so
    changes smaller than one grey level can be shown too."""
    t = enc.n_frames
    idx = list(range(t)) if frames is None else [int(k) for k in frames]
    if not idx or min(idx) < 0 or max(idx) >= t:
        raise ValueError(f"frames must be indices in [0, {t}), got {idx[:5]}{'...' if len(idx) > 5 else ''}")
    if tuple(f_au.shape) != tuple(enc.f_au.shape):
        raise ValueError(f"f_au must have the unsteered features' shape {tuple(enc.f_au.shape)}, "
                         f"got {tuple(f_au.shape)}")
    stop = max(idx) + 1
    f = torch.cat([enc.f_static[:, :stop], f_au[:, :stop]], dim=-1)  # (1,stop,in_dim)
    rnn = generator.rnn
    ft = (rnn(f)[0] if generator.cfg.use_gru else rnn(f))[0, idx]  # (N,hidden)
    if next(generator.parameters()).device.type == "cpu":
        generator.decoder.to(memory_format=torch.channels_last)  # as generate.render (no copy once done)
    out = []
    for a in range(0, len(idx), chunk):
        h = ft[a : a + chunk]
        x = generator.decoder(h, [e.expand(len(h), *e.shape[1:]) for e in enc.skips])  # (n,3,S,S)
        out.append(((x.float().clamp(-1, 1) + 1) * 127.5).movedim(1, -1).cpu().numpy())  # dataset.to_uint8
    grey = np.concatenate(out)  # (N,S,S,3) float32
    return grey if raw else np.round(grey).astype(np.uint8)


def preview_frame(
    generator: nn.Module, identity: np.ndarray, mfcc: np.ndarray, frame_index: int,
    amounts: Sequence[float] | np.ndarray, directions: AUDirections, encoded: Encoded | None = None,
) -> np.ndarray:
    """One steered frame ``(S,S,3) uint8``; pass ``encoded`` (:func:`encode_inputs`) to skip the encoders."""
    enc = encoded or encode_inputs(generator, identity, mfcc)
    return frames_from_features(generator, enc, steer(enc.f_au, directions, amounts), [frame_index])[0]


def render_clip(
    generator: nn.Module, identity: np.ndarray, mfcc: np.ndarray, amounts: Sequence[float] | np.ndarray,
    directions: AUDirections, encoded: Encoded | None = None,
) -> np.ndarray:
    """Every frame of the clip with the AUs steered: ``(T,S,S,3) uint8``."""
    enc = encoded or encode_inputs(generator, identity, mfcc)
    return frames_from_features(generator, enc, steer(enc.f_au, directions, amounts))


@torch.inference_mode()
def au_probabilities(classifier: nn.Module, frames: np.ndarray, batch: int = 256) -> np.ndarray:
    """The AU classifier's P(present) on the lower half of each frame: uint8 (T,S,S,3) -> (T,A)."""
    from autalk.stages import lower_to_tensor

    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T,S,S,3), got {frames.dtype} {frames.shape}")
    classifier.eval()
    dev = next(classifier.parameters()).device
    s = frames.shape[1]
    out = []
    for a in range(0, len(frames), batch):
        lower = lower_to_tensor(frames[a : a + batch, s // 2 :]).to(dev)  # (b,3,S/2,S)
        out.append(torch.sigmoid(classifier(lower)).float().cpu().numpy())
    return np.concatenate(out)


def load_au_classifier(run: str | os.PathLike[str], device: str = "cpu") -> nn.Module:
    """The AU classifier that judged the generator: the fine-tuned copy in ``04_gan/checkpoint.pt``, else
    notebook 03's (``03_au_classifier/checkpoint.pt``)."""
    from autalk.checkpoint import load_checkpoint
    from autalk.config import ExperimentConfig
    from autalk.networks import AUClassifier
    from autalk.stages import load_pretrained

    path = Path(run) / "04_gan" / "checkpoint.pt"
    if path.is_file():
        ck = load_checkpoint(path)
        if "au_classifier" in ck.state_dicts:
            clf = AUClassifier(ExperimentConfig.from_dict(ck.config["experiment"]).model)
            load_checkpoint(path, modules={"au_classifier": clf})
            return clf.to(device).eval()
    return load_pretrained(run, "au_classifier", device=device)[0]


def silence(seconds: float = 2.0, sr: int = 16000) -> tuple[np.ndarray, int]:
    """Digital silence ``((N,) float32 zeros, sr)``: every MFCC window is the same, so f_au is constant."""
    return np.zeros(int(round(seconds * sr)), dtype=np.float32), sr


def lower_motion(frames: np.ndarray) -> np.ndarray:
    """Mean absolute change of the lower half between consecutive frames (T-1,), in grey levels 0-255:
    how much the mouth region moves."""
    x = np.asarray(frames, dtype=np.float32)
    lower = x[:, x.shape[1] // 2 :]
    return np.abs(np.diff(lower, axis=0)).mean(axis=(1, 2, 3))


# ---- the controller ------------------------------------------------------------------------------------


class AUControl:
    """The demo's state and its actions, free of widgets (tests call these methods directly).

    ``load`` an identity crop and audio (or MFCC windows), ``set_amount(au, value)`` per slider, then
    ``preview()`` one frame or ``render()`` the clip; ``probabilities`` runs the AU classifier.
    """

    def __init__(
        self, generator: nn.Module, directions: AUDirections, classifier: nn.Module | None = None,
        norm: NormStats | None = None, threads: int | None = 1,
    ) -> None:
        _bank(generator)
        if tuple(directions.aus) != tuple(generator.cfg.aus):
            raise ValueError(f"directions: AUs {directions.aus}, generator: AUs {generator.cfg.aus}")
        if directions.feature_dim != generator.cfg.au_feature_dim:
            raise ValueError(f"directions have {directions.feature_dim} features per AU, the generator "
                             f"{generator.cfg.au_feature_dim}: computed for another model?")
        self.generator, self.directions = generator.eval(), directions
        self.classifier, self.norm = classifier, norm
        self.threads = threads  # 1 on CPU: see generate.render (a 2nd thread slowed small steps down)
        self.amounts = np.zeros(len(directions.aus))
        self.frame = 0
        self.identity: np.ndarray | None = None
        self.mfcc: np.ndarray | None = None
        self.audio: tuple[np.ndarray, int] | None = None
        self.encoded: Encoded | None = None
        self._plain: dict[str, np.ndarray] = {}  # unsteered: frames (float grey levels), the clip (uint8)

    @property
    def aus(self) -> tuple[int, ...]:
        return self.directions.aus

    @property
    def n_frames(self) -> int:
        return 0 if self.encoded is None else self.encoded.n_frames

    # -- inputs --

    def load(self, identity: np.ndarray, audio: tuple[np.ndarray, int] | None = None,
             mfcc: np.ndarray | None = None) -> None:
        """A new identity crop ``(S,S,3) uint8`` with its sound ``(samples, sr)`` and/or normalised MFCC
        windows ``(T,12,28)`` (computed from the sound with the checkpoint's statistics when not given)."""
        if mfcc is None:
            if audio is None:
                raise ValueError("give the sound (samples, sample_rate) or its MFCC windows")
            if self.norm is None:
                raise ValueError("AUControl needs norm (the checkpoint's NormStats) to turn sound into MFCCs")
            mfcc = audio_features(audio[0], audio[1], self.norm)
        self.identity, self.audio, self.mfcc = np.asarray(identity, dtype=np.uint8), audio, mfcc
        self._encode()

    def set_identity(self, identity: np.ndarray) -> None:
        if self.mfcc is None:
            raise ValueError("load() an identity with its audio first")
        self.identity = np.asarray(identity, dtype=np.uint8)
        self._encode()

    def set_audio(self, audio: tuple[np.ndarray, int], mfcc: np.ndarray | None = None) -> None:
        if self.identity is None:
            raise ValueError("load() an identity with its audio first")
        self.load(self.identity, audio, mfcc)

    def _encode(self) -> None:
        with torch_threads(self._threads()):
            self.encoded = encode_inputs(self.generator, self.identity, self.mfcc)
        self._plain = {}
        self.frame = min(self.frame, self.n_frames - 1)

    def _threads(self) -> int | None:
        return self.threads if next(self.generator.parameters()).device.type == "cpu" else None

    def _need_inputs(self) -> Encoded:
        if self.encoded is None:
            raise ValueError("no identity and audio loaded: call load(identity, audio) first")
        return self.encoded

    # -- sliders --

    def set_amount(self, au: int, value: float) -> None:
        """Slider of AU ``au`` (10, 14, 20, 25 or 26) at ``value`` typical present-vs-absent differences."""
        if not np.isfinite(value):
            raise ValueError(f"AU{au} amount must be a finite number, got {value}")
        self.amounts[self.directions.index(au)] = float(value)

    def set_amounts(self, amounts: Mapping[int, float] | Sequence[float]) -> None:
        """All sliders at once: {au: value} (others to 0) or one value per AU in ``aus`` order."""
        if isinstance(amounts, Mapping):
            self.amounts[:] = 0.0
            for au, v in amounts.items():
                self.set_amount(au, v)
        else:
            self.amounts[:] = _check_amounts(amounts, len(self.aus))

    def set_frame(self, k: int) -> None:
        t = self._need_inputs().n_frames
        if not 0 <= int(k) < t:
            raise ValueError(f"frame {k} is outside the clip (0..{t - 1})")
        self.frame = int(k)

    # -- outputs --

    def steered_features(self, amounts: Sequence[float] | np.ndarray | None = None) -> Tensor:
        """f_au (1,T,A*F) with ``amounts`` (default the sliders') applied."""
        return steer(self._need_inputs().f_au, self.directions, self.amounts if amounts is None else amounts)

    def preview(self, steered: bool = True, raw: bool = False) -> np.ndarray:
        """The current frame ``(S,S,3) uint8``, steered (or not: cached per frame); only the GRU and one
        decoder pass run. ``raw``: float grey levels before rounding (:func:`frames_from_features`)."""
        enc = self._need_inputs()
        key = f"frame{self.frame}"
        if steered or key not in self._plain:
            f_au = self.steered_features() if steered else enc.f_au
            with torch_threads(self._threads()):
                grey = frames_from_features(self.generator, enc, f_au, [self.frame], raw=True)[0]
            if not steered:
                self._plain[key] = grey
        else:
            grey = self._plain[key]
        return grey if raw else np.round(grey).astype(np.uint8)

    def render(self, steered: bool = True) -> np.ndarray:
        """Every frame ``(T,S,S,3) uint8``, steered by the sliders (or not: cached per input)."""
        enc = self._need_inputs()
        if not steered and "clip" in self._plain:
            return self._plain["clip"]
        f_au = self.steered_features() if steered else enc.f_au
        with torch_threads(self._threads()):
            frames = frames_from_features(self.generator, enc, f_au)
        if not steered:
            self._plain["clip"] = frames
        return frames

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        """The AU classifier's P(present) (T,A) for frames (T,S,S,3) (or one frame)."""
        if self.classifier is None:
            raise ValueError("AUControl was built without an AU classifier")
        with torch_threads(self._threads()):
            return au_probabilities(self.classifier, frames)

    def audio2au_probabilities(self) -> np.ndarray:
        """What the audio itself says: the Audio2AU heads' P(present) (T,A) on the unsteered features."""
        return torch.sigmoid(self._need_inputs().au_logits[0]).cpu().numpy()


def sweep(control: AUControl, amounts: Sequence[float] = (-2.0, -1.0, 0.0, 1.0, 2.0)
          ) -> tuple[np.ndarray, np.ndarray]:
    """Each AU's slider alone at each of ``amounts`` (the others at 0), on the current frame:
    (frames (A,K,S,S,3) uint8, AU classifier probabilities (A,K,A)). The sliders are left at 0."""
    frames = []
    for au in control.aus:
        row = []
        for v in amounts:
            control.set_amounts({au: v})
            row.append(control.preview())
        frames.append(np.stack(row))
    control.set_amounts({})
    out = np.stack(frames)  # (A,K,S,S,3)
    probs = control.probabilities(out.reshape(-1, *out.shape[2:])).reshape(*out.shape[:2], -1)
    return out, probs


def preview_latency(control: AUControl, au: int = 26, n: int = 21, move: Callable[[float], Any] | None = None,
                    ) -> np.ndarray:
    """Milliseconds per slider move: AU ``au`` swept over ``n`` values of :data:`AMOUNT_RANGE`, each
    followed by a preview (or by ``move(value)``, e.g. setting the widget slider, which also draws)."""
    move = move or (lambda v: (control.set_amount(au, v), control.preview()))
    move(0.0)  # warm-up: first calls allocate
    out = []
    for v in np.linspace(*AMOUNT_RANGE, n):
        t0 = time.perf_counter()
        move(float(v))
        out.append(1000 * (time.perf_counter() - t0))
    move(0.0)
    return np.array(out)


# ---- plots -----------------------------------------------------------------------------------------


def plot_projections(features: np.ndarray, labels: np.ndarray, directions: AUDirections) -> plt.Figure:
    """Per AU: histograms of the training frames' positions along u_i, present vs absent, with the class
    means (one slider unit apart) marked."""
    import matplotlib.pyplot as plt

    proj = projections(features, directions)  # (N,A)
    lab = np.asarray(labels) > 0.5
    fig, axes = plt.subplots(1, len(directions.aus), figsize=(3.0 * len(directions.aus), 2.8))
    for i, (ax, au) in enumerate(zip(np.atleast_1d(axes), directions.aus, strict=True)):
        bins = np.linspace(proj[:, i].min(), proj[:, i].max() + 1e-6, 30)
        for on, colour, name in ((False, "0.55", "absent"), (True, "tab:red", "present")):
            x = proj[lab[:, i] == on, i]
            if len(x):
                ax.hist(x, bins=bins, color=colour, alpha=0.6, density=True, label=f"{name} ({len(x)})")
                ax.axvline(x.mean(), color=colour, lw=1.5)
        ax.set_title(f"AU{au} {AU_NAMES.get(au, '')}\n1 unit = {directions.scale[i]:.3f}, "
                     f"d' = {directions.separation[i]:.2f}", fontsize=9)
        ax.set_xlabel("position along u_i (feature units)")
        ax.legend(fontsize=7)
    np.atleast_1d(axes)[0].set_ylabel("density of training frames")
    fig.tight_layout()
    return fig


def plot_direction_vectors(directions: AUDirections) -> plt.Figure:
    """What slider +1 adds to each AU's features: scale_i * u_i as one heat-map row per AU (A,F)."""
    import matplotlib.pyplot as plt

    step = directions.scale[:, None] * directions.directions  # (A,F)
    lim = max(float(np.abs(step).max()), 1e-6)
    fig, ax = plt.subplots(figsize=(min(12.0, 2.0 + 0.15 * directions.feature_dim), 2.4))
    im = ax.imshow(step, cmap="coolwarm", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(directions.aus)), [f"AU{a}" for a in directions.aus])
    ax.set_xlabel(f"feature j of the AU's own Audio2AU module (F = {directions.feature_dim})")
    ax.set_title("slider +1 adds mean(present) - mean(absent) to each AU's block of f_au", fontsize=9)
    fig.colorbar(im, ax=ax, label="feature units")
    fig.tight_layout()
    return fig


def plot_frame_rows(rows: Mapping[str, np.ndarray], frames: Sequence[int], fps: float = FPS,
                    size: float = 1.3) -> plt.Figure:
    """One row of frames per named clip (T,S,S,3), the same frame indices in every row."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), len(frames), figsize=(size * len(frames) + 1.2, size * len(rows)),
                             squeeze=False)
    for r, (name, clip) in enumerate(rows.items()):
        for c, k in enumerate(frames):
            ax = axes[r, c]
            ax.imshow(clip[k])
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"{(k + 0.5) / fps:.2f} s", fontsize=8)
        axes[r, 0].set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
    fig.tight_layout()
    return fig


def plot_sweep(frames: np.ndarray, probs: np.ndarray, aus: Sequence[int], amounts: Sequence[float],
               size: float = 1.5) -> plt.Figure:
    """:func:`sweep`'s lower faces: one row per AU, one column per amount, titled with the classifier's
    P(that AU present)."""
    import matplotlib.pyplot as plt

    n_aus, k = frames.shape[:2]
    s = frames.shape[2]
    fig, axes = plt.subplots(n_aus, k, figsize=(size * k + 1.4, 0.62 * size * n_aus + 0.6), squeeze=False)
    for i in range(n_aus):
        for j in range(k):
            ax = axes[i, j]
            ax.imshow(frames[i, j, s // 2 :])  # the lower half: what the AU classifier sees
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{amounts[j]:+.0f}: P={probs[i, j, i]:.2f}", fontsize=7)
        axes[i, 0].set_ylabel(f"AU{aus[i]}", fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle("one slider at a time (amount: the classifier's P(that AU)), lower half of one frame",
                 fontsize=9)
    fig.tight_layout()
    return fig


def plot_probabilities(
    before: np.ndarray, after: np.ndarray, aus: Sequence[int] = PAPER_AUS, frame: int | None = None,
    title: str = "", fps: float = FPS,
) -> plt.Figure:
    """The AU classifier's P(present) over time (T,A), before (dashed) and after (solid) steering."""
    import matplotlib.pyplot as plt

    from autalk.viz import AU_COLORS

    t = (np.arange(len(before)) + 0.5) / fps
    fig, axes = plt.subplots(len(aus), 1, figsize=(7.5, 0.9 * len(aus) + 0.9), sharex=True, squeeze=False)
    for i, (ax, au) in enumerate(zip(axes[:, 0], aus, strict=True)):
        c = AU_COLORS[i % len(AU_COLORS)]
        ax.plot(t, before[:, i], color=c, ls="--", lw=1, label="before")
        ax.plot(t, after[:, i], color=c, lw=1.8, label="after steering")
        ax.axhline(0.5, color="0.6", lw=0.5, ls=":")
        if frame is not None:
            ax.axvline(t[frame], color="0.3", lw=0.6)
        ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel(f"AU{au}", fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper right", ncol=2)
    axes[0, 0].set_title(title or "AU classifier P(present) on the generated lower face", fontsize=9)
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    return fig


# ---- the widget --------------------------------------------------------------------------------------


def _png(image: np.ndarray, px: int) -> bytes:
    """RGB uint8 -> PNG bytes, scaled (nearest neighbour: the pixels the generator made) to ``px`` high."""
    import cv2

    h, w = image.shape[:2]
    big = cv2.resize(image, (max(1, round(w * px / h)), px), interpolation=cv2.INTER_NEAREST)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def change_map(change: np.ndarray) -> np.ndarray:
    """Where steering changed a frame: (S,S) absolute change -> (S,S,3) uint8 heat map scaled to its own
    max (black = unchanged), so an undertrained model's sub-grey-level changes are visible too."""
    import cv2

    peak = float(change.max())
    level = np.zeros(change.shape, np.uint8) if peak <= 0 else np.round(255 * change / peak).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(level, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def decode_upload(content: bytes | memoryview) -> np.ndarray:
    """An uploaded image file's bytes -> (H,W,3) uint8 RGB, or a ValueError saying what to upload."""
    import cv2

    bgr = cv2.imdecode(np.frombuffer(bytes(content), np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("the uploaded file is not a readable image: upload a jpg or png photo")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class AUDemo:
    """ipywidgets around an :class:`AUControl`; every callback is a method tests can call."""

    def __init__(
        self, control: AUControl, identities: Mapping[str, np.ndarray],
        sounds: Mapping[str, tuple[np.ndarray, int]], image_px: int = 160,
    ) -> None:
        import ipywidgets as W

        if not identities or not sounds:
            raise ValueError("build_demo needs at least one identity crop and one sound")
        self.control, self.image_px = control, image_px
        self.identities, self.sounds = dict(identities), dict(sounds)
        wide = {"description_width": "150px"}  # one label width, so the controls line up
        self.identity_box = W.Dropdown(options=list(self.identities), description="face", style=wide)
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="upload photo")
        self.sound_box = W.Dropdown(options=list(self.sounds), description="audio", style=wide)
        self.text = W.Text(placeholder="or type a sentence, e.g. bin blue at f two now", description="say",
                           style=wide, layout=W.Layout(width="340px"))
        self.speak_button = W.Button(description="speak it", icon="comment")
        self.sliders = {
            au: W.FloatSlider(value=0.0, min=AMOUNT_RANGE[0], max=AMOUNT_RANGE[1], step=0.1,
                              description=f"AU{au} {AU_NAMES.get(au, '')}", continuous_update=True,
                              style=wide, layout=W.Layout(width="440px"))
            for au in control.aus
        }
        for au, s in self.sliders.items():
            s.add_class(f"autalk-au{au}")
        self.frame_slider = W.IntSlider(value=0, min=0, max=0, description="frame",
                                        style=wide, layout=W.Layout(width="440px"))
        self.reset_button = W.Button(description="reset sliders", icon="undo")
        self.image = W.Image(format="png")  # natural size: image_px high
        self.image.add_class("autalk-preview")
        self.readout = W.HTML()
        self.status = W.HTML()
        self.render_button = W.Button(description="render the clip", icon="film", button_style="primary")
        self.video = W.Output()
        self.plot = W.Output()
        self._busy = False  # True while a callback sets widget values itself (see _quiet)
        self._wire()
        inputs = [self.identity_box, self.upload, self.sound_box, W.HBox([self.text, self.speak_button])]
        controls = W.VBox([*inputs, *self.sliders.values(), self.frame_slider, self.reset_button],
                          layout=W.Layout(min_width="460px"))  # room for the slider labels and readouts
        title = W.HTML("<b>unsteered | steered | where it changed</b> (this frame)")
        preview = W.VBox([title, self.image, self.readout])
        self.widget = W.VBox([W.HBox([controls, preview]), self.status, self.render_button,
                              W.HBox([self.video, self.plot])])
        self.on_inputs()

    def _wire(self) -> None:
        def on_value(widget: Any, callback: Callable[[Any], Any]) -> None:
            widget.observe(lambda ch: None if self._busy else callback(ch["new"]), names="value")

        on_value(self.identity_box, lambda _: self.on_inputs())
        on_value(self.sound_box, lambda _: self.on_inputs())
        on_value(self.upload, self.on_upload)
        for au, s in self.sliders.items():
            on_value(s, lambda v, au=au: self.on_amount(au, v))
        on_value(self.frame_slider, self.on_frame)
        self.speak_button.on_click(lambda _: self.on_speak(self.text.value))
        self.reset_button.on_click(lambda _: self.on_reset())
        self.render_button.on_click(lambda _: self.on_render())

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """Set widget values without their observers firing (the caller redraws once, after)."""
        self._busy = True
        try:
            yield
        finally:
            self._busy = False

    # -- callbacks --

    def on_inputs(self) -> None:
        """The chosen face and audio changed: encode them once and redraw."""
        face, sound = self.identity_box.value, self.sound_box.value
        self.control.load(self.identities[face], self.sounds[sound])
        t = self.control.n_frames
        with self._quiet():
            self.frame_slider.max = t - 1
            self.frame_slider.value = t // 2  # mid-clip: usually speech, not the silent lead-in
        self.control.set_frame(self.frame_slider.value)
        self.say(f"face <b>{face}</b>, audio <b>{sound}</b>: {t} frames ({t / FPS:.2f} s)")
        self.refresh_preview()

    def on_upload(self, value: Any) -> None:
        """A photo was uploaded: crop its face as preprocessing does and make it the identity."""
        from autalk.generate import prepare_face

        files = list(value.values()) if isinstance(value, Mapping) else list(value or [])
        if not files:
            return
        f = files[-1]
        try:
            crop, info = prepare_face(decode_upload(f["content"]), self.control.generator.cfg.image_size)
        except ValueError as e:
            self.say(f"upload {f.get('name', '')}: {e}", error=True)
            return
        name = f"upload: {f.get('name', 'photo')}"
        self.identities[name] = crop
        with self._quiet():
            self.identity_box.options = list(self.identities)
            self.identity_box.value = name
        self.on_inputs()
        if info.notes:
            self.say("; ".join(info.notes))

    def on_speak(self, text: str) -> None:
        """Speak ``text`` with eSpeak NG and make it the audio."""
        from autalk.generate import speak

        try:
            sound = speak(text)
        except ValueError as e:
            self.say(str(e), error=True)
            return
        name = f"said: {text.strip()[:40]}"
        self.sounds[name] = sound
        with self._quiet():
            self.sound_box.options = list(self.sounds)
            self.sound_box.value = name
        self.on_inputs()

    def on_amount(self, au: int, value: float) -> None:
        self.control.set_amount(au, value)
        self.refresh_preview()

    def on_frame(self, k: int) -> None:
        self.control.set_frame(k)
        self.refresh_preview()

    def on_reset(self) -> None:
        with self._quiet():
            for s in self.sliders.values():
                s.value = 0.0
        self.control.set_amounts([0.0] * len(self.control.aus))
        self.refresh_preview()

    def refresh_preview(self) -> np.ndarray:
        """Redraw unsteered | steered | change of the current frame, and the classifier's view of both."""
        plain_f, steered_f = self.control.preview(steered=False, raw=True), self.control.preview(raw=True)
        plain, steered = (np.round(x).astype(np.uint8) for x in (plain_f, steered_f))
        change = np.abs(steered_f - plain_f).mean(axis=-1)  # (S,S) grey levels, before rounding
        gap = np.full((plain.shape[0], 2, 3), 255, np.uint8)
        panels = [plain, gap, steered, gap, change_map(change)]
        self.image.value = _png(np.concatenate(panels, axis=1), self.image_px)
        lines = [f"change: max {change.max():.3g}, mean {change.mean():.3g} grey levels (0-255); "
                 "right panel scaled to its max"]
        if self.control.classifier is not None:
            p = self.control.probabilities(np.stack([plain, steered]))  # (2,A)
            cells = " &nbsp; ".join(
                f"<span style='white-space:nowrap'>AU{au} {p[0, i]:.2f}&rarr;<b>{p[1, i]:.2f}</b></span>"
                for i, au in enumerate(self.control.aus)
            )
            lines.append(f"AU classifier P(present), unsteered&rarr;steered: {cells}")
        self.readout.value = "<br>".join(lines)
        return steered

    def on_render(self) -> np.ndarray:
        """Render the whole clip steered: inline video (unsteered | steered, with sound) and the
        classifier's probabilities over time before and after."""
        from IPython.display import HTML, display

        from autalk.media import video_html

        c = self.control
        plain, steered = c.render(steered=False), c.render()
        self.video.clear_output()
        self.plot.clear_output()
        gap = np.full((*plain.shape[:2], 2, 3), 255, np.uint8)
        audio, sr = c.audio if c.audio is not None else (None, 25000)
        pair = np.concatenate([plain, gap, steered], axis=2)  # (T,S,2S+2,3)
        with self.video:
            display(HTML(video_html(pair, audio, sr=sr, width=320)))
        if c.classifier is not None:
            import matplotlib.pyplot as plt

            fig = plot_probabilities(c.probabilities(plain), c.probabilities(steered), c.aus, c.frame)
            with self.plot:
                display(fig)
            plt.close(fig)  # shown once, in the Output widget
        return steered

    def say(self, message: str, error: bool = False) -> None:
        self.status.value = f"<span style='color:{'#b00' if error else '#333'}'>{message}</span>"


def build_demo(
    control: AUControl, identities: Mapping[str, np.ndarray], sounds: Mapping[str, tuple[np.ndarray, int]],
    image_px: int = 160,
) -> tuple[Any, AUDemo]:
    """The AU-control widget and its :class:`AUDemo` (whose methods are the callbacks).

    ``identities``: name -> face crop ``(S,S,3) uint8`` (e.g. test speakers' first frames); ``sounds``:
    name -> ``(samples, sr)`` (test clips, silence); a sentence typed in the widget is added to them.
    """
    demo = AUDemo(control, identities, sounds, image_px)
    return demo.widget, demo
