"""Realism of the rendered faces as seen by dlib: HOG finds them, and the 68 landmarks follow the mouth.

The corpus is only useful if the same off-the-shelf tools that process GRID (dlib's HOG detector and its
68-point shape predictor) work on it. Frames use random identities, random AU intensities, blinks
(including forced fully-closed eyes) and head motion from ``sample_motion``.
"""

from __future__ import annotations

import numpy as np
import pytest

from autalk.corpus import face

dlib = pytest.importorskip("dlib")

N_IDENTITIES = 24
FRAMES_PER_IDENTITY = 8
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))


@pytest.fixture(scope="module")
def detector():
    return dlib.get_frontal_face_detector()


@pytest.fixture(scope="module")
def predictor():
    from autalk.dlibmodels import model_path
    from autalk.profiles import MissingResourceError

    try:
        return dlib.shape_predictor(str(model_path("landmarks68")))
    except MissingResourceError as e:
        pytest.skip(str(e))


def _random_au(rng: np.random.Generator) -> np.ndarray:
    """Each AU active with probability 0.6, intensity uniform in 0..5."""
    return rng.uniform(0, 5, 5) * (rng.uniform(0, 1, 5) < 0.6)


def _frames(seed: int, n_ids: int, per_id: int, force_blink: bool):
    """Yield (frame, au, head) over n_ids random identities with their own motion tracks."""
    rng = np.random.default_rng(seed)
    for _ in range(n_ids):
        ident = face.sample_identity(rng)
        motion = face.sample_motion(75, rng)
        for j, t in enumerate(rng.choice(75, per_id, replace=False)):
            blink = 1.0 if (force_blink and j == 0) else float(motion.blink[t])
            au = _random_au(rng)
            head = tuple(motion.head[t])
            yield face.render_frame(ident, au, blink, head), au, head


def test_hog_finds_exactly_one_face(detector):
    n = hits = 0
    widths, misses = [], []
    for i, (img, _, _) in enumerate(_frames(2021, N_IDENTITIES, FRAMES_PER_IDENTITY, force_blink=True)):
        dets = detector(img, 0)
        n += 1
        if len(dets) == 1:
            hits += 1
            widths.append(dets[0].width())
        else:
            misses.append((i // FRAMES_PER_IDENTITY, len(dets)))
    rate = hits / n
    msg = (
        f"HOG (upsample 0) found exactly one face in {hits}/{n} frames ({rate:.1%}) over {N_IDENTITIES} "
        f"identities; misses (identity, n_faces): {misses}; box width {np.mean(widths):.0f} px"
    )
    print(msg)
    assert rate >= 0.99, msg


def test_landmark_lip_gap_tracks_mouth_opening(detector, predictor):
    gaps, opening = [], []
    skipped = 0
    for img, au, head in _frames(1984, 12, 12, force_blink=False):
        dets = detector(img, 0)
        if len(dets) != 1:
            skipped += 1
            continue
        s = predictor(img, dets[0])
        p = np.array([[s.part(i).x, s.part(i).y] for i in range(68)], float)
        gaps.append(np.mean([np.linalg.norm(p[a] - p[b]) for a, b in INNER_LIP_PAIRS]))
        opening.append(float(face.mouth_opening(au)) * head[3])  # drawn gap, scaled like the head
    r = float(np.corrcoef(gaps, opening)[0, 1])
    slope = float(np.polyfit(opening, gaps, 1)[0])
    msg = (
        f"dlib inner-lip gap vs mouth_opening(au): Pearson r = {r:.3f} over {len(gaps)} frames of 12 "
        f"identities ({skipped} without exactly one face), slope {slope:.2f} px/px"
    )
    print(msg)
    assert skipped <= 2, msg
    assert r >= 0.8, msg
