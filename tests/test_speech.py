"""libespeak-ng speech for the teaching corpus: ctypes binding, timings, clips, alignments."""

from __future__ import annotations

import ctypes
import json
import multiprocessing as mp
from dataclasses import asdict

import numpy as np
import pytest

from autalk.corpus.align import Segment, format_align, parse_align
from autalk.corpus.grammar import SLOTS
from autalk.corpus.speech import (
    ESPEAK_SR,
    LANGUAGES,
    MIN_TAIL,
    VOICES,
    ClipAudio,
    Utterance,
    _Event,
    complete_alignment,
    make_clip_audio,
    make_voice,
    synthesize,
    voice_for_speaker,
)

SENTENCE = ["bin", "blue", "at", "a", "two", "now"]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _f0(audio: np.ndarray, sr: int) -> float:
    """Median autocorrelation F0 (60-400 Hz) over loud 40 ms frames."""
    n = int(0.04 * sr)
    frames = [audio[i:i + n] for i in range(0, audio.size - n, n)]
    loud = max(_rms(f) for f in frames) * 0.3
    f0s = []
    for f in frames:
        if _rms(f) < loud:
            continue
        f = f - f.mean()
        ac = np.correlate(f, f, "full")[n - 1:]
        lo, hi = sr // 400, sr // 60
        f0s.append(sr / (lo + int(np.argmax(ac[lo:hi]))))
    return float(np.median(f0s))


def test_event_struct_matches_speak_lib_h_on_64_bit():
    if ctypes.sizeof(ctypes.c_void_p) != 8:
        pytest.skip("layout checked for 64-bit builds")
    assert ctypes.sizeof(_Event) == 40
    assert _Event.audio_position.offset == 16 and _Event.sample.offset == 20
    assert _Event.user_data.offset == 24 and _Event.id.offset == 32


def test_synthesize_gives_audio_words_and_phonemes_in_word_spans():
    u = synthesize(SENTENCE, make_voice("en-us", "m3", 50, 175))
    assert isinstance(u, Utterance) and u.sr == ESPEAK_SR == 22050
    assert u.audio.dtype == np.float32 and u.audio.ndim == 1
    assert _rms(u.audio) > 0.02 and np.abs(u.audio).max() <= 1.0
    assert [w.label for w in u.words] == SENTENCE
    for a, b in zip(u.words, u.words[1:], strict=False):
        assert a.start < a.end <= b.start
    assert u.words[-1].end <= u.audio.size / u.sr + 1e-6
    for w in u.words:  # each word span carries sound
        assert _rms(u.audio[int(w.start * u.sr):int(w.end * u.sr)]) > 0.01
    assert u.phonemes, "no phoneme events"
    for p in u.phonemes:
        assert p.end >= p.start
        assert not p.label.startswith(("'", ",", "_"))
        assert any(w.start - 1e-9 <= p.start and p.end <= w.end + 1e-9 for w in u.words), p
    per_word = [[p.label for p in u.phonemes if w.start <= p.start < w.end] for w in u.words]
    assert all(per_word), per_word
    assert per_word[0] == ["b", "I", "n"]
    assert per_word[3] == ["eI"]  # the letter "a" is its name, not the article


def test_every_grammar_word_gets_a_word_event():
    voice = make_voice("en-gb", "f2", 50, 175)
    for slot_i, slot in enumerate(SLOTS):
        for w in slot:
            words = [s[0] for s in SLOTS]
            words[slot_i] = w
            u = synthesize(words, voice)
            assert [s.label for s in u.words] == words


def test_make_voice_validates():
    with pytest.raises(ValueError, match="m1"):
        make_voice("en-us", "zz9", 50, 170)
    with pytest.raises(ValueError, match="en-us"):
        make_voice("xx-yy", "m1", 50, 170)
    with pytest.raises(ValueError, match="rate"):
        make_voice("en-us", "m1", 50, 10)
    with pytest.raises(ValueError, match="pitch"):
        make_voice("en-us", "m1", 150, 170)
    assert set(VOICES) >= {"m1", "m7", "f1", "f5"} and "en-us" in LANGUAGES


def test_voice_for_speaker_is_deterministic_distinct_and_json():
    voices = [voice_for_speaker(s) for s in range(1, 34)]
    assert voices == [voice_for_speaker(s) for s in range(1, 34)]
    assert len({(v.language, v.variant) for v in voices}) == 33
    assert [voice_for_speaker(s, seed=1) for s in range(1, 34)] != voices
    assert json.loads(json.dumps(asdict(voices[0]))) == asdict(voices[0])
    with pytest.raises(ValueError):
        voice_for_speaker(0)


def test_distinct_voices_sound_different():
    low = synthesize(SENTENCE, make_voice("en-us", "m3", 30, 170))
    high = synthesize(SENTENCE, make_voice("en-us", "f2", 70, 170))
    assert _f0(high.audio, high.sr) > 1.3 * _f0(low.audio, low.sr)
    a, b = (synthesize(SENTENCE, voice_for_speaker(s)).audio for s in (1, 2))
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_synthesis_is_deterministic():
    v = voice_for_speaker(7)
    a, b = synthesize(SENTENCE, v), synthesize(SENTENCE, v)
    assert np.array_equal(a.audio, b.audio) and a.words == b.words and a.phonemes == b.phonemes


def test_clip_audio_shape_silences_noise_and_alignment():
    words = ["place", "green", "with", "x", "seven", "please"]
    clip = make_clip_audio(words, voice_for_speaker(3), np.random.default_rng(0))
    assert isinstance(clip, ClipAudio) and clip.sr == 25000
    assert clip.audio.shape == (75000,) and clip.audio.dtype == np.float32
    spoken = [s for s in clip.words if s.label not in ("sil", "sp")]
    assert [s.label for s in spoken] == words
    first, last = spoken[0].start, spoken[-1].end
    assert 0.5 - 1e-6 <= first <= 1.0 and last <= 3.0 - MIN_TAIL + 1e-6
    sr = clip.sr
    before = clip.audio[: int((first - 0.02) * sr)]
    after = clip.audio[int((last + 0.05) * sr):]
    speech = clip.audio[int(first * sr): int(last * sr)]
    for quiet in (before, after):
        assert 10 ** (-52 / 20) < _rms(quiet) < 10 ** (-38 / 20)  # light noise, not digital silence
    assert _rms(speech) > 10 * _rms(before)
    # alignment: sil ... sil, contiguous over [0, 3]
    assert clip.words[0].label == "sil" and clip.words[-1].label == "sil"
    assert clip.words[0].start == 0.0 and clip.words[-1].end == 3.0
    for a, b in zip(clip.words, clip.words[1:], strict=False):
        assert a.end == b.start and a.end > a.start
    assert parse_align(format_align(clip.words)) == clip.words
    # phonemes in clip time, inside their words
    assert clip.phonemes[0].start >= first - 1e-9 and clip.phonemes[-1].end <= last + 1e-9


def test_clip_is_deterministic_given_the_rng_seed():
    v = voice_for_speaker(2)
    a = make_clip_audio(SENTENCE, v, np.random.default_rng(5))
    b = make_clip_audio(SENTENCE, v, np.random.default_rng(5))
    c = make_clip_audio(SENTENCE, v, np.random.default_rng(6))
    assert np.array_equal(a.audio, b.audio) and a.words == b.words and a.phonemes == b.phonemes
    assert not np.array_equal(a.audio, c.audio)


def test_too_long_sentences_are_sped_up_not_truncated():
    words = ["place", "white", "with", "x", "seven", "please"]
    slow = make_voice("en-us", "m1", 50, 80)
    clip = make_clip_audio(words, slow, np.random.default_rng(0), duration=2.0)
    assert clip.audio.shape == (50000,)
    assert clip.voice is not None and clip.voice.rate > slow.rate
    spoken = [s for s in clip.words if s.label not in ("sil", "sp")]
    assert [s.label for s in spoken] == words and spoken[-1].end <= 2.0 - MIN_TAIL + 1e-6
    assert clip.words[-1] == Segment(clip.words[-1].start, 2.0, "sil")


def test_complete_alignment_inserts_sp_only_for_real_pauses():
    w = [Segment(0.6, 0.9, "bin"), Segment(0.92, 1.2, "blue"), Segment(1.3, 1.5, "at")]
    out = complete_alignment(w, 3.0)
    assert [s.label for s in out] == ["sil", "bin", "blue", "sp", "at", "sil"]
    assert out[1] == Segment(0.6, 0.92, "bin")  # a 20 ms gap is given to the previous word
    assert all(a.end == b.start for a, b in zip(out, out[1:], strict=False))


def test_sp_tokens_appear_in_some_clips():
    labels = []
    for seed in range(12):
        clip = make_clip_audio(SENTENCE, voice_for_speaker(seed + 1), np.random.default_rng(seed))
        labels += [s.label for s in clip.words]
        sps = [s for s in clip.words if s.label == "sp"]
        assert all(s.duration > 0.03 for s in sps)
    assert "sp" in labels


def _synth_in_worker(args: tuple[list[str], dict]) -> tuple[bytes, list[Segment]]:
    words, voice = args
    u = synthesize(words, make_voice(**voice))
    return u.audio.tobytes(), u.words


def test_worker_processes_initialise_their_own_engine():
    v = voice_for_speaker(4)
    here = synthesize(SENTENCE, v)  # parent initialised first: a forked child inherits that state
    for method in ("fork", "spawn"):
        with mp.get_context(method).Pool(1) as pool:
            audio, words = pool.map(_synth_in_worker, [(SENTENCE, asdict(v))])[0]
        assert audio == here.audio.tobytes() and words == here.words
