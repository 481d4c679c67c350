"""VGG-19 feature extractor for the perceptual loss (Eq. 5), in plain torch (no torchvision import).

The paper uses an ImageNet-pretrained VGG-19. Its weights are the standard torchvision file
``vgg19-dcbb9e9d.pth``; ``VGG19Features`` mirrors torchvision's ``vgg19().features`` layer for layer,
so that file's ``features.{0,2,5,...,34}.weight/.bias`` keys load as they are (``classifier.*`` is
ignored). Where the file is looked for:

* ``weights="torchvision"`` (default): ``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth``, TORCH_HOME
  defaulting to ``~/.cache/torch`` (``torch.hub.get_dir()``, where torchvision itself caches it);
* a path to such a file;
* ``"random"``: no ImageNet weights at all. The perceptual loss is then NOT the paper's; the module
  warns when built, its ``weights_source`` is ``"random (NOT ImageNet)"`` and its repr says so.

A missing file stops with ``VGGWeightsMissingError`` saying where to download it and where to put it.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)

VGG19_FILENAME = "vgg19-dcbb9e9d.pth"
VGG19_URL = f"https://download.pytorch.org/models/{VGG19_FILENAME}"
RANDOM_SOURCE = "random (NOT ImageNet)"

# torchvision's "E" configuration; "M" is a 2x2 max-pool.
_CFG: tuple[int | str, ...] = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
    "M",
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _layer_names() -> list[str]:
    """Name of every entry of ``features`` (conv1_1, relu1_1, ..., pool5), by torchvision index."""
    names, block, conv = [], 1, 1
    for v in _CFG:
        if v == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


LAYER_NAMES: tuple[str, ...] = tuple(_layer_names())  # LAYER_NAMES[i] is features[i]


class VGGWeightsMissingError(FileNotFoundError):
    """The ImageNet VGG-19 file is not where it was looked for."""


def default_weights_path() -> Path:
    """``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth`` (TORCH_HOME defaults to ~/.cache/torch)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILENAME


def resolve_weights(weights: str | os.PathLike[str] | None) -> Path | None:
    """The file a ``vgg_weights`` setting points at, or None for "random". Raises if it is missing."""
    if weights == "random":
        return None
    path = default_weights_path() if weights in (None, "torchvision") else Path(weights).expanduser()
    if not path.is_file():
        raise VGGWeightsMissingError(
            f"ImageNet VGG-19 weights not found at {path}.\n"
            f"The perceptual loss (Eq. 5) needs them. Download {VGG19_URL}\n"
            f"and save it as {default_weights_path()} (the torchvision cache; set TORCH_HOME to move it),\n"
            f"or set vgg_weights: /path/to/{VGG19_FILENAME} in the config. Only `vgg_weights: random` runs\n"
            f"without them, and its perceptual loss is then NOT the paper's."
        )
    return path


def _expected_shapes() -> dict[str, tuple[int, ...]]:
    shapes, cin, i = {}, 3, 0
    for v in _CFG:
        if v == "M":
            i += 1
            continue
        shapes[f"features.{i}.weight"] = (int(v), cin, 3, 3)
        shapes[f"features.{i}.bias"] = (int(v),)
        cin, i = int(v), i + 2
    return shapes


def load_vgg19_feature_weights(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read the ``features.*`` tensors of a torchvision VGG-19 file, checking keys and shapes.

    Loaded with ``torch.load(weights_only=True)``; ``classifier.*`` keys are ignored. Raises a
    ValueError naming the file for anything else in it that is missing, extra or mis-shaped.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors, truncated files, not-a-checkpoint files
        raise ValueError(f"{path}: cannot read as a torch state_dict ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a VGG-19 state_dict (dict), got {type(state).__name__}")
    expected = _expected_shapes()
    feats = {k: v for k, v in state.items() if isinstance(k, str) and k.startswith("features.")}
    missing = sorted(set(expected) - set(feats), key=_key_order)
    extra = sorted(set(feats) - set(expected))
    if missing or extra:
        raise ValueError(
            f"{path} is not a torchvision VGG-19 ({VGG19_FILENAME}) state_dict: "
            f"missing {missing[:6]}{' ...' if len(missing) > 6 else ''}, unexpected {extra[:6]}"
        )
    bad = [
        f"{k}: {tuple(feats[k].shape)} (want {shape})"
        for k, shape in expected.items()
        if not isinstance(feats[k], Tensor) or tuple(feats[k].shape) != shape
    ]
    if bad:
        raise ValueError(
            f"{path} has VGG-19 keys with wrong shapes (not {VGG19_FILENAME}?): " + "; ".join(bad[:4])
        )
    return {k[len("features.") :]: feats[k].float() for k in expected}


def _key_order(key: str) -> tuple[int, str]:
    return int(key.split(".")[1]), key


class VGG19Features(nn.Module):
    """Frozen VGG-19 ``features`` returning the activations of chosen layers.

    ``forward(x (N,3,H,W) in [-1,1]) -> list`` of (N,C_l,H_l,W_l), one per name in ``layers`` (e.g.
    "relu3_4"). Inputs are mapped to [0,1] and normalised with the ImageNet mean/std first.
    """

    def __init__(
        self,
        layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4"),
        weights: str | os.PathLike[str] | None = "torchvision",
    ) -> None:
        super().__init__()
        unknown = [name for name in layers if name not in LAYER_NAMES]
        if unknown or not layers or len(set(layers)) != len(layers):
            raise ValueError(f"VGG-19 layers must be distinct names from {LAYER_NAMES}; got {list(layers)}")
        self.layers = tuple(layers)
        self._indices = [LAYER_NAMES.index(name) for name in self.layers]
        mods: list[nn.Module] = []
        cin = 3
        for v in _CFG:
            if v == "M":
                mods.append(nn.MaxPool2d(2, 2))
            else:
                mods += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=False)]
                cin = int(v)
        self.features = nn.Sequential(*mods)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

        path = resolve_weights(weights)
        if path is None:
            self.weights_source = RANDOM_SOURCE
            msg = (
                "VGG-19 has RANDOM weights (vgg_weights: random), NOT ImageNet: the perceptual loss is not "
                f"the paper's. Get {VGG19_URL} into {default_weights_path()} for the real one."
            )
            warnings.warn(msg, stacklevel=2)
            log.warning(msg)
        else:
            self.features.load_state_dict(load_vgg19_feature_weights(path))
            self.weights_source = f"ImageNet ({path})"
            log.info("VGG-19 weights: %s", self.weights_source)
        self.requires_grad_(False)
        self.eval()

    @property
    def is_pretrained(self) -> bool:
        return self.weights_source != RANDOM_SOURCE

    def extra_repr(self) -> str:
        return f"layers={self.layers}, weights_source={self.weights_source!r}"

    def train(self, mode: bool = True) -> VGG19Features:
        return super().train(False)  # always frozen, whatever the parent module does

    def normalize(self, x: Tensor) -> Tensor:
        """[-1,1] images -> ImageNet-normalised input."""
        return ((x + 1) / 2 - self.mean) / self.std

    def forward(self, x: Tensor) -> list[Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"VGG-19 expects images (N,3,H,W) in [-1,1], got {tuple(x.shape)}")
        x = self.normalize(x)
        kept: dict[int, Tensor] = {}
        for i, layer in enumerate(self.features[: max(self._indices) + 1]):
            x = layer(x)
            if i in self._indices:
                kept[i] = x
        return [kept[i] for i in self._indices]
