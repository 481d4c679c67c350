"""autalk.faces on real GRID clips: tracking, landmarks, crops, and the no-face / few-missing paths."""

from __future__ import annotations

import time

import numpy as np
import pytest

from autalk.au import inner_lip_gap
from autalk.faces import FaceDetector, FaceTrack, LandmarkPredictor, crop_box, crop_faces, track_face
from autalk.media import read_video

GRID_IDS = ("bbaf2n", "lgir8n", "swao4n")


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector("hog")


@pytest.fixture(scope="module")
def predictor() -> LandmarkPredictor:
    return LandmarkPredictor()


@pytest.fixture(scope="module")
def clips(fixtures_dir, detector, predictor):
    """Each real clip: frames, track, landmarks (and the time the pipeline took)."""
    out = {}
    for cid in GRID_IDS:
        frames, fps = read_video(fixtures_dir / "real" / "grid" / "s1" / "video" / f"{cid}.mpg")
        t0 = time.perf_counter()
        track = track_face(frames, detector)
        lm = predictor(frames, track.boxes)
        crops, _, _ = crop_faces(frames, track.boxes, lm, 112)
        out[cid] = (frames, fps, track, lm, time.perf_counter() - t0)
    return out


def test_track_is_stable_and_inside_frame(clips):
    for cid, (frames, fps, track, _, secs) in clips.items():
        t, h, w = frames.shape[:3]
        assert (t, h, w, fps) == (75, 288, 360, 25.0)
        assert isinstance(track, FaceTrack)
        assert track.ok and track.reason is None, cid
        assert track.interpolated == 0
        assert track.boxes.shape == (t, 4) and track.boxes.dtype == np.float32
        # frames 0, 5, ..., 70 and the last one; frame 0 twice (whole frame, then the search region)
        assert track.n_detector_runs == 17
        assert track.detected.sum() == 16 and track.detected[0] and track.detected[-1]
        b = track.boxes
        assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all() and (b[:, 2] <= w).all() and (b[:, 3] <= h).all()
        sizes = b[:, 2] - b[:, 0]
        assert 80 < sizes.min() and sizes.max() < 200
        # one face that does not wander: the box centre stays within a few pixels
        centre = (b[:, :2] + b[:, 2:]) / 2
        assert np.ptp(centre, axis=0).max() < 15, cid
        # steady box size: HOG's pyramid-level jumps are smoothed away (landmarks depend on it)
        assert np.ptp(sizes) < 8, (cid, np.ptp(sizes))
        print(f"{cid}: track+landmarks+crop112 {1000 * secs:.0f} ms for {t} frames")


def test_landmarks_inside_box(clips):
    for _, (_, _, track, lm, _) in clips.items():
        assert lm.shape == (75, 68, 2) and lm.dtype == np.float32
        b = track.boxes
        size = (b[:, 2] - b[:, 0])[:, None]
        # the chin may sit a little below dlib's box: allow a quarter of the box size
        lo = b[:, None, :2] - 0.25 * size[..., None]
        hi = b[:, None, 2:] + 0.25 * size[..., None]
        assert (lm >= lo).all() and (lm <= hi).all()
        # anatomical order: brows above eyes above nose tip above mouth above chin
        y = lm[..., 1].mean(axis=0)
        assert y[17:27].mean() < y[36:48].mean() < y[30] < y[51] < y[57] < y[8]


def test_lip_gap_follows_speech(clips):
    for cid, (_, _, _, lm, _) in clips.items():
        gap = inner_lip_gap(lm)
        assert gap.shape == (75,)
        assert gap[:3].max() < 2.5, (cid, gap[:3])        # GRID starts in silence, mouth closed
        assert gap.max() > 5.0 and gap.std() > 1.0, (cid, gap.max(), gap.std())


@pytest.mark.parametrize("size", [64, 112])
def test_crop_shapes_and_landmark_transform(clips, size):
    frames, _, track, lm, _ = clips["bbaf2n"]
    crops, lmc, m = crop_faces(frames, track.boxes, lm, size)
    assert crops.shape == (75, size, size, 3) and crops.dtype == np.uint8
    assert lmc.shape == (75, 68, 2) and m.shape == (3, 3)
    assert (lmc >= 0).all() and (lmc < size).all()
    hom = np.concatenate([lm, np.ones((75, 68, 1), np.float32)], axis=2)
    np.testing.assert_allclose(hom @ m[:2].T, lmc, atol=1e-3)
    # the mouth sits in the lower half, the eyes in the upper half, roughly centred horizontally
    assert lmc[:, 36:48, 1].mean() < size / 2 < lmc[:, 48:68, 1].mean()
    assert abs(lmc[:, 27:36, 0].mean() - size / 2) < size / 8
    # chin inside the crop with some margin
    assert lmc[:, 8, 1].max() < 0.95 * size


def test_crop_is_stable_across_clips_of_one_speaker(clips):
    """HOG's box size jumps between pyramid levels across clips; the landmark square does not."""
    sides = [crop_box(track.boxes, lm)[2] for (_, _, track, lm, _) in clips.values()]
    assert max(sides) - min(sides) <= 0.05 * max(sides), sides


def test_crop_pads_outside_frame(clips):
    frames = clips["bbaf2n"][0][:3]
    crops, _, m = crop_faces(frames, None, None, 64, square=(-50, -40, 200))
    assert crops.shape == (3, 64, 64, 3)
    assert m[0, 0] == pytest.approx(64 / 200)


def test_no_face_gives_reason(detector):
    gray = np.full((10, 288, 360, 3), 128, np.uint8)
    track = track_face(gray, detector, stride=5)
    assert not track.ok
    assert track.reason.startswith("no face in 100% of sampled frames")
    assert not track.detected.any() and track.boxes.shape == (10, 4)


def test_face_blacked_out_on_most_frames(clips, detector):
    frames, _, track, _, _ = clips["bbaf2n"]
    x0, y0, x1, y1 = track.median_box.astype(int)
    hidden = frames.copy()
    hidden[:60, max(0, y0 - 20): y1 + 40, max(0, x0 - 20): x1 + 20] = 0
    bad = track_face(hidden, detector, stride=5)
    assert not bad.ok
    assert bad.reason.startswith("no face in ") and "% of sampled frames" in bad.reason
    pct = int(bad.reason.split("no face in ")[1].split("%")[0])
    assert 70 <= pct <= 85, bad.reason  # 12 of 16 sampled frames hidden


def test_few_missing_frames_are_interpolated(clips, detector):
    frames, _, track, _, _ = clips["bbaf2n"]
    x0, y0, x1, y1 = track.median_box.astype(int)
    hidden = frames.copy()
    hidden[22:29, max(0, y0 - 20): y1 + 40, max(0, x0 - 20): x1 + 20] = 0  # sample 25 and its retries
    tr = track_face(hidden, detector, stride=5)
    assert tr.ok and tr.reason is None
    assert tr.interpolated >= 1
    assert not tr.detected[22:29].any()
    assert tr.n_detector_runs > 17  # the re-tries ran
    np.testing.assert_allclose(tr.boxes[22:29], np.repeat(tr.median_box[None], 7, 0), atol=4)


def test_track_follows_a_moving_face(clips, detector):
    """The search region re-centres when the face drifts (or is lost) instead of losing it."""
    frames = clips["lgir8n"][0]
    shifts = np.linspace(0, 70, len(frames)).astype(int)
    moved = np.stack([np.roll(f, -s, axis=1) for f, s in zip(frames, shifts, strict=True)])
    tr = track_face(moved, detector)
    still = track_face(frames, detector, roi_margin=None)
    assert tr.ok and tr.interpolated == 0
    cx = (tr.boxes[:, 0] + tr.boxes[:, 2]) / 2
    cx0 = (still.boxes[:, 0] + still.boxes[:, 2]) / 2
    assert np.abs(cx - (cx0 - shifts)).max() < 10


def test_large_frame_is_downscaled(clips, detector):
    """A TCD-TIMIT sized frame (1920x1080) gives the face box in full-resolution pixels."""
    import cv2

    frame = clips["bbaf2n"][0][0]
    big = cv2.resize(frame, (1350, 1080), interpolation=cv2.INTER_LINEAR)  # x3.75
    canvas = np.zeros((1080, 1920, 3), np.uint8)
    canvas[:, 285:1635] = big
    small = detector.detect(frame)
    faces = detector.detect(canvas)
    assert len(faces) == 1 and len(small) == 1
    expect = np.array(small[0][:4]) * 3.75 + [285, 0, 285, 0]
    np.testing.assert_allclose(faces[0][:4], expect, atol=0.2 * (expect[2] - expect[0]))


def test_cnn_detector_and_bad_kind(clips):
    with pytest.raises(ValueError):
        FaceDetector("haar")
    cnn = FaceDetector("cnn")
    faces = cnn.detect(clips["bbaf2n"][0][0])
    assert len(faces) >= 1
    x0, y0, x1, y1, score = faces[0]
    assert 60 < x1 - x0 < 220 and 0 <= x0 and x1 <= 360 and score > 0
