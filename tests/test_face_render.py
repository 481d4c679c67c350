"""The procedural face renderer (autalk.corpus.face): shapes, determinism, identities, AU -> geometry."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from autalk import PAPER_AUS
from autalk.corpus import face
from autalk.corpus.face import FRAME_H, FRAME_W

AU = {au: i for i, au in enumerate(PAPER_AUS)}


def _ident(seed: int = 0) -> face.Identity:
    return face.sample_identity(np.random.default_rng(seed))


def _au(**kw) -> np.ndarray:
    a = np.zeros(len(PAPER_AUS))
    for name, v in kw.items():
        a[AU[int(name[2:])]] = v
    return a


def _regions(ident: face.Identity):
    """(mouth, eyes) boxes as slices, from the renderer's geometry at head scale 1."""
    r = face.Renderer(ident)
    a = r.a
    mouth = (
        slice(int(r.nose_y + 0.05 * a), int(r.chin + 16)),
        slice(int(r.cx - r.mw - 0.3 * a), int(r.cx + r.mw + 0.3 * a)),
    )
    eyes = (
        slice(int(r.ey - 2.2 * r.eh), int(r.ey + 2.2 * r.eh)),
        slice(int(r.eyes[0][0] - 1.6 * r.ew), int(r.eyes[1][0] + 1.6 * r.ew)),
    )
    return r, mouth, eyes


def _diff(a: np.ndarray, b: np.ndarray, box) -> float:
    return float(np.abs(a[box].astype(int) - b[box].astype(int)).sum(-1).mean())


def test_shapes_and_dtype():
    ident = _ident()
    f = face.render_frame(ident, np.zeros(5))
    assert f.shape == (FRAME_H, FRAME_W, 3) == (288, 360, 3) and f.dtype == np.uint8
    rng = np.random.default_rng(1)
    motion = face.sample_motion(6, rng)
    clip = face.render_clip(ident, rng.uniform(0, 5, (6, 5)), motion)
    assert clip.shape == (6, 288, 360, 3) and clip.dtype == np.uint8
    assert face.Renderer(ident).render(np.zeros(5)).shape == (288, 360, 3)


def test_deterministic_identity_and_pixels():
    a, b = _ident(7), _ident(7)
    assert a == b
    au = np.random.default_rng(0).uniform(0, 5, (4, 5))
    m1 = face.sample_motion(4, np.random.default_rng(3))
    m2 = face.sample_motion(4, np.random.default_rng(3))
    assert np.array_equal(m1.blink, m2.blink) and np.array_equal(m1.head, m2.head)
    c1 = face.render_clip(a, au, m1)
    face._renderer.cache_clear()  # a fresh renderer must rebuild identical static layers
    c2 = face.render_clip(b, au, m2)
    assert np.array_equal(c1, c2)
    assert np.array_equal(face.Renderer(a).render(au[0]), face.render_frame(a, au[0]))


def test_identity_json_roundtrip():
    ident = _ident(5)
    d = json.loads(json.dumps(dataclasses.asdict(ident)))
    assert face.Identity.from_dict(d) == ident


def test_identities_differ():
    rng = np.random.default_rng(11)
    ids = [face.sample_identity(rng) for _ in range(12)]
    assert len(set(ids)) == 12
    assert len({i.skin for i in ids}) == 12 and len({i.hair_color for i in ids}) >= 8
    assert len({i.hair_style for i in ids}) >= 3
    frames = [face.render_frame(i, np.zeros(5)).astype(np.int16) for i in ids]
    for i in range(len(frames)):
        for j in range(i + 1, len(frames)):
            assert np.abs(frames[i] - frames[j]).mean() > 8, (i, j)
    # the face is GRID-sized: 110-150 px wide in the 360x288 frame
    for ident in ids:
        assert 110 <= 2 * ident.face_half_width <= 150


@pytest.mark.parametrize("au", PAPER_AUS)
def test_each_au_changes_mouth_not_eyes(au):
    ident = _ident(2)
    r, mouth, eyes = _regions(ident)
    base = r.render(np.zeros(5))
    act = r.render(_au(**{f"au{au}": 5.0}))
    d_mouth, d_eyes = _diff(base, act, mouth), _diff(base, act, eyes)
    assert d_mouth > 3.0, f"AU{au} barely changes the mouth region (mean abs diff {d_mouth:.2f})"
    assert d_eyes == 0.0, f"AU{au} changed the eye region ({d_eyes:.3f})"
    # the intensity is graded: AU=2 changes less than AU=5
    mid = r.render(_au(**{f"au{au}": 2.0}))
    assert 0 < _diff(base, mid, mouth) < d_mouth


def test_blink_changes_eyes_not_mouth():
    r, mouth, eyes = _regions(_ident(4))
    base, closed = r.render(np.zeros(5)), r.render(np.zeros(5), blink=1.0)
    assert _diff(base, closed, eyes) > 3.0
    assert _diff(base, closed, mouth) == 0.0


def test_jaw_drop_moves_chin():
    r, _, _ = _regions(_ident(6))
    cx = int(r.cx)

    def chin_y(img):  # lowest row of the face at the midline: skin differs from the neck below in shade
        col = img[int(r.my) + 10 : int(r.chin) + 30, cx].astype(int)
        return int(np.argmax(np.abs(np.diff(col.sum(-1))))) + int(r.my) + 10

    y0, y1 = chin_y(r.render(np.zeros(5))), chin_y(r.render(_au(au26=5.0)))
    assert 8 <= y1 - y0 <= 16, (y0, y1)


def test_lips_part_with_au25():
    """AU25=5 opens a gap of mouth_opening() px at the mouth centre: teeth/cavity replace lip colour."""
    ident = _ident(3)
    r = face.Renderer(ident)
    x = int(round(r.cx))

    def gap_rows(img):
        # rows at the mouth centre that look like neither lip nor skin: teeth (bright) or cavity (dark)
        s = img[int(r.my) - 15 : int(r.my) + 20, x].astype(float).sum(-1)
        return int(((s > 560) | (s < 120)).sum())

    closed = gap_rows(r.render(np.zeros(5)))
    opened = gap_rows(r.render(_au(au25=5.0)))
    want = float(face.mouth_opening(_au(au25=5.0)))
    assert closed == 0
    assert abs(opened - want) <= 3, (opened, want)


def test_mouth_opening_definition():
    assert face.mouth_opening(np.zeros(5)) == 0
    assert face.mouth_opening(_au(au25=5)) == pytest.approx(5 * face.K_PART)
    assert face.mouth_opening(_au(au26=1)) == pytest.approx(face.K_JAW_LIP)
    assert face.mouth_opening(_au(au10=2)) == pytest.approx(2 * face.K_RAISE)
    assert face.mouth_opening(_au(au14=5, au20=5)) == 0
    batch = np.random.default_rng(0).uniform(0, 5, (3, 4, 5))
    assert face.mouth_opening(batch).shape == (3, 4)
    assert face.mouth_opening(_au(au25=9)) == face.mouth_opening(_au(au25=5))  # clipped like rendering


def test_sample_motion():
    for seed in range(10):
        m = face.sample_motion(75, np.random.default_rng(seed))
        assert m.blink.shape == (75,) and m.head.shape == (75, 4)
        assert m.blink.min() >= 0 and m.blink.max() <= 1
        assert m.blink.max() > 0.9, "a 3 s clip holds at least one full blink"
        assert (m.blink > 0).sum() <= 20
        dx, dy, roll, sc = m.head.T
        assert np.abs(dx).max() <= 5 and np.abs(dy).max() <= 4 and np.abs(roll).max() <= 2.5
        assert np.all((sc > 0.96) & (sc < 1.04))
        assert np.abs(np.diff(m.head[:, :2], axis=0)).max() < 1.0, "head drift is smooth"
    assert face.sample_motion(1, np.random.default_rng(0)).head.shape == (1, 4)


def test_head_motion_moves_head_not_background():
    r = face.Renderer(_ident(8))
    base = r.render(np.zeros(5))
    moved = r.render(np.zeros(5), head=(4.0, -3.0, 2.0, 1.02))
    assert _diff(base, moved, (slice(60, 200), slice(120, 240))) > 5
    assert np.array_equal(base[:20, :20], moved[:20, :20])  # background corner untouched
    assert np.array_equal(base[-20:], moved[-20:])  # shoulders do not move with the head


def test_bad_inputs_raise():
    ident = _ident()
    for bad in (np.zeros(4), np.zeros((5, 1)), np.zeros((2, 5)), np.zeros(6)):
        with pytest.raises(ValueError, match="au must have shape"):
            face.render_frame(ident, bad)
    with pytest.raises(ValueError, match="NaN"):
        face.render_frame(ident, np.array([0, 0, np.nan, 0, 0]))
    with pytest.raises(ValueError, match="head"):
        face.render_frame(ident, np.zeros(5), head=(0, 0, 0))
    with pytest.raises(ValueError, match="blink"):
        face.render_frame(ident, np.zeros(5), blink=float("nan"))
    motion = face.sample_motion(3, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\(T, 5\)"):
        face.render_clip(ident, np.zeros(5), motion)
    with pytest.raises(ValueError, match="3 frames"):
        face.render_clip(ident, np.zeros((4, 5)), motion)
    with pytest.raises(ValueError, match="Motion needs"):
        face.Motion(blink=np.zeros(3), head=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="n_frames"):
        face.sample_motion(0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="au must have shape"):
        face.mouth_opening(np.zeros(4))
    with pytest.raises(TypeError, match="Identity"):
        face.render_frame({"skin": (1, 2, 3)}, np.zeros(5))
