"""Every loss against hand-computed values, the Eq. 8 switches, the Table-2 configs and a train step."""

from __future__ import annotations

import math

import pytest
import torch

from autalk.config import (
    LOSS_TERMS,
    ExperimentConfig,
    LossConfig,
    ablation_config,
    table2_rows,
    tiny_model_config,
)
from autalk.losses import (
    adversarial_d_loss,
    adversarial_g_loss,
    au_class_weights,
    au_loss,
    frame_discriminator_loss,
    generator_loss_terms,
    identity_loss,
    perceptual_loss,
    reconstruction_loss,
    total_loss,
    weighted_bce_loss,
    weighted_dice_loss,
)
from autalk.networks import AUClassifier, FrameDiscriminator, Generator


def logit(p: list[list[float]]) -> torch.Tensor:
    t = torch.tensor(p, dtype=torch.float64)
    return torch.log(t / (1 - t))


# ---- image losses ----


def test_reconstruction_loss_is_mean_abs() -> None:
    real = torch.tensor([[1.0, -2.0], [0.5, 0.5]]).reshape(1, 1, 1, 2, 2)
    assert reconstruction_loss(torch.zeros_like(real), real).item() == pytest.approx((1 + 2 + 0.5 + 0.5) / 4)
    with pytest.raises(ValueError, match="shapes differ"):
        reconstruction_loss(torch.zeros(1, 1, 1, 2, 3), real)


def test_identity_loss_only_sees_the_upper_half() -> None:
    identity = torch.zeros(1, 3, 4, 4)
    fake = torch.zeros(1, 2, 3, 4, 4)  # B=1, T=2
    fake[..., 2:, :] = 5.0  # lower half: ignored
    assert identity_loss(fake, identity).item() == 0.0
    fake[0, 0, :, 0, :] = 1.0  # one upper row of frame 0: 3*4 of the 2*3*2*4 = 48 upper values
    assert identity_loss(fake, identity).item() == pytest.approx(12 / 48)
    assert identity_loss(fake[:, 0], identity).item() == pytest.approx(12 / 24)  # (B,3,H,W) form
    with pytest.raises(ValueError, match="identity_loss"):
        identity_loss(fake, torch.zeros(2, 3, 4, 4))


def test_perceptual_loss_averages_layer_l1() -> None:
    def feats(x: torch.Tensor) -> list[torch.Tensor]:
        return [x, 2 * x.mean(1, keepdim=True)]

    real = torch.zeros(1, 1, 3, 2, 2, requires_grad=True)
    fake = torch.full((1, 1, 3, 2, 2), 0.5, requires_grad=True)
    loss = perceptual_loss(feats, fake, real)
    assert loss.item() == pytest.approx((0.5 + 1.0) / 2)
    loss.backward()
    assert real.grad is None and fake.grad is not None  # real features carry no gradient


# ---- AU losses ----


def test_au_weights_formula() -> None:
    w = au_class_weights([0.5, 0.25, 0.25, 0.5, 1.0])  # 1/r = 2, 4, 4, 2, 1; sum 13
    torch.testing.assert_close(w, torch.tensor([10, 20, 20, 10, 5]) / 13)
    assert w.sum().item() == pytest.approx(5.0)
    torch.testing.assert_close(au_class_weights([0.3] * 5), torch.ones(5))
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        au_class_weights([0.5, 0.0])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        au_class_weights([1.5])


def test_weighted_bce_by_hand() -> None:
    logits = logit([[0.9, 0.2], [0.3, 0.6]])
    y = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    w = torch.tensor([0.5, 1.5], dtype=torch.float64)
    sample1 = (0.5 * -math.log(0.9) + 1.5 * -math.log(0.8)) / 2
    sample2 = (0.5 * -math.log(0.7) + 1.5 * -math.log(0.4)) / 2
    assert weighted_bce_loss(logits, y, w).item() == pytest.approx((sample1 + sample2) / 2)
    unweighted = (-math.log(0.9) - math.log(0.8) - math.log(0.7) - math.log(0.4)) / 4
    assert weighted_bce_loss(logits, y).item() == pytest.approx(unweighted)
    with pytest.raises(ValueError, match=r"weights must have shape \(2,\)"):
        weighted_bce_loss(logits, y, torch.ones(3))


def test_weighted_dice_by_hand() -> None:
    logits = logit([[0.9, 0.2], [0.6, 0.1]])  # N=2 samples, A=2 AUs
    y = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    # AU0: (2*(0.9+0.6)+1) / (2 + 0.81+0.36 + 1) ; AU1: (0+1) / (0 + 0.04+0.01 + 1)
    d0, d1 = 1 - 4 / 4.17, 1 - 1 / 1.05
    assert weighted_dice_loss(logits, y, eps=1.0).item() == pytest.approx((d0 + d1) / 2)
    w = torch.tensor([0.5, 1.5], dtype=torch.float64)
    assert weighted_dice_loss(logits, y, w, eps=1.0).item() == pytest.approx((0.5 * d0 + 1.5 * d1) / 2)
    # the smooth term: eps = 0.1 gives other values, and eps = 0 on an AU absent everywhere and
    # predicted absent is 0/0
    e0, e1 = 1 - 3.1 / 3.27, 1 - 0.1 / 0.15
    assert weighted_dice_loss(logits, y, eps=0.1).item() == pytest.approx((e0 + e1) / 2)
    absent = torch.full((3, 1), -200.0)
    assert weighted_dice_loss(absent, torch.zeros(3, 1), eps=1.0).item() == pytest.approx(0.0, abs=1e-12)
    assert torch.isnan(weighted_dice_loss(absent, torch.zeros(3, 1), eps=0.0))


def test_dice_sums_over_batch_and_time_inside_the_fraction() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5)  # (B,T,A)
    y = (torch.rand(2, 3, 5) > 0.5).float()
    flat = weighted_dice_loss(logits.reshape(6, 5), y.reshape(6, 5))
    torch.testing.assert_close(weighted_dice_loss(logits, y), flat)
    per_sample = torch.stack(
        [weighted_dice_loss(logits.reshape(6, 5)[i : i + 1], y.reshape(6, 5)[i : i + 1]) for i in range(6)]
    ).mean()
    assert not torch.allclose(flat, per_sample)


def test_au_loss_is_bce_plus_dice() -> None:
    torch.manual_seed(0)
    logits, y = torch.randn(4, 5), (torch.rand(4, 5) > 0.5).float()
    w = au_class_weights([0.2, 0.4, 0.5, 0.9, 0.6])
    expected = weighted_bce_loss(logits, y, w) + weighted_dice_loss(logits, y, w, eps=0.5)
    torch.testing.assert_close(au_loss(logits, y, w, eps=0.5), expected)


# ---- adversarial ----


def test_adversarial_losses_by_hand() -> None:
    zeros = torch.zeros(4)
    assert adversarial_d_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    assert adversarial_g_loss(zeros).item() == pytest.approx(math.log(2))
    d_at_075 = torch.full((3,), math.log(3.0))  # sigmoid(ln 3) = 0.75
    assert adversarial_g_loss(d_at_075).item() == pytest.approx(-math.log(0.75))
    assert adversarial_d_loss(d_at_075, -d_at_075).item() == pytest.approx(-2 * math.log(0.75))
    assert adversarial_d_loss(torch.full((2,), 30.0), torch.full((2,), -30.0)).item() < 1e-10


def test_frame_discriminator_loss_does_not_reach_the_generator() -> None:
    torch.manual_seed(0)
    cfg = tiny_model_config()
    disc = FrameDiscriminator(cfg)
    fake = torch.zeros(1, 2, 3, 64, 64, requires_grad=True)
    loss = frame_discriminator_loss(disc, torch.rand(1, 2, 3, 64, 64), fake)
    loss.backward()
    assert fake.grad is None and all(p.grad is not None for p in disc.parameters())


# ---- Eq. 8 and the ablation switches ----


def test_total_loss_uses_paper_lambdas_and_switches() -> None:
    terms = {
        "rec": torch.tensor(1.0),
        "id": torch.tensor(2.0),
        "per": torch.tensor(3.0),
        "au": torch.tensor(4.0),
        "adv": torch.tensor(5.0),
    }
    assert total_loss(terms, LossConfig()).item() == pytest.approx(
        1.5 * 1 + 1.5 * 2 + 0.07 * 3 + 0.02 * 4 + 0.002 * 5
    )
    assert total_loss(terms, ablation_config("baseline").loss).item() == pytest.approx(1.5)
    assert total_loss(terms, ablation_config("+id").loss).item() == pytest.approx(1.5 + 0.07 * 3 + 1.5 * 2)
    with pytest.raises(ValueError, match=r"\['adv'\] are enabled"):
        total_loss({k: v for k, v in terms.items() if k != "adv"}, LossConfig())
    with pytest.raises(ValueError, match="unknown loss term"):
        total_loss({**terms, "lpips": torch.tensor(1.0)}, LossConfig())


def test_table2_rows_add_one_thing_each() -> None:
    rows = table2_rows(image_size=64)
    assert list(rows) == ["baseline", "+per", "+id", "+adv", "+au", "full"]
    assert rows["baseline"].loss.enabled_terms() == ("rec",)
    assert set(rows["full"].loss.enabled_terms()) == set(LOSS_TERMS)
    assert [r.model.use_audio2au for r in rows.values()] == [False] * 5 + [True]
    assert all(r.model.use_gru and r.model.image_size == 64 for r in rows.values())
    names = list(rows)
    for prev, cur in zip(names, names[1:], strict=False):
        a, b = rows[prev], rows[cur]
        added = set(b.loss.enabled_terms()) - set(a.loss.enabled_terms())
        assert len(added) + (b.model.use_audio2au != a.model.use_audio2au) == 1, (prev, cur)
        assert set(a.loss.enabled_terms()) <= set(b.loss.enabled_terms())
    assert rows["+per"].loss.enabled_terms() == ("rec", "per")
    with pytest.raises(ValueError, match="unknown Table-2 row"):
        ablation_config("+lpips")
    with pytest.raises(ValueError, match="fixed by the Table-2 row"):
        ablation_config("full", per=False)
    assert ablation_config("full", vgg_weights="random").loss.vgg_weights == "random"
    assert not ablation_config("full", use_gru=False).model.use_gru


def test_experiment_config_dict_round_trip() -> None:
    cfg = ablation_config("+au", image_size=64, au_occurrence_rates=(0.3, 0.2, 0.4, 0.8, 0.5))
    again = ExperimentConfig.from_dict(cfg.to_dict())
    assert again == cfg
    with pytest.raises(ValueError, match="no field"):
        ExperimentConfig.from_dict({**cfg.to_dict(), "model": {"image_size": 64, "width": 3}})


def test_generator_loss_terms_follow_the_config() -> None:
    torch.manual_seed(0)
    mcfg = tiny_model_config()
    gen, cls, disc = Generator(mcfg), AUClassifier(mcfg), FrameDiscriminator(mcfg)
    identity, mfcc = torch.rand(1, 3, 64, 64) * 2 - 1, torch.randn(1, 2, 12, 28)
    real, labels = torch.rand(1, 2, 3, 64, 64) * 2 - 1, (torch.rand(1, 2, 5) > 0.5).float()
    out = gen(identity, mfcc)
    parts = dict(vgg=lambda x: [x], discriminator=disc, au_classifier=cls, au_labels=labels)
    for name, row in table2_rows(64).items():
        assert set(generator_loss_terms(row.loss, out, real, identity, **parts)) == set(
            row.loss.enabled_terms()
        ), name
    full = generator_loss_terms(LossConfig(), out, real, identity, **parts)
    torch.testing.assert_close(full["rec"], reconstruction_loss(out.frames, real))
    cls_logits = cls(out.frames.flatten(0, 1)[:, :, 32:]).reshape(1, 2, 5)
    torch.testing.assert_close(full["au"], au_loss(cls_logits, labels) + au_loss(out.au_logits, labels))
    with pytest.raises(ValueError, match="no VGG-19"):
        generator_loss_terms(LossConfig(), out, real, identity, **{**parts, "vgg": None})
    with pytest.raises(ValueError, match="au_labels"):
        generator_loss_terms(LossConfig(), out, real, identity, **{**parts, "au_labels": None})


def test_a_tiny_train_step_lowers_the_loss() -> None:
    torch.manual_seed(0)
    mcfg = tiny_model_config()
    gen, cls, disc = Generator(mcfg), AUClassifier(mcfg), FrameDiscriminator(mcfg)
    cfg = LossConfig(au_occurrence_rates=(0.4, 0.2, 0.3, 0.7, 0.5))
    identity, mfcc = torch.rand(2, 3, 64, 64) * 2 - 1, torch.randn(2, 2, 12, 28)
    real = identity.unsqueeze(1).repeat(1, 2, 1, 1, 1) * 0.8
    labels = (torch.rand(2, 2, 5) > 0.5).float()
    opt = torch.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(10):
        out = gen(identity, mfcc)
        terms = generator_loss_terms(
            cfg,
            out,
            real,
            identity,
            vgg=lambda x: [x, x.mean(1)],
            discriminator=disc,
            au_classifier=cls,
            au_labels=labels,
        )
        loss = total_loss(terms, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.85 * losses[0], losses
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses


def test_au_class_weights_agree_with_the_manifest_formula() -> None:
    """Training (losses) and preprocessing (the manifest's w_i) use one Eq. 1, floor included."""
    import numpy as np

    from autalk.data.cache import MIN_RATE, au_loss_weights

    rates = [0.04, 0.1, 0.3, 0.5, 0.0]  # AU26 never occurs in this split
    with pytest.raises(ValueError, match="never occurs"):
        au_class_weights(rates)
    floored = au_class_weights(rates, min_rate=MIN_RATE)
    np.testing.assert_allclose(floored.numpy(), au_loss_weights(np.array(rates), MIN_RATE), rtol=1e-6)
    inv = 1 / np.array([0.04, 0.1, 0.3, 0.5, 0.01])
    np.testing.assert_allclose(floored.numpy(), inv * 5 / inv.sum(), rtol=1e-6)
