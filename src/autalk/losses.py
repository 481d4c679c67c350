"""The paper's losses (section 3.1-3.2), one small function per equation.

Conventions: frames are (B,T,3,H,W) (or (N,3,H,W)) in [-1,1]; AU predictions are *logits* (..., A)
and targets are 0/1 labels of the same shape. The paper writes its AU losses with probabilities
y^ = sigmoid(logit); taking logits lets BCE use the stable log-sigmoid form. Every loss returns a
scalar mean, so its size does not depend on B, T or the image size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autalk.config import LOSS_TERMS, LossConfig
from autalk.networks import GeneratorOutput, lower_half, upper_half


def _same_shape(a: Tensor, b: Tensor, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")


# ---- image losses ----


def reconstruction_loss(fake: Tensor, real: Tensor) -> Tensor:
    """L_rec, Eq. 6: ||F^ - F||_1, as the mean absolute difference over pixels, channels, frames, batch."""
    _same_shape(fake, real, "reconstruction_loss(fake, real)")
    return (fake - real).abs().mean()


def identity_loss(fake: Tensor, identity: Tensor) -> Tensor:
    """L_id, Eq. 7: 1/(W*H/2) * sum over the upper half of |F^ - I_id|, averaged over channels, frames
    and batch. ``fake`` (B,T,3,H,W) or (B,3,H,W); ``identity`` (B,3,H,W) is compared with every frame."""
    if fake.dim() == 5:
        identity = identity.unsqueeze(1)  # broadcast the identity image over T
    if (
        fake.dim() not in (4, 5)
        or identity.shape[0] != fake.shape[0]
        or identity.shape[-3:] != fake.shape[-3:]
    ):
        raise ValueError(
            f"identity_loss: fake (B,T,3,H,W) or (B,3,H,W) and identity (B,3,H,W) expected, "
            f"got {tuple(fake.shape)} and {tuple(identity.shape)}"
        )
    return (upper_half(fake) - upper_half(identity)).abs().mean()


def perceptual_loss(features: Callable[[Tensor], Sequence[Tensor]], fake: Tensor, real: Tensor) -> Tensor:
    """L_per, Eq. 5: 1/n sum_i ||phi_i(F) - phi_i(F^)||_1 over the n chosen VGG-19 layers, each L1
    taken as a mean over its elements (so deep, small layers weigh as much as shallow ones).

    ``features`` maps (N,3,H,W) in [-1,1] to a list of feature maps (a ``vgg.VGG19Features``).
    The real frames' features are computed without gradient.
    """
    _same_shape(fake, real, "perceptual_loss(fake, real)")
    if fake.dim() == 5:
        fake, real = fake.flatten(0, 1), real.flatten(0, 1)
    with torch.no_grad():
        real_feats = [r.detach() for r in features(real)]  # detach: an extractor may return its input
    fake_feats = features(fake)
    if len(fake_feats) == 0:
        raise ValueError("perceptual_loss: the feature extractor returned no layers")
    return torch.stack([(f - r).abs().mean() for f, r in zip(fake_feats, real_feats, strict=True)]).mean()


# ---- AU losses ----


def au_class_weights(occurrence_rates: Sequence[float] | Tensor, min_rate: float = 0.0) -> Tensor:
    """w_i of Eq. 1-2: w_i = (1/r_i) * n_au / sum_j (1/r_j), r_i the occurrence rate of AU i in the
    training set. Rare AUs get large weights; the weights always sum to n_au (all 1 when balanced).

    One formula serves the whole project: this wraps :func:`autalk.data.cache.au_loss_weights`, which
    preprocessing uses for the manifest. With ``min_rate > 0`` rates are floored there (the manifest uses
    ``cache.MIN_RATE``), so an AU that never occurs gets a large but finite weight; with the default 0 such
    an AU is an error."""
    from autalk.data.cache import au_loss_weights

    r = torch.as_tensor(occurrence_rates, dtype=torch.float32)
    if r.dim() != 1 or r.numel() == 0:
        raise ValueError(f"occurrence_rates must be a non-empty 1-D sequence, got shape {tuple(r.shape)}")
    lowest_ok = (r >= 0) if min_rate > 0 else (r > 0)
    if not bool((lowest_ok & (r <= 1)).all()):
        raise ValueError(
            f"occurrence rates must be in (0, 1] (an AU that never occurs has no weight; pass min_rate to "
            f"floor them), got {r.tolist()}"
        )
    return torch.as_tensor(au_loss_weights(r.double().numpy(), min_rate=min_rate), dtype=torch.float32)


def _check_au(logits: Tensor, targets: Tensor, weights: Tensor | None, what: str) -> Tensor:
    _same_shape(logits, targets, what)
    n_au = logits.shape[-1]
    if weights is None:
        return logits.new_ones(n_au)
    if weights.shape != (n_au,):
        raise ValueError(f"{what}: weights must have shape ({n_au},), got {tuple(weights.shape)}")
    return weights.to(logits)


def weighted_bce_loss(logits: Tensor, targets: Tensor, weights: Tensor | None = None) -> Tensor:
    """L_bce, Eq. 1: -1/n_au sum_i w_i [y_i log y^_i + (1-y_i) log(1-y^_i)], y^_i = sigmoid(logit_i).

    ``logits``, ``targets`` (..., A); the per-sample value is averaged over all leading (batch,
    time) positions. ``weights`` (A,) from ``au_class_weights``; None means w_i = 1.
    """
    w = _check_au(logits, targets, weights, "weighted_bce_loss(logits, targets)")
    bce = F.binary_cross_entropy_with_logits(logits, targets.to(logits), reduction="none")  # (..., A)
    return (bce * w).mean()


def weighted_dice_loss(
    logits: Tensor, targets: Tensor, weights: Tensor | None = None, eps: float = 1.0
) -> Tensor:
    """L_dice, Eq. 2: 1/n_au sum_i w_i [1 - (2 y_i y^_i + eps) / (y_i^2 + y^_i^2 + eps)], y^ = sigmoid.

    Reduction: for each AU i the products y*y^, y^2 and y^^2 are *summed over every leading position*
    (batch and time) inside the fraction, then the fraction is taken once per AU (the usual soft Dice
    over a batch; a per-sample fraction would be 1 whenever an AU is absent and predicted absent).
    ``eps`` is the smooth term: it keeps the loss defined (0) when an AU is absent everywhere and
    predicted absent.
    """
    w = _check_au(logits, targets, weights, "weighted_dice_loss(logits, targets)")
    p = torch.sigmoid(logits).reshape(-1, logits.shape[-1])  # (N, A)
    y = targets.to(p).reshape(-1, logits.shape[-1])
    dice = (2 * (y * p).sum(0) + eps) / ((y * y).sum(0) + (p * p).sum(0) + eps)  # (A,)
    return (w * (1 - dice)).mean()


def au_loss(logits: Tensor, targets: Tensor, weights: Tensor | None = None, eps: float = 1.0) -> Tensor:
    """L_au, Eq. 3: L_bce + L_dice with the same weights."""
    return weighted_bce_loss(logits, targets, weights) + weighted_dice_loss(logits, targets, weights, eps)


# ---- adversarial losses ----


def adversarial_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator side of Eq. 4. D maximises E[log D(F)] + E[log(1 - D(F^))]; this returns the
    negative, -log sigmoid(real) - log(1 - sigmoid(fake)), as BCE-with-logits means (1 for real, 0 for
    fake), to be minimised. Pass ``fake_logits`` of detached generator frames."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def adversarial_g_loss(fake_logits: Tensor) -> Tensor:
    """Generator side of Eq. 4 in the non-saturating form: instead of minimising E[log(1 - D(F^))]
    (whose gradient vanishes while D wins), minimise -E[log D(F^)] = BCE-with-logits(fake, 1)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


# ---- total ----


def total_loss(terms: Mapping[str, Tensor], cfg: LossConfig) -> Tensor:
    """L_total, Eq. 8: lambda_rec L_rec + lambda_id L_id + lambda_per L_per + lambda_au L_au +
    lambda_adv L_adv, over the terms switched on in ``cfg`` (terms switched off are ignored, so a
    caller may log extra terms). An enabled term missing from ``terms`` is an error."""
    unknown = set(terms) - set(LOSS_TERMS)
    if unknown:
        raise ValueError(f"unknown loss term(s) {sorted(unknown)}; expected some of {LOSS_TERMS}")
    enabled = cfg.enabled_terms()
    missing = [t for t in enabled if t not in terms]
    if missing:
        raise ValueError(f"loss terms {missing} are enabled in the config but were not computed")
    if not enabled:
        raise ValueError("every loss term is switched off in the config")
    return torch.stack([cfg.weight(t) * terms[t] for t in enabled]).sum()


def generator_loss_terms(
    cfg: LossConfig,
    out: GeneratorOutput,
    real: Tensor,
    identity: Tensor,
    *,
    vgg: Callable[[Tensor], Sequence[Tensor]] | None = None,
    discriminator: nn.Module | None = None,
    au_classifier: nn.Module | None = None,
    au_labels: Tensor | None = None,
) -> dict[str, Tensor]:
    """Every term of Eq. 8 that ``cfg`` switches on, for one generator step (feed to ``total_loss``).

    ``real`` (B,T,3,H,W), ``identity`` (B,3,H,W), ``au_labels`` (B,T,A). L_au is the AU classifier's
    loss on the lower half of the generated frames and, when the generator has Audio2AU, plus the
    same loss on the Audio2AU heads' logits: sec. 4.2 fine-tunes both modules with L_au.
    """
    frames = out.frames
    _same_shape(frames, real, "generator_loss_terms(frames, real)")
    terms: dict[str, Tensor] = {}
    if cfg.rec:
        terms["rec"] = reconstruction_loss(frames, real)
    if cfg.id:
        terms["id"] = identity_loss(frames, identity)
    if cfg.per:
        if vgg is None:
            raise ValueError("L_per is on but no VGG-19 feature extractor was given")
        terms["per"] = perceptual_loss(vgg, frames, real)
    if cfg.adv:
        if discriminator is None:
            raise ValueError("L_adv is on but no frame discriminator was given")
        terms["adv"] = adversarial_g_loss(discriminator(frames))
    if cfg.au:
        if au_classifier is None or au_labels is None:
            raise ValueError("L_au is on: pass au_classifier and au_labels (B,T,A)")
        b, t = frames.shape[:2]
        w = au_class_weights(cfg.au_occurrence_rates) if cfg.au_occurrence_rates is not None else None
        cls_logits = au_classifier(lower_half(frames.flatten(0, 1))).reshape(b, t, -1)  # (B,T,A)
        terms["au"] = au_loss(cls_logits, au_labels, w, cfg.dice_eps)
        if out.au_logits is not None:
            terms["au"] = terms["au"] + au_loss(out.au_logits, au_labels, w, cfg.dice_eps)
    return terms


def frame_discriminator_loss(discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """Eq. 4 for a discriminator step: real frames vs (detached) generated frames."""
    _same_shape(fake, real, "frame_discriminator_loss(real, fake)")
    return adversarial_d_loss(discriminator(real), discriminator(fake.detach()))


def weighted_reconstruction_loss(fake: Tensor, real: Tensor, weight_map: Tensor) -> Tensor:
    """L_rec of Eq. 6 with a spatial weight: mean(w * |F^ - F|) / mean(w), so a map of ones gives Eq. 6
    exactly. The quick profile weights the mouth box (``stages.mouth_weight_map``) to make lip motion
    appear within minutes on a CPU: a departure from the paper, listed in the README."""
    _same_shape(fake, real, "weighted_reconstruction_loss(fake, real)")
    w = weight_map.to(fake).expand_as(fake)
    return (w * (fake - real).abs()).mean() / w.mean()
