"""autalk.widgets: AU steering, the cached preview path, and the demo's callbacks driven from pytest.

Untrained networks cannot show that a slider does what it says, so the behaviour tests train a tiny
model on the synthetic cache (tests/tinycache.py: MFCC coefficient i carries AU i, the mouth is bright
exactly when AU25 is present) where the property must hold: the Audio2AU bank and the AU classifier
through the real pretraining stages, and a generator whose audio encoder is switched off, so the audio
reaches the frames only through f_au. If the AU25 slider then does not open the mouth, steering is wrong
(wrong block, wrong sign, wrong units, or the features never reach the GRU).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from tinycache import SIZE, make_cache, tiny_params

from autalk import stages, widgets
from autalk.audio import NormStats
from autalk.checkpoint import save_checkpoint
from autalk.config import ExperimentConfig, LossConfig, tiny_model_config
from autalk.data.cache import NORM
from autalk.data.dataset import ClipDataset, to_uint8
from autalk.evaluate import load_split
from autalk.networks import AUClassifier, Generator
from autalk.profiles import MissingStageError

MOUTH = (slice(20, 27), slice(10, 22))  # the tiny cache's mouth box (rows, columns) at 32 px
AU25 = 3  # index of AU25 in PAPER_AUS
SEED = int(os.environ.get("AUTALK_TEST_SEED", "0"))  # the trained fixture is checked on seeds 0-3


def _train_generator(cache: Path, params: dict, bank: torch.nn.Module, steps: int = 100) -> Generator:
    """A tiny generator that can only hear through f_au: the audio encoder's output is fixed at zero, the
    pretrained Audio2AU bank frozen; L1 on the training clips, the mouth box weighted x5 (it is 8% of the
    image and the only part that moves)."""
    cfg = stages.model_config(params)
    gen = Generator(cfg)
    gen.audio2au.load_state_dict(bank.state_dict())
    last = gen.audio_encoder.fc[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    for frozen in (gen.audio2au, gen.audio_encoder):
        frozen.requires_grad_(False)
    data = ClipDataset(cache, "train", mode="whole", normalize=True)
    items = [data[i] for i in range(len(data))]
    ident = torch.stack([x["identity"] for x in items])  # (B,3,S,S)
    real = torch.stack([x["frames"] for x in items])  # (B,T,3,S,S)
    mfcc = torch.stack([x["mfcc"] for x in items])  # (B,T,12,28)
    weight = torch.ones(1, 1, 1, SIZE, SIZE)
    weight[..., MOUTH[0], MOUTH[1]] = 5.0
    opt = torch.optim.Adam([p for p in gen.parameters() if p.requires_grad], lr=5e-3)
    gen.train()
    gen.audio2au.eval()
    gen.audio_encoder.eval()
    rng = torch.Generator().manual_seed(int(params["seed"]))
    seq = 8
    for _ in range(steps):
        s = int(torch.randint(0, real.shape[1] - seq + 1, (1,), generator=rng))  # random 8-frame windows
        out = gen(ident, mfcc[:, s : s + seq]).frames
        loss = ((out - real[:, s : s + seq]).abs() * weight).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return gen.eval()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    torch.manual_seed(SEED)
    run = tmp_path_factory.mktemp("widgets")
    cache = make_cache(run / "01_preprocess")
    # The classifier 2x wider than tiny_params' (its 4-unit last layer died on some seeds); the
    # generator does not use these widths.
    params = tiny_params(a2au_epochs=6, a2au_lr=3e-3, aucls_epochs=20, aucls_lr=3e-3, au_cls_channels=8,
                         au_cls_hidden=64, seed=SEED)
    stages.pretrain("audio2au", run, params, progress=False)
    stages.pretrain("au_classifier", run, params, progress=False)
    bank, _ = stages.load_pretrained(run, "audio2au")
    gen = _train_generator(cache, params, bank)
    classifier = widgets.load_au_classifier(run)  # no 04_gan in this run: notebook 03's classifier
    norm = NormStats.load(cache / NORM)
    clip = load_split(cache, "test")[0]  # held-out speaker s4
    return SimpleNamespace(run=run, cache=cache, gen=gen, classifier=classifier, norm=norm, clip=clip,
                           directions=widgets.au_directions(gen, cache))


@pytest.fixture
def control(trained: SimpleNamespace) -> widgets.AUControl:
    c = widgets.AUControl(trained.gen, trained.directions, trained.classifier, trained.norm)
    c.load(trained.clip["frames"][0], mfcc=trained.norm.apply(trained.clip["mfcc"]))
    return c


def _random_generator(image_size: int = SIZE, **cfg: object) -> Generator:
    torch.manual_seed(0)
    return Generator(tiny_model_config(image_size=image_size, **cfg)).eval()


def _directions_for(gen: Generator, seed: int = 0) -> widgets.AUDirections:
    """Directions from made-up features: every AU's present frames sit 1.0 higher in every feature."""
    rng = np.random.default_rng(seed)
    n_aus, f = gen.cfg.n_aus, gen.cfg.au_feature_dim
    labels = rng.random((200, n_aus)) < 0.5
    feats = np.abs(rng.normal(size=(200, n_aus * f))) + np.repeat(labels, f, axis=1)
    return widgets.directions_from_features(feats, labels, gen.cfg.aus)


# ---- directions and steering ---------------------------------------------------------------------------


def test_directions_are_the_difference_of_class_means() -> None:
    rng = np.random.default_rng(0)
    n, f = 400, 4
    labels = rng.random((n, 2)) < 0.3
    shift = np.array([[3.0, 0.0, 4.0, 0.0], [0.0, -1.0, 0.0, 0.0]])  # present - absent, per AU
    feats = rng.normal(size=(n, 2 * f)) * 0.1 + 5.0
    feats += (labels[:, :, None] * shift[None]).reshape(n, 2 * f)
    d = widgets.directions_from_features(feats, labels, aus=(25, 26))
    np.testing.assert_allclose(d.scale, [5.0, 1.0], rtol=0.05)
    np.testing.assert_allclose(d.directions[0], [0.6, 0.0, 0.8, 0.0], atol=0.03)
    np.testing.assert_allclose(d.directions[1], [0.0, -1.0, 0.0, 0.0], atol=0.03)
    np.testing.assert_allclose(d.separation, [50.0, 10.0], rtol=0.1)  # differences 5 and 1, noise 0.1
    assert list(d.n_present) == list(labels.sum(0))
    # +1 takes the mean absent frame to the mean present one, in every AU's block.
    absent_mean = feats[~labels[:, 0], :f].mean(0)
    moved = widgets.steer(np.tile(feats[~labels[:, 0]].mean(0), (1, 1, 1)), d, [1.0, 0.0])[0, 0, :f]
    np.testing.assert_allclose(moved - absent_mean, shift[0], atol=0.1)
    np.testing.assert_allclose(widgets.projections(feats, d).shape, (n, 2))


def test_an_au_with_one_class_gets_no_direction_and_a_note() -> None:
    feats = np.random.default_rng(0).random((50, 2 * 3))
    labels = np.zeros((50, 2))
    labels[::2, 1] = 1
    d = widgets.directions_from_features(feats, labels, aus=(10, 14))
    assert not d.directions[0].any() and d.scale[0] == 0 and d.directions[1].any()
    assert any("AU10" in n and "no training frame" in n for n in d.notes)
    with pytest.raises(ValueError, match=r"features must be \(N, 2\*F\)"):
        widgets.directions_from_features(feats[:, :5], labels, aus=(10, 14))


def test_steer_adds_scaled_directions_clamps_at_zero_and_checks_shapes() -> None:
    gen = _random_generator()
    d = _directions_for(gen)
    n_aus, f = gen.cfg.n_aus, gen.cfg.au_feature_dim
    x = torch.rand(2, 3, n_aus * f) + 10.0  # far from 0: no clamping
    a = np.array([0.0, 0.0, 0.0, 1.5, -0.5])
    out = widgets.steer(x, d, a)
    assert isinstance(out, torch.Tensor) and out.shape == x.shape
    expect = (a * d.scale)[:, None] * d.directions  # (A,F)
    np.testing.assert_allclose((out - x).numpy()[1, 2], expect.reshape(-1), atol=1e-5)
    assert torch.equal(widgets.steer(x, d, np.zeros(n_aus)), x)
    assert (widgets.steer(torch.zeros(1, 1, n_aus * f), d, -2 * np.ones(n_aus)) >= 0).all()
    np.testing.assert_allclose(widgets.steer(x.numpy(), d, a), out.numpy(), atol=1e-5)
    raw = widgets.steer(np.zeros((1, 1, n_aus * f)), np.eye(n_aus, f), np.ones(n_aus), clamp=False)
    assert raw.sum() == n_aus  # raw (A,F) directions: amounts in feature units
    with pytest.raises(ValueError, match="amounts must be 5 finite numbers"):
        widgets.steer(x, d, [1.0, 2.0])
    with pytest.raises(ValueError, match=r"f_au has 7 features per frame.*A\*F"):
        widgets.steer(torch.zeros(1, 1, 7), d, np.zeros(n_aus))


def test_cached_preview_equals_the_generator_with_steered_features() -> None:
    """frames_from_features (cached encoders, GRU up to the frame, decoder for it) gives exactly what
    Generator.encode(..., f_au=steered) + the decoder gives, and zero steering is generate.render."""
    from autalk.generate import render
    from autalk.stages import lower_to_tensor

    gen = _random_generator()
    d = _directions_for(gen)
    rng = np.random.default_rng(1)
    crop = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    mfcc = rng.normal(size=(9, 12, 28)).astype(np.float32)
    amounts = [1.0, -0.5, 0.0, 2.0, -2.0]
    enc = widgets.encode_inputs(gen, crop, mfcc)
    steered = widgets.steer(enc.f_au, d, amounts)
    with torch.no_grad():
        ft, skips, _ = gen.encode(lower_to_tensor(crop[None]), torch.from_numpy(mfcc)[None], f_au=steered)
        ref = to_uint8(gen.decoder(ft[0], [e.expand(9, *e.shape[1:]) for e in skips]))  # (T,S,S,3)
    clip = widgets.render_clip(gen, crop, mfcc, amounts, d, encoded=enc)
    assert clip.shape == (9, SIZE, SIZE, 3) and clip.dtype == np.uint8
    assert np.abs(clip.astype(int) - ref.astype(int)).max() <= 1
    for k in (0, 4, 8):
        one = widgets.preview_frame(gen, crop, mfcc, k, amounts, d)  # encoders from scratch
        assert np.abs(one.astype(int) - ref[k].astype(int)).max() <= 1
    plain = widgets.render_clip(gen, crop, mfcc, np.zeros(5), d, encoded=enc)
    assert np.abs(plain.astype(int) - render(gen, crop, mfcc).astype(int)).max() <= 1
    assert not np.array_equal(plain, clip)
    with pytest.raises(ValueError, match=r"frames must be indices in \[0, 9\)"):
        widgets.frames_from_features(gen, enc, steered, [9])


def test_control_refuses_what_it_cannot_steer() -> None:
    gen = _random_generator()
    d = _directions_for(gen)
    c = widgets.AUControl(gen, d)
    with pytest.raises(ValueError, match="no identity and audio loaded"):
        c.preview()
    with pytest.raises(ValueError, match="AU11 is not steerable"):
        c.set_amount(11, 1.0)
    with pytest.raises(ValueError, match="needs norm"):
        c.load(np.zeros((SIZE, SIZE, 3), np.uint8), audio=widgets.silence(0.2))
    c.load(np.zeros((SIZE, SIZE, 3), np.uint8), mfcc=np.zeros((4, 12, 28), np.float32))
    with pytest.raises(ValueError, match=r"frame 4 is outside the clip \(0..3\)"):
        c.set_frame(4)
    with pytest.raises(ValueError, match="without an AU classifier"):
        c.probabilities(c.preview())
    with pytest.raises(ValueError, match="no Audio2AU features to steer"):
        widgets.AUControl(_random_generator(use_audio2au=False), d)
    with pytest.raises(ValueError, match="features per AU"):
        widgets.AUControl(_random_generator(au_feature_dim=4), d)


def test_au_probabilities_reads_the_lower_half() -> None:
    torch.manual_seed(0)
    clf = AUClassifier(tiny_model_config(image_size=SIZE)).eval()
    frames = np.random.default_rng(0).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    p = widgets.au_probabilities(clf, frames)
    assert p.shape == (3, 5) and ((p > 0) & (p < 1)).all()
    changed = frames.copy()
    changed[:, : SIZE // 2] = 0  # the upper half is not the classifier's business
    np.testing.assert_allclose(widgets.au_probabilities(clf, changed), p, atol=1e-6)
    np.testing.assert_allclose(widgets.au_probabilities(clf, frames[0]), p[:1], atol=1e-6)
    with pytest.raises(ValueError, match=r"uint8 \(T,S,S,3\)"):
        widgets.au_probabilities(clf, frames.astype(np.float32))


def test_load_au_classifier_prefers_the_gan_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(MissingStageError, match="03_au_classifier_pretraining.ipynb"):
        widgets.load_au_classifier(tmp_path)
    cfg = tiny_model_config(image_size=SIZE)
    torch.manual_seed(3)
    gen, clf = Generator(cfg), AUClassifier(cfg)
    exp = ExperimentConfig(name="full", model=cfg, loss=LossConfig(vgg_weights="random"))
    save_checkpoint(tmp_path / "04_gan" / "checkpoint.pt", {"generator": gen, "au_classifier": clf},
                    {"stage": "generator", "experiment": exp.to_dict()}, step=1, extra={})
    loaded = widgets.load_au_classifier(tmp_path)
    for a, b in zip(loaded.state_dict().values(), clf.state_dict().values(), strict=True):
        assert torch.equal(a, b)


# ---- on a trained model ------------------------------------------------------------------------------


def test_the_fixture_learned_the_tiny_cache(trained: SimpleNamespace) -> None:
    """What the tests below rely on (if this fails, they fail for the fixture's sake, not steering's)."""
    f1 = stages.read_metrics(trained.run, "au_classifier")["test"]["f1"]["AU25"]
    assert f1 > 0.9, f"the AU classifier did not learn the mouth (test F1 AU25 {f1:.2f})"
    c = widgets.AUControl(trained.gen, trained.directions, trained.classifier, trained.norm)
    c.load(trained.clip["frames"][0], mfcc=trained.norm.apply(trained.clip["mfcc"]))
    mouth = c.render()[:, MOUTH[0], MOUTH[1]].mean(axis=(1, 2, 3))  # (T,)
    real = trained.clip["frames"][:, MOUTH[0], MOUTH[1]].mean(axis=(1, 2, 3))
    agree = ((mouth > 115) == (real > 115)).mean()  # open (190) or closed (40) as in the real clip
    assert agree > 0.8, f"the generator opens the mouth with AU25 in only {100 * agree:.0f}% of test frames"


def test_directions_of_the_trained_bank_separate_the_aus(trained: SimpleNamespace) -> None:
    d = trained.directions
    assert d.aus == (10, 14, 20, 25, 26) and d.directions.shape == (5, trained.gen.cfg.au_feature_dim)
    np.testing.assert_allclose(np.linalg.norm(d.directions, axis=1), 1.0, atol=1e-5)
    assert (d.separation > 2).all(), d.separation  # the cache's MFCCs carry every AU
    # The checkpoint's statistics passed explicitly give the same directions as the cache's own.
    again = widgets.au_directions(trained.gen, trained.cache, trained.norm)
    np.testing.assert_allclose(again.directions, d.directions, atol=1e-4)


def test_au25_slider_opens_the_mouth_and_only_the_mouth(control: widgets.AUControl) -> None:
    closed = int(np.flatnonzero(control.audio2au_probabilities()[:, AU25] < 0.5)[0])  # audio: lips closed
    control.set_frame(closed)
    plain = control.preview().astype(float)
    control.set_amount(25, 1.5)
    opened = control.preview().astype(float)
    assert opened[MOUTH].mean() > plain[MOUTH].mean() + 40  # the tiny cache's mouth is bright when open
    lower = np.abs(opened - plain)[SIZE // 2 :].mean()
    upper = np.abs(opened - plain)[: SIZE // 2].mean()
    assert lower > 5 * upper, (lower, upper)
    control.set_amounts({10: 1.5})  # a slider whose AU the tiny cache never draws
    other = np.abs(control.preview().astype(float) - plain)[SIZE // 2 :].mean()
    assert other < lower / 5, (other, lower)


def test_au25_slider_moves_the_classifier_probability_the_expected_way(
    trained: SimpleNamespace, control: widgets.AUControl
) -> None:
    before = control.probabilities(control.render())[:, AU25]  # (T,)
    # Unsteered, the classifier sees the generated mouth follow the held-out clip's own AU25 labels.
    assert ((before > 0.5) == (trained.clip["au"][:, AU25] > 0)).mean() > 0.8
    control.set_amount(25, 1.5)
    up = control.probabilities(control.render())[:, AU25]
    control.set_amount(25, -1.5)
    down = control.probabilities(control.render())[:, AU25]
    assert up.mean() > 0.9 and down.mean() < 0.1, (before.mean(), up.mean(), down.mean())
    assert (up >= before - 0.05).all() and (down <= before + 0.05).all()


def test_silence_gives_a_still_mouth_that_the_sliders_can_open(trained: SimpleNamespace) -> None:
    c = widgets.AUControl(trained.gen, trained.directions, trained.classifier, trained.norm)
    c.load(trained.clip["frames"][0], audio=widgets.silence(1.0))
    assert c.n_frames == 25 and np.ptp(c.mfcc, axis=0).max() < 1e-5  # every window the same
    still = c.render()
    assert widgets.lower_motion(still)[3:].max() < 1.0  # < 1 grey level per frame once the GRU settled
    c.set_amount(25, 2.0)
    opened = c.render()
    assert opened[:, MOUTH[0], MOUTH[1]].mean() > still[:, MOUTH[0], MOUTH[1]].mean() + 40
    assert widgets.lower_motion(opened)[3:].max() < 1.0  # steering is constant over time: still, but open


def test_sweep_moves_each_probability_from_its_own_slider(control: widgets.AUControl) -> None:
    frames, probs = widgets.sweep(control, (-2.0, 0.0, 2.0))
    assert frames.shape == (5, 3, SIZE, SIZE, 3) and probs.shape == (5, 3, 5)
    assert probs[AU25, 2, AU25] > probs[AU25, 0, AU25] + 0.5
    assert not control.amounts.any()  # sweep leaves the sliders at 0


# ---- the widget ------------------------------------------------------------------------------------


def _png_rgb(png: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_widget_callbacks(trained: SimpleNamespace, fixtures_dir: Path) -> None:
    pytest.importorskip("ipywidgets")
    c = widgets.AUControl(trained.gen, trained.directions, trained.classifier, trained.norm)
    noise = (np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32), 16000)
    faces = {"s4": trained.clip["frames"][0]}
    sounds = {"noise": noise, "silence": widgets.silence(0.6)}
    widget, demo = widgets.build_demo(c, faces, sounds, image_px=64)
    assert demo.control is c and c.n_frames == 25 and demo.frame_slider.max == 24
    first = demo.image.value
    panels = _png_rgb(first)
    assert panels.shape == (64, 3 * 64 + 8, 3)  # unsteered | steered | change, 2x nearest, 2 px gaps
    assert (panels[:, -64:] == widgets.change_map(np.zeros((1, 1)))[0, 0]).all()  # unsteered: all "no change"
    demo.sliders[25].value = 2.0  # what the browser does: the observer previews
    assert c.amounts[AU25] == 2.0 and demo.image.value != first
    panels = _png_rgb(demo.image.value).astype(float)
    opened = panels[32:, 68:132]  # lower half of the steered frame
    change = panels[..., -64:, :].mean(-1)  # the change map: where steering acted
    assert change[32:].mean() > 1.2 * change[:32].mean()  # more in the lower half (the mouth) than above
    demo.sliders[25].value = -2.0
    closed = _png_rgb(demo.image.value)[32:, 68:132].astype(float)
    assert opened.mean() > closed.mean() + 10  # the tiny cache's open mouth is bright
    assert "AU25" in demo.readout.value and "change: max" in demo.readout.value
    demo.on_reset()
    assert c.amounts.sum() == 0 and demo.sliders[25].value == 0 and demo.image.value == first
    demo.sound_box.value = "silence"
    assert c.n_frames == 15 and demo.frame_slider.max == 14
    demo.sliders[26].value = 1.0
    frames = demo.on_render()
    assert frames.shape == (15, SIZE, SIZE, 3)
    demo.on_speak("  ")
    assert "empty" in demo.status.value
    demo.on_upload(({"name": "notes.txt", "content": memoryview(b"not an image")},))
    assert "not a readable image" in demo.status.value and list(demo.identity_box.options) == ["s4"]
    from autalk.media import read_video

    face = read_video(fixtures_dir / "real" / "grid" / "s1" / "video" / "bbaf2n.mpg", max_frames=1)[0][0]
    ok, png = cv2.imencode(".png", cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    demo.on_upload(({"name": "me.png", "content": memoryview(png.tobytes())},))
    assert demo.identity_box.value == "upload: me.png" and c.identity.shape == (SIZE, SIZE, 3)
    assert not np.array_equal(c.identity, faces["s4"])
    assert widget is demo.widget
