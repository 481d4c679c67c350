"""autalk.au: neutral calibration, monotone responses to hand-moved landmarks, F1/accuracy, JSON, fitting,
and (when the teaching-corpus renderer exists) agreement with rendered faces of known AU intensity."""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import pytest

from autalk import PAPER_AUS
from autalk.au import (
    AU_FEATURES,
    AUDetector,
    agreement,
    au_features,
    default_detector,
    f1_accuracy,
    fit_detector,
    fit_detector_features,
)

AU = {a: k for k, a in enumerate(PAPER_AUS)}
LOWER_LIP = [55, 56, 57, 58, 59, 65, 66, 67]
UPPER_LIP = [49, 50, 51, 52, 53, 61, 62, 63]
JAW = list(range(4, 13))


@pytest.fixture(scope="module")
def neutral(fixtures_dir) -> np.ndarray:
    """Real dlib landmarks of GRID s1's first (silent, mouth closed) frame."""
    from autalk.media import read_video

    frames, _ = read_video(fixtures_dir / "real" / "grid" / "s1" / "video" / "bbaf2n.mpg", max_frames=1)
    detector, predictor = _face_models()
    box = detector.largest(frames[0])
    assert box is not None
    return predictor.predict(frames[0], box)


def _moved(neutral, points, dx=0.0, dy=0.0) -> np.ndarray:
    lm = neutral.copy()
    lm[points, 0] += dx
    lm[points, 1] += dy
    return lm


def _similarity(lm, angle_deg, scale, shift):
    a = np.deg2rad(angle_deg)
    r = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return lm @ r.T + np.asarray(shift)


def test_features_zero_at_neutral_and_pose_invariant(neutral):
    f = au_features(neutral[None], neutral)
    assert f.shape == (1, len(AU_FEATURES)) and f.dtype == np.float32
    np.testing.assert_allclose(f, 0, atol=1e-6)
    # the same face rotated, zoomed and moved is still neutral
    moved = np.stack([_similarity(neutral, 8, 1.25, (30, -12)), _similarity(neutral, -5, 0.8, (-20, 9))])
    np.testing.assert_allclose(au_features(moved, neutral), 0, atol=1e-5)
    # default neutral is the first frame
    np.testing.assert_allclose(au_features(np.stack([neutral, neutral])), 0, atol=1e-6)
    inten, pres = default_detector().predict(neutral[None], neutral)
    assert inten.shape == (1, 5) and pres.shape == (1, 5) and pres.dtype == np.uint8
    assert inten.max() < 1e-5 and pres.max() == 0


def test_lower_lip_down_raises_au25_monotonically(neutral):
    det = default_detector()
    ks = np.arange(0, 13)
    seq = np.stack([_moved(neutral, LOWER_LIP, dy=k) for k in ks])
    inten, pres = det.predict(seq, neutral)
    au25 = inten[:, AU[25]]
    print("AU25 vs lower lip moved down by k px:", [round(float(v), 2) for v in au25])
    assert au25[0] < 1e-5
    assert (np.diff(au25) >= 0).all() and au25[-1] > au25[4] > au25[1]
    assert au25[-1] >= 3 and pres[-1, AU[25]] == 1 and pres[0, AU[25]] == 0
    # pose does not change the answer
    rotated = np.stack([_similarity(lm, 10, 1.3, (15, 5)) for lm in seq])
    rot_neutral = _similarity(neutral, 10, 1.3, (15, 5))
    np.testing.assert_allclose(det.predict(rotated, rot_neutral)[0], inten, atol=1e-3)


def test_other_aus_respond_to_their_movements(neutral):
    det = default_detector()
    ks = [0, 2, 4, 6]

    def track(build, au):
        seq = np.stack([build(k) for k in ks])
        return det.predict(seq, neutral)[0][:, AU[au]]

    jaw = track(lambda k: _moved(neutral, JAW + LOWER_LIP, dy=2 * k), 26)
    wide = track(lambda k: _moved(_moved(neutral, [48, 60], dx=-k), [54, 64], dx=k), 20)
    narrow = track(lambda k: _moved(_moved(neutral, [48, 60], dx=k), [54, 64], dx=-k), 14)
    raise_ = track(lambda k: _moved(neutral, UPPER_LIP, dy=-k), 10)
    for name, v in {"AU26 jaw": jaw, "AU20 widen": wide, "AU14 narrow": narrow, "AU10 raise": raise_}.items():
        assert v[0] < 1e-5 and (np.diff(v) >= -1e-6).all() and v[-1] > 1, (name, v)
    # widening is not dimpling, and narrowing is not stretching
    n = np.stack([_moved(_moved(neutral, [48, 60], dx=6), [54, 64], dx=-6)])
    assert det.predict(n, neutral)[0][0, AU[20]] < 1e-5


def test_agreement_matches_hand_computed_values():
    #            AU10 AU14 AU20 AU25 AU26
    pred = np.array([[1, 1, 0, 0, 1],
                     [1, 1, 0, 0, 0],
                     [0, 1, 0, 0, 0],
                     [0, 1, 0, 0, 0]])
    true = np.array([[1, 1, 0, 1, 1],
                     [0, 1, 0, 1, 1],
                     [1, 1, 0, 0, 1],
                     [0, 1, 0, 0, 0]])
    # AU10: TP1 FP1 FN1 TN1 -> F1 2/4, acc 2/4; AU14: all TP -> 1, 1; AU20: nothing on either side ->
    # F1 undefined, acc 1; AU25: TP0 FN2 -> F1 0, acc 2/4; AU26: TP1 FN2 TN1 -> F1 2/4, acc 2/4.
    r = agreement(pred, true)
    per = r["per_au"]
    assert list(per) == ["AU10", "AU14", "AU20", "AU25", "AU26"]
    assert per["AU10"]["f1"] == pytest.approx(0.5) and per["AU10"]["acc"] == pytest.approx(0.5)
    assert (per["AU10"]["tp"], per["AU10"]["fp"], per["AU10"]["fn"], per["AU10"]["tn"]) == (1, 1, 1, 1)
    assert per["AU14"]["f1"] == 1.0 and per["AU14"]["acc"] == 1.0
    assert math.isnan(per["AU20"]["f1"]) and per["AU20"]["acc"] == 1.0
    assert per["AU25"]["f1"] == 0.0 and per["AU25"]["acc"] == 0.5
    assert per["AU26"]["f1"] == pytest.approx(0.5) and per["AU26"]["n_true"] == 3
    assert r["avg_f1"] == pytest.approx((0.5 + 1 + 0 + 0.5) / 4) and r["n_f1_defined"] == 4
    assert r["avg_acc"] == pytest.approx((0.5 + 1 + 1 + 0.5 + 0.5) / 5) and r["n"] == 4
    r0 = agreement(pred, true, zero_division=0.0)
    assert r0["avg_f1"] == pytest.approx(2.0 / 5)
    assert f1_accuracy(pred[:, 0], true[:, 0]) == pytest.approx((0.5, 0.5))
    assert f1_accuracy([1, 0, 1], [True, False, False]) == pytest.approx((2 / 3, 2 / 3))
    with pytest.raises(ValueError):
        agreement(pred[:3], true)


def test_json_round_trip(tmp_path, neutral):
    det = default_detector()
    det.thresholds[2] = 1.7
    text = det.to_json()
    d = json.loads(text)
    assert d["aus"] == list(PAPER_AUS) and d["features"] == list(AU_FEATURES)
    back = AUDetector.from_json(text)
    np.testing.assert_array_equal(back.coef, det.coef)
    np.testing.assert_array_equal(back.thresholds, det.thresholds)
    assert back.source == det.source
    seq = np.stack([_moved(neutral, LOWER_LIP + JAW, dy=k) for k in range(6)])
    np.testing.assert_array_equal(back.predict(seq, neutral)[0], det.predict(seq, neutral)[0])
    det.save(tmp_path / "au.json")
    assert AUDetector.load(tmp_path / "au.json").to_json() == text
    with pytest.raises(ValueError):
        AUDetector.from_json(json.dumps({"format": "other"}))


def test_fit_detector_recovers_a_known_mapping(neutral):
    """Deform real landmarks randomly; truth = the default rules; the fit must reproduce them."""
    rng = np.random.default_rng(0)
    truth_det = default_detector()
    clips, truths = [], []
    for _ in range(6):
        seq = []
        for _ in range(40):
            lm = _moved(neutral, JAW + LOWER_LIP, dy=rng.uniform(0, 6))
            lm = _moved(lm, LOWER_LIP, dy=rng.uniform(0, 6))
            w = rng.uniform(-4, 4)
            lm = _moved(_moved(lm, [48, 60], dx=-w), [54, 64], dx=w)
            lm = _moved(lm, UPPER_LIP, dy=-rng.uniform(0, 3))
            seq.append(lm + rng.normal(0, 0.3, lm.shape))
        seq = np.stack(seq)
        clips.append(seq)
        truths.append(truth_det.predict(seq, neutral)[0])
    fitted = fit_detector(clips, [neutral] * len(clips), truths)
    assert fitted.info["n_frames"] == 240
    pred = np.concatenate([fitted.predict(c, neutral)[0] for c in clips])
    true = np.concatenate(truths)
    for au in (20, 25, 26):
        r = np.corrcoef(pred[:, AU[au]], true[:, AU[au]])[0, 1]
        assert r > 0.9, (au, r)
    ag = agreement(np.concatenate([fitted.predict(c, neutral)[1] for c in clips]), true >= 1)
    assert ag["avg_acc"] > 0.8, ag
    AUDetector.from_json(fitted.to_json())  # fitted detectors serialise too
    # the same fit from precomputed features (what preprocessing does with the cached landmarks)
    same = fit_detector_features([au_features(c, neutral) for c in clips], truths)
    np.testing.assert_allclose(same.coef, fitted.coef, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(same.thresholds, fitted.thresholds)
    assert same.fingerprint() == fitted.fingerprint() != truth_det.fingerprint()


def test_fingerprint_and_loaded_path(tmp_path):
    det = default_detector()
    assert det.fingerprint() == default_detector().fingerprint() and len(det.fingerprint()) == 16
    assert det.describe() == {"source": "default hand-set rules", "path": None,
                              "fingerprint": det.fingerprint()}
    det.save(tmp_path / "d.json")
    back = AUDetector.load(tmp_path / "d.json")
    assert back.path == str(tmp_path / "d.json") and back.fingerprint() == det.fingerprint()
    assert "path" not in json.loads(back.to_json())  # where it was loaded from is not part of the file
    other = default_detector()
    other.thresholds[0] = 1.5
    assert other.fingerprint() != det.fingerprint()
    with pytest.raises(ValueError):
        fit_detector_features([], [])


@functools.cache
def _face_models():
    from autalk.faces import FaceDetector, LandmarkPredictor

    return FaceDetector(), LandmarkPredictor()


def _detect_rendered(face, ident, au):
    """Render frames with known AUs, then run the real pipeline: HOG track, dlib landmarks, detector."""
    from autalk.faces import track_face

    detector, predictor = _face_models()
    frames = np.stack([face.render_frame(ident, a) for a in au])
    track = track_face(frames, detector)
    assert track.ok, track.reason
    lm = predictor(frames, track.boxes)
    return default_detector().predict(lm)[0]  # neutral = first frame (all AUs 0)


def _r(a, b) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def test_rendered_faces_with_known_aus():
    """Teaching-corpus faces with known AU intensities: detector AU25/AU26 follow the truth."""
    face = pytest.importorskip("autalk.corpus.face")
    # Speech-like frames: one latent opening drives AU25 and (for wider openings) AU26 together, as
    # in speech and FACS coding; AU10/14/20 vary independently. Frame 0 is the neutral identity frame.
    pred, true = [], []
    for seed in (100, 101, 102):
        rng = np.random.default_rng(seed)
        ident = face.sample_identity(rng)
        n = 30
        o = rng.uniform(0, 1, n)
        au = np.stack([rng.uniform(0, 1.5, n), rng.uniform(0, 1.5, n), rng.uniform(0, 2, n),
                       5 * o + rng.normal(0, 0.3, n), 6 * o - 2 + rng.normal(0, 0.5, n)], axis=1)
        au = np.clip(au, 0, 5)
        au[0] = 0
        pred.append(_detect_rendered(face, ident, au))
        true.append(au)
    pred, true = np.concatenate(pred), np.concatenate(true)
    r25, r26 = _r(pred[:, AU[25]], true[:, AU[25]]), _r(pred[:, AU[26]], true[:, AU[26]])
    print(f"rendered speech-like frames (3 identities x 30): r(AU25) = {r25:.2f}, r(AU26) = {r26:.2f}")
    assert r25 > 0.8 and r26 > 0.75
    # One AU at a time, 0..5: lips parting alone, then the jaw dropping alone.
    sweeps = {}
    for au_num in (25, 26):
        p, t = [], []
        for seed in (100, 103):
            ident = face.sample_identity(np.random.default_rng(seed))
            au = np.zeros((6, 5))
            au[:, AU[au_num]] = np.linspace(0, 5, 6)
            p.append(_detect_rendered(face, ident, au)[:, AU[au_num]])
            t.append(au[:, AU[au_num]])
        sweeps[au_num] = _r(np.concatenate(p), np.concatenate(t))
        assert all(x[-1] > x[0] + 1 for x in p), (au_num, p)
    print(f"isolated sweeps (2 identities x 6): r(AU25) = {sweeps[25]:.2f}, r(AU26) = {sweeps[26]:.2f}")
    assert sweeps[25] > 0.85 and sweeps[26] > 0.8
