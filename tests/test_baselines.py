"""CRAN-like and Speech2Vid-like baselines: shapes, time handling, losses, gradients, a train step."""

from __future__ import annotations

import pytest
import torch
from netutil import frame_influence, make_inputs

from autalk.baselines import (
    CRANGenerator,
    SequenceDiscriminator,
    Speech2VidGenerator,
    build_baseline,
    cran_discriminator_loss,
    cran_generator_losses,
)
from autalk.config import LossConfig, tiny_model_config
from autalk.losses import adversarial_g_loss, reconstruction_loss
from autalk.networks import FrameDiscriminator


@pytest.mark.parametrize("size", [64, 112])
@pytest.mark.parametrize("name", ["cran", "speech2vid"])
def test_shapes(name: str, size: int) -> None:
    torch.manual_seed(0)
    gen, discs = build_baseline(name, tiny_model_config(image_size=size))
    identity, mfcc = make_inputs(2, 3, size)
    out = gen(identity, mfcc)
    assert out.frames.shape == (2, 3, 3, size, size) and out.au_logits is None
    assert out.frames.abs().max() <= 1
    if name == "cran":
        assert discs["frame"](out.frames).shape == (2, 3)
        assert discs["sequence"](out.frames).shape == (2,)
    else:
        assert discs == {}


def test_cran_is_recurrent_and_speech2vid_is_not() -> None:
    torch.manual_seed(0)
    cfg = tiny_model_config()
    cran, s2v = CRANGenerator(cfg).eval(), Speech2VidGenerator(cfg).eval()
    assert isinstance(cran.rnn, torch.nn.LSTM) and cran.audio2au is None
    identity, mfcc = make_inputs(1, 3, 64)
    changed = mfcc.clone()
    changed[:, 0] += 3.0
    with torch.no_grad():
        cran_influence = frame_influence(cran(identity, mfcc).frames, cran(identity, changed).frames)
        s2v_influence = frame_influence(s2v(identity, mfcc).frames, s2v(identity, changed).frames)
    assert cran_influence[2] >= 1e-2 * cran_influence[0] > 0, cran_influence
    assert s2v_influence[0] > 0 and max(s2v_influence[1:]) <= 1e-4 * s2v_influence[0], s2v_influence


def test_cran_losses_and_gradients() -> None:
    torch.manual_seed(0)
    cfg = tiny_model_config()
    gen, frame_d, seq_d = CRANGenerator(cfg), FrameDiscriminator(cfg), SequenceDiscriminator(cfg)
    identity, mfcc = make_inputs(2, 3, 64)
    real = torch.rand(2, 3, 3, 64, 64) * 2 - 1
    frames = gen(identity, mfcc).frames
    loss_cfg = LossConfig(lambda_rec=2.0, lambda_adv=0.5)
    terms = cran_generator_losses(frames, real, frame_d, seq_d, loss_cfg)
    torch.testing.assert_close(terms["rec"], reconstruction_loss(frames, real))
    torch.testing.assert_close(terms["adv_seq"], adversarial_g_loss(seq_d(frames)))
    torch.testing.assert_close(
        terms["total"], 2.0 * terms["rec"] + 0.5 * (terms["adv_frame"] + terms["adv_seq"])
    )
    terms["total"].backward()
    for model in (gen, frame_d, seq_d):
        for name, p in model.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{type(model).__name__}.{name}"

    gen.zero_grad()
    d_loss = cran_discriminator_loss(frame_d, seq_d, real, gen(identity, mfcc).frames)
    d_loss.backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in gen.parameters())  # fakes are detached
    with pytest.raises(ValueError, match="sequence discriminator frames"):
        seq_d(real[0])


def test_speech2vid_l1_train_step_lowers_the_loss() -> None:
    torch.manual_seed(0)
    gen = Speech2VidGenerator(tiny_model_config())
    identity, mfcc = make_inputs(2, 2, 64)
    real = identity.unsqueeze(1).repeat(1, 2, 1, 1, 1) * 0.8
    opt = torch.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(10):
        loss = reconstruction_loss(gen(identity, mfcc).frames, real)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.85 * losses[0], losses


def test_bad_inputs_and_names() -> None:
    gen = Speech2VidGenerator(tiny_model_config())
    identity, mfcc = make_inputs(1, 2, 64)
    with pytest.raises(ValueError, match=r"mfcc: expected shape \(B, T, 12, 28\)"):
        gen(identity, mfcc[..., :20])
    with pytest.raises(ValueError, match="unknown baseline 'wav2lip'"):
        build_baseline("wav2lip", tiny_model_config())
