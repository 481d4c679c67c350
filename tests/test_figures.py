"""autalk.figures on tiny hand-made arrays: every figure is a Figure, save() writes PNG + PDF, the red boxes
mark exactly the frames whose AUs disagree, the silent-audio numbers and the optical flow are right."""

from __future__ import annotations

import json

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pytest

from autalk import figures, paper
from autalk.corpus.align import Segment

S = 32  # side of the fake face crops (px)


def _frames(t: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, S, S, 3), dtype=np.uint8)


def _texture(side: int = 96) -> np.ndarray:
    """A smooth grey texture (uint8 RGB) Farneback can track."""
    noise = np.random.default_rng(1).uniform(0, 255, (side, side)).astype(np.float32)
    tex = cv2.GaussianBlur(noise, (0, 0), 2.0)
    tex = (tex - tex.min()) / (tex.max() - tex.min()) * 255
    return np.repeat(tex[..., None], 3, axis=-1).astype(np.uint8)


def _boxed(fig: plt.Figure) -> list[list[int]]:
    """Per row of a frame strip, the image slots carrying a red mismatch box."""
    return [figures.boxed_slots(ax, S) for ax in fig.axes]


def test_save_writes_png_and_pdf(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    png, pdf = figures.save(fig, "fig99_test", tmp_path)
    plt.close(fig)
    assert png == tmp_path / "fig99_test.png" and pdf == tmp_path / "fig99_test.pdf"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_au_mismatch_flags_any_disagreeing_au():
    true = np.array([[1, 0, 0, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [0, 1, 0, 0, 1]])
    pred = np.array([[1, 0, 0, 1, 0], [0, 0, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]])
    assert figures.au_mismatch(pred, true).tolist() == [False, True, False, True]
    with pytest.raises(ValueError):
        figures.au_mismatch(pred[:, :4], true)


def test_frame_strip_boxes_exactly_the_disagreeing_frames(tmp_path):
    t = 6
    true = np.zeros((t, 5), np.uint8)
    pred = true.copy()
    pred[[1, 4], 2] = 1  # frames 1 and 4 disagree
    miss = figures.au_mismatch(pred, true)
    rows = [figures.StripRow("ground truth", _frames(t, 0)),
            figures.StripRow("method", _frames(t, 1), boxed=miss)]
    fig = figures.frame_strip(rows, figures.frame_titles(10, t), title="test")
    assert isinstance(fig, plt.Figure) and len(fig.axes) == 2
    assert _boxed(fig) == [[], [1, 4]]  # second row, frames 1 and 4
    assert fig.axes[0].texts[0].get_text() == "frame 10\n0.42 s"
    assert fig.axes[1].get_ylabel() == "method"
    figures.save(fig, "strip", tmp_path)
    plt.close(fig)


def test_frame_strip_with_an_input_column():
    rows = [figures.StripRow("a", _frames(3), input=_frames(1)[0]),
            figures.StripRow("b", _frames(3), boxed=np.array([True, False, False]), input=_frames(1)[0])]
    fig = figures.frame_strip(rows)
    assert fig.axes[0].texts[0].get_text() == "input"
    assert fig.axes[0].images[0].get_array().shape == (S, 4 * S + 3 * figures.GAP_PX, 3)
    assert _boxed(fig) == [[], [1]]  # slot 0 is the input; the first frame is slot 1
    plt.close(fig)


def test_windows():
    au = np.zeros((20, 5), np.uint8)
    au[11:13, 0] = 1  # changes into frame 11 and into frame 13
    au[14, 3] = 1  # into 14 and 15
    # frames 12-15 show the changes into 13, 14 and 15; frames 11-14 only those into 13 and 14
    assert figures.busiest_window(au, 4) == 12
    assert figures.busiest_window(au[:3], 4) == 0
    words = [Segment(0.0, 0.5, "sil"), Segment(0.5, 0.7, "bin"), Segment(0.7, 1.3, "blue")]
    assert figures.word_window(words, 75, 8) == (21, "blue")  # centre 1.0 s = frame 25
    assert figures.word_window([Segment(0, 1, "sil")], 75, 8) == (-1, "")
    sr = 1000
    audio = np.zeros(3 * sr, np.float32)
    audio[2000:2320] = 1.0  # frames 50..57 at 25 fps (40 samples per frame)
    assert figures.loudest_window(audio, sr, 75, 8) == 50


def test_difference_maps_are_mean_abs_rgb():
    real = np.zeros((2, S, S, 3), np.uint8)
    fake = real.copy()
    fake[1, 0, 0] = (30, 60, 90)
    d = figures.difference_maps(fake, real)
    assert d.shape == (2, S, S) and d[1, 0, 0] == pytest.approx(60.0) and d.sum() == pytest.approx(60.0)


@pytest.mark.parametrize("dx,dy", [(2, 0), (0, 1), (3, -2)])
def test_flow_magnitude_of_a_shifted_image_is_the_shift(dx, dy):
    a = _texture()
    b = np.roll(a, (dy, dx), axis=(0, 1))
    flow = figures.optical_flow(np.stack([a, b]))
    assert flow.shape == (1, 96, 96, 2)
    inner = flow[0, 16:-16, 16:-16]  # away from the wrapped border
    np.testing.assert_allclose(inner.mean(axis=(0, 1)), (dx, dy), atol=0.1)
    assert figures.flow_summary(flow[:, 16:-16, 16:-16])["flow_mean_px"] == pytest.approx(np.hypot(dx, dy),
                                                                                          abs=0.1)


def test_flow_summary_lower_share_and_colour():
    flow = np.zeros((1, 8, 8, 2), np.float32)
    flow[0, 6, 2] = (3.0, 4.0)  # one moving pixel in the lower half, |flow| = 5
    s = figures.flow_summary(flow)
    assert s["flow_mean_px"] == pytest.approx(5 / 64) and s["flow_lower_share"] == 1.0
    rgb = figures.flow_to_rgb(flow, max_px=5.0)
    assert rgb.shape == (1, 8, 8, 3) and rgb[0, 6, 2].max() == 255 and rgb[0, 0, 0].max() == 0


def test_difference_flow_figure():
    tex = _texture(S)
    real = np.stack([np.roll(tex, k, axis=1) for k in range(4)])
    fakes = {"CRAN-like": _frames(4), "ours": real[:, ::-1].copy()}
    fig = figures.difference_flow_figure(real, fakes, title="fake")
    assert isinstance(fig, plt.Figure)
    assert "px/frame" in fig._suptitle.get_text()
    plt.close(fig)


def _mouth_landmarks(gaps) -> np.ndarray:
    """(T,68,2) landmarks whose inner-lip pairs 61-67, 62-66, 63-65 are ``gaps`` px apart vertically."""
    g = np.atleast_1d(np.asarray(gaps, dtype=np.float64))
    lm = np.zeros((len(g), 68, 2))
    for top, bottom, x in ((61, 67, 10.0), (62, 66, 12.0), (63, 65, 14.0)):
        lm[:, top] = (x, 40.0)
        lm[:, bottom, 0] = x
        lm[:, bottom, 1] = 40.0 + g
    return lm


def test_mouth_motion_on_hand_made_landmarks():
    gaps = np.array([1.0, 3.0, 1.0, 3.0])
    m = figures.mouth_motion(_mouth_landmarks(gaps), _mouth_landmarks(2.0)[0])
    assert m["gap_input_px"] == pytest.approx(2.0)
    assert m["gap_mean_px"] == pytest.approx(2.0)
    assert m["gap_std_px"] == pytest.approx(1.0)
    assert m["gap_dev_px"] == pytest.approx(1.0)
    assert m["gap_max_dev_px"] == pytest.approx(1.0)
    still = figures.mouth_motion(_mouth_landmarks([4.0] * 5), _mouth_landmarks(0.5)[0])
    assert still["gap_std_px"] == pytest.approx(0.0) and still["gap_dev_px"] == pytest.approx(3.5)


def test_silent_audio_is_slight_noise():
    y = figures.silent_audio(seconds=1.0, noise_rms=1e-3, sr=16000, seed=3)
    assert y.shape == (16000,) and y.dtype == np.float32
    assert np.sqrt(np.mean(y.astype(np.float64) ** 2)) == pytest.approx(1e-3, rel=0.05)
    np.testing.assert_array_equal(y, figures.silent_audio(1.0, 1e-3, 16000, seed=3))


def test_gap_curves():
    gaps = {"closed": {"ours": np.ones(10), "CRAN-like": np.linspace(0, 3, 10)},
            "open": {"ours": np.ones(10)}}
    fig = figures.gap_curves(gaps, {"closed": 0.5, "open": 3.0})
    assert isinstance(fig, plt.Figure) and fig.axes[0].get_ylabel() == "inner-lip gap (crop px)"
    plt.close(fig)


def _metrics_json() -> dict:
    def split(f1, acc):
        return {"f1": {a: f1 for a in figures.AU_COLUMNS}, "acc": {a: acc for a in figures.AU_COLUMNS},
                "mean_f1": f1, "mean_acc": acc}

    return {"train": split(0.9, 0.95), "test": split(0.8, 0.85), "trivial_test": split(0.1, 0.7)}


def test_table4_rows_figure_and_files(tmp_path):
    rows = figures.table4_rows(json.loads(json.dumps(_metrics_json())))
    assert [r["AU"] for r in rows] == [*figures.AU_COLUMNS, "Average"]
    assert rows[0]["test_f1"] == 0.8 and rows[0]["test_acc_pct"] == pytest.approx(85.0)
    assert (rows[-1]["paper_test_f1"], rows[-1]["paper_test_acc_pct"]) == paper.TABLE4_TEST["mean"]
    fig = figures.table4_figure(rows)
    assert isinstance(fig, plt.Figure)
    plt.close(fig)
    csv_path, md_path = figures.write_table(rows, "table4_test", ["AU", "test_f1", "paper_test_f1"], "T4",
                                            "a note", tmp_path)
    assert csv_path.read_text().startswith("AU,train_f1")
    md = md_path.read_text()
    assert "| AU10 | 0.800 | 0.875 |" in md and "a note" in md


def test_table5_rows_and_openface(tmp_path):
    from autalk.openface import write_openface_csv

    true = np.array([[1, 0, 0, 1, 0]] * 4 + [[0, 0, 0, 0, 0]] * 4, np.uint8)
    det = {"true": true, "classifier_generated": true, "classifier_real": true,
           "detector_generated": np.zeros_like(true), "detector_real": true}
    # OpenFace CSVs for two 4-frame clips; the second clip's last frame is not tracked.
    write_openface_csv(tmp_path / "s1_a.csv", np.zeros((4, 5)), true[:4])
    write_openface_csv(tmp_path / "s1_b.csv", np.zeros((4, 5)), true[4:], success=np.array([1, 1, 1, 0]))
    pred, valid, notes = figures.openface_presence(tmp_path, ["s1_a", "s1_b"], [4, 4])
    assert valid.tolist() == [True] * 7 + [False] and "1 of 4 frames untracked" in notes[0]
    rows = figures.table5_rows(det, (pred, valid))
    names = [(r["detector"], r["frames"]) for r in rows]
    assert names == [("AU classifier (nb 03)", "generated"), ("landmark AU detector", "generated"),
                     ("OpenFace (your CSVs)", "generated"), ("AU classifier (nb 03)", "real"),
                     ("landmark AU detector", "real")]
    assert rows[0]["f1"] == pytest.approx(1.0) and rows[0]["acc_pct"] == pytest.approx(100.0)
    assert rows[0]["paper_f1"] == paper.TABLE5_GRID["AU classifier"][0]
    assert rows[1]["acc_pct"] == pytest.approx(100 * (1 - 8 / 40))  # 8 missed presences of 40
    assert rows[2]["n_frames"] == 7 and rows[2]["paper_acc_pct"] == paper.TABLE5_GRID["OpenFace"][1]
    assert np.isnan(rows[3]["paper_f1"])
    _, _, missing = figures.openface_presence(tmp_path, ["s9_x"], [3])
    assert "no s9_x.csv" in missing[0]


def test_pick_clips_one_per_speaker_first():
    clips = [{"speaker": s, "clip_id": i} for s, i in (("s1", "a"), ("s1", "b"), ("s2", "c"), ("s2", "d"))]
    assert [c["clip_id"] for c in figures.pick_clips(clips, 3)] == ["a", "c", "b"]
    mixed = [{"speaker": s, "clip_id": i} for s, i in (("s1", "a"), ("s2", "b"), ("s1", "c"))]
    assert [c["clip_id"] for c in figures.pick_clips(mixed, 3)] == ["a", "b", "c"]


def _tiny_model_and_classifier():
    import torch

    from autalk.audio import NormStats
    from autalk.config import ModelConfig
    from autalk.networks import AUClassifier, Generator

    torch.manual_seed(0)
    cfg = ModelConfig(image_size=S, id_dim=8, audio_dim=8, au_feature_dim=4, rnn_hidden=8, base_channels=4,
                      audio_channels=(4, 4, 4, 4, 4), a2au_channels=2, a2au_lstm_hidden=4,
                      au_cls_channels=(2, 2, 2, 2), au_cls_hidden=(8, 4), use_audio2au=False)
    norm = NormStats(mean=np.zeros(12), std=np.ones(12))
    return (Generator(cfg).eval(), norm), AUClassifier(cfg).eval()


def test_method_frames_boxes_the_generated_frames_whose_classifier_aus_disagree():
    from autalk.evaluate import classifier_presence

    model, classifier = _tiny_model_and_classifier()
    rng = np.random.default_rng(0)
    t = 12
    clip = {"speaker": "s9", "clip_id": "fake", "frames": _frames(t, 2),
            "mfcc": rng.standard_normal((t, 12, 28)).astype(np.float32),
            "au": rng.integers(0, 2, (t, 5)).astype(np.uint8)}
    models = {"cran": model, figures.OURS: model}
    rows, shares = figures.method_frames(models, clip, ("cran", figures.OURS), classifier, n=4)
    start = figures.busiest_window(clip["au"], 4)
    assert [r.label for r in rows] == [f"s9/fake, frames {start}-{start + 3}\nground truth", "CRAN-like",
                                       "ours: full, nb 04"]
    assert rows[0].boxed is None  # the truth is never boxed
    fake = figures.generate_all({"x": model}, clip)["x"]
    expected = figures.au_mismatch(classifier_presence(classifier, fake), clip["au"])
    np.testing.assert_array_equal(rows[1].boxed, expected[start:start + 4])
    np.testing.assert_array_equal(rows[1].frames, fake[start:start + 4])
    assert shares[1]["boxed_pct"] == pytest.approx(100 * expected.mean())
    fig = figures.frame_strip(rows, figures.offset_titles(4))
    assert figures.boxed_slots(fig.axes[1], S) == list(np.flatnonzero(expected[start:start + 4]))
    plt.close(fig)


def test_video_source_on_a_real_grid_clip():
    from pathlib import Path

    path = Path(__file__).parent / "fixtures" / "real" / "grid" / "s1" / "video" / "bbaf2n.mpg"
    src = figures.video_source(path, 64)
    assert src.name == "bbaf2n" and src.identity.shape == (64, 64, 3) and src.sr == figures.SPEECH_SR
    assert src.real is not None and src.real.shape == (src.n_frames, 64, 64, 3)
    assert abs(src.n_frames - 75) <= 1  # a 3 s GRID clip at 25 fps
    assert 0 <= figures.loudest_window(src.audio, src.sr, src.n_frames) <= src.n_frames - figures.N_FRAMES


def test_missing_folders_are_refused_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="extra_video_dir"):
        figures.cross_sources(tmp_path, tmp_path, 64, str(tmp_path / "nope"))
    assert figures.load_openface("", [])[0] is None
    with pytest.raises(FileNotFoundError, match="openface_dir"):
        figures.load_openface(str(tmp_path / "nope"), [])
