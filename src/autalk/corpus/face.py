"""Procedural GRID-style talking faces whose mouth is driven by the paper's five action units.

GRID cannot be downloaded here, so the teaching corpus renders its own speakers: 360x288 RGB frames
(``FRAME_W`` x ``FRAME_H``) at 25 fps, one identity per speaker, seated facing the camera, head and
shoulders in front of a plain background, the face about 110-150 px wide (like GRID's talkers).

Face model
----------
Every appearance parameter lives in a frozen :class:`Identity` (plain numbers, RGB tuples and flags,
so ``dataclasses.asdict`` gives JSON). :func:`sample_identity` draws one from an rng: skin tone, face
half-width ``a`` and shape (forehead height, face length, jaw squareness and taper), eye spacing /
size / openness / tilt and iris colour, brow colour / thickness / arch, nose length and width, mouth
width, lip thickness and colour, ears, one of six hair styles (short, long, buzz cut, curly, bob with
fringe, bald with side hair), glasses (round or rectangular), beard style (stubble, full, goatee,
chinstrap), clothing (crew neck, v-neck, shirt and jacket) and background colours. All lengths are in
pixels at head scale 1 (``a`` is 56-72 px).

A :class:`Renderer` pre-composes the static parts once per identity:

* a *background layer* (gradient background, long back hair, neck, shoulders and clothes, shadow
  under the chin), and
* a *head layer* with alpha (ears, face skin with baked shading - face edges, eye sockets, nose
  sides, under the nose and the lower lip, cheek/forehead light - beard, hair, brows, eyelid creases,
  nose, glasses).

Per frame it only (1) stretches the jaw band of the head layer (AU26), (2) draws the two eyes (blink)
and the mouth (AUs) with antialiased OpenCV primitives at 1/16 px precision, (3) applies the head
motion as one affine warp of the head layer (shift ``dx, dy``, ``roll`` degrees counter-clockwise on
screen, ``scale`` about the head centre) and (4) alpha-blends it onto the background layer. This costs
about 1-2 ms a frame (``python -m autalk.corpus.face`` prints the measurement).

Action units -> geometry
------------------------
AU arrays are ordered like :data:`autalk.PAPER_AUS` = (10, 14, 20, 25, 26) with OpenFace-style
intensities 0..5 (values are clipped to that range).

* **AU25 lips part** (``K_PART`` = 1.8 px per unit): the inner lip contours separate, 30 % by lifting
  the upper lip and 70 % by lowering the lower lip, uncovering the upper teeth and the dark cavity.
* **AU26 jaw drop** (``K_JAW_LIP`` = 1.9 px per unit at the lower lip, ``K_CHIN`` = 2.4 px per unit at
  the chin): the jaw band of the head layer below the mouth line (lower face, chin, beard) is stretched
  downwards so the chin moves; the lower lip follows the jaw, and the mouth corners sink a little and
  draw in (the opening becomes rounder).
* **AU20 lip stretcher**: the mouth widens by 6 % per unit and the lips thin (4-5 % per unit).
* **AU14 dimpler**: the corners tighten (mouth 2.5 % narrower per unit, corners lift 0.2 px per unit,
  deeper corner shadow) and dimple marks appear beside the corners with intensity proportional to AU14.
* **AU10 upper lip raiser** (``K_RAISE`` = 0.9 px per unit): the upper lip (inner and outer contour)
  lifts and everts slightly, uncovering the upper teeth; the nasolabial folds deepen.

The lip gap at the mouth centre, which :func:`mouth_opening` returns, is therefore
``1.8*AU25 + 1.9*AU26 + 0.9*AU10`` pixels at head scale 1 (the distance between the inner edges of the
upper and lower lip; 0 to 23 px).

Realism
-------
dlib's HOG detector (upsample 0) finds exactly one face in every frame we sampled (random identities,
AUs, blinks including fully closed eyes, head motion; box ~135 px), and the 68-landmark inner-lip gap
(points 61-63 vs 67-65) follows :func:`mouth_opening` with Pearson r ~0.88-0.98 over sets of 12
identities (``tests/test_face_realism.py``). Two rendering choices were tuned for that: the mouth
interior is a dark cavity under bright upper teeth with the lower teeth kept behind the lower lip (visible
lower teeth or a lit tongue pull dlib's inner-lip points into the opening), and beards are trimmed
around the lips (short sparse hair on the upper lip, dense hair from 0.25 ``a`` below the lower lip) since
a dense dark moustache or chin patch next to the lips is read as lip or mouth.

Non-speech motion comes from :func:`sample_motion`: a blink every 2-6 s lasting 4-6 frames, and a small
smooth head drift (a few px, about 1-2 degrees of roll, +-2 % scale).

Everything is deterministic: the same rng seed gives the same identity and identical pixels.
"""

from __future__ import annotations

import argparse
import functools
import time
from dataclasses import dataclass, fields

import cv2
import numpy as np

from autalk import PAPER_AUS

FRAME_H, FRAME_W = 288, 360
N_AUS = len(PAPER_AUS)

# AU -> pixel gains at head scale 1 (see the module docstring).
K_PART = 1.8  # AU25: lip parting
K_JAW_LIP = 1.9  # AU26: lower-lip drop
K_CHIN = 2.4  # AU26: chin drop
K_RAISE = 0.9  # AU10: upper-lip raise

RGB = tuple[int, int, int]

_SHIFT = 4  # OpenCV fixed-point bits for sub-pixel drawing
_ONE = 1 << _SHIFT
_AA = cv2.LINE_AA


# --------------------------------------------------------------------------------------------- identity
@dataclass(frozen=True)
class Identity:
    """All appearance parameters of one synthetic speaker (lengths in px at scale 1, colours RGB)."""

    seed: int  # seeds the per-identity textures (hair strands, skin noise)
    # face shape and skin
    skin: RGB
    face_half_width: float  # a: half the face width at the cheekbones
    face_length: float  # cheekbone line -> chin, in units of a
    forehead_height: float  # cheekbone line -> top of the skull, in units of a
    jaw_squareness: float  # super-ellipse exponent of the lower face (2 = elliptic, 3 = square)
    jaw_taper: float  # narrowing of the jaw towards the chin
    center_x: float  # face midline, px
    eye_y: float  # eye line, px
    neck_width: float  # neck half-width in units of a
    shoulder_width: float  # shoulder half-width in units of a
    light: float  # -1..1, side of the key light
    blush: float  # 0..1 cheek colour
    # eyes and brows
    eye_spacing: float  # eye-centre offset from the midline, units of a
    eye_width: float  # eye half-width, units of a
    eye_openness: float  # eye half-height / half-width
    eye_tilt: float  # px, outer corners up
    iris_color: RGB
    gaze_x: float  # px
    brow_color: RGB
    brow_thickness: float  # px
    brow_arch: float  # px
    brow_height: float  # brow above the eye centre, units of eye half-width
    brow_slant: float  # px, outer end lower (>0) or higher (<0)
    # nose and mouth
    nose_length: float  # eye line -> nostrils, units of a
    nose_width: float  # half-width of the nose wings, units of a
    mouth_width: float  # mouth half-width, units of a
    mouth_position: float  # nostrils -> mouth as a fraction of nostrils -> chin
    mouth_curve: float  # px, corners lower (>0) or higher (<0) than the centre
    upper_lip: float  # upper-lip thickness, units of a
    lower_lip: float  # lower-lip thickness, units of a
    lip_color: RGB
    teeth_color: RGB
    ear_size: float
    # hair
    hair_style: int  # 0 short, 1 long, 2 buzz cut, 3 curly, 4 bob with fringe, 5 bald with side hair
    hair_color: RGB
    hair_volume: float  # px
    hairline: float  # forehead share covered by hair (0 = hair starts at the top)
    hair_part: float  # -1..1, position of the parting
    # accessories and facial hair
    glasses: bool
    glasses_style: int  # 0 round, 1 rectangular
    glasses_color: RGB
    beard: bool
    beard_style: int  # 0 none, 1 stubble, 2 full beard, 3 goatee, 4 chinstrap
    beard_color: RGB
    # clothes and background
    clothing_style: int  # 0 crew neck, 1 v-neck, 2 shirt and jacket
    clothing_color: RGB
    clothing_color2: RGB
    background_color: RGB  # top
    background_color2: RGB  # bottom

    @classmethod
    def from_dict(cls, d: dict) -> Identity:
        """Inverse of ``dataclasses.asdict`` (JSON lists become RGB tuples again)."""
        kw = {}
        for f in fields(cls):
            v = d[f.name]
            kw[f.name] = tuple(int(c) for c in v) if isinstance(v, list | tuple) else v
        return cls(**kw)


_SKIN_TONES = np.array(
    [(241, 212, 190), (226, 182, 150), (205, 150, 115), (172, 118, 84), (132, 88, 62), (96, 64, 46)], float
)
_HAIR_COLORS = [
    (28, 24, 22),
    (52, 36, 28),
    (88, 60, 40),
    (128, 90, 56),
    (196, 162, 108),
    (150, 72, 40),
    (150, 148, 145),
    (205, 203, 198),
]
_HAIR_P = [0.26, 0.22, 0.16, 0.1, 0.08, 0.06, 0.08, 0.04]
_IRIS_COLORS = [(92, 58, 34), (48, 32, 22), (84, 122, 160), (92, 118, 78), (124, 96, 52), (110, 122, 132)]
_BACKGROUNDS = [
    (72, 92, 140),
    (104, 116, 130),
    (150, 148, 138),
    (62, 86, 96),
    (122, 112, 104),
    (88, 100, 124),
    (128, 140, 150),
    (96, 110, 92),
]
_CLOTHES = [
    (40, 48, 70),
    (150, 40, 46),
    (60, 92, 60),
    (200, 200, 196),
    (30, 30, 34),
    (96, 80, 60),
    (70, 110, 160),
    (140, 120, 150),
    (180, 150, 90),
    (90, 90, 96),
]


def _rgb(c) -> RGB:
    return tuple(int(np.clip(round(float(v)), 0, 255)) for v in c)  # type: ignore[return-value]


def _jitter(rng: np.random.Generator, c, s: float) -> RGB:
    return _rgb(np.asarray(c, float) + rng.normal(0, s, 3))


def sample_identity(rng: np.random.Generator) -> Identity:
    """Draw a random speaker (deterministic in the rng state)."""
    u = rng.uniform
    masc = bool(u() < 0.5)
    t = u(0, len(_SKIN_TONES) - 1)
    i = int(t)
    skin = _SKIN_TONES[i] + (_SKIN_TONES[min(i + 1, len(_SKIN_TONES) - 1)] - _SKIN_TONES[i]) * (t - i)
    skin = skin * np.array([1.0, u(0.97, 1.03), u(0.95, 1.05)]) + rng.normal(0, 3, 3)
    lum = skin.mean() / 255
    lip = skin * np.array([0.74, 0.48, 0.5]) + np.array([24, 2, 6]) * lum + rng.normal(0, 4, 3)
    if not masc:
        lip = lip * np.array([1.05, 0.9, 0.95])
    hair = np.asarray(_HAIR_COLORS[rng.choice(len(_HAIR_COLORS), p=_HAIR_P)], float)
    if lum < 0.45 and hair.mean() > 140 and u() < 0.8:
        hair = np.asarray(_HAIR_COLORS[int(rng.integers(0, 3))], float)
    hair = hair * u(0.88, 1.12)
    if masc:
        hair_style = int(rng.choice([0, 2, 3, 5, 0, 1], p=[0.34, 0.2, 0.12, 0.12, 0.14, 0.08]))
        beard_style = int(rng.choice([0, 1, 2, 3, 4], p=[0.45, 0.15, 0.16, 0.12, 0.12]))
    else:
        hair_style = int(rng.choice([0, 1, 3, 4], p=[0.15, 0.45, 0.15, 0.25]))
        beard_style = 0
    a = u(56, 72)
    brow_color = hair * 0.8 if hair.mean() < 150 else hair * 0.6
    if hair.mean() > 170:
        brow_color = np.array([120, 110, 100]) * u(0.8, 1.1)
    bg_i, cl_i, cl_j = rng.choice(len(_BACKGROUNDS)), rng.choice(len(_CLOTHES)), rng.choice(len(_CLOTHES))
    bg = np.asarray(_BACKGROUNDS[bg_i], float) * u(0.85, 1.15)
    return Identity(
        seed=int(rng.integers(0, 2**31 - 1)),
        skin=_rgb(skin),
        face_half_width=float(a),
        face_length=float(u(1.38, 1.6) + (0.05 if masc else 0.0)),
        forehead_height=float(u(1.2, 1.38)),
        jaw_squareness=float(u(2.2, 3.2) if masc else u(1.8, 2.5)),
        jaw_taper=float(u(0.0, 0.2)),
        center_x=float(FRAME_W / 2 + u(-8, 8)),
        eye_y=float(u(104, 114)),
        neck_width=float(u(0.5, 0.62) if masc else u(0.42, 0.52)),
        shoulder_width=float(u(2.5, 3.0) if masc else u(2.2, 2.6)),
        light=float(u(-1, 1)),
        blush=float(u(0, 0.6) if not masc else u(0, 0.25)),
        eye_spacing=float(u(0.4, 0.46)),
        eye_width=float(u(0.18, 0.215)),
        eye_openness=float(u(0.38, 0.5)),
        eye_tilt=float(u(-0.8, 1.8)),
        iris_color=_jitter(rng, _IRIS_COLORS[rng.choice(len(_IRIS_COLORS))], 6),
        gaze_x=float(u(-1.2, 1.2)),
        brow_color=_rgb(brow_color),
        brow_thickness=float(u(3.5, 5.5) if masc else u(2.8, 4.2)),
        brow_arch=float(u(1.5, 4.5)),
        brow_height=float(u(1.35, 1.75)),
        brow_slant=float(u(-1.5, 2.5)),
        nose_length=float(u(0.68, 0.8)),
        nose_width=float(u(0.15, 0.2) if lum > 0.5 else u(0.17, 0.23)),
        mouth_width=float(u(0.33, 0.41)),
        mouth_position=float(u(0.3, 0.38)),
        mouth_curve=float(u(-0.6, 1.2)),
        upper_lip=float(u(0.07, 0.1) if masc else u(0.085, 0.115)),
        lower_lip=float(u(0.1, 0.13) if masc else u(0.115, 0.145)),
        lip_color=_rgb(lip),
        teeth_color=_jitter(rng, (232, 226, 208), 6),
        ear_size=float(u(0.9, 1.1)),
        hair_style=hair_style,
        hair_color=_rgb(hair),
        hair_volume=float(u(3, 9)),
        hairline=float(u(0.2, 0.32) if hair_style != 5 else u(0.55, 0.7)),
        hair_part=float(u(-0.6, 0.6)),
        glasses=bool(u() < 0.25),
        glasses_style=int(rng.integers(0, 2)),
        glasses_color=_rgb(
            rng.choice([(20, 20, 22), (70, 50, 36), (150, 150, 155), (110, 30, 30)]) * u(0.9, 1.1)
        ),
        beard=beard_style != 0,
        beard_style=beard_style,
        beard_color=_rgb(hair * u(0.8, 1.0) if hair.mean() < 170 else np.array([180, 178, 172])),
        clothing_style=int(rng.integers(0, 3)),
        clothing_color=_jitter(rng, _CLOTHES[cl_i], 8),
        clothing_color2=_jitter(rng, _CLOTHES[cl_j], 8),
        background_color=_rgb(bg + rng.normal(0, 5, 3) + 12),
        background_color2=_rgb(bg + rng.normal(0, 5, 3) - 12),
    )


# ----------------------------------------------------------------------------------------------- motion
@dataclass(frozen=True, eq=False)
class Motion:
    """Per-frame non-speech motion of one clip."""

    blink: np.ndarray  # (T,) eyelid closure, 0 = open, 1 = closed
    head: np.ndarray  # (T, 4): dx, dy (px), roll (degrees, counter-clockwise on screen), scale (~1)

    def __post_init__(self):
        blink, head = np.asarray(self.blink, float), np.asarray(self.head, float)
        if blink.ndim != 1 or head.shape != (len(blink), 4):
            raise ValueError(f"Motion needs blink (T,) and head (T, 4); got {blink.shape} and {head.shape}")
        object.__setattr__(self, "blink", blink)
        object.__setattr__(self, "head", head)


def _smooth_noise(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    pad = int(3 * sigma) + 1
    x = rng.normal(size=n + 2 * pad)
    k = np.exp(-0.5 * (np.arange(-pad, pad + 1) / sigma) ** 2)
    y = np.convolve(x, k / k.sum(), mode="valid")[:n]
    return y / (y.std() + 1e-9) if n > 1 else y * 0


def sample_motion(n_frames: int, rng: np.random.Generator, fps: float = 25.0) -> Motion:
    """Blinks every ~2-6 s lasting 4-6 frames, plus a small smooth head drift (few px, ~1-2 deg)."""
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    blink = np.zeros(n_frames)
    t = rng.uniform(0.2, 2.6) * fps  # so a 3 s GRID clip always holds a complete blink
    while t < n_frames:
        d = int(rng.integers(4, 7))
        ph = (np.arange(d) + 0.5) / d
        prof = np.where(ph < 0.35, ph / 0.35, np.clip(1 - (ph - 0.35) / 0.65, 0, 1) ** 1.2)
        prof = np.clip(prof / prof.max() * rng.uniform(1.0, 1.25), 0, 1)  # one fully closed frame
        i0 = int(t)
        seg = prof[: max(0, n_frames - i0)]
        blink[i0 : i0 + len(seg)] = np.maximum(blink[i0 : i0 + len(seg)], seg)
        t += rng.uniform(2.0, 6.0) * fps
    sig = 0.6 * fps
    head = np.stack(
        [
            rng.uniform(-2, 2) + 1.3 * _smooth_noise(rng, n_frames, sig),
            rng.uniform(-1.5, 1.5) + 0.9 * _smooth_noise(rng, n_frames, sig),
            rng.uniform(-1.0, 1.0) + 0.7 * _smooth_noise(rng, n_frames, sig),
            1.0 + rng.uniform(-0.012, 0.012) + 0.006 * _smooth_noise(rng, n_frames, sig),
        ],
        axis=1,
    )
    head = np.clip(head, [-5, -4, -2.5, 0.97], [5, 4, 2.5, 1.03])
    return Motion(blink=blink, head=head)


# ------------------------------------------------------------------------------------------------ AUs
def _check_au(au, ndim: int) -> np.ndarray:
    a = np.asarray(au, dtype=float)
    want = "(5,)" if ndim == 1 else "(T, 5)"
    if a.ndim != ndim or a.shape[-1] != N_AUS:
        raise ValueError(f"au must have shape {want} ordered like PAPER_AUS {PAPER_AUS}; got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("au contains NaN or inf")
    return np.clip(a, 0.0, 5.0)


def mouth_opening(au: np.ndarray) -> np.ndarray:
    """Lip gap the renderer draws at the mouth centre, px at head scale 1: ``1.8*AU25 + 1.9*AU26 + 0.9*AU10``.

    ``au`` is ``(..., 5)`` ordered like ``PAPER_AUS``; intensities are clipped to 0..5 as in rendering.
    """
    a = np.asarray(au, dtype=float)
    if a.ndim < 1 or a.shape[-1] != N_AUS:
        raise ValueError(f"au must have shape (..., 5) ordered like PAPER_AUS {PAPER_AUS}; got {a.shape}")
    a = np.clip(a, 0.0, 5.0)
    return K_PART * a[..., 3] + K_JAW_LIP * a[..., 4] + K_RAISE * a[..., 0]


# --------------------------------------------------------------------------------------- draw helpers
def _p(pts) -> np.ndarray:
    return np.round(np.asarray(pts, float) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def _fill(img, pts, color, aa=True):
    cv2.fillPoly(img, [_p(pts)], _col(color), _AA if aa else cv2.LINE_8, _SHIFT)


def _line(img, pts, color, th=1, closed=False):
    cv2.polylines(img, [_p(pts)], closed, _col(color), max(1, int(round(th))), _AA, _SHIFT)


def _ell(img, c, ax, color, angle=0.0, th=-1, a0=0, a1=360):
    cv2.ellipse(
        img,
        (int(round(c[0] * _ONE)), int(round(c[1] * _ONE))),
        (max(0, int(round(ax[0] * _ONE))), max(0, int(round(ax[1] * _ONE)))),
        float(angle),
        a0,
        a1,
        _col(color),
        th,
        _AA,
        _SHIFT,
    )


def _col(c):
    if np.isscalar(c):
        return float(c)
    return tuple(float(v) for v in c)


def _mix(c1, c2, t: float):
    return tuple(float(a) * (1 - t) + float(b) * t for a, b in zip(c1, c2, strict=True))


def _mul(c, k: float):
    return tuple(min(255.0, float(v) * k) for v in c)


def _soft(shape, draw, sigma: float) -> np.ndarray:
    """Float map drawn by ``draw(img)`` then blurred."""
    m = np.zeros(shape, np.float32)
    draw(m)
    return cv2.GaussianBlur(m, (0, 0), sigma) if sigma > 0 else m


# -------------------------------------------------------------------------------------------- renderer
class Renderer:
    """Caches the static layers of one identity and draws frames from AU vectors."""

    def __init__(self, ident: Identity):
        self.ident = ident
        g = ident
        a = g.face_half_width
        self.a = a
        self.cx = g.center_x
        self.ey = g.eye_y
        self.yc = g.eye_y + 0.12 * a
        self.top = self.yc - g.forehead_height * a
        self.chin = self.yc + g.face_length * a
        self.nose_y = g.eye_y + g.nose_length * a
        self.my = self.nose_y + g.mouth_position * (self.chin - self.nose_y)
        self.mw = g.mouth_width * a
        self.ew = g.eye_width * a
        self.eh = self.ew * g.eye_openness
        self.eyes = [(self.cx - g.eye_spacing * a, self.ey, -1), (self.cx + g.eye_spacing * a, self.ey, 1)]
        self.skin = np.asarray(g.skin, float)
        self.head_center = (self.cx, self.ey + 0.35 * a)
        self._rng = np.random.default_rng(g.seed)
        self._build()

    # ---------------------------------------------------------------------------- geometry helpers
    def face_halfwidth_at(self, y):
        """Half-width of the face outline at height(s) y (0 outside)."""
        y = np.asarray(y, float)
        g = self.ident
        a = self.a
        up = np.clip((self.yc - y) / (g.forehead_height * a), 0, 1)
        w_up = a * np.sqrt(np.clip(1 - up**2, 0, 1))
        t = np.clip((y - self.yc) / (g.face_length * a), 0, 1)
        w_lo = a * np.clip(1 - t**g.jaw_squareness, 0, 1) ** (1 / g.jaw_squareness) * (1 - g.jaw_taper * t**2)
        w = np.where(y < self.yc, w_up, w_lo)
        return np.where((y < self.top) | (y > self.chin), 0.0, w)

    def face_outline(self, n: int = 72) -> np.ndarray:
        g, a = self.ident, self.a
        th = np.linspace(np.pi, 2 * np.pi, n // 2)
        top = np.stack([self.cx + a * np.cos(th), self.yc + g.forehead_height * a * np.sin(th)], 1)
        t = np.linspace(0, 1, n // 2)[1:]
        ys = self.yc + g.face_length * a * t
        ws = self.face_halfwidth_at(ys)
        ws[-1] = 0.0
        right = np.stack([self.cx + ws, ys], 1)
        left = np.stack([self.cx - ws, ys], 1)[::-1]
        return np.concatenate([top, right, left[1:]])

    # ------------------------------------------------------------------------------- static layers
    def _build(self):
        H, W = FRAME_H, FRAME_W
        self.bg = self._build_background()
        rgb = np.zeros((H, W, 3), np.float32)
        mask = np.zeros((H, W), np.float32)
        self._draw_ears(rgb, mask)
        face = self.face_outline()
        fmask = np.zeros((H, W), np.float32)
        _fill(fmask, face, 1.0)
        _fill(mask, face, 1.0)
        rgb[:] = rgb * (1 - fmask[..., None]) + self.skin[None, None, :] * fmask[..., None]
        self._shade_face(rgb, fmask)
        self._draw_beard(rgb, mask)
        self._draw_hair(rgb, mask)
        self._draw_features(rgb)
        noise = self._rng.normal(0, 2.0, (H, W, 1)).astype(np.float32)
        rgb += noise * (mask[..., None] > 0)
        self.head_rgb = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
        self.head_a = np.clip(mask, 0, 1).astype(np.float32)
        ys, xs = np.nonzero(self.head_a > 0)
        self.box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        # jaw band: mouth line -> a little below the chin (beard included)
        self.band = (int(self.my), int(self.chin + 8))
        if self.ident.glasses:
            self._draw_glasses(self.head_rgb)

    def _build_background(self) -> np.ndarray:
        g, H, W = self.ident, FRAME_H, FRAME_W
        ty = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
        c1, c2 = np.asarray(g.background_color, np.float32), np.asarray(g.background_color2, np.float32)
        bg = c1 * (1 - ty) + c2 * ty
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        r2 = ((xx - self.cx) / 200) ** 2 + ((yy - self.ey) / 170) ** 2
        bg = bg * (1.06 - 0.12 * r2)[..., None]
        bg = np.broadcast_to(bg, (H, W, 3)).copy()
        bg += self._rng.normal(0, 1.5, (H, W, 3)).astype(np.float32)
        self._draw_back_hair(bg)
        self._draw_body(bg)
        return np.clip(bg + 0.5, 0, 255).astype(np.uint8)

    def _draw_back_hair(self, img):
        g, a = self.ident, self.a
        if g.hair_style != 1:
            return
        v = g.hair_volume + 6
        w0 = a + v
        pts = [
            (self.cx - w0 * 0.8, self.yc - 0.3 * a),
            (self.cx - w0, self.yc + 0.5 * a),
            (self.cx - w0 - 4, self.chin + 0.3 * a),
            (self.cx - w0 - 2, self.chin + 0.75 * a),
            (self.cx - w0 * 0.6, self.chin + 0.9 * a),
            (self.cx + w0 * 0.6, self.chin + 0.9 * a),
            (self.cx + w0 + 2, self.chin + 0.75 * a),
            (self.cx + w0 + 4, self.chin + 0.3 * a),
            (self.cx + w0, self.yc + 0.5 * a),
            (self.cx + w0 * 0.8, self.yc - 0.3 * a),
        ]
        _fill(img, pts, _mul(g.hair_color, 0.85))

    def _draw_body(self, img):
        g, a, cx = self.ident, self.a, self.cx
        skin = self.skin
        H, W = img.shape[:2]
        nw = g.neck_width * a
        ysh = self.chin + 0.42 * a
        sw = g.shoulder_width * a
        cloth, cloth2 = g.clothing_color, g.clothing_color2
        style = g.clothing_style
        # neckline, from the right shoulder seam to the left one
        t = np.linspace(0, np.pi, 15)
        if style == 1:  # v-neck
            neckline = np.array([(cx + nw * 1.1, ysh - 3), (cx, ysh + 0.75 * a), (cx - nw * 1.1, ysh - 3)])
        else:
            depth = 0.28 * a if style == 0 else 0.2 * a
            neckline = np.stack([cx + nw * 1.12 * np.cos(t), ysh - 3 + depth * np.sin(t)], 1)
        neck = [
            (cx - nw, self.yc + 0.6 * a),
            (cx - nw * 1.02, ysh - 2),
            (cx - nw * 1.2, ysh + 0.8 * a),
            (cx + nw * 1.2, ysh + 0.8 * a),
            (cx + nw * 1.02, ysh - 2),
            (cx + nw, self.yc + 0.6 * a),
        ]
        nmask = np.zeros((H, W), np.float32)
        _fill(nmask, neck, 1.0)
        _fill(img, neck, _mul(skin, 0.9))
        # neck shading: darker sides and a shadow under the jaw (on the neck only)
        sh = _soft(
            (H, W),
            lambda m: (
                _ell(m, (cx, self.chin - 2), (0.7 * a, 0.3 * a), 0.42),
                _line(m, [(cx - nw, self.yc + 0.6 * a), (cx - nw, ysh)], 0.25, 5),
                _line(m, [(cx + nw, self.yc + 0.6 * a), (cx + nw, ysh)], 0.25, 5),
            ),
            5.0,
        )
        img *= (1 - sh * nmask)[..., None]
        shoulder = np.concatenate(
            [
                np.array(
                    [
                        (cx - nw * 1.1, ysh - 3),
                        (cx - nw * 1.6, ysh + 2),
                        (cx - sw * 0.8, ysh + 0.3 * a),
                        (cx - sw, ysh + 0.75 * a),
                        (cx - sw * 1.1, H + 10),
                        (cx + sw * 1.1, H + 10),
                        (cx + sw, ysh + 0.75 * a),
                        (cx + sw * 0.8, ysh + 0.3 * a),
                        (cx + nw * 1.6, ysh + 2),
                    ]
                ),
                neckline,
            ]
        )
        _fill(img, shoulder, cloth2 if style == 2 else cloth)
        if style == 2:  # shirt with collar under a jacket
            shirt = np.concatenate(
                [
                    np.array(
                        [
                            (cx - nw * 1.2, ysh - 2),
                            (cx - nw * 0.7, H + 5),
                            (cx + nw * 0.7, H + 5),
                            (cx + nw * 1.2, ysh - 2),
                        ]
                    ),
                    neckline,
                ]
            )
            _fill(img, shirt, cloth)
            for s in (-1, 1):
                collar = [
                    (cx + s * nw * 1.1, ysh - 8),
                    (cx + s * 2, ysh + 0.3 * a),
                    (cx + s * nw * 1.3, ysh + 0.22 * a),
                ]
                _fill(img, collar, _mul(cloth, 1.12))
                _line(img, collar, _mul(cloth, 0.7), 1, closed=True)
                lapel = [
                    (cx + s * nw * 1.25, ysh),
                    (cx + s * nw * 0.75, H + 5),
                    (cx + s * nw * 1.9, H + 5),
                    (cx + s * nw * 2.0, ysh + 0.5 * a),
                ]
                _line(img, lapel, _mul(cloth2, 0.65), 2)
        else:
            _line(img, neckline, _mul(cloth, 0.78), 3)
        # soft fold shading on the shoulders
        sh2 = _soft(
            (H, W),
            lambda m: (
                _line(m, [(cx - sw * 0.55, ysh + 0.45 * a), (cx - sw * 0.7, H)], 0.2, 6),
                _line(m, [(cx + sw * 0.55, ysh + 0.45 * a), (cx + sw * 0.7, H)], 0.2, 6),
            ),
            6.0,
        )
        img *= (1 - sh2)[..., None]

    def _draw_ears(self, rgb, mask):
        g, a = self.ident, self.a
        for s in (-1, 1):
            c = (self.cx + s * 0.96 * a, self.ey + 0.32 * a)
            ax = (0.13 * a * g.ear_size, 0.28 * a * g.ear_size)
            _ell(rgb, c, ax, _mul(self.skin, 0.92), angle=-s * 8)
            _ell(mask, c, ax, 1.0, angle=-s * 8)
            _ell(
                rgb, (c[0] + s * 2, c[1] - 1), (ax[0] * 0.55, ax[1] * 0.7), _mul(self.skin, 0.7), angle=-s * 8
            )
            _ell(
                rgb,
                (c[0] + s * 2, c[1] - 1),
                (ax[0] * 0.55, ax[1] * 0.7),
                _mul(self.skin, 0.55),
                angle=-s * 8,
                th=1,
                a0=90 - s * 60,
                a1=270 - s * 60,
            )

    def _shade_face(self, rgb, fmask):
        g, a, cx, ey = self.ident, self.a, self.cx, self.ey
        H, W = fmask.shape
        inside = (fmask > 0.5).astype(np.uint8)
        d = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
        shade = 1 - 0.26 * np.exp(-d / 7.0) * inside
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        shade *= 1 + 0.07 * g.light * np.clip((xx - cx) / a, -1.2, 1.2)
        ew, eh = self.ew, self.eh
        nw = g.nose_width * a

        def dark(m):
            for ex, eyy, _ in self.eyes:
                _ell(m, (ex, eyy - 0.1 * eh), (ew * 1.35, eh * 2.1), 0.2)
                _ell(m, (ex - (ex - cx) * 0.25, eyy - eh * 0.4), (ew * 0.7, eh * 1.4), 0.12)
            for s in (-1, 1):  # nose sides, darker away from the light
                k = 0.2 if s * g.light < 0 else 0.12
                _line(
                    m,
                    [
                        (cx + s * 0.11 * a, ey + 0.08 * a),
                        (cx + s * 0.12 * a, self.nose_y - 0.22 * a),
                        (cx + s * nw * 1.05, self.nose_y - 0.02 * a),
                    ],
                    k,
                    3,
                )
            _ell(m, (cx, self.nose_y + 0.06 * a), (nw * 0.9, 0.05 * a), 0.28)  # under the nose
            lt = g.lower_lip * a
            _ell(m, (cx, self.my + lt + 0.07 * a), (self.mw * 0.55, 0.05 * a), 0.2)  # under the lower lip
            _ell(m, (cx, self.chin - 0.02 * a), (0.3 * a, 0.05 * a), 0.08)
            for s in (-1, 1):  # philtrum ridges
                _line(
                    m,
                    [(cx + s * 0.05 * a, self.nose_y + 0.06 * a), (cx + s * 0.06 * a, self.my - 0.06 * a)],
                    0.07,
                    1,
                )
            for s in (-1, 1):  # cheek hollows
                _ell(m, (cx + s * 0.72 * a, self.nose_y + 0.1 * a), (0.16 * a, 0.35 * a), 0.07, angle=-s * 15)

        def light(m):
            _ell(m, (cx, self.top + 0.45 * a), (0.5 * a, 0.28 * a), 0.08)  # forehead
            _line(m, [(cx, ey), (cx, self.nose_y - 0.1 * a)], 0.08, 3)  # nose bridge
            _ell(m, (cx, self.nose_y - 0.08 * a), (0.07 * a, 0.06 * a), 0.1)  # nose tip
            for s in (-1, 1):
                _ell(m, (cx + s * 0.48 * a, ey + 0.32 * a), (0.18 * a, 0.1 * a), 0.06)
            _ell(m, (cx, self.chin - 0.15 * a), (0.14 * a, 0.08 * a), 0.05)

        shade *= 1 - _soft((H, W), dark, 3.2)
        shade *= 1 + _soft((H, W), light, 3.5)
        col = rgb * shade[..., None]
        if g.blush > 0:
            bl = (
                _soft(
                    (H, W),
                    lambda m: [
                        _ell(m, (cx + s * 0.5 * a, ey + 0.45 * a), (0.2 * a, 0.13 * a), 1.0) for s in (-1, 1)
                    ],
                    6.0,
                )
                * g.blush
                * 0.18
            )
            col = (
                col * (1 - bl[..., None])
                + np.array([205, 95, 95], np.float32) * bl[..., None] * shade[..., None]
            )
        rgb[:] = rgb * (1 - fmask[..., None]) + col * fmask[..., None]

    # -------------------------------------------------------------------------------------- beard
    def _beard_polys(self):
        """(dense, sparse) polygons: dense beard hair, and short sparse hair around the lips."""
        g, a, cx = self.ident, self.a, self.cx
        style = g.beard_style
        dense, sparse = [], []
        mw, my = self.mw, self.my
        ut, lt = g.upper_lip * a, g.lower_lip * a
        # moustache (kept sparse: a dense dark band on the upper lip reads as a lip to landmarkers)
        mu = np.array([1.0, 0.8, 0.25, 0.0, -0.25, -0.8, -1.0])
        lip_top = my - ut * np.array([0.0, 0.52, 1.1, 0.67, 1.1, 0.52, 0.0]) - 1.5
        lip_top[[0, -1]] = my + 1.0
        moustache = [
            (cx - mw - 2.5, my + 2.0),
            (cx - mw * 0.9, my - ut * 0.7 - 2),
            (cx - mw * 0.7, self.nose_y + 0.1 * a),
            (cx - 0.06 * a, self.nose_y + 0.08 * a),
            (cx + 0.06 * a, self.nose_y + 0.08 * a),
            (cx + mw * 0.7, self.nose_y + 0.1 * a),
            (cx + mw * 0.9, my - ut * 0.7 - 2),
            (cx + mw + 2.5, my + 2.0),
        ]
        moustache += [
            (cx + u * (mw + 1.5 if abs(u) == 1 else mw), y) for u, y in zip(mu, lip_top, strict=True)
        ]
        y_under = my + lt + 0.25 * a  # dense hair starts this far below the lower lip
        chin_patch = [
            (cx - mw * 0.4, y_under),
            (cx + mw * 0.4, y_under),
            (cx + mw * 0.75, self.chin - 0.12 * a),
            (cx + mw * 0.3, self.chin + 1),
            (cx, self.chin + 3),
            (cx - mw * 0.3, self.chin + 1),
            (cx - mw * 0.75, self.chin - 0.12 * a),
        ]
        if style in (1, 2, 4):
            top = self.ey + 0.25 * a if style != 4 else self.nose_y - 0.1 * a
            ys = np.linspace(top, self.chin, 24)
            ws = self.face_halfwidth_at(ys) + 1.5
            ws[-1] = 0
            ys = ys.copy()
            ys[-6:] += np.linspace(0, 5, 6)
            left_down = np.stack([cx - ws, ys], 1)
            right_up = np.stack([cx + ws, ys], 1)[::-1]
            if style == 4:  # chinstrap: a band along the jaw line
                yi = np.linspace(top, self.chin - 0.16 * a, 20)
                wi = np.maximum(self.face_halfwidth_at(yi + 0.16 * a) - 0.16 * a, 0)
                inner = np.concatenate([np.stack([cx + wi, yi], 1), np.stack([cx - wi, yi], 1)[::-1]])
                dense.append(np.concatenate([left_down, right_up, inner]))
            else:
                inner = [
                    (cx + 0.86 * a, self.ey + 0.25 * a),
                    (cx + 0.74 * a, self.nose_y - 0.02 * a),
                    (cx + 0.55 * a, self.nose_y + 0.16 * a),
                    (cx + mw + 0.1 * a, my),
                    (cx + mw * 0.6, y_under),
                    (cx - mw * 0.6, y_under),
                    (cx - mw - 0.1 * a, my),
                    (cx - 0.55 * a, self.nose_y + 0.16 * a),
                    (cx - 0.74 * a, self.nose_y - 0.02 * a),
                    (cx - 0.86 * a, self.ey + 0.25 * a),
                ]
                (sparse if style == 1 else dense).append(
                    np.concatenate([left_down, right_up, np.asarray(inner)])
                )
                sparse.append(np.asarray(moustache))
                sparse.append(
                    np.asarray(
                        [
                            (cx - mw - 0.1 * a, my),
                            (cx - mw * 0.6, y_under + 1),
                            (cx + mw * 0.6, y_under + 1),
                            (cx + mw + 0.1 * a, my),
                        ]
                    )
                )
        if style == 3:  # goatee: chin patch + light moustache
            dense.append(np.asarray(chin_patch))
            sparse.append(np.asarray(moustache))
        return dense, sparse

    def _draw_beard(self, rgb, mask):
        g = self.ident
        if g.beard_style == 0:
            return
        H, W = mask.shape
        dense, sparse = self._beard_polys()
        md = np.zeros((H, W), np.float32)
        ms = np.zeros((H, W), np.float32)
        for p in dense:
            _fill(md, p, 1.0)
        for p in sparse:
            _fill(ms, p, 1.0)
        col = np.asarray(g.beard_color, np.float32)
        speck = cv2.GaussianBlur(self._rng.uniform(0, 1, (H, W)).astype(np.float32), (0, 0), 0.5)
        ms = cv2.GaussianBlur(ms, (0, 0), 1.5)
        k = (ms * (0.03 + 0.2 * speck) * (1 - md))[..., None]  # short hair: speckled tint
        rgb[:] = rgb * (1 - k) + col * k
        if dense:
            md = cv2.GaussianBlur(md, (0, 0), 1.2) * 0.75
            tex = cv2.GaussianBlur(self._rng.normal(0, 1, (H, W)).astype(np.float32), (0, 0), 0.8)
            colm = col[None, None, :] * (1 + 0.14 * tex[..., None])
            rgb[:] = rgb * (1 - md[..., None]) + colm * md[..., None]
            mask[:] = np.maximum(mask, md)

    # --------------------------------------------------------------------------------------- hair
    def _hair_poly(self):
        g, a, cx = self.ident, self.a, self.cx
        st = g.hair_style
        v = g.hair_volume
        F = g.forehead_height * a
        top = self.top
        y_side = self.ey - 0.08 * a
        y_hl = top + g.hairline * (self.ey - top) * 0.95
        rng = np.random.default_rng(g.seed + 7)
        # outer contour over the skull
        if st == 2:
            v = 1.0
        if st == 3:
            v = v + 10
        th = np.linspace(np.pi, 2 * np.pi, 48)
        rx, ry = a + v, F + 1.25 * v
        r = np.ones_like(th)
        if st == 3:  # curls: bumpy outline
            r = 1 + 0.025 * np.sin(11 * th + rng.uniform(0, 6)) + 0.01 * rng.normal(size=th.size)
        ox, oy = cx + rx * r * np.cos(th), self.yc + ry * r * np.sin(th)
        keep = oy <= y_side + 1
        outer = np.stack([ox[keep], oy[keep]], 1)
        outer[0, 1] = outer[-1, 1] = y_side
        if st in (1, 4):  # long / bob: hair falls beside the face
            yb = self.chin - (0.3 if st == 1 else 0.15) * a
            left = [(cx - rx - 2, y_side + 0.5 * a), (cx - rx - 1, yb)]
            right = [(cx + rx + 1, yb), (cx + rx + 2, y_side + 0.5 * a)]
            outer = np.concatenate([np.asarray(left[::-1]), outer, np.asarray(right[::-1])])
        else:  # short hair tapers into sideburns in front of the ears instead of ending in a flat cut
            ysb = y_side + (0.3 if st != 3 else 0.2) * a
            wsb = float(self.face_halfwidth_at(ysb)) - 1.5
            mid_l = (cx - (rx + wsb) / 2 - 1, (y_side + ysb) / 2 - 0.05 * a)
            mid_r = (cx + (rx + wsb) / 2 + 1, (y_side + ysb) / 2 - 0.05 * a)
            outer = np.concatenate([[(cx - wsb, ysb), mid_l], outer, [mid_r, (cx + wsb, ysb)]])
        # hairline (inner contour), from the right temple to the left one
        u = np.linspace(1, -1, 31)
        if st == 4:  # fringe above the brows
            y_fr = self.ey - g.brow_height * self.ew - 0.2 * a
            hl_y = y_fr + 2.0 * np.sin(u * 17) - 3 * np.abs(u) ** 4 + (y_side - y_fr) * np.abs(u) ** 8
        else:
            hl_y = y_hl + (y_side - y_hl) * np.abs(u) ** 3.2
            if st in (0, 5, 2):  # temple recession
                hl_y -= 0.12 * a * np.exp(-(((np.abs(u) - 0.62) / 0.14) ** 2)) * (1.4 if st == 5 else 1)
            hl_y -= 0.04 * a * np.exp(-(((u - g.hair_part) / 0.06) ** 2))
        hl_x = cx + u * a * 0.94
        if st in (1, 4):
            yb = self.chin - (0.3 if st == 1 else 0.15) * a
            ys = np.linspace(yb, y_side + 1, 8)
            side_r = np.stack([cx + self.face_halfwidth_at(ys) - 3, ys], 1)
            side_l = np.stack([cx - self.face_halfwidth_at(ys[::-1]) + 3, ys[::-1]], 1)
            inner = np.concatenate([side_r, np.stack([hl_x, hl_y], 1), side_l])
        else:
            inner = np.stack([hl_x, hl_y], 1)
        if st == 5:  # bald: only a band of hair around the back of the head, above the ears
            ys = np.linspace(self.ey - 0.5 * a, self.ey + 0.12 * a, 10)
            polys = []
            for s in (-1, 1):
                w = self.face_halfwidth_at(ys)
                out = np.stack([cx + s * (w + 2.5), ys], 1)
                inn = np.stack([cx + s * (w - 3.0 - 2 * np.sin(np.linspace(0, np.pi, 10))), ys], 1)[::-1]
                polys.append(np.concatenate([out, inn]))
            return polys
        return [np.concatenate([outer, inner])]

    def _draw_hair(self, rgb, mask):
        g, a, cx = self.ident, self.a, self.cx
        H, W = mask.shape
        polys = self._hair_poly()
        hm = np.zeros((H, W), np.float32)
        for p in polys:
            _fill(hm, p, 1.0)
        base = np.asarray(g.hair_color, np.float32)
        if g.hair_style == 2:
            base = self.skin.astype(np.float32) * 0.45 + base * 0.55
        rng = self._rng
        tex = np.zeros((H, W), np.float32)
        ys, xs = np.nonzero(hm > 0.5)
        if len(xs):
            n = 90 if g.hair_style != 2 else 0
            for _ in range(n):
                i = rng.integers(len(xs))
                x0, y0 = xs[i], ys[i]
                if g.hair_style == 3:
                    _ell(
                        tex,
                        (x0, y0),
                        (rng.uniform(2, 4), rng.uniform(1.5, 3)),
                        rng.choice([-1.0, 1.0]),
                        angle=rng.uniform(0, 180),
                        th=1,
                        a0=0,
                        a1=int(rng.uniform(180, 300)),
                    )
                else:
                    ang = np.arctan2(y0 - (self.yc - 0.2 * a), x0 - cx) + rng.normal(0, 0.15)
                    ln = rng.uniform(8, 22)
                    pts = [(x0, y0), (x0 + np.cos(ang) * ln, y0 + np.sin(ang) * ln)]
                    _line(tex, pts, rng.choice([-1.0, 1.0]))
            tex = cv2.GaussianBlur(tex, (0, 0), 0.6)
            tex += rng.normal(0, 0.25, (H, W)).astype(np.float32)
        sheen = _soft(
            (H, W), lambda m: _ell(m, (cx - 0.15 * a, self.top + 0.05 * a), (0.45 * a, 0.15 * a), 1.0), 6
        )
        shade = 1 + 0.12 * tex + 0.22 * sheen
        # darker towards the hairline and edges
        inside = (hm > 0.5).astype(np.uint8)
        d = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
        shade *= 1 - 0.25 * np.exp(-d / 3.0)
        col = base[None, None, :] * shade[..., None]
        if g.hair_style == 2:
            col = col * 0.9 + rgb * 0.1
        rgb[:] = rgb * (1 - hm[..., None]) + col * hm[..., None]
        mask[:] = np.maximum(mask, hm)

    # ----------------------------------------------------------------------------------- features
    def _draw_features(self, rgb):
        g, a, cx = self.ident, self.a, self.cx
        skin = self.skin
        ew, eh = self.ew, self.eh
        # brows
        for ex, eyy, s in self.eyes:
            n = 14
            t = np.linspace(0, 1, n)
            x_in, x_out = ex - s * ew * 0.95, ex + s * ew * 1.25
            xs = x_in + (x_out - x_in) * t
            base = eyy - g.brow_height * ew
            yb = base - g.brow_arch * np.sin(np.pi * np.clip(t * 0.85 + 0.1, 0, 1)) + g.brow_slant * t**2
            thick = g.brow_thickness * (1.0 - 0.55 * t**1.5)
            top = np.stack([xs, yb - thick / 2], 1)
            bot = np.stack([xs, yb + thick / 2], 1)[::-1]
            _fill(rgb, np.concatenate([top, bot]), g.brow_color)
            # a few hairs at the inner end
            for k in range(3):
                x = x_in + s * k * 1.6
                _line(
                    rgb,
                    [(x, yb[0] + thick[0] / 2), (x + s * 1.5, yb[0] - thick[0] / 2 - 1)],
                    _mix(g.brow_color, skin, 0.3),
                )
            # eyelid crease
            u = np.linspace(-1, 1, 12)
            crease = np.stack([ex + u * ew * 0.95, eyy - eh * 1.45 * (1 - u**2) ** 0.6 - 0.5 * eh], 1)
            _line(rgb, crease, _mul(skin, 0.72))
        # nose: wings, nostrils
        ny, nw = self.nose_y, g.nose_width * a
        for s in (-1, 1):
            _ell(
                rgb,
                (cx + s * nw * 0.8, ny - 0.04 * a),
                (nw * 0.36, 0.085 * a),
                _mul(skin, 0.74),
                angle=0,
                th=1,
                a0=(-80 if s > 0 else 120),
                a1=(60 if s > 0 else 260),
            )
            _ell(
                rgb,
                (cx + s * nw * 0.45, ny + 0.01 * a),
                (nw * 0.3, 0.035 * a),
                _mul(skin, 0.42),
                angle=s * 18,
            )
        _ell(rgb, (cx, ny - 0.02 * a), (nw * 0.35, 0.05 * a), _mul(skin, 0.85), th=1, a0=30, a1=150)

    def _draw_glasses(self, img):
        g = self.ident
        ew = self.ew
        col = g.glasses_color
        for ex, eyy, s in self.eyes:
            c = (ex + s * 1.0, eyy + 0.5)
            if g.glasses_style == 0:
                _ell(img, c, (ew * 1.42, ew * 1.08), col, th=2)
            else:
                hw, hh = ew * 1.5, ew * 0.98
                pts = [
                    (c[0] - hw, c[1] - hh),
                    (c[0] + hw, c[1] - hh),
                    (c[0] + hw * 0.95, c[1] + hh),
                    (c[0] - hw * 0.95, c[1] + hh),
                ]
                _line(img, pts, col, 2, closed=True)
            _line(
                img,
                [(c[0] - ew * 0.5, c[1] - ew * 0.6), (c[0] - ew * 0.1, c[1] - ew * 0.9)],
                (235, 235, 235),
                1,
            )
            # temple arm to the ear
            _line(
                img,
                [(ex + s * ew * 1.45, eyy - 0.3 * ew), (self.cx + s * 0.97 * self.a, eyy + 0.05 * self.a)],
                col,
                2,
            )
        xl, xr = self.eyes[0][0] + ew * 1.4, self.eyes[1][0] - ew * 1.4
        _ell(img, (self.cx, self.ey - 0.2 * ew), ((xr - xl) / 2, ew * 0.3), col, th=2, a0=180, a1=360)

    # ------------------------------------------------------------------------------- per frame
    def _draw_eyes(self, img, blink: float):
        g, skin = self.ident, self.skin
        ew, eh = self.ew, self.eh
        b = float(np.clip(blink, 0, 1))
        u = np.linspace(-1, 1, 13)
        for ex, eyy, s in self.eyes:
            tilt = g.eye_tilt * (u * s)  # outer corner (u*s = 1) is higher
            low = eyy + 0.55 * eh * (1 - u**2) ** 0.9 - tilt * 0.5
            up_open = eyy - eh * (1 - u**2) ** 0.75 * (1 + 0.12 * u * (-s)) - tilt * 0.5
            up = up_open * (1 - b) + (low - 0.6) * b
            x = ex + u * ew
            x0, y0 = int(ex - ew - 4), int(eyy - 2 * eh - 4)
            x1, y1 = int(ex + ew + 5), int(eyy + 2 * eh + 5)
            roi = img[y0:y1, x0:x1]
            off = np.array([x0, y0], float)
            lid = np.stack([x, up], 1) - off
            lower = np.stack([x, low], 1) - off
            if b < 0.97:
                tmp = roi.copy()
                almond = np.concatenate([lid, lower[::-1]])
                _fill(tmp, almond, (236, 230, 224))
                ic = (ex + g.gaze_x - x0, eyy + 0.1 * eh - y0)
                ri = 0.43 * ew
                _ell(tmp, ic, (ri, ri), g.iris_color)
                _ell(tmp, ic, (ri, ri), _mul(g.iris_color, 0.55), th=1)
                _ell(tmp, ic, (ri * 0.42, ri * 0.42), (16, 12, 12))
                _ell(tmp, (ic[0] + ri * 0.35, ic[1] - ri * 0.35), (1.1, 1.1), (250, 250, 250))
                # shadow of the upper lid on the eyeball
                _line(tmp, lid + [0, 1.2], _mul((200, 190, 185), 0.8), 2)
                m = np.zeros(roi.shape[:2], np.uint8)
                _fill(m, almond, 255, aa=False)
                np.copyto(roi, tmp, where=m[..., None] > 0)
            lash = (30, 22, 20)
            _line(roi, lid, lash, 2)
            _line(roi, lower, _mul(skin, 0.62), 1)
            # lashes at the outer corner
            k = 6 if s > 0 else 6
            for j in (k + 3, k + 4, k + 5):
                p = lid[j if s > 0 else 12 - j]
                _line(roi, [p, p + [s * 2.2, -1.8 * (1 - 0.6 * b)]], lash, 1)

    def _draw_mouth(self, img, au: np.ndarray):
        g, a, cx, my = self.ident, self.a, self.cx, self.my
        a10, a14, a20, a25, a26 = (float(v) for v in au)
        part, jaw, raise_ = K_PART * a25, K_JAW_LIP * a26, K_RAISE * a10
        U = 0.3 * part + raise_
        D = 0.7 * part + jaw
        w0 = self.mw
        w = w0 * (1 + 0.06 * a20 - 0.025 * a14) * (1 - 0.012 * jaw)
        ycor = my + g.mouth_curve + 0.25 * jaw + 0.1 * part - 0.15 * raise_ - 0.2 * a14
        n = 21
        u = np.linspace(-1, 1, n)
        f = np.clip(1 - np.abs(u) ** 2.2, 0, 1) ** 0.7
        x = cx + u * w
        up_in = ycor + (my - U - ycor) * f
        lo_in = ycor + (my + D - ycor) * f
        ut0 = g.upper_lip * a * (1 - 0.04 * a20) * (1 + 0.05 * a10)
        lt0 = g.lower_lip * a * (1 - 0.05 * a20) * (1 - 0.015 * jaw)
        ut = ut0 * (
            np.sqrt(1 - u**2) * (0.85 + 0.3 * np.exp(-(((np.abs(u) - 0.25) / 0.15) ** 2)))
            - 0.2 * np.exp(-((u / 0.1) ** 2))
        )
        lt = lt0 * (1 - u**2) ** 0.55
        up_out = up_in - ut - 0.2 * raise_ * f
        lo_out = lo_in + lt
        # ROI in head-layer coordinates
        x0, x1 = int(cx - w - 0.35 * a), int(cx + w + 0.35 * a) + 1
        y0, y1 = int(self.nose_y - 0.1 * a), int(my + D + lt0 + 0.2 * a) + 1
        roi = img[y0:y1, x0:x1]
        off = np.array([x0, y0], float)
        # multiplicative shading strokes: folds, dimples, corner and under-lip shadows
        sh = np.zeros(roi.shape[:2], np.float32)
        beard = g.beard_style in (2,)
        nw = g.nose_width * a
        for s in (-1, 1):
            if not beard:
                k = 0.05 + 0.3 * a10 / 5 + 0.05 * a20 / 5
                fold = [
                    (cx + s * (nw * 1.15), self.nose_y - 0.04 * a),
                    (cx + s * (w0 + 0.1 * a), my - 0.12 * a),
                    (cx + s * (w + 0.14 * a), ycor + 0.12 * a),
                ]
                _line(sh, np.asarray(fold) - off, k, 2)
            corner = np.array([cx + s * w, ycor]) - off
            _ell(sh, corner, (2.0, 1.5), 0.3 + 0.25 * a14 / 5)
            if a14 > 0.05:
                _ell(
                    sh,
                    corner + [s * 0.08 * a, -0.5],
                    (1.6 + 0.2 * a14, 2.2 + 0.5 * a14),
                    0.12 * a14,
                    a0=(-70 if s > 0 else 110),
                    a1=(70 if s > 0 else 250),
                    th=2,
                )
        _line(sh, np.stack([x[4:-4], lo_out[4:-4] + 1.8], 1) - off, 0.22, 2)
        sh = cv2.GaussianBlur(sh, (3, 3), 0)
        roi[:] = (roi * (1 - sh[..., None])).astype(np.uint8)
        # mouth cavity with the upper teeth, clipped to the lip opening. Tuned against dlib's 68-landmark
        # model: a dark cavity and bright upper teeth keep its inner-lip points on the lip edges, while
        # visible lower teeth or a lit tongue pull them inwards, so the lower teeth stay behind the lower lip.
        gap_c = U + D
        if gap_c > 0.4:
            cav = np.concatenate([np.stack([x, up_in], 1), np.stack([x, lo_in], 1)[::-1]]) - off
            tmp = roi.copy()
            _fill(tmp, cav, (25, 8, 10))
            _ell(tmp, (cx - x0, my + (D - U) / 2 - y0), (w * 0.6, gap_c * 0.32), (12, 4, 5))
            teeth = _mul(g.teeth_color, 1.1)
            tw = w0 * 0.82
            ut_edge = my + 1.2  # upper incisors are fixed to the skull
            tu = np.linspace(-1, 1, 15)
            tx = cx + tu * tw
            t_bot = ut_edge - 1.4 * tu**2
            upper_t = np.concatenate(
                [np.stack([tx, np.full_like(tx, my - 12)], 1), np.stack([tx, t_bot], 1)[::-1]]
            )
            _fill(tmp, upper_t - off, teeth)
            _line(tmp, np.stack([tx, t_bot], 1) - off, _mul(teeth, 0.7), 1)
            for k in (-0.52, -0.26, 0.0, 0.26, 0.52):
                xx = cx + k * tw
                _line(tmp, [(xx - x0, my - 10 - y0), (xx - x0, ut_edge - 1.4 * k**2 - y0)], _mul(teeth, 0.88))
            # shadow under the upper lip
            _line(tmp, np.stack([x, up_in + 0.6], 1) - off, _mul(teeth, 0.55), 1)
            m = np.zeros(roi.shape[:2], np.uint8)
            _fill(m, cav, 255, aa=False)
            np.copyto(roi, tmp, where=m[..., None] > 0)
        lip = np.asarray(g.lip_color, float)
        _fill(
            roi,
            np.concatenate([np.stack([x, up_out], 1), np.stack([x, up_in], 1)[::-1]]) - off,
            _mul(lip, 0.86),
        )
        _fill(roi, np.concatenate([np.stack([x, lo_in], 1), np.stack([x, lo_out], 1)[::-1]]) - off, lip)
        _ell(roi, (cx - x0, lo_in[n // 2] + 0.5 * lt0 - y0), (w * 0.32, lt0 * 0.2), _mul(lip, 1.13))
        _line(roi, np.stack([x, up_out], 1)[2:-2] - off, _mul(lip, 0.75), 1)
        if gap_c < 1.5:
            _line(roi, np.stack([x, up_in * 0.5 + lo_in * 0.5], 1) - off, _mul(lip, 0.42), 1)
        else:  # the moist inner lip edges are darker
            _line(roi, np.stack([x, up_in - 0.5], 1)[1:-1] - off, _mul(lip, 0.6), 1)
            _line(roi, np.stack([x, lo_in + 0.5], 1)[1:-1] - off, _mul(lip, 0.7), 1)

    def _jaw(self, rgb, alpha, a26: float):
        jd = K_CHIN * a26
        if jd < 0.05:
            return
        y0, ye = self.band
        h = ye - y0
        hh = int(np.ceil(h + jd)) + 1
        y1 = min(FRAME_H, y0 + hh)
        hh = y1 - y0
        x0, _, x1, _ = self.box
        M = np.array([[1, 0, 0], [0, h / (h + jd), 0]], np.float32)
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        src = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        rgb[y0:y1, x0:x1] = cv2.warpAffine(
            src, M, (x1 - x0, hh), flags=flags, borderMode=cv2.BORDER_REPLICATE
        )
        srca = np.ascontiguousarray(alpha[y0:y1, x0:x1])
        alpha[y0:y1, x0:x1] = cv2.warpAffine(
            srca, M, (x1 - x0, hh), flags=flags, borderMode=cv2.BORDER_REPLICATE
        )

    def render(self, au, blink: float = 0.0, head=(0.0, 0.0, 0.0, 1.0)) -> np.ndarray:
        """One (288, 360, 3) uint8 RGB frame for AU vector ``au`` (5,)."""
        au = _check_au(au, 1)
        head = np.asarray(head, dtype=float)
        if head.shape != (4,) or not np.all(np.isfinite(head)) or head[3] <= 0:
            raise ValueError(f"head must be finite (dx, dy, roll, scale>0); got {head}")
        if not np.isfinite(blink):
            raise ValueError(f"blink must be finite, got {blink}")
        return self._render(au, float(blink), head)

    def _render(self, au: np.ndarray, blink: float, head: np.ndarray) -> np.ndarray:
        rgb = self.head_rgb.copy()
        alpha = self.head_a
        if au[4] > 0.02:
            alpha = alpha.copy()
            self._jaw(rgb, alpha, au[4])
        self._draw_eyes(rgb, blink)
        self._draw_mouth(rgb, au)
        dx, dy, roll, sc = head
        x0, y0, x1, y1 = self.box
        m = int(np.ceil(8 + abs(dx) + abs(dy) + abs(roll) * 3 + abs(sc - 1) * 200))
        x0, y0, x1, y1 = max(0, x0 - m), max(0, y0 - m), min(FRAME_W, x1 + m), min(FRAME_H, y1 + m)
        out = self.bg.copy()
        if abs(dx) + abs(dy) + abs(roll) + abs(sc - 1) > 1e-6:
            M = cv2.getRotationMatrix2D((self.head_center[0] - x0, self.head_center[1] - y0), roll, sc)
            M[0, 2] += dx
            M[1, 2] += dy
            size = (x1 - x0, y1 - y0)
            hr = cv2.warpAffine(
                np.ascontiguousarray(rgb[y0:y1, x0:x1]),
                M,
                size,
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
            ha = cv2.warpAffine(
                np.ascontiguousarray(alpha[y0:y1, x0:x1]),
                M,
                size,
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=0,
            )
        else:
            hr = np.ascontiguousarray(rgb[y0:y1, x0:x1])
            ha = np.ascontiguousarray(alpha[y0:y1, x0:x1])
        bgr = np.ascontiguousarray(out[y0:y1, x0:x1])
        out[y0:y1, x0:x1] = cv2.blendLinear(hr, bgr, ha, 1.0 - ha)
        return out

    def render_clip(self, au, motion: Motion) -> np.ndarray:
        au = _check_au(au, 2)
        T = len(au)
        if not isinstance(motion, Motion):
            raise TypeError(f"motion must be a Motion (see sample_motion), got {type(motion).__name__}")
        if len(motion.blink) != T:
            raise ValueError(f"motion has {len(motion.blink)} frames but au has {T}")
        if not (np.all(np.isfinite(motion.blink)) and np.all(np.isfinite(motion.head))):
            raise ValueError("motion contains NaN or inf")
        out = np.empty((T, FRAME_H, FRAME_W, 3), np.uint8)
        for t in range(T):
            out[t] = self._render(au[t], float(motion.blink[t]), motion.head[t])
        return out


@functools.lru_cache(maxsize=8)
def _renderer(ident: Identity) -> Renderer:
    return Renderer(ident)


def render_frame(
    ident: Identity,
    au: np.ndarray,
    blink: float = 0.0,
    head: tuple[float, float, float, float] = (0, 0, 0, 1),
) -> np.ndarray:
    """Render one (288, 360, 3) uint8 RGB frame; ``au`` is (5,) ordered like ``PAPER_AUS``."""
    if not isinstance(ident, Identity):
        raise TypeError(f"ident must be an Identity, got {type(ident).__name__}")
    return _renderer(ident).render(au, blink, head)


def render_clip(ident: Identity, au: np.ndarray, motion: Motion) -> np.ndarray:
    """Render (T, 288, 360, 3) uint8 RGB frames; ``au`` is (T, 5), ``motion`` has T frames."""
    if not isinstance(ident, Identity):
        raise TypeError(f"ident must be an Identity, got {type(ident).__name__}")
    return _renderer(ident).render_clip(au, motion)


# ---------------------------------------------------------------------------------------- self-check
def contact_sheet(frames: list[np.ndarray], cols: int = 6, scale: float = 0.5) -> np.ndarray:
    """Tile RGB frames into one image (for eyeballing identities and mouths)."""
    small = [cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for f in frames]
    h, w = small[0].shape[:2]
    rows = (len(small) + cols - 1) // cols
    sheet = np.full((rows * h, cols * w, 3), 255, np.uint8)
    for i, f in enumerate(small):
        r, c = divmod(i, cols)
        sheet[r * h : (r + 1) * h, c * w : (c + 1) * w] = f
    return sheet


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Face renderer self-check: timing and contact sheets.")
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--sheet", help="write a contact sheet of 24 identities here (PNG)")
    ap.add_argument("--mouth-sheet", help="write a sheet of mouths at various AU values here (PNG)")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    ms = []
    for _ in range(args.clips):
        ident = sample_identity(rng)
        au = rng.uniform(0, 5, (75, N_AUS))
        motion = sample_motion(75, rng)
        t0 = time.perf_counter()
        render_clip(ident, au, motion)
        ms.append((time.perf_counter() - t0) * 1000 / 75)
    print(f"render: {np.mean(ms):.2f} ms/frame (incl. identity set-up; {args.clips} clips of 75 frames)")
    if args.sheet:
        rng = np.random.default_rng(1)
        frames = [
            render_frame(sample_identity(rng), rng.uniform(0, 2, N_AUS) * (rng.uniform() < 0.6))
            for _ in range(24)
        ]
        cv2.imwrite(args.sheet, cv2.cvtColor(contact_sheet(frames), cv2.COLOR_RGB2BGR))
        print("wrote", args.sheet)
    if args.mouth_sheet:
        rng = np.random.default_rng(2)
        ids = [sample_identity(rng) for _ in range(3)]
        aus = (
            [np.zeros(5)]
            + [np.eye(5)[i] * 5 for i in range(5)]
            + [np.array([0, 0, 0, 3, 3.0]), np.array([2, 0, 2, 5, 5.0])]
        )
        crops = []
        for ident in ids:
            r = _renderer(ident)
            for au in aus:
                f = render_frame(ident, au)
                y, x = int(r.my), int(r.cx)
                crops.append(
                    cv2.resize(
                        f[y - 50 : y + 50, x - 60 : x + 60], None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST
                    )
                )
        sheet = contact_sheet(crops, cols=len(aus), scale=1.0)
        cv2.imwrite(args.mouth_sheet, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        print(
            "wrote",
            args.mouth_sheet,
            "(columns: neutral, AU10, AU14, AU20, AU25, AU26 at 5, 25+26 at 3, mix)",
        )


if __name__ == "__main__":
    main()
