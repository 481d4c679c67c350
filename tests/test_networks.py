"""Generator, Audio2AU, AU classifier and frame discriminator: shapes, time handling, gradients,
determinism, input checks and parameter counts."""

from __future__ import annotations

import pytest
import torch
from netutil import frame_influence, make_inputs

from autalk import PAPER_AUS
from autalk.config import LossConfig, ModelConfig, tiny_model_config
from autalk.losses import generator_loss_terms, total_loss
from autalk.networks import (
    AUClassifier,
    Audio2AU,
    Audio2AUBank,
    FrameDiscriminator,
    Generator,
    assert_shape,
    count_parameters,
    lower_half,
    print_parameter_counts,
    upper_half,
)


@pytest.mark.parametrize("size", [64, 112])
def test_paper_width_shapes(size: int) -> None:
    cfg = ModelConfig(image_size=size)
    torch.manual_seed(0)
    gen = Generator(cfg).eval()
    identity, mfcc = make_inputs(2, 3, size)
    with torch.no_grad():
        out = gen(identity, mfcc)
        assert out.frames.shape == (2, 3, 3, size, size)
        assert out.au_logits is not None and out.au_logits.shape == (2, 3, len(PAPER_AUS))
        assert out.frames.abs().max() <= 1  # tanh output, images in [-1, 1]
        assert AUClassifier(cfg)(lower_half(identity)).shape == (2, 5)
        disc = FrameDiscriminator(cfg)
        assert disc(out.frames).shape == (2, 3)
        assert disc(identity).shape == (2,)


def test_paper_feature_sizes() -> None:
    gen = Generator(ModelConfig(image_size=64))
    assert gen.identity_encoder.fc.out_features == 512
    assert gen.audio_encoder.fc[-1].out_features == 512
    assert gen.rnn.input_size == 512 + 512 + 5 * 64  # f_id ⊕ f_a ⊕ f_au
    assert len(gen.identity_encoder.convs) == 4
    assert sum(isinstance(m, torch.nn.Conv2d) for m in gen.audio_encoder.modules()) == 5
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in gen.audio_encoder.modules()) == 5
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in gen.decoder.modules()) == 6
    assert sum(isinstance(m, torch.nn.Linear) for m in gen.decoder.modules()) == 1
    cls = AUClassifier(ModelConfig(image_size=64))
    assert sum(isinstance(m, torch.nn.Conv2d) for m in cls.modules()) == 4
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in cls.modules()) == 2
    assert sum(isinstance(m, torch.nn.Linear) for m in cls.modules()) == 3
    no_au = Generator(ModelConfig(image_size=64, use_audio2au=False))
    assert no_au.audio2au is None and no_au.rnn.input_size == 1024


def test_no_audio2au_gives_no_logits() -> None:
    gen = Generator(tiny_model_config(use_audio2au=False)).eval()
    out = gen(*make_inputs(1, 2, 64))
    assert out.au_logits is None and out.frames.shape == (1, 2, 3, 64, 64)


def test_audio2au_penultimate_features() -> None:
    cfg = tiny_model_config(au_feature_dim=64)  # the paper's 64-d features
    torch.manual_seed(0)
    unit = Audio2AU(cfg).eval()
    mfcc = torch.randn(2, 3, 12, 28)
    with torch.no_grad():
        feats = unit.features(mfcc)
        logits = unit(mfcc)
    assert feats.shape == (2, 3, 64) and logits.shape == (2, 3, 1)
    assert (feats >= 0).all()  # output of the penultimate layer's ReLU
    torch.testing.assert_close(logits, unit.head(feats))  # head == the removed last FC layer

    bank = Audio2AUBank(cfg).eval()
    assert list(bank.units) == [f"au{a}" for a in PAPER_AUS]
    with torch.no_grad():
        bank_logits, bank_feats = bank(mfcc)
        assert bank_logits.shape == (2, 3, 5) and bank_feats.shape == (2, 3, 320)
        for i, u in enumerate(bank.units.values()):
            torch.testing.assert_close(bank_feats[..., 64 * i : 64 * (i + 1)], u.features(mfcc))
            torch.testing.assert_close(bank_logits[..., i : i + 1], u(mfcc))


def test_generator_au_logits_come_from_its_audio2au_bank() -> None:
    torch.manual_seed(0)
    gen = Generator(tiny_model_config()).eval()
    identity, mfcc = make_inputs(1, 3, 64)
    with torch.no_grad():
        out = gen(identity, mfcc)
        torch.testing.assert_close(out.au_logits, gen.audio2au(mfcc)[0])


def test_audio2au_treats_frames_independently() -> None:
    """The documented choice: the LSTM runs inside each 280 ms window, not across frames."""
    torch.manual_seed(0)
    bank = Audio2AUBank(tiny_model_config()).eval()
    mfcc = torch.randn(1, 4, 12, 28)
    changed = mfcc.clone()
    changed[:, 1] += 3.0
    with torch.no_grad():
        a, b = bank(mfcc)[0], bank(changed)[0]
        alone = bank(mfcc[:, 2:3])[0]
    influence = frame_influence(a, b)
    assert influence[1] > 0
    assert max(influence[0], influence[2], influence[3]) <= 1e-4 * influence[1], influence
    torch.testing.assert_close(alone[:, 0], a[:, 2])  # same answer whatever T the frame came with


@pytest.mark.parametrize("use_gru", [True, False])
def test_gru_switch_controls_temporal_memory(use_gru: bool) -> None:
    torch.manual_seed(0)
    gen = Generator(tiny_model_config(use_gru=use_gru)).eval()
    identity, mfcc = make_inputs(1, 3, 64)
    changed = mfcc.clone()
    changed[:, 0] += 3.0
    with torch.no_grad():
        influence = frame_influence(gen(identity, mfcc).frames, gen(identity, changed).frames)
    assert influence[0] > 0
    if use_gru:  # frame 0's audio reaches frame 2 through the GRU state
        assert influence[2] >= 1e-2 * influence[0], influence
    else:
        assert max(influence[1:]) <= 1e-4 * influence[0], influence


def test_gradients_reach_every_trainable_module() -> None:
    torch.manual_seed(0)
    cfg = tiny_model_config()
    gen, cls, disc = Generator(cfg), AUClassifier(cfg), FrameDiscriminator(cfg)
    identity, mfcc = make_inputs(2, 2, 64)
    real = torch.rand(2, 2, 3, 64, 64) * 2 - 1
    labels = (torch.rand(2, 2, 5) > 0.5).float()
    loss_cfg = LossConfig()  # every term on, Audio2AU on
    out = gen(identity, mfcc)
    terms = generator_loss_terms(
        loss_cfg,
        out,
        real,
        identity,
        vgg=lambda x: [x, x.mean(1)],
        discriminator=disc,
        au_classifier=cls,
        au_labels=labels,
    )
    total_loss(terms, loss_cfg).backward()
    for model in (gen, cls, disc):
        for name, p in model.named_parameters():
            assert p.grad is not None, f"{type(model).__name__}.{name} got no gradient"
            assert p.grad.abs().sum() > 0, f"{type(model).__name__}.{name} got a zero gradient"


def test_deterministic_forward_for_a_seed() -> None:
    identity, mfcc = make_inputs(1, 2, 64)

    def run(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        gen = Generator(tiny_model_config()).eval()
        with torch.no_grad():
            return gen(identity, mfcc).frames

    first, again, other = run(0), run(0), run(1)
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_bad_inputs_raise_clear_errors() -> None:
    gen = Generator(tiny_model_config())
    identity, mfcc = make_inputs(2, 3, 64)
    with pytest.raises(ValueError, match=r"mfcc: expected shape \(B, T, 12, 28\), got \(2, 3, 13, 28\)"):
        gen(identity, torch.randn(2, 3, 13, 28))
    with pytest.raises(ValueError, match=r"mfcc: expected shape \(B, T, 12, 28\) \(4 dims\)"):
        gen(identity, torch.randn(2, 12, 28))
    with pytest.raises(
        ValueError, match=r"identity: expected shape \(B, 3, 64, 64\), got \(2, 3, 112, 112\)"
    ):
        gen(torch.zeros(2, 3, 112, 112), mfcc)
    with pytest.raises(ValueError, match="batch sizes differ: identity has 1, mfcc has 2"):
        gen(identity[:1], mfcc)
    with pytest.raises(ValueError, match="floating point"):
        gen(identity, mfcc.long())
    cls = AUClassifier(tiny_model_config())
    with pytest.raises(ValueError, match="lower half"):
        cls(identity)
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 64\)"):
        cls(identity[:, :, :20])
    with pytest.raises(ValueError, match="discriminator frames"):
        FrameDiscriminator(tiny_model_config())(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="multiple of 16"):
        ModelConfig(image_size=100)


def test_assert_shape_named_dims_must_agree() -> None:
    assert_shape(torch.zeros(2, 2, 5), ("B", "B", 5), "x")
    with pytest.raises(ValueError, match=r"x: expected shape \(B, B, 5\), got \(2, 3, 5\) \(B differs\)"):
        assert_shape(torch.zeros(2, 3, 5), ("B", "B", 5), "x")


def test_halves_split_rows() -> None:
    x = torch.arange(8.0).reshape(1, 1, 4, 2)
    assert upper_half(x).flatten().tolist() == [0, 1, 2, 3]
    assert lower_half(x).flatten().tolist() == [4, 5, 6, 7]


def test_parameter_counts(capsys: pytest.CaptureFixture[str]) -> None:
    gen = Generator(tiny_model_config())
    counts = count_parameters(gen)
    parts = ["identity_encoder", "audio_encoder", "audio2au", "rnn", "decoder"]
    assert list(counts)[:5] == parts
    assert sum(counts[p] for p in parts) == counts["total"] == sum(p.numel() for p in gen.parameters())
    assert counts["trainable"] == counts["total"]
    gen.audio2au.requires_grad_(False)
    assert count_parameters(gen)["trainable"] == counts["total"] - counts["audio2au"]
    print_parameter_counts(gen, "tiny generator")
    printed = capsys.readouterr().out
    assert "tiny generator" in printed and f"{counts['decoder']:,}" in printed
    assert "audio2au" not in count_parameters(Generator(tiny_model_config(use_audio2au=False)))
