"""The paper's networks (Chen et al., BMVC 2021, section 3.1), one module per paper block.

Shapes: B batch, T frames, A AUs (10, 14, 20, 25, 26), H = W = ``ModelConfig.image_size`` (112 paper,
64 quick). Images are float in [-1, 1]; audio is one MFCC window A_k of shape (12, 28) per video frame
(12 MFCCs x 28 steps = 280 ms at 100 Hz), so a clip is (B, T, 12, 28).

Generator data flow (Fig. 1), per frame k::

    I_id (B,3,H,W) --IdentityEncoder--> f_id (512) ---------------------+
    A_k  (12,28) ----AudioEncoder-----> f_a_k (512) --------------------+-- f_k (512+512+320)
    A_k  (12,28) ----Audio2AUBank-----> f_au_k (5 x 64 = 320) ----------+       |
                                        (+ AU logits, for L_au)                  GRU over k = 1..T
                                                                                 |
                                                            ft_k --ImageDecoder--> F^_k (3,H,W)

U-Net between the identity encoder and the image decoder (c = base_channels; H = 112 gives
H/2..H/16 = 56, 28, 14, 7; "==>" is a skip connection, "cat" a channel concatenation)::

    I_id  3 x H
     | conv1 k4 s2, ReLU
    e1    c x H/2  ===========================> cat -> tconv4 k4 s2 -> c x H -> tconv5, tconv6 -> 3 x H
     | conv2 k4 s2, ReLU                         ^                        (k3 s1)   (k3 s1, tanh)
    e2   2c x H/4  =================> cat -> tconv3 k4 s2 -> c x H/2
     | conv3 k4 s2, ReLU               ^
    e3   4c x H/8  =======> cat -> tconv2 k4 s2 -> 2c x H/4
     | conv4 k4 s2, ReLU     ^
    e4   8c x H/16 => cat -> tconv1 k4 s2 -> 4c x H/8
     | FC             ^
    f_id 512       8c x H/16 <- FC(ft_k)

Every decoder layer is a transposed convolution (6 in all) after one fully connected layer, as in
the paper; BatchNorm + ReLU follow each one except the last (tanh).

Not in the paper and chosen here (see ``ModelConfig``): channel widths, kernel sizes and strides,
the GRU size (512), how Audio2AU's LSTM is run (``Audio2AU`` docstring), the frame discriminator's
layers, and a per-frame linear layer standing in for the GRU when ``use_gru`` is off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import Tensor, nn

from autalk.config import ModelConfig

# ---- helpers ----


def assert_shape(x: Tensor, shape: Sequence[int | str], name: str) -> None:
    """Raise a ValueError unless ``x`` has ``shape``; str entries are named free sizes ("B", "T")
    that must agree wherever the same name appears, e.g. ``assert_shape(m, ("B", "T", 12, 28), "mfcc")``."""
    want = "(" + ", ".join(str(s) for s in shape) + ")"
    if not isinstance(x, Tensor):
        raise ValueError(f"{name}: expected a tensor of shape {want}, got {type(x).__name__}")
    if x.dim() != len(shape):
        raise ValueError(f"{name}: expected shape {want} ({len(shape)} dims), got {tuple(x.shape)}")
    seen: dict[str, int] = {}
    for want_d, got in zip(shape, x.shape, strict=True):
        if isinstance(want_d, str):
            if seen.setdefault(want_d, got) != got:
                raise ValueError(f"{name}: expected shape {want}, got {tuple(x.shape)} ({want_d} differs)")
        elif want_d != got:
            raise ValueError(f"{name}: expected shape {want}, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name}: expected a floating point tensor, got {x.dtype}")


def upper_half(x: Tensor) -> Tensor:
    """Rows [0, H/2) of images (..., H, W): the upper face of Eq. 7."""
    return x[..., : x.shape[-2] // 2, :]


def lower_half(x: Tensor) -> Tensor:
    """Rows [H/2, H) of images (..., H, W): the AU classifier's input (mouth region)."""
    return x[..., x.shape[-2] // 2 :, :]


def _conv_out(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Parameter count per direct child module, plus "total" and "trainable"."""
    counts = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    own = sum(p.numel() for p in model.parameters(recurse=False))
    if own:
        counts["(own)"] = own
    counts["total"] = sum(p.numel() for p in model.parameters())
    counts["trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return counts


def print_parameter_counts(model: nn.Module, title: str | None = None) -> dict[str, int]:
    """Print ``count_parameters`` as an aligned table and return it."""
    counts = count_parameters(model)
    print(f"{title or type(model).__name__}:")
    width = max(len(k) for k in counts)
    for name, n in counts.items():
        print(f"  {name:<{width}}  {n:>12,}")
    return counts


def module_shapes(model: nn.Module, *inputs: Tensor, depth: int = 1) -> list[tuple[str, str, str]]:
    """Run ``model(*inputs)`` once and return (module name, input shapes, output shapes) of every submodule
    down to ``depth`` levels (1 = direct children): the shapes at each module boundary."""
    rows: list[tuple[str, str, str]] = []

    def fmt(x: object) -> str:
        if isinstance(x, Tensor):
            return str(tuple(x.shape))
        if isinstance(x, tuple | list):
            return "[" + ", ".join(fmt(v) for v in x if isinstance(v, Tensor | tuple | list)) + "]"
        return type(x).__name__

    hooks = []
    for name, m in model.named_modules():
        if name and name.count(".") < depth:
            hooks.append(m.register_forward_hook(
                lambda mod, args, out, name=name: rows.append((name, fmt(args), fmt(out)))))
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return rows


# ---- identity encoder ----


class IdentityEncoder(nn.Module):
    """E_id: 4 convolutions (k4 s2) each followed by ReLU, then a fully connected layer to 512.

    (N,3,H,W) -> f_id (N,512) and the four feature maps [e1..e4] for the U-Net skips.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.base_channels
        chans = [3, c, 2 * c, 4 * c, 8 * c]
        self.convs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(i, o, 4, 2, 1), nn.ReLU(inplace=True)) for i, o in pairwise(chans)
        )
        s = cfg.image_size // 16
        self.fc = nn.Linear(8 * c * s * s, cfg.id_dim)

    def forward(self, image: Tensor) -> tuple[Tensor, list[Tensor]]:
        h = self.cfg.image_size
        assert_shape(image, ("N", 3, h, h), "identity image")
        skips = []
        x = image
        for conv in self.convs:
            x = conv(x)
            skips.append(x)
        return self.fc(x.flatten(1)), skips


# ---- audio encoder ----


class AudioEncoder(nn.Module):
    """E_a: 5 conv2d + BatchNorm + ReLU over one MFCC window, then two fully connected layers to 512.

    (N,12,28) -> f_a (N,512). Spatial size 12x28 -> 12x28 -> 6x14 -> 6x14 -> 3x7 -> 3x4.
    """

    STRIDES = ((1, 1), (2, 2), (1, 1), (2, 2), (1, 2))

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        cin, h, w = 1, cfg.n_mfcc, cfg.mfcc_steps
        for cout, (sh, sw) in zip(cfg.audio_channels, self.STRIDES, strict=True):
            layers += [nn.Conv2d(cin, cout, 3, (sh, sw), 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin, h, w = cout, _conv_out(h, 3, sh, 1), _conv_out(w, 3, sw, 1)
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            nn.Linear(cin * h * w, cfg.audio_dim),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.audio_dim, cfg.audio_dim),
        )

    def forward(self, mfcc: Tensor) -> Tensor:
        assert_shape(mfcc, ("N", self.cfg.n_mfcc, self.cfg.mfcc_steps), "audio encoder mfcc window")
        return self.fc(self.convs(mfcc.unsqueeze(1)).flatten(1))


# ---- Audio2AU ----


class Audio2AU(nn.Module):
    """Audio-to-AU module for one AU: conv along frequency, conv along time, 2 LSTM layers, 3 FC layers.

    (B,T,12,28) -> logits (B,T,1); ``sigmoid(logits)`` is the paper's AU occurrence probability used in
    pre-training. In the generator the last FC layer (``head``) is removed from the feature path: the
    64-d output of the penultimate layer (after its ReLU, i.e. exactly the input of ``head``) is the AU
    feature f_au_i, ``features(mfcc)`` -> (B,T,64). The generator still evaluates ``head`` on the side
    to report AU logits, so L_au can fine-tune the module (sec 4.2); those logits never enter f_k.

    Time handling: the LSTM runs over the 28 MFCC steps *inside* each 280 ms window, and every video
    frame's window is processed independently (B*T windows as one batch); the last LSTM step feeds
    the FC layers. Why: the AU labels are per frame and the paper pre-trains this module on paired
    (audio window, AU) samples and calls it real-time, so a frame's AU estimate must not depend on
    which clip, which T, or which neighbouring frames it came with; a 280 ms window already holds
    ±140 ms of context, and dependence *between* frames is the generator GRU's job (sec 3.1).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.a2au_channels
        # Frequency then time convolution, shapes kept at (c, 12, 28).
        self.freq_conv = nn.Sequential(nn.Conv2d(1, c, (3, 1), padding=(1, 0)), nn.BatchNorm2d(c), nn.ReLU())
        self.time_conv = nn.Sequential(nn.Conv2d(c, c, (1, 3), padding=(0, 1)), nn.BatchNorm2d(c), nn.ReLU())
        self.lstm = nn.LSTM(c * cfg.n_mfcc, cfg.a2au_lstm_hidden, num_layers=2, batch_first=True)
        self.fc1 = nn.Linear(cfg.a2au_lstm_hidden, 128)
        self.fc2 = nn.Linear(128, cfg.au_feature_dim)
        self.head = nn.Linear(cfg.au_feature_dim, 1)  # the layer the generator's features skip
        self.act = nn.ReLU()

    def features(self, mfcc: Tensor) -> Tensor:
        """Penultimate 64-d features: (B,T,12,28) -> (B,T,64)."""
        assert_shape(mfcc, ("B", "T", self.cfg.n_mfcc, self.cfg.mfcc_steps), "Audio2AU mfcc")
        b, t = mfcc.shape[:2]
        x = mfcc.reshape(b * t, 1, self.cfg.n_mfcc, self.cfg.mfcc_steps)
        x = self.time_conv(self.freq_conv(x))  # (BT, c, 12, 28)
        x = x.permute(0, 3, 1, 2).flatten(2)  # (BT, 28, c*12): one LSTM step per MFCC time step
        out, _ = self.lstm(x)  # (BT, 28, hidden)
        f = self.act(self.fc2(self.act(self.fc1(out[:, -1]))))  # (BT, 64)
        return f.reshape(b, t, -1)

    def forward(self, mfcc: Tensor) -> Tensor:
        return self.head(self.features(mfcc))


class Audio2AUBank(nn.Module):
    """The five Audio2AU modules side by side (keys "au10", "au14", ...).

    (B,T,12,28) -> (logits (B,T,A), features (B,T,A*64) = f_au10 ⊕ f_au14 ⊕ f_au20 ⊕ f_au25 ⊕ f_au26).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.units = nn.ModuleDict({f"au{au}": Audio2AU(cfg) for au in cfg.aus})

    def forward(self, mfcc: Tensor) -> tuple[Tensor, Tensor]:
        feats = [unit.features(mfcc) for unit in self.units.values()]
        logits = [unit.head(f) for unit, f in zip(self.units.values(), feats, strict=True)]
        return torch.cat(logits, dim=-1), torch.cat(feats, dim=-1)


# ---- image decoder ----


def _up(cin: int, cout: int, k: int, s: int, p: int, last: bool = False) -> nn.Sequential:
    if last:
        return nn.Sequential(nn.ConvTranspose2d(cin, cout, k, s, p), nn.Tanh())
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, k, s, p), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ImageDecoder(nn.Module):
    """A fully connected layer and six transposed convolutions, with U-Net skips from the identity
    encoder concatenated before the first four (see the module diagram).

    (N, in_dim) and skips [e1..e4] (N, C_i, H_i, W_i) -> frames (N,3,H,W) in [-1,1].
    """

    def __init__(self, cfg: ModelConfig, in_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        c, s = cfg.base_channels, cfg.image_size // 16
        self.fc = nn.Sequential(nn.Linear(in_dim, 8 * c * s * s), nn.ReLU(inplace=True))
        self.ups = nn.ModuleList(
            [
                _up(16 * c, 4 * c, 4, 2, 1),  # cat e4 -> H/8
                _up(8 * c, 2 * c, 4, 2, 1),  # cat e3 -> H/4
                _up(4 * c, c, 4, 2, 1),  # cat e2 -> H/2
                _up(2 * c, c, 4, 2, 1),  # cat e1 -> H
                _up(c, c // 2, 3, 1, 1),
                _up(c // 2, 3, 3, 1, 1, last=True),
            ]
        )

    def forward(self, h: Tensor, skips: Sequence[Tensor]) -> Tensor:
        c, s = self.cfg.base_channels, self.cfg.image_size // 16
        assert_shape(h, ("N", self.fc[0].in_features), "decoder input")
        if len(skips) != 4:
            raise ValueError(f"decoder needs 4 skip tensors (e1..e4), got {len(skips)}")
        x = self.fc(h).reshape(-1, 8 * c, s, s)
        for up, skip in zip(self.ups[:4], reversed(skips), strict=True):
            if skip.shape[0] != x.shape[0] or skip.shape[2:] != x.shape[2:]:
                raise ValueError(
                    f"skip of shape {tuple(skip.shape)} does not fit decoder map {tuple(x.shape)}"
                )
            x = up(torch.cat([x, skip], dim=1))
        for up in self.ups[4:]:
            x = up(x)
        return x


# ---- generator ----


@dataclass
class GeneratorOutput:
    frames: Tensor  # (B,T,3,H,W) in [-1,1]
    au_logits: Tensor | None = None  # (B,T,A) from the Audio2AU heads; None without Audio2AU


def repeat_over_time(x: Tensor, t: int) -> Tensor:
    """(B, ...) -> (B*T, ...), each batch item repeated T times (frame-major within a clip)."""
    return x.unsqueeze(1).expand(x.shape[0], t, *x.shape[1:]).reshape(x.shape[0] * t, *x.shape[1:])


def check_generator_inputs(cfg: ModelConfig, identity: Tensor, mfcc: Tensor) -> tuple[int, int]:
    """Validate (identity (B,3,H,W), mfcc (B,T,12,28)); returns (B, T)."""
    h = cfg.image_size
    assert_shape(identity, ("B", 3, h, h), "identity")
    assert_shape(mfcc, ("B", "T", cfg.n_mfcc, cfg.mfcc_steps), "mfcc")
    if identity.shape[0] != mfcc.shape[0]:
        raise ValueError(f"batch sizes differ: identity has {identity.shape[0]}, mfcc has {mfcc.shape[0]}")
    if mfcc.shape[1] < 1:
        raise ValueError("mfcc needs at least one frame (T >= 1)")
    return mfcc.shape[0], mfcc.shape[1]


class Generator(nn.Module):
    """The paper's generator: identity + audio encoders, Audio2AU bank, GRU, U-Net image decoder.

    ``generator(identity (B,3,H,W), mfcc (B,T,12,28)) -> GeneratorOutput(frames (B,T,3,H,W), au_logits)``.
    ``cfg.use_audio2au`` off: f_k = f_id ⊕ f_a (1024-d) and ``au_logits`` is None.
    ``cfg.use_gru`` off: a per-frame Linear + tanh (same width) replaces the GRU, so frames are
    generated independently.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.identity_encoder = IdentityEncoder(cfg)
        self.audio_encoder = AudioEncoder(cfg)
        self.audio2au = Audio2AUBank(cfg) if cfg.use_audio2au else None
        in_dim = cfg.id_dim + cfg.audio_dim + (cfg.n_aus * cfg.au_feature_dim if cfg.use_audio2au else 0)
        if cfg.use_gru:
            self.rnn: nn.Module = nn.GRU(in_dim, cfg.rnn_hidden, batch_first=True)
        else:
            self.rnn = nn.Sequential(nn.Linear(in_dim, cfg.rnn_hidden), nn.Tanh())
        self.decoder = ImageDecoder(cfg, cfg.rnn_hidden)

    def encode(
        self, identity: Tensor, mfcc: Tensor, f_au: Tensor | None = None
    ) -> tuple[Tensor, list[Tensor], Tensor | None]:
        """Everything before the decoder: (ft (B,T,hidden), skips [e1..e4] (B,C,h,w), AU logits (B,T,A)).

        ``f_au`` (B,T,A*F) replaces the Audio2AU features (the AU-control demo steers them)."""
        b, t = check_generator_inputs(self.cfg, identity, mfcc)
        f_id, skips = self.identity_encoder(identity)  # (B,512), [e1..e4]
        f_a = self.audio_encoder(mfcc.flatten(0, 1)).reshape(b, t, -1)  # (B,T,512)
        parts = [f_id.unsqueeze(1).expand(b, t, f_id.shape[-1]), f_a]
        au_logits = None
        if self.audio2au is not None:
            au_logits, feats = self.audio2au(mfcc)  # (B,T,A), (B,T,A*64)
            parts.append(feats if f_au is None else f_au)
        f = torch.cat(parts, dim=-1)  # (B,T,1344) or (B,T,1024)
        ft = self.rnn(f)[0] if self.cfg.use_gru else self.rnn(f)  # (B,T,hidden)
        return ft, skips, au_logits

    def forward(self, identity: Tensor, mfcc: Tensor) -> GeneratorOutput:
        b, t = mfcc.shape[:2]
        ft, skips, au_logits = self.encode(identity, mfcc)
        frames = self.decoder(ft.reshape(b * t, -1), [repeat_over_time(e, t) for e in skips])
        h = self.cfg.image_size
        return GeneratorOutput(frames=frames.reshape(b, t, 3, h, h), au_logits=au_logits)


# ---- AU classifier ----


class AUClassifier(nn.Module):
    """AU classifier on the lower half of a face: 4 convs (3x3, BN, ReLU) with a max-pool after every
    two, then 3 fully connected layers. (B,3,H/2,W) -> logits (B,A); ``sigmoid`` gives the paper's
    occurrence probabilities (losses take logits for numerical stability).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c1, c2, c3, c4 = cfg.au_cls_channels

        def conv(i: int, o: int) -> list[nn.Module]:
            return [nn.Conv2d(i, o, 3, 1, 1), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *conv(3, c1), *conv(c1, c2), nn.MaxPool2d(2), *conv(c2, c3), *conv(c3, c4), nn.MaxPool2d(2)
        )
        h, w = cfg.image_size // 2 // 4, cfg.image_size // 4
        h1, h2 = cfg.au_cls_hidden
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c4 * h * w, h1),
            nn.ReLU(inplace=True),
            nn.Linear(h1, h2),
            nn.ReLU(inplace=True),
            nn.Linear(h2, cfg.n_aus),
        )

    def forward(self, lower_face: Tensor) -> Tensor:
        h = self.cfg.image_size
        if lower_face.dim() == 4 and lower_face.shape[-2:] == (h, h):
            raise ValueError(
                f"AU classifier takes the lower half of the face (B,3,{h // 2},{h}); "
                f"got a full image {tuple(lower_face.shape)}: pass networks.lower_half(image)"
            )
        assert_shape(lower_face, ("B", 3, h // 2, h), "AU classifier input (lower face)")
        return self.classifier(self.features(lower_face))


# ---- frame discriminator ----


class FrameDiscriminator(nn.Module):
    """D_frame of Eq. 4: is this single frame real? 4 convs (k4 s2, LeakyReLU 0.2, InstanceNorm after
    the first) and a linear layer to one logit. (N,3,H,W) -> (N,) or (B,T,3,H,W) -> (B,T) logits.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.disc_channels
        chans = [3, c, 2 * c, 4 * c, 8 * c]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(pairwise(chans)):
            layers.append(nn.Conv2d(cin, cout, 4, 2, 1))
            if i > 0:
                layers.append(nn.InstanceNorm2d(cout, affine=True))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        self.convs = nn.Sequential(*layers)
        s = cfg.image_size // 16
        self.fc = nn.Linear(8 * c * s * s, 1)

    def forward(self, frames: Tensor) -> Tensor:
        h = self.cfg.image_size
        if frames.dim() == 5:
            assert_shape(frames, ("B", "T", 3, h, h), "discriminator frames")
            return self(frames.flatten(0, 1)).reshape(frames.shape[:2])
        assert_shape(frames, ("N", 3, h, h), "discriminator frames")
        return self.fc(self.convs(frames).flatten(1)).squeeze(1)
