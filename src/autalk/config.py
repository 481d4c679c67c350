"""Typed configs for the networks and losses (nanoGPT style: plain dataclasses, paper defaults).

``ModelConfig`` sizes the generator, AU classifier and discriminators; ``LossConfig`` switches the
terms of Eq. 8 on/off and holds their weights; ``ExperimentConfig`` bundles both under a name.
``table2_rows()`` gives the six rows of the paper's ablation (Table 2) in order, and
``ablation_config(name)`` one of them.

Everything round-trips through plain dicts (``to_dict`` / ``from_dict``) so checkpoints can store the
config as JSON and compare it field by field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from autalk import PAPER_AUS

# Paper section 4.2: lambda_rec, lambda_id, lambda_per, lambda_au, lambda_adv.
PAPER_LAMBDAS: dict[str, float] = {"rec": 1.5, "id": 1.5, "per": 0.07, "au": 0.02, "adv": 0.002}
LOSS_TERMS: tuple[str, ...] = ("rec", "id", "per", "au", "adv")


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of every network. Defaults are the paper's (section 3.1, 4.1); ``image_size=64`` is the
    quick profile. Widths the paper does not state (channels, GRU size) are our choices."""

    image_size: int = 112  # square face crops; 112 (paper) or 64 (quick); must be divisible by 16
    n_mfcc: int = 12  # 12 MFCCs, no energy (sec 4.1)
    mfcc_steps: int = 28  # 280 ms window at 100 Hz per video frame
    aus: tuple[int, ...] = PAPER_AUS  # one Audio2AU module per AU, in this order
    id_dim: int = 512  # f_id
    audio_dim: int = 512  # f_a
    au_feature_dim: int = 64  # f_au_i, penultimate layer of each Audio2AU module
    rnn_hidden: int = 512  # GRU state size (our choice)
    base_channels: int = 64  # identity encoder widths c, 2c, 4c, 8c; the decoder mirrors them
    audio_channels: tuple[int, ...] = (64, 128, 256, 256, 512)  # 5 conv layers of the audio encoder
    a2au_channels: int = 16  # Audio2AU conv width (frequency and time convolutions)
    a2au_lstm_hidden: int = 128  # Audio2AU: two LSTM layers of this size
    au_cls_channels: tuple[int, ...] = (32, 32, 64, 64)  # AU classifier: 4 convs, max-pool after 2
    au_cls_hidden: tuple[int, ...] = (256, 64)  # AU classifier: 3 FC layers -> hidden..., n_aus
    disc_channels: int = 64  # frame discriminator base width
    use_audio2au: bool = True  # Table 2 "full" row; off for the five rows above it
    use_gru: bool = True  # off: a per-frame linear layer replaces the GRU (no temporal memory)

    def __post_init__(self) -> None:
        if self.image_size % 16 != 0 or self.image_size < 32:
            raise ValueError(
                f"image_size must be a multiple of 16 and >= 32 (64 or 112), got {self.image_size}"
            )
        if len(self.audio_channels) != 5:
            raise ValueError(f"audio_channels needs 5 entries (5 conv layers), got {self.audio_channels}")
        if len(self.au_cls_channels) != 4 or len(self.au_cls_hidden) != 2:
            raise ValueError("au_cls_channels needs 4 entries and au_cls_hidden 2 (3 FC layers in all)")
        if not self.aus:
            raise ValueError("aus must name at least one AU")

    @property
    def n_aus(self) -> int:
        return len(self.aus)


def tiny_model_config(image_size: int = 64, **overrides: Any) -> ModelConfig:
    """The same architecture, much narrower: for unit tests and seconds-long smoke runs only."""
    widths: dict[str, Any] = dict(
        id_dim=32, audio_dim=32, au_feature_dim=8, rnn_hidden=32, base_channels=8,
        audio_channels=(8, 8, 16, 16, 16), a2au_channels=4, a2au_lstm_hidden=16,
        au_cls_channels=(4, 4, 8, 8), au_cls_hidden=(16, 8), disc_channels=8,
    )  # fmt: skip
    return ModelConfig(image_size=image_size, **{**widths, **overrides})


@dataclass(frozen=True)
class LossConfig:
    """Which terms of Eq. 8 are on, their lambdas (sec 4.2) and the details the paper leaves open."""

    rec: bool = True  # Eq. 6
    id: bool = True  # Eq. 7
    per: bool = True  # Eq. 5
    au: bool = True  # Eq. 3
    adv: bool = True  # Eq. 4
    lambda_rec: float = PAPER_LAMBDAS["rec"]
    lambda_id: float = PAPER_LAMBDAS["id"]
    lambda_per: float = PAPER_LAMBDAS["per"]
    lambda_au: float = PAPER_LAMBDAS["au"]
    lambda_adv: float = PAPER_LAMBDAS["adv"]
    # "torchvision": vgg19-dcbb9e9d.pth under $TORCH_HOME/hub/checkpoints; a path; or "random"
    # (no ImageNet weights: the perceptual loss is then NOT the paper's, and says so everywhere).
    vgg_weights: str = "torchvision"
    vgg_layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4")
    dice_eps: float = 1.0  # smooth term of Eq. 2 (value not given in the paper)
    # r_i of the training set, in ModelConfig.aus order; None -> w_i = 1 (unweighted)
    au_occurrence_rates: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        for term in LOSS_TERMS:
            if getattr(self, f"lambda_{term}") < 0:
                raise ValueError(f"lambda_{term} must be >= 0")
        if self.dice_eps < 0:
            raise ValueError("dice_eps must be >= 0")

    def enabled_terms(self) -> tuple[str, ...]:
        return tuple(t for t in LOSS_TERMS if getattr(self, t))

    def weight(self, term: str) -> float:
        if term not in LOSS_TERMS:
            raise ValueError(f"unknown loss term {term!r}; expected one of {LOSS_TERMS}")
        return float(getattr(self, f"lambda_{term}"))


@dataclass(frozen=True)
class ExperimentConfig:
    """A named model + loss configuration (one row of Table 2, or a custom run)."""

    name: str = "full"
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExperimentConfig:
        return cls(name=d["name"], model=_build(ModelConfig, d["model"]), loss=_build(LossConfig, d["loss"]))


# ---- Table 2 ablation ladder ----

# Row name -> (loss terms on, Audio2AU on). Each row adds one thing to the row above it.
_TABLE2: dict[str, tuple[tuple[str, ...], bool]] = {
    "baseline": (("rec",), False),
    "+per": (("rec", "per"), False),
    "+id": (("rec", "per", "id"), False),
    "+adv": (("rec", "per", "id", "adv"), False),
    "+au": (("rec", "per", "id", "adv", "au"), False),
    "full": (("rec", "per", "id", "adv", "au"), True),
}
# The row labels as printed in the paper.
TABLE2_LABELS: dict[str, str] = {
    "baseline": "Baseline (Lrec)",
    "+per": "Lrec,per",
    "+id": "Lrec,per,id",
    "+adv": "Lrec,per,id,adv",
    "+au": "Lrec,per,id,adv,au",
    "full": "Full model(+Audio2AU)",
}


def ablation_config(
    name: str, image_size: int = 112, use_gru: bool = True, **loss_overrides: Any
) -> ExperimentConfig:
    """The config of one Table-2 row ("baseline", "+per", "+id", "+adv", "+au", "full").

    ``loss_overrides`` set other LossConfig fields (e.g. ``vgg_weights="random"``, occurrence rates).
    """
    if name not in _TABLE2:
        raise ValueError(f"unknown Table-2 row {name!r}; expected one of {list(_TABLE2)}")
    terms, a2au = _TABLE2[name]
    switches = {t: t in terms for t in LOSS_TERMS}
    clash = set(switches) & set(loss_overrides)
    if clash:
        raise ValueError(f"{sorted(clash)} are fixed by the Table-2 row {name!r}; build a LossConfig instead")
    model = ModelConfig(image_size=image_size, use_audio2au=a2au, use_gru=use_gru)
    return ExperimentConfig(name=name, model=model, loss=LossConfig(**switches, **loss_overrides))


def table2_rows(image_size: int = 112, **loss_overrides: Any) -> dict[str, ExperimentConfig]:
    """All six Table-2 rows, in the paper's order."""
    return {name: ablation_config(name, image_size, **loss_overrides) for name in _TABLE2}


# ---- dict round trip ----


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"expected a config dataclass instance, got {type(cfg).__name__}")
    return _jsonable(dataclasses.asdict(cfg))


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    return x


def _build(cls: type, d: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    # JSON turned tuples into lists; frozen dataclasses want tuples back.
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
