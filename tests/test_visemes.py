"""Phonemes -> visemes -> AU10/14/20/25/26 intensity tracks with coarticulation."""

from __future__ import annotations

import numpy as np
import pytest

from autalk import PAPER_AUS
from autalk.corpus.align import Segment
from autalk.corpus.speech import make_clip_audio, voice_for_speaker
from autalk.corpus.visemes import (
    AUS,
    PRESENCE_THRESHOLD,
    VISEME_DOMINANCE,
    VISEME_OF,
    VISEME_REACH,
    VISEME_TARGETS,
    VOWEL_VISEMES,
    au_presence,
    au_tracks,
    phoneme_to_viseme,
    style_for_speaker,
)

AU10, AU14, AU20, AU25, AU26 = range(5)
FPS = 25.0
# Every phoneme libespeak-ng produced for the GRID vocabulary over all our language voices.
ESPEAK_GRID_INVENTORY = (
    "n s l E t i: I eI b aI u: r w p g z d f aU a v a# D k oU i@ o@ dZ @ j T ; aI2 0 V A@ m w# tS t# "
    "O@ r- t[".split()
)


def frame_at(t: float) -> int:
    """Index of the frame whose span [k/25, (k+1)/25) contains t."""
    return int(np.floor(t * FPS))


def seq(*items: tuple[str, float], start: float = 1.0) -> list[Segment]:
    out, t = [], start
    for label, dur in items:
        out.append(Segment(t, t + dur, label))
        t += dur
    return out


def test_au_order_is_the_papers():
    assert AUS == PAPER_AUS == (10, 14, 20, 25, 26)


def test_viseme_tables_are_consistent():
    assert set(VISEME_OF.values()) <= set(VISEME_TARGETS)
    assert set(VISEME_TARGETS) == set(VISEME_DOMINANCE) == set(VISEME_REACH)
    for v, t in VISEME_TARGETS.items():
        assert t.shape == (5,) and t.min() >= 0 and t.max() <= 5, v
    assert not VISEME_TARGETS["sil"].any()


def test_phoneme_to_viseme_classes():
    for ph in ("p", "b", "m"):
        assert phoneme_to_viseme(ph) == "PBM"
    for ph in ("a", "aa", "aI", "aU", "A:"):
        assert phoneme_to_viseme(ph) == "AA"
    assert phoneme_to_viseme("O:") == "O"
    for ph in ("i:", "I"):
        assert phoneme_to_viseme(ph) == "I"
    for ph in ("u:", "U"):
        assert phoneme_to_viseme(ph) == "U"
    assert phoneme_to_viseme("w") == "W"
    assert phoneme_to_viseme("f") == phoneme_to_viseme("v") == "FV"
    assert phoneme_to_viseme("s") == "SZ" and phoneme_to_viseme("tS") == "SH"
    assert phoneme_to_viseme("'aI") == "AA" and phoneme_to_viseme(",E") == "E"  # stress marks
    assert phoneme_to_viseme("_:") == "sil"


def test_unknown_phonemes_degrade_gracefully():
    for ph in ("Q!", "zz", "", "@@@", "t##", "x/"):
        assert phoneme_to_viseme(ph) in VISEME_TARGETS
    assert phoneme_to_viseme("Q!") == "NEU"


def test_whole_espeak_grid_inventory_is_mapped():
    assert all(ph in VISEME_OF for ph in ESPEAK_GRID_INVENTORY)


def test_tracks_shape_range_and_silence():
    ph = seq(("s", 0.1), ("E", 0.15), ("t", 0.06))
    tr = au_tracks(ph, rng=np.random.default_rng(0))
    assert tr.shape == (75, 5) and tr.dtype == np.float32
    assert tr.min() >= 0 and tr.max() <= 5
    quiet = np.r_[0:frame_at(1.0 - 0.15), frame_at(1.31 + 0.15):75]
    assert tr[quiet].max() < 0.25
    assert au_presence(tr[quiet]).sum() == 0
    assert np.array_equal(au_tracks([]), np.zeros((75, 5), np.float32))


def test_bilabial_closure_and_open_vowel():
    ph = seq(("a", 0.2), ("b", 0.08), ("a", 0.2))
    tr = au_tracks(ph)
    k_b = frame_at(1.24)
    assert tr[k_b, AU25] < 0.3 and tr[k_b, AU26] < 0.3
    k_a = frame_at(1.1)
    assert tr[k_a, AU25] > 3.0 and tr[k_a, AU26] > 3.0


def test_viseme_specific_shapes():
    def mid(label: str, dur: float = 0.2) -> np.ndarray:
        return au_tracks(seq((label, dur)))[frame_at(1.0 + dur / 2)]

    i, u, f, s, o = mid("i:"), mid("u:"), mid("f"), mid("s"), mid("O:")
    assert i[AU20] > 2.0 and i[AU25] > 1.5  # spread, parted
    assert u[AU20] < 0.3 and 1.0 < u[AU25] < o[AU25]  # rounded: parted but narrow
    assert f[AU10] > 2.0  # labiodental raises the upper lip
    assert s[AU14] > 1.0 and s[AU26] < 0.5


def test_anticipatory_onset_before_acoustic_onset():
    onset = 1.01
    tr = au_tracks(seq(("a", 0.25), start=onset))
    k = frame_at(onset)  # frame containing the onset; its centre (1.02) is after it
    assert tr[k - 4, AU25] < 0.05  # 160 ms before: rest
    assert tr[k - 1, AU25] > 0.4  # one frame earlier (centre 0.98 s) the mouth is already opening
    assert tr[k - 2, AU25] > 0.05  # and starting to move two frames before
    assert tr[k - 2, AU25] < tr[k - 1, AU25] < tr[k, AU25] < tr[k + 2, AU25]


def test_smoothness():
    ph = seq(("b", 0.08), ("a", 0.15), ("m", 0.08), ("i:", 0.12), ("p", 0.08), ("aU", 0.2))
    tr = au_tracks(ph)
    jumps = np.abs(np.diff(tr, axis=0))
    assert jumps.max() < 3.2  # an open vowel's jaw drop still takes more than one frame
    # smoother than sampling the raw per-phoneme targets
    raw = np.zeros_like(tr)
    for p in ph:
        raw[frame_at(p.start):frame_at(p.end) + 1] = VISEME_TARGETS[phoneme_to_viseme(p.label)]
    assert jumps.max() < np.abs(np.diff(raw, axis=0)).max()


def test_determinism_noise_and_style():
    ph = seq(("s", 0.1), ("E", 0.15), ("t", 0.06))
    a = au_tracks(ph, rng=np.random.default_rng(3))
    assert np.array_equal(a, au_tracks(ph, rng=np.random.default_rng(3)))
    assert not np.array_equal(a, au_tracks(ph, rng=np.random.default_rng(4)))
    clean = au_tracks(ph)
    assert 0 < np.abs(a - clean).max() < 0.3  # tiny frame noise
    loud = au_tracks(ph, style=1.15)
    assert np.allclose(loud, np.clip(1.15 * clean, 0, 5), atol=1e-5)
    styles = [style_for_speaker(s) for s in range(1, 34)]
    assert min(styles) >= 0.85 and max(styles) <= 1.15 and len(set(styles)) == 33
    assert style_for_speaker(5) == style_for_speaker(5)


def test_presence_threshold():
    x = np.array([[0.0, 0.99, PRESENCE_THRESHOLD, 1.5, 5.0]], np.float32)
    p = au_presence(x)
    assert p.dtype == np.uint8 and p.shape == x.shape
    assert p.tolist() == [[0, 0, 1, 1, 1]]


@pytest.mark.parametrize("speaker", [1, 4, 9, 17, 26, 33])
def test_mouth_opens_during_vowels_of_real_clips(speaker):
    """Each vowel longer than 2 frames: every frame of it has AU25 above the presence threshold,
    allowing +-1 frame; bilabial closures are nearly closed; silence at the ends is at rest."""
    rng = np.random.default_rng(speaker)
    words = [["bin", "blue", "at", "a", "two", "now"], ["place", "white", "by", "o", "five", "please"],
             ["lay", "green", "with", "u", "nine", "again"], ["set", "red", "in", "m", "one", "soon"]]
    for w in words:
        clip = make_clip_audio(w, voice_for_speaker(speaker), rng)
        tr = au_tracks(clip.phonemes, rng=rng, style=style_for_speaker(speaker))
        n_vowels = 0
        for p in clip.phonemes:
            vis = phoneme_to_viseme(p.label)
            frames = [k for k in range(75) if p.start <= (k + 0.5) / FPS < p.end]
            if vis in VOWEL_VISEMES and p.duration > 2 / FPS:
                n_vowels += 1
                for k in frames:
                    assert tr[max(0, k - 1):k + 2, AU25].max() >= PRESENCE_THRESHOLD, (w, p, k)
            if vis == "PBM":
                assert tr[frame_at((p.start + p.end) / 2), AU25] < 0.6, (w, p)
        assert n_vowels >= 3
        spoken = [s for s in clip.words if s.label not in ("sil", "sp")]
        assert tr[: frame_at(spoken[0].start - 0.16), :].max() < 0.25
        assert tr[frame_at(spoken[-1].end + 0.16):, :].max() < 0.25
