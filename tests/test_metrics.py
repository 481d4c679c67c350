"""autalk.metrics on hand-made cases with known values, and on real GRID crops (landmarks, CSIM)."""

from __future__ import annotations

import csv
import math

import cv2
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from autalk import metrics as M
from autalk.faces import FaceDetector, LandmarkPredictor, crop_faces, track_face
from autalk.media import read_video


def _const(value: int, shape=(32, 32, 3)) -> np.ndarray:
    return np.full(shape, value, dtype=np.uint8)


@pytest.fixture(scope="module")
def grid_crops(fixtures_dir):
    """10 speaking frames of a real GRID clip cut like preprocessing does: {size: (crops, landmarks)}."""
    frames, _ = read_video(fixtures_dir / "real" / "grid" / "s1" / "video" / "bbaf2n.mpg", max_frames=40)
    frames = frames[20:40:2]
    track = track_face(frames, FaceDetector("hog"))
    lm = LandmarkPredictor()(frames, track.boxes)
    return {s: crop_faces(frames, track.boxes, lm, s)[:2] for s in (64, 112)}


# ---------------------------------------------------------------------------------------------- PSNR
def test_psnr_of_constant_offset():
    # offset 10 everywhere: MSE = 100, PSNR = 10 log10(255^2 / 100)
    want = 10 * math.log10(255**2 / 100)
    assert M.psnr(_const(100), _const(110)) == pytest.approx(want)
    assert want == pytest.approx(28.1308, abs=1e-4)
    # offset on one channel only: MSE over all pixels and channels = 100 / 3
    b = _const(100)
    b[..., 1] = 110
    assert M.psnr(_const(100), b) == pytest.approx(10 * math.log10(255**2 / (100 / 3)))


def test_psnr_identical_is_inf_and_clip_mean_caps_it():
    assert M.psnr(_const(7), _const(7)) == math.inf
    fake = np.stack([_const(100), _const(100)])
    real = np.stack([_const(100), _const(110)])
    np.testing.assert_allclose(M.psnr_frames(fake, real), [math.inf, 10 * math.log10(255**2 / 100)])
    assert M.psnr(fake, real) == pytest.approx((M.PSNR_CAP + 10 * math.log10(255**2 / 100)) / 2)
    assert M.psnr(fake, fake) == M.PSNR_CAP


def test_psnr_accepts_torch_images_in_minus_one_one():
    torch = pytest.importorskip("torch")
    a = torch.zeros(2, 3, 8, 8)                   # 0 -> 127.5 -> 128 (rounded)
    b = torch.full((2, 3, 8, 8), 20 / 127.5)      # -> 148
    assert M.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 400))


def test_shape_and_dtype_errors():
    with pytest.raises(ValueError, match="differ"):
        M.psnr(_const(1), _const(1, (16, 16, 3)))
    with pytest.raises(ValueError, match="uint8"):
        M.ssim(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))


# ---------------------------------------------------------------------------------------------- SSIM
def _wang_ssim_gray(x: np.ndarray, y: np.ndarray, big_l: float = 255.0) -> float:
    """Independent Wang et al. SSIM of one channel: Gaussian sigma 1.5 window (11x11), population
    statistics, mean over pixels whose window lies inside the image."""
    x, y = x.astype(np.float64), y.astype(np.float64)

    def f(z):
        return gaussian_filter(z, 1.5, truncate=3.5, mode="reflect")

    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
    c1, c2 = (0.01 * big_l) ** 2, (0.03 * big_l) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s[5:-5, 5:-5].mean())


def test_ssim_identical_is_one_and_noise_lowers_it():
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8), (0, 0), 2)
    assert M.ssim(img, img) == pytest.approx(1.0)
    noisy = [np.clip(img + rng.normal(0, s, img.shape), 0, 255).astype(np.uint8) for s in (5, 20, 60)]
    vals = [M.ssim(img, n) for n in noisy]
    assert 1.0 > vals[0] > vals[1] > vals[2]


def test_ssim_constant_images_give_the_luminance_term():
    # constant images: variances 0, so SSIM = (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1), C1 = (0.01*255)^2
    c1 = (0.01 * 255) ** 2
    assert M.ssim(_const(100), _const(110)) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1))


def test_ssim_uses_wang_gaussian_window_averaged_over_rgb():
    rng = np.random.default_rng(1)
    a = cv2.GaussianBlur(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), (0, 0), 1.5)
    b = np.clip(a + rng.normal(0, 15, a.shape), 0, 255).astype(np.uint8)
    want = np.mean([_wang_ssim_gray(a[..., c], b[..., c]) for c in range(3)])
    assert M.ssim(a, b) == pytest.approx(want, abs=1e-9)
    clip = M.ssim_frames(np.stack([a, a]), np.stack([a, b]))
    np.testing.assert_allclose(clip, [1.0, want], atol=1e-9)


# ----------------------------------------------------------------------------------------------- AUs
def test_au_scores_on_a_hand_counted_table():
    true = np.array([[1, 0, 1, 0, 0],
                     [1, 0, 0, 0, 1],
                     [0, 0, 1, 0, 1],
                     [0, 0, 0, 0, 1]])
    pred = np.array([[1, 0, 0, 0, 1],
                     [1, 1, 0, 0, 1],
                     [1, 0, 1, 0, 0],
                     [0, 0, 0, 0, 1]])
    s = M.au_scores(pred, true)
    # AU10: TP 2 FP 1 FN 0 TN 1; AU14: TP 0 FP 1 FN 0 TN 3; AU20: TP 1 FP 0 FN 1 TN 2;
    # AU25: nothing anywhere (F1 undefined); AU26: TP 2 FP 1 FN 1 TN 0
    want_f1 = {"AU10": 4 / 5, "AU14": 0.0, "AU20": 2 / 3, "AU26": 4 / 6}
    want_acc = {"AU10": 3 / 4, "AU14": 3 / 4, "AU20": 3 / 4, "AU25": 1.0, "AU26": 2 / 4}
    for k, v in want_f1.items():
        assert s["f1"][k] == pytest.approx(v)
    assert math.isnan(s["f1"]["AU25"])
    assert s["acc"] == pytest.approx(want_acc)
    assert s["f1_mean"] == pytest.approx(np.mean(list(want_f1.values())))
    assert s["acc_mean"] == pytest.approx(np.mean(list(want_acc.values())))
    assert s["n_f1_undefined"] == 1 and s["n"] == 4
    with pytest.raises(ValueError):
        M.au_scores(pred[:, :4], true[:, :4])


# ------------------------------------------------------------------------------------------ landmarks
def _face_with_round_mouth(radius: float = 10.0, centre=(50.0, 70.0)) -> np.ndarray:
    rng = np.random.default_rng(3)
    lm = rng.uniform(0, 100, (68, 2))
    ang = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    lm[48:68] = np.array(centre) + radius * np.stack([np.cos(ang), np.sin(ang)], axis=1)
    return lm


def test_lmd_ignores_a_shift_and_measures_a_scaled_mouth():
    lm = np.stack([_face_with_round_mouth(), _face_with_round_mouth(centre=(40, 60))])
    assert M.lmd(lm + np.array([7.0, -3.0]), lm) == pytest.approx(0.0, abs=1e-12)
    # every mouth point 20 % further from the centre: distance 0.2 * 10 px at each point
    scaled = lm.copy()
    c = lm[:, 48:68].mean(axis=1, keepdims=True)
    scaled[:, 48:68] = c + 1.2 * (lm[:, 48:68] - c) + np.array([3.0, 1.0])
    assert M.lmd(scaled, lm) == pytest.approx(2.0)
    assert M.lmd(scaled, lm, normalise=64) == pytest.approx(2.0 / 64)
    # points outside the mouth do not count
    other = lm.copy()
    other[:, :48] += 5.0
    assert M.lmd(other, lm) == 0.0
    # frames are averaged: one perfect frame and one 2 px frame -> 1 px
    mixed = np.stack([lm[0], scaled[1]])
    np.testing.assert_allclose(M.lmd_frames(mixed, lm), [0.0, 2.0], atol=1e-12)
    assert M.lmd(mixed, lm) == pytest.approx(1.0)


def test_mouth_opening_and_pearson():
    lm = np.zeros((3, 68, 2))
    for t, gap in enumerate([0.0, 2.0, 5.0]):
        lm[t, 65:68, 1] = gap          # lower inner lip below the upper one
    np.testing.assert_allclose(M.mouth_opening(lm), [0.0, 2.0, 5.0])
    assert M.pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert M.pearson([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert M.pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert M.pearson([1, 2, np.nan, 3], [1, 3, 9, 2]) == pytest.approx(0.5)  # NaN pair dropped
    assert math.isnan(M.pearson([1, 1, 1], [1, 2, 3]))
    assert math.isnan(M.pearson([0.1] * 5, [1, 2, 3, 4, 5]))
    assert math.isnan(M.pearson([1], [2]))


def test_crop_landmarks_land_on_the_face_of_real_crops(grid_crops):
    for size, (crops, lm_cache) in grid_crops.items():
        lm = M.crop_landmarks(crops)
        assert lm.shape == (len(crops), 68, 2)
        err_all = np.linalg.norm(lm - lm_cache, axis=-1).mean()
        assert err_all < 0.015 * size, (size, err_all)        # measured ~0.5 %
        assert M.lmd(lm, lm_cache) < 0.01 * size               # measured ~0.35 %
        assert M.pearson(M.mouth_opening(lm), M.mouth_opening(lm_cache)) > 0.8
    # an explicit box equal to the default gives the same points; a per-frame box array works too
    crops = grid_crops[64][0][:2]
    box = np.array(M.DEFAULT_CROP_BOX) * 64
    np.testing.assert_array_equal(M.crop_landmarks(crops, box=box), M.crop_landmarks(crops))
    np.testing.assert_array_equal(M.crop_landmarks(crops, box=np.stack([box, box])), M.crop_landmarks(crops))


# ----------------------------------------------------------------------------------------- bootstrap
def test_bootstrap_ci():
    rng = np.random.default_rng(0)
    v = rng.normal(3.0, 1.0, 400)
    mean, low, high = M.bootstrap_ci(v)
    assert mean == pytest.approx(v.mean())
    assert low < mean < high
    # percentile bootstrap of a mean ~ normal theory: half-width 1.96 sd / sqrt(n)
    assert (high - low) / 2 == pytest.approx(1.96 * v.std() / 20, rel=0.15)
    assert M.bootstrap_ci(v) == M.bootstrap_ci(v)  # seeded
    assert M.bootstrap_ci([2.5] * 7) == (2.5, 2.5, 2.5)
    s = M.bootstrap_summary([1.0, np.nan, 3.0, np.nan])
    assert s["n"] == 2 and s["n_nan"] == 2 and s["mean"] == 2.0
    assert all(math.isnan(x) for x in M.bootstrap_ci([np.nan]))


# ---------------------------------------------------------------------------------------------- CPBD
def _ramp(lo: int, hi: int, width: int, n: int = 64) -> np.ndarray:
    """A vertical edge from ``lo`` to ``hi`` rising linearly over ``width`` pixels (0 = a step)."""
    row = np.full(n, float(lo))
    row[n // 2:] = hi
    if width:
        a = n // 2 - width // 2
        row[a:a + width + 1] = np.linspace(lo, hi, width + 1)
    return np.repeat(row[None], n, axis=0).round().astype(np.uint8)


def test_cpbd_edge_width_against_the_jnb_width():
    # sharp iff P = 1 - exp(-(w / w_JNB)^3.6) <= 0.63, i.e. w < w_JNB: w_JNB = 3 above contrast 50, 5 below
    assert M.cpbd(_ramp(50, 250, 0)) == 1.0
    assert M.cpbd(_ramp(50, 250, 2)) == 1.0
    assert M.cpbd(_ramp(50, 250, 3)) == 0.0
    assert M.cpbd(_ramp(100, 140, 4)) == 1.0     # low contrast: 4 px is still sharp
    assert M.cpbd(_ramp(100, 140, 5)) == 0.0
    # one sharp block beside one blurred block (falling back to the same level: no edge between them):
    # about half the edge pixels are sharp
    two = np.concatenate([_ramp(50, 250, 1), _ramp(250, 50, 6)], axis=1)
    assert M.cpbd(two) == pytest.approx(0.5, abs=0.05)
    # horizontal edges are measured along columns
    assert M.cpbd(_ramp(50, 250, 1).T.copy()) == 1.0
    assert math.isnan(M.cpbd(_const(90, (64, 64))))


def test_cpbd_falls_with_blur(grid_crops):
    rng = np.random.default_rng(0)
    text = np.full((128, 128), 230, np.uint8)
    for _ in range(40):  # dark strokes and blobs on paper
        x0, y0 = (int(v) for v in rng.integers(0, 120, 2))
        cv2.rectangle(text, (x0, y0), (x0 + int(rng.integers(2, 12)), y0 + int(rng.integers(2, 12))), 20, -1)
    face = grid_crops[112][0][0]
    for img in (text, face):
        v = [M.cpbd(img if s == 0 else cv2.GaussianBlur(img, (0, 0), s)) for s in (0, 1, 2)]
        assert v[0] > v[1] >= v[2], v
        assert v[0] > v[2]
    assert M.cpbd(np.stack([text] * 3, axis=-1)) == M.cpbd(text)


# ---------------------------------------------------------------------------------------------- CSIM
def test_csim_same_face_is_one_and_another_face_is_lower(grid_crops):
    from autalk.corpus.face import render_frame, sample_identity

    crops = grid_crops[64][0]
    assert M.csim(crops[0], crops[:1]) == pytest.approx(1.0, abs=1e-6)
    # a synthetic speaker from the teaching-corpus renderer, cut the same way
    drawn = render_frame(sample_identity(np.random.default_rng(1)), np.zeros(5))[None]
    track = track_face(drawn, FaceDetector("hog"))
    other = crop_faces(drawn, track.boxes, LandmarkPredictor()(drawn, track.boxes), 64)[0]
    same_speaker = M.csim(crops[0], crops[1:3])
    assert same_speaker > 0.95
    assert M.csim(crops[0], other) < same_speaker - 0.05
    assert M.csim_frames(crops[0], crops[:3]).shape == (3,)


def test_quality_columns_score_a_still_face_as_the_identity_and_blur_as_less_sharp(grid_crops):
    from autalk.experiments import quality_columns

    crops = grid_crops[64][0]  # (10,64,64,3)
    clip = {"frames": crops}
    still = quality_columns(np.repeat(crops[:1], 10, axis=0), clip, stride=5)
    assert still["csim"] == pytest.approx(1.0, abs=1e-6)  # copying I_id keeps the identity exactly
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 2) for f in crops])
    sharp, soft = quality_columns(crops, clip, stride=3), quality_columns(blurred, clip, stride=3)
    assert sharp["cpbd"] > soft["cpbd"]
    assert soft["csim"] < still["csim"]


# ------------------------------------------------------------------------------------ clip rows, CSV
def test_clip_metrics_of_ground_truth_against_itself_are_ideal(grid_crops):
    real = grid_crops[64][0]
    au = np.zeros((len(real), 5), np.uint8)
    au[::2, 3] = 1
    au[:3, 4] = 1
    row = M.clip_metrics(real, real, None, au, au, au)
    assert row["n_frames"] == len(real) and row["crop_size"] == 64
    assert row["psnr"] == M.PSNR_CAP and row["ssim"] == pytest.approx(1.0)
    assert row["lmd_px"] == 0.0 and row["lmd_pct"] == 0.0
    assert row["mouth_r"] == pytest.approx(1.0)
    for p in ("au_det", "au_cls"):
        assert row[f"{p}_f1"] == 1.0 and row[f"{p}_acc"] == 1.0
        assert row[f"{p}_n_f1_undefined"] == 3           # AU10, AU14, AU20 never occur


def test_clip_metrics_of_a_degraded_clip(grid_crops):
    real, lm_real = grid_crops[64]
    fake = np.stack([cv2.GaussianBlur(f, (0, 0), 1.0) for f in real])
    au = np.ones((len(real), 5), np.uint8)
    wrong = au.copy()
    wrong[:, 0] = 0
    row = M.clip_metrics(fake, real, lm_real, au, wrong, None, identity_image=real[0], with_cpbd=True)
    assert 20 < row["psnr"] < M.PSNR_CAP and 0 < row["ssim"] < 1
    assert 0 < row["lmd_px"] < 2 and row["lmd_pct"] == pytest.approx(100 * row["lmd_px"] / 64)
    assert row["au_det_f1"] == pytest.approx(0.8) and row["au_det_acc"] == pytest.approx(0.8)
    assert math.isnan(row["au_cls_f1"]) and math.isnan(row["au_cls_acc"])
    assert 0.8 < row["csim"] <= 1.0
    assert row["cpbd_fake"] < row["cpbd_real"]
    skip = M.clip_metrics(fake, real, landmarks=False)
    assert math.isnan(skip["lmd_px"]) and math.isnan(skip["mouth_r"])


def test_summarise_and_write_csv(tmp_path):
    rows = [{"clip": "a", "psnr": 30.0, "mouth_r": 0.5}, {"clip": "b", "psnr": 32.0, "mouth_r": float("nan")},
            {"clip": "c", "psnr": 34.0}]
    summ = M.summarise(rows)
    assert [s["metric"] for s in summ] == ["psnr", "mouth_r"]
    assert summ[0]["mean"] == 32.0 and summ[0]["ci_low"] < 32.0 < summ[0]["ci_high"] and summ[0]["n"] == 3
    assert summ[1]["n"] == 1 and summ[1]["n_nan"] == 2 and summ[1]["mean"] == 0.5
    assert M.summarise(rows, ["psnr"])[0] == summ[0]
    path = tmp_path / "out" / "clips.csv"
    M.write_csv(rows, path)
    with open(path, newline="") as f:
        back = list(csv.DictReader(f))
    assert list(back[0]) == ["clip", "psnr", "mouth_r"]
    assert back[1]["mouth_r"] == "nan" and back[2]["mouth_r"] == "" and float(back[0]["psnr"]) == 30.0
    assert [p.name for p in path.parent.iterdir()] == ["clips.csv"]  # no temp file left behind
