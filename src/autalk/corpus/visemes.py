"""Mouth motion for the teaching corpus: eSpeak phonemes -> visemes -> AU intensity tracks.

The five speech-related AUs of the paper, in :data:`autalk.PAPER_AUS` order, are
AU10 (upper lip raiser), AU14 (dimpler), AU20 (lip stretcher), AU25 (lips part) and AU26 (jaw
drop). Intensities live on OpenFace's ``AUxx_r`` scale, 0..5.

Pipeline
--------
1. :func:`phoneme_to_viseme` maps an eSpeak NG phoneme mnemonic (stress marks removed, e.g.
   ``b``, ``I``, ``aI``, ``t#``) to one of a dozen visemes (:data:`VISEME_OF`); unknown phonemes
   fall back by stripping eSpeak's modifier characters and finally to the ``NEU`` (neutral, slightly
   open) viseme, never an error. Diphthongs glide: their last 40% moves half-way towards the
   viseme of their second element (:data:`GLIDE_OF`).
2. Each viseme has a target AU vector (:data:`VISEME_TARGETS`), a per-AU dominance strength
   (:data:`VISEME_DOMINANCE`) and how far its influence reaches before and after the segment
   (:data:`VISEME_REACH`, seconds).
3. Coarticulation is Cohen & Massaro (1993) dominance blending: segment ``i`` has dominance
   ``D_i(t) = a_i * exp(-(d_i(t) / tau_i)^2)`` where ``d_i(t)`` is the distance from ``t`` to the
   segment (0 inside it) and ``tau_i`` is the anticipatory reach before the segment and the
   carry-over reach after it; the track is ``sum_i D_i(t) T_i / sum_i D_i(t)``. Anticipatory
   reaches are longer than carry-over ones (60 vs 50 ms for vowels), so the mouth starts to move
   1-2 frames (40-80 ms) before a phoneme's acoustic onset. Bilabials (p b m) have a very strong
   but short-reaching dominance on AU25/AU26 so the lips really close, and the time outside any
   phoneme is a ``sil`` segment whose target is the rest pose (all zeros).
4. A speaker-style amplitude scale multiplies the track (:func:`style_for_speaker`, 0.85-1.15), a
   little temporally smoothed frame noise is added (sd 0.04), and values are clipped to [0, 5].

Frame convention: at ``fps`` frames per second, frame ``k`` covers ``[k / fps, (k + 1) / fps)``
and its value is the continuous track sampled at the frame centre ``(k + 0.5) / fps``.

Presence: OpenFace's ``AUxx_c`` comes from a separate classifier; here presence is simply
``intensity >= PRESENCE_THRESHOLD`` (1.0, i.e. at least a "trace" on the 0..5 scale).
"""

from __future__ import annotations

import numpy as np

from autalk import PAPER_AUS
from autalk.corpus.align import Segment

AUS: tuple[int, ...] = PAPER_AUS  # column order of every track: AU10, AU14, AU20, AU25, AU26
PRESENCE_THRESHOLD: float = 1.0

#                                   AU10 AU14 AU20 AU25 AU26
VISEME_TARGETS: dict[str, np.ndarray] = {
    k: np.asarray(v, dtype=np.float32)
    for k, v in {
        "sil": (0.0, 0.0, 0.0, 0.0, 0.0),  # rest pose
        "PBM": (0.2, 0.4, 0.1, 0.0, 0.0),  # bilabial closure: lips together
        "FV": (2.4, 0.3, 0.4, 1.2, 0.3),  # labiodental: upper lip raised off the lower lip
        "TH": (0.6, 0.2, 0.6, 2.0, 0.9),  # dental: tongue between the teeth
        "TD": (0.3, 0.3, 0.6, 1.6, 0.8),  # alveolar t d n l
        "KG": (0.2, 0.2, 0.4, 1.8, 1.3),  # velar / glottal k g N h
        "SZ": (0.6, 1.6, 1.6, 1.3, 0.2),  # s z: teeth nearly closed, lip corners tight
        "SH": (1.2, 1.4, 0.2, 1.6, 0.4),  # S Z tS dZ: lips slightly protruded
        "R": (0.5, 0.6, 0.2, 1.5, 0.6),  # r (slight rounding)
        "W": (0.2, 0.1, 0.0, 1.1, 0.4),  # w: rounded, lips parted but narrow
        "J": (0.6, 0.9, 2.0, 1.5, 0.6),  # j and eSpeak's linking glide ';'
        "U": (0.2, 0.1, 0.0, 1.8, 1.0),  # close rounded vowels u: U
        "O": (0.3, 0.1, 0.1, 2.8, 2.4),  # open-mid rounded vowels oU O: 0 o@
        "AA": (0.5, 0.2, 0.4, 3.9, 3.6),  # open vowels a aa A: aI aU V
        "E": (0.5, 0.6, 1.4, 2.8, 2.0),  # mid (spread) vowels E e eI
        "SCHWA": (0.3, 0.3, 0.6, 2.1, 1.3),  # @ a# 3:
        "I": (0.8, 1.1, 2.6, 2.1, 0.9),  # close spread vowels i: i I
        "NEU": (0.3, 0.3, 0.5, 1.5, 0.8),  # default for anything unrecognised
    }.items()
}

VISEME_DOMINANCE: dict[str, np.ndarray] = {
    k: np.asarray(v, dtype=np.float32)
    for k, v in {
        "sil": (1.5, 1.5, 1.5, 1.5, 1.5),
        "PBM": (1.0, 2.0, 1.0, 20.0, 20.0),
        "FV": (6.0, 1.0, 1.0, 3.0, 2.0),
        "TH": (1.0, 1.0, 1.0, 1.5, 1.0),
        "TD": (0.6, 0.6, 0.6, 0.8, 0.5),
        "KG": (0.6, 0.6, 0.6, 0.7, 0.5),
        "SZ": (1.0, 2.5, 2.0, 1.5, 1.5),
        "SH": (2.0, 2.0, 2.0, 1.5, 1.5),
        "R": (1.0, 1.0, 1.5, 1.0, 0.8),
        "W": (1.0, 1.0, 3.0, 2.0, 1.0),
        "J": (0.8, 0.8, 1.0, 0.8, 0.8),
        "U": (1.0, 1.0, 2.5, 1.0, 1.0),
        "O": (1.0, 1.0, 2.0, 1.0, 1.0),
        "AA": (1.0, 1.0, 1.0, 1.2, 1.2),
        "E": (1.0, 1.0, 1.0, 1.0, 1.0),
        "SCHWA": (0.8, 0.8, 0.8, 0.8, 0.8),
        "I": (1.0, 1.5, 2.0, 1.0, 1.0),
        "NEU": (0.7, 0.7, 0.7, 0.7, 0.7),
    }.items()
}

_VOWEL_REACH = (0.060, 0.050)
_CONS_REACH = (0.050, 0.035)
VISEME_REACH: dict[str, tuple[float, float]] = {
    "sil": (0.040, 0.040),
    "PBM": (0.022, 0.020),
    "FV": (0.040, 0.030),
    **{v: _CONS_REACH for v in ("TH", "TD", "KG", "SZ", "SH", "R", "W", "J", "NEU")},
    **{v: _VOWEL_REACH for v in ("U", "O", "AA", "E", "SCHWA", "I")},
}

SMOOTH_SD = 0.012  # seconds: Gaussian smoothing of the blended track before sampling
_OVERSAMPLE = 8

VOWEL_VISEMES = frozenset({"U", "O", "AA", "E", "SCHWA", "I"})

_GROUPS: dict[str, tuple[str, ...]] = {
    "sil": ("_", "_:", "_!", "_^_", "sil", "sp", ""),
    "PBM": ("p", "b", "m", "m-"),
    "FV": ("f", "v"),
    "TH": ("T", "D"),
    "TD": ("t", "d", "n", "l", "t#", "t[", "d#", "d[", "n-", "l/", "l#", "L", "@L", "t2", "d2", "n[", "?"),
    "KG": ("k", "g", "N", "h", "x", "k#", "g#"),
    "SZ": ("s", "z", "z#", "s#"),
    "SH": ("S", "Z", "tS", "dZ", "S;", "Z;"),
    "R": ("r", "r-", "r/", "R", "3:", "3", "A@r", "r#"),
    "W": ("w", "w#", "W"),
    "J": ("j", ";", "i@3"),
    "U": ("u:", "U", "u", "U@", "u@", "U@r"),
    "O": ("oU", "o@", "O@", "O:", "O", "0", "o", "OI", "0#", "oU#", "O@r", "o@r"),
    "AA": ("a", "aa", "A:", "A@", "A", "aI", "aI2", "aI@", "aI3", "aU", "aU@", "V", "a2"),
    "E": ("E", "e", "eI", "e@", "E2", "E@", "e#"),
    "SCHWA": ("@", "a#", "@-", "@2", "@5", "3:r", "I2#", "a#2"),
    "I": ("i:", "i", "I", "I2", "I#", "i@", "i#", "IR"),
}
VISEME_OF: dict[str, str] = {ph: vis for vis, phs in _GROUPS.items() for ph in phs}

# Diphthongs: the last 40% of the segment glides half-way towards the second element's viseme.
GLIDE_OF: dict[str, str] = {"aI": "I", "aI2": "I", "aU": "U", "eI": "I", "oU": "U", "OI": "I"}
_GLIDE_FRACTION = 0.4
_GLIDE_MIX = 0.5
_MODIFIERS = "#:/-;[2@"


def phoneme_to_viseme(ph: str) -> str:
    """Viseme of an eSpeak phoneme mnemonic; unknown phonemes degrade gracefully (never raise)."""
    p = ph.strip().lstrip("',%=")
    if p in VISEME_OF:
        return VISEME_OF[p]
    q = p.rstrip(_MODIFIERS)
    if q in VISEME_OF:
        return VISEME_OF[q]
    if p.startswith("_"):
        return "sil"
    if q[:2] in VISEME_OF:
        return VISEME_OF[q[:2]]
    if q[:1] in VISEME_OF:
        return VISEME_OF[q[:1]]
    return "NEU"


def style_for_speaker(speaker: int, seed: int = 0) -> float:
    """A speaker's articulation amplitude scale in [0.85, 1.15], deterministic in ``(speaker, seed)``."""
    return float(np.random.default_rng([int(seed), int(speaker), 0xA0]).uniform(0.85, 1.15))


def _segments_with_silence(phonemes: list[Segment], t_end: float) -> list[tuple[float, float, str, str]]:
    """(start, end, viseme, phoneme) covering [-1, t_end + 1]: gaps become ``sil``, diphthongs split."""
    out: list[tuple[float, float, str, str]] = []
    t = -1.0
    for p in sorted(phonemes, key=lambda s: (s.start, s.end)):
        if p.end <= p.start:
            continue
        if p.start > t + 1e-6:
            out.append((t, p.start, "sil", "sil"))
        vis = phoneme_to_viseme(p.label)
        lab = p.label.lstrip("',%=")
        if lab in GLIDE_OF:
            cut = p.end - _GLIDE_FRACTION * (p.end - p.start)
            out.append((p.start, cut, vis, lab))
            out.append((cut, p.end, "~" + GLIDE_OF[lab] + "~" + vis, lab))
        else:
            out.append((p.start, p.end, vis, lab))
        t = max(t, p.end)
    out.append((t, max(t, t_end) + 1.0, "sil", "sil"))
    return out


def _viseme_params(vis: str) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    if vis.startswith("~"):  # glide part of a diphthong: "~<second>~<first>"
        _, second, first = vis.split("~")
        tgt = (1 - _GLIDE_MIX) * VISEME_TARGETS[first] + _GLIDE_MIX * VISEME_TARGETS[second]
        return tgt, VISEME_DOMINANCE[first], VISEME_REACH[first]
    return VISEME_TARGETS[vis], VISEME_DOMINANCE[vis], VISEME_REACH[vis]


def _continuous_tracks(phonemes: list[Segment], n_frames: int, fps: float) -> np.ndarray:
    """Blend on a fine grid (``_OVERSAMPLE`` points per frame), smooth (the articulators' inertia)
    with a Gaussian of ``SMOOTH_SD`` seconds, then sample at the frame centres."""
    step = 1.0 / (fps * _OVERSAMPLE)
    pad = int(np.ceil(4 * SMOOTH_SD / step))
    n_fine = n_frames * _OVERSAMPLE + 2 * pad
    t = (np.arange(n_fine) - pad + 0.5) * step
    segs = _segments_with_silence(phonemes, n_frames / fps)
    num = np.zeros((n_fine, len(AUS)))
    den = np.full((n_fine, len(AUS)), 1e-6)  # a whisper of rest pose where nothing dominates
    for start, end, vis, _ in segs:
        tgt, dom, (tau_before, tau_after) = _viseme_params(vis)
        d_before = np.clip(start - t, 0.0, None) / tau_before
        d_after = np.clip(t - end, 0.0, None) / tau_after
        w = np.exp(-((d_before + d_after) ** 2))[:, None] * dom[None, :]
        num += w * tgt[None, :]
        den += w
    fine = num / den
    if SMOOTH_SD > 0:
        x = np.arange(-pad, pad + 1) * step
        kernel = np.exp(-0.5 * (x / SMOOTH_SD) ** 2)
        kernel /= kernel.sum()
        fine = np.stack([np.convolve(fine[:, j], kernel, mode="same") for j in range(fine.shape[1])], 1)
    # fine sample i sits at (i - pad + 0.5) * step; frame k's centre (k + 0.5) / fps lies between
    # fine samples; average the two around it (the oversampling factor is even).
    centre = pad + np.arange(n_frames) * _OVERSAMPLE + _OVERSAMPLE // 2
    return 0.5 * (fine[centre - 1] + fine[centre])


def au_tracks(phonemes: list[Segment], n_frames: int = 75, fps: float = 25.0,
              rng: np.random.Generator | None = None, style: float = 1.0) -> np.ndarray:
    """Frame-level intensities (``n_frames``, 5) float32 in [0, 5] of AU10/14/20/25/26.

    ``phonemes`` are segments in seconds (clip time; gaps are silence). Frame ``k`` is sampled at
    ``(k + 0.5) / fps``. ``style`` scales the amplitude (per speaker); ``rng`` adds small frame noise
    (none when ``None``). Deterministic for a given generator state.
    """
    tracks = _continuous_tracks(phonemes, n_frames, fps) * float(style)
    if rng is not None:
        noise = rng.normal(0.0, 0.04, size=(n_frames + 2, len(AUS)))
        noise = (noise[:-2] + 2 * noise[1:-1] + noise[2:]) / np.sqrt(6.0)  # mildly smoothed, same sd
        tracks = tracks + noise
    return np.clip(tracks, 0.0, 5.0).astype(np.float32)


def au_presence(intensity: np.ndarray) -> np.ndarray:
    """Presence (``AUxx_c``) as ``intensity >= PRESENCE_THRESHOLD`` -> uint8 0/1, same shape.

    OpenFace predicts presence with a separate classifier; this corpus thresholds the intensity.
    """
    return (np.asarray(intensity) >= PRESENCE_THRESHOLD).astype(np.uint8)
