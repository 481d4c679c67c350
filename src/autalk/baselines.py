"""The two baselines of Table 1, rebuilt "in the same conditions" as the paper's model (sec 4.3):
same inputs (one identity frame, one (12, 28) MFCC window per frame), same image size, same encoder
and U-Net decoder blocks as ``autalk.networks``, so differences come from what each method adds.

CRAN-like (Song et al., IJCAI 2019, "Talking face generation by conditional recurrent adversarial
network"): a recurrent generator whose recurrent unit takes image and audio features at every frame,
a spatial (frame) discriminator and a temporal (sequence) discriminator. Simplified: the recurrent
unit is one LSTM layer over f_id ⊕ f_a (no noise input); the lip-reading discriminator, the
phoneme-based sample selection and the Obama pose extension are left out; the encoders/decoder are
this project's, not CRAN's; loss = lambda_rec L1 + lambda_adv (frame GAN + sequence GAN), with the
paper's lambdas (1.5, 0.002) in place of CRAN's own.

Speech2Vid-like (Jamaludin et al., IJCV 2019, "You said that?"): an audio encoder and an identity
encoder whose features are concatenated, and an image decoder with skip connections from the
identity encoder; each frame is generated on its own (no recurrence); trained with L1 only
(``losses.reconstruction_loss``). Simplified: one identity frame instead of five stacked frames,
this project's encoders/decoder instead of VGG-M ones, and no separate deblurring refinement network.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import torch
from torch import Tensor, nn

from autalk.config import LossConfig, ModelConfig
from autalk.losses import adversarial_d_loss, adversarial_g_loss, reconstruction_loss
from autalk.networks import (
    AudioEncoder,
    FrameDiscriminator,
    Generator,
    GeneratorOutput,
    IdentityEncoder,
    ImageDecoder,
    assert_shape,
    check_generator_inputs,
    repeat_over_time,
)

# ---- CRAN ----


class CRANGenerator(Generator):
    """CRAN-like recurrent generator: identity + audio encoders -> LSTM over frames -> U-Net decoder.

    Same call as ``networks.Generator``: ``(identity (B,3,H,W), mfcc (B,T,12,28)) -> GeneratorOutput``
    with ``au_logits`` None (no Audio2AU).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        cfg = replace(cfg, use_audio2au=False, use_gru=True)
        super().__init__(cfg)
        # The LSTM returns (output, state) like the GRU it replaces, so Generator.forward is reused.
        self.rnn = nn.LSTM(cfg.id_dim + cfg.audio_dim, cfg.rnn_hidden, batch_first=True)


class SequenceDiscriminator(nn.Module):
    """CRAN's temporal discriminator: is this clip real? Per-frame conv features (4 convs k4 s2,
    LeakyReLU, global average pool), then a GRU over the T frames and a logit from its last state.
    (B,T,3,H,W) -> (B,) logits.
    """

    def __init__(self, cfg: ModelConfig, hidden: int = 256) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.disc_channels
        chans = [3, c, 2 * c, 4 * c, 4 * c]
        layers: list[nn.Module] = []
        for cin, cout in pairwise(chans):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        self.frame_encoder = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.rnn = nn.GRU(4 * c, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, frames: Tensor) -> Tensor:
        h = self.cfg.image_size
        assert_shape(frames, ("B", "T", 3, h, h), "sequence discriminator frames")
        b, t = frames.shape[:2]
        feats = self.frame_encoder(frames.flatten(0, 1)).reshape(b, t, -1)  # (B,T,4c)
        _, last = self.rnn(feats)  # (1,B,hidden)
        return self.fc(last[-1]).squeeze(1)


def cran_generator_losses(
    frames: Tensor, real: Tensor, frame_d: nn.Module, seq_d: nn.Module, cfg: LossConfig | None = None
) -> dict[str, Tensor]:
    """CRAN generator objective: {"rec", "adv_frame", "adv_seq", "total"}; total = lambda_rec * rec +
    lambda_adv * (adv_frame + adv_seq), GAN terms in the non-saturating form (``adversarial_g_loss``)."""
    cfg = cfg or LossConfig()
    terms = {
        "rec": reconstruction_loss(frames, real),
        "adv_frame": adversarial_g_loss(frame_d(frames)),
        "adv_seq": adversarial_g_loss(seq_d(frames)),
    }
    terms["total"] = cfg.lambda_rec * terms["rec"] + cfg.lambda_adv * (terms["adv_frame"] + terms["adv_seq"])
    return terms


def cran_discriminator_loss(frame_d: nn.Module, seq_d: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """Both CRAN discriminators' losses (Eq. 4 form) on real clips vs detached generated clips."""
    fake = fake.detach()
    return adversarial_d_loss(frame_d(real), frame_d(fake)) + adversarial_d_loss(seq_d(real), seq_d(fake))


# ---- Speech2Vid ----


class Speech2VidGenerator(nn.Module):
    """Speech2Vid-like generator: f_id ⊕ f_a (1024-d) straight into the U-Net decoder, frame by frame.

    ``(identity (B,3,H,W), mfcc (B,T,12,28)) -> GeneratorOutput(frames (B,T,3,H,W), au_logits=None)``.
    Train with ``losses.reconstruction_loss`` alone.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = replace(cfg, use_audio2au=False, use_gru=False)
        self.identity_encoder = IdentityEncoder(self.cfg)
        self.audio_encoder = AudioEncoder(self.cfg)
        self.decoder = ImageDecoder(self.cfg, cfg.id_dim + cfg.audio_dim)

    def forward(self, identity: Tensor, mfcc: Tensor) -> GeneratorOutput:
        b, t = check_generator_inputs(self.cfg, identity, mfcc)
        f_id, skips = self.identity_encoder(identity)  # (B,512)
        f_a = self.audio_encoder(mfcc.flatten(0, 1))  # (BT,512)
        f = torch.cat([repeat_over_time(f_id, t), f_a], dim=1)  # (BT,1024)
        frames = self.decoder(f, [repeat_over_time(e, t) for e in skips])
        h = self.cfg.image_size
        return GeneratorOutput(frames=frames.reshape(b, t, 3, h, h))


# ---- factory ----


def build_baseline(name: str, cfg: ModelConfig) -> tuple[nn.Module, dict[str, nn.Module]]:
    """("cran" | "speech2vid") -> (generator, discriminators by name; empty for Speech2Vid)."""
    if name == "cran":
        return CRANGenerator(cfg), {"frame": FrameDiscriminator(cfg), "sequence": SequenceDiscriminator(cfg)}
    if name == "speech2vid":
        return Speech2VidGenerator(cfg), {}
    raise ValueError(f"unknown baseline {name!r}; expected 'cran' or 'speech2vid'")
