"""Synthetic GRID speech: libespeak-ng (through ``espeakng-loader``) driven with ctypes.

GRID itself cannot be downloaded here, so the teaching corpus speaks its sentences with eSpeak NG.
Each speaker gets one :class:`Voice` (an English language voice, a voice variant, pitch, pitch range
and speaking rate). Timings come from the library's own events, not from a forced aligner:

* word events (``espeakEVENT_WORD`` = 1) carry the word's character position in the text we sent,
  which maps each event back to one of the six GRID words;
* phoneme events (``espeakEVENT_PHONEME`` = 7, enabled with ``espeakINITIALIZE_PHONEME_EVENTS``)
  carry eSpeak's phoneme mnemonic (``'b'``, ``"'I"``, ``'aI'``, ``'t#'``...) in ``id.string``;
* every event carries ``sample``, its position in the output in samples (``audio_position`` is
  the same in ms; we use the sample count, which is exact).

Conventions of the timings we derive (all in seconds):

* A stop's closure is silent and has no event of its own (eSpeak emits the event at the release),
  so the gap between a word event and the word's first phoneme event is given to that first
  phoneme, and a phoneme ends where the next phoneme, word or pause event starts. Words are
  therefore ``[word event, end of its last phoneme]``, contiguous unless a pause sits between them.
* Pause phonemes (``_``, ``_:``, ``_!``...) are not phonemes of :class:`Utterance`; they are gaps.

:func:`make_clip_audio` turns an utterance into a GRID-like clip: 25 kHz mono float32, exactly
``duration`` seconds, leading silence of 0.5-1.0 s (random per clip), trailing silence, an
occasional short pause in a stop closure between words (so ``sp`` tokens occur as in GRID) and
light background noise at -50..-40 dBFS. Its ``words`` are a complete ``sil``/word/``sp``
alignment over ``[0, duration]`` ready for :func:`autalk.corpus.align.format_align`.

Determinism and processes: eSpeak NG's wave generator keeps state in statics that no API call
resets, so a sentence's samples would depend on what the process synthesised before. Each call
therefore maps a fresh copy of the library (dlopen, ``espeak_Initialize``, synthesize,
``espeak_Terminate``, dlclose; ~5 ms) with its random seed set (``espeak_ng_SetRandSeed(0)``):
synthesis is a pure function of (words, voice), identical in every process. The per-process
binding (paths, callback, lock) is created lazily; every ``fork``-ed or ``spawn``-ed
multiprocessing worker has its own, and calls within a process are serialised by a lock.
Everything random in a clip comes from the caller's ``numpy`` generator.
"""

from __future__ import annotations

import ctypes
import math
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.signal import lfilter, resample_poly

from autalk.corpus.align import ALIGN_RATE, Segment

ESPEAK_SR = 22050  # libespeak-ng's output rate

# Language voices (eSpeak NG names). "en-gb" is accepted and spoken with eSpeak's "en" (British).
LANGUAGES: tuple[str, ...] = (
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-us-nyc", "en-029", "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)
_ESPEAK_LANGUAGE = {"en-gb": "en"}
# Voice variants (espeak-ng-data/voices/!v): the plain male and female ones.
MALE_VARIANTS: tuple[str, ...] = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8")
FEMALE_VARIANTS: tuple[str, ...] = ("f1", "f2", "f3", "f4", "f5")
VOICES: tuple[str, ...] = MALE_VARIANTS + FEMALE_VARIANTS

RATE_RANGE = (80, 450)  # espeakRATE limits, words per minute
PITCH_RANGE = (0, 100)  # espeakPITCH / espeakRANGE limits

# How the six GRID words are written for eSpeak. Single letters are read as letter names, except
# "a", which would be read as the article /@/ (and merged with "at"): "eigh" gives /eI/.
_SPOKEN = {"a": "eigh"}

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EV_LIST_TERMINATED, _EV_WORD, _EV_END, _EV_PHONEME = 0, 1, 5, 7
_P_RATE, _P_VOLUME, _P_PITCH, _P_RANGE, _P_WORDGAP = 1, 2, 3, 4, 7
_STRESS_MARKS = "',%="


# ----------------------------------------------------------------------------------------- voices
@dataclass(frozen=True)
class Voice:
    """One speaker's eSpeak NG voice. All fields are plain ints/strings (JSON-serialisable).

    ``pitch`` and ``pitch_range`` are eSpeak's 0-100 parameters (50 = the variant's default),
    ``rate`` is in words per minute (eSpeak's default is 175).
    """

    language: str
    variant: str
    pitch: int
    rate: int
    pitch_range: int

    @property
    def espeak_name(self) -> str:
        """The name passed to ``espeak_SetVoiceByName``, e.g. ``en-us+m3``."""
        return f"{_ESPEAK_LANGUAGE.get(self.language, self.language)}+{self.variant}"

    def to_dict(self) -> dict[str, int | str]:
        return asdict(self)


def make_voice(language: str, variant: str, pitch: int, rate: int, pitch_range: int = 50) -> Voice:
    """Build a validated :class:`Voice`; unknown language/variant or out-of-range numbers raise ValueError."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown language voice {language!r}; valid: {', '.join(LANGUAGES)}")
    if variant not in VOICES:
        raise ValueError(f"unknown voice variant {variant!r}; valid: {', '.join(VOICES)}")
    for name, value, (lo, hi) in (("pitch", pitch, PITCH_RANGE), ("pitch_range", pitch_range, PITCH_RANGE),
                                  ("rate", rate, RATE_RANGE)):
        if not isinstance(value, int | np.integer) or not lo <= int(value) <= hi:
            raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return Voice(language, variant, int(pitch), int(rate), int(pitch_range))


def voice_for_speaker(speaker: int, seed: int = 0) -> Voice:
    """The voice of speaker ``speaker`` (1..N): deterministic in ``(speaker, seed)``.

    Speakers take (language, variant) pairs from a seed-dependent shuffle of all
    ``len(LANGUAGES) * len(VOICES)`` = 104 pairs, so the first 104 speakers all differ in language
    voice or variant (GRID's 33 usable talkers easily fit); pitch, pitch range and rate are drawn
    per speaker around eSpeak's defaults (rate 130-170 wpm: GRID talkers speak a sentence in
    about 1.3-2 s).
    """
    if int(speaker) < 1:
        raise ValueError(f"speaker indices start at 1, got {speaker}")
    speaker = int(speaker)
    pairs = [(lang, var) for var in VOICES for lang in LANGUAGES]
    order = np.random.default_rng([int(seed), 0x5EED]).permutation(len(pairs))
    language, variant = pairs[int(order[(speaker - 1) % len(pairs)])]
    rng = np.random.default_rng([int(seed), speaker])
    pitch = int(rng.integers(30, 71))
    pitch_range = int(rng.integers(35, 76))
    rate = int(rng.integers(130, 171))
    return make_voice(language, variant, pitch, rate, pitch_range)


# ---------------------------------------------------------------------------------- ctypes binding
class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` (speak_lib.h): 6 ints, a pointer, an 8-byte union -> 40 bytes on 64-bit."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


# t_espeak_callback: int (short *wav, int numsamples, espeak_EVENT *events)
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


class _Engine:
    """This process's binding to libespeak-ng (lazily created, one per process; calls serialised).

    eSpeak NG's wave generator keeps state in function-level statics that no API call resets
    (the pitch-flutter table index, the echo buffer, the glottal phase...), so with one long-lived
    initialisation the samples of a sentence depend on everything synthesised before it in the
    process (we measured lengths varying by tens of samples between identical calls). To make
    synthesis a pure function of (text, voice), every call maps a fresh copy of the library:
    ``dlopen`` -> ``espeak_Initialize`` -> synthesize -> ``espeak_Terminate`` -> ``dlclose``
    (about 5 ms a sentence).
    """

    def __init__(self) -> None:
        import espeakng_loader

        self.lib_path = espeakng_loader.get_library_path()
        self.data_path = espeakng_loader.get_data_path()
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, str]] = []
        self._callback = _CALLBACK(self._on_synth)  # keep a reference: the library holds the pointer
        self.lock = threading.Lock()
        self.pid = os.getpid()

    def _open(self) -> ctypes.CDLL:
        lib = ctypes.CDLL(self.lib_path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Terminate.restype = ctypes.c_int
        sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(),
                                   _INIT_PHONEME_EVENTS)
        if sr != ESPEAK_SR:
            self._close(lib)
            raise RuntimeError(f"espeak_Initialize failed or returned an unexpected rate ({sr})")
        lib.espeak_SetSynthCallback(self._callback)
        return lib

    @staticmethod
    def _close(lib: ctypes.CDLL) -> None:
        import _ctypes

        try:
            lib.espeak_Terminate()
        finally:
            _ctypes.dlclose(lib._handle)

    def _on_synth(self, wav, n, events) -> int:  # noqa: ANN001 - ctypes callback
        try:
            if n > 0 and wav:
                self._chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
            i = 0
            while events[i].type != _EV_LIST_TERMINATED:
                ev = events[i]
                label = ""
                if ev.type == _EV_PHONEME:
                    label = bytes(ev.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
                self._events.append((int(ev.type), int(ev.text_position), int(ev.sample), label))
                i += 1
        except Exception:  # never let an exception cross into C
            return 1
        return 0

    def synth(self, text: str, voice: Voice) -> tuple[np.ndarray, list[tuple[int, int, int, str]]]:
        """Synthesize ``text``; the caller holds ``self.lock``."""
        lib = self._open()
        try:
            if lib.espeak_SetVoiceByName(voice.espeak_name.encode()) != 0:
                raise RuntimeError(f"libespeak-ng cannot load voice {voice.espeak_name!r}")
            for param, value in ((_P_RATE, voice.rate), (_P_PITCH, voice.pitch),
                                 (_P_RANGE, voice.pitch_range), (_P_VOLUME, 100), (_P_WORDGAP, 0)):
                lib.espeak_SetParameter(param, int(value), 0)
            lib.espeak_ng_SetRandSeed(0)
            self._chunks, self._events = [], []
            data = text.encode("utf-8")
            buf = ctypes.create_string_buffer(data)
            err = lib.espeak_Synth(buf, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if err != 0:
                raise RuntimeError(f"espeak_Synth failed with error {err}")
        finally:
            self._close(lib)
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        events, self._chunks, self._events = self._events, [], []
        return audio, events


_ENGINE: _Engine | None = None
_ENGINE_GUARD = threading.Lock()


def _engine() -> _Engine:
    global _ENGINE
    with _ENGINE_GUARD:
        if _ENGINE is None:
            _ENGINE = _Engine()
        elif _ENGINE.pid != os.getpid():
            # forked child: a lock held by another parent thread at fork time would never be released.
            _ENGINE.lock = threading.Lock()
            _ENGINE.pid = os.getpid()
        return _ENGINE


def espeak_data_path() -> Path:
    """Where the eSpeak NG data (voices, dictionaries) used here lives."""
    import espeakng_loader

    return Path(espeakng_loader.get_data_path())


# ------------------------------------------------------------------------------------- synthesis
@dataclass
class Utterance:
    """One synthesized sentence. ``audio``: float32 in [-1, 1] at ``sr`` (22,050 Hz); ``words``
    (the GRID words, in order) and ``phonemes`` (eSpeak mnemonics, stress marks removed) are
    segments in seconds from the utterance start."""

    audio: np.ndarray
    sr: int
    words: list[Segment]
    phonemes: list[Segment]

    @property
    def speech_end(self) -> float:
        return self.words[-1].end if self.words else 0.0


def _clean_phoneme(ph: str) -> str:
    return ph.lstrip(_STRESS_MARKS)


def _is_pause(ph: str) -> bool:
    return ph.startswith("_")


def synthesize(words: list[str], voice: Voice) -> Utterance:
    """Speak ``words`` with ``voice``; word and phoneme timings from libespeak-ng's events."""
    if not words:
        raise ValueError("nothing to say: empty word list")
    spoken = [_SPOKEN.get(w.lower(), w.lower()) for w in words]
    offsets, pos = [], 0
    for s in spoken:
        offsets.append(pos)
        pos += len(s) + 1
    text = " ".join(spoken)

    eng = _engine()
    with eng.lock:
        pcm, events = eng.synth(text, voice)
    audio = pcm.astype(np.float32) / 32768.0
    total = len(audio) / ESPEAK_SR

    def word_index(text_position: int) -> int:  # espeak's text positions are 1-based
        c = text_position - 1
        for i in range(len(spoken) - 1, -1, -1):
            if offsets[i] <= c:
                return i
        return 0

    # Boundaries in order: ("word", i, t) / ("ph", label, t) / ("pause", label, t) / ("end", t)
    marks: list[tuple[str, object, float]] = []
    for etype, text_pos, sample, label in events:
        t = sample / ESPEAK_SR
        if etype == _EV_WORD:
            marks.append(("word", word_index(text_pos), t))
        elif etype == _EV_PHONEME:
            marks.append(("pause" if _is_pause(label) else "ph", _clean_phoneme(label), t))
        elif etype == _EV_END:
            marks.append(("end", None, t))
    marks.append(("end", None, total))

    # Phoneme starts: the event time, except that a word event strictly between the previous
    # phoneme/pause event and a word's first phoneme (a silent stop closure) starts that phoneme.
    # A word event at the same time as the previous word's last phoneme is ignored (eSpeak does
    # that before vowel-initial words: "m eight" -> the word event sits at the /m/).
    starts: list[tuple[int, float, str]] = []  # (index into marks, start, label)
    word_of: list[int] = []
    current: int | None = None
    word_t: float | None = None
    prev_t = -math.inf
    for k, (kind, value, t) in enumerate(marks):
        if kind == "word":
            idx = int(value)  # type: ignore[arg-type]
            if current is not None and idx < current:
                raise RuntimeError(f"eSpeak word events out of order for {words}")
            if idx != current:
                current, word_t = idx, t
        elif kind == "ph" and current is not None:
            start = word_t if word_t is not None and prev_t < word_t < t else t
            starts.append((k, start, str(value)))
            word_of.append(current)
            word_t = None
            prev_t = t
        elif kind == "pause":
            prev_t = t
    phonemes: list[Segment] = []
    word_start: dict[int, float] = {}
    word_end: dict[int, float] = {}
    for j, (k, start, label) in enumerate(starts):
        # end: the next phoneme's start if it comes before any pause/end event, else that event.
        t_next = next(m[2] for m in marks[k + 1:] if m[0] in ("pause", "end", "ph"))
        nxt_kind = next(m[0] for m in marks[k + 1:] if m[0] in ("pause", "end", "ph"))
        end = starts[j + 1][1] if nxt_kind == "ph" and j + 1 < len(starts) else t_next
        end = max(end, start)
        phonemes.append(Segment(start, end, label))
        word_start.setdefault(word_of[j], start)
        word_end[word_of[j]] = end
    missing = [words[i] for i in range(len(words)) if i not in word_end]
    if missing:
        raise RuntimeError(f"libespeak-ng gave no word/phoneme events for {missing} in {words}")
    segs = [Segment(word_start[i], word_end[i], words[i]) for i in range(len(words))]
    return Utterance(audio=audio, sr=ESPEAK_SR, words=segs, phonemes=phonemes)


# ------------------------------------------------------------------------------------------ clips
@dataclass
class ClipAudio:
    """A GRID-like clip: ``audio`` (``duration * sr`` samples, float32), ``words`` a complete
    ``sil``/word/``sp`` alignment over ``[0, duration]``, ``phonemes`` in clip time (seconds)."""

    audio: np.ndarray
    sr: int
    words: list[Segment]
    phonemes: list[Segment]
    voice: Voice | None = None  # the voice actually used (rate may be raised to fit)


LEAD_RANGE = (0.5, 1.0)  # seconds of silence before speech, uniform per clip
MIN_TAIL = 0.3  # at least this much silence after the last word
SP_MIN = 0.03  # inter-word gaps longer than this become "sp"
PAUSE_PROB = 0.15  # chance of a short pause in a silent stop closure at each word boundary
PAUSE_RANGE = (0.05, 0.15)
NOISE_DBFS = (-50.0, -40.0)
SPEECH_RMS_DBFS = (-23.0, -17.0)


def _resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return x.astype(np.float32)
    g = math.gcd(sr_in, sr_out)
    return resample_poly(x, sr_out // g, sr_in // g).astype(np.float32)


def _q(t: float) -> float:
    """Snap a time to the .align grid (1/25000 s) so alignments survive format/parse exactly."""
    return round(t * ALIGN_RATE) / ALIGN_RATE


def _insert_pauses(utt: Utterance, rng: np.random.Generator) -> tuple[np.ndarray, list[float]]:
    """Lengthen silent stop closures at some word boundaries. Returns audio and per-word shifts (s)."""
    shifts = [0.0] * len(utt.words)
    pieces, last, acc = [], 0, 0.0
    for i in range(1, len(utt.words)):
        draw = rng.random()
        dur = float(rng.uniform(*PAUSE_RANGE))
        b = int(round(utt.words[i].start * utt.sr))
        win = utt.audio[b: b + int(0.01 * utt.sr)]
        silent = win.size > 0 and float(np.max(np.abs(win))) < 1e-3
        if draw < PAUSE_PROB and silent:
            pieces += [utt.audio[last:b], np.zeros(int(round(dur * utt.sr)), np.float32)]
            last = b
            acc += int(round(dur * utt.sr)) / utt.sr
        shifts[i] = acc
    pieces.append(utt.audio[last:])
    return np.concatenate(pieces), shifts


def make_clip_audio(words: list[str], voice: Voice, rng: np.random.Generator, duration: float = 3.0,
                    sr: int = 25000) -> ClipAudio:
    """Speak a sentence into a GRID-like clip of exactly ``duration`` seconds at ``sr`` Hz.

    Leading silence is drawn from 0.5-1.0 s; if the sentence does not fit (with at least
    ``MIN_TAIL`` s after it), the lead is shortened towards 0.5 s, then inserted pauses are
    dropped, and if it still does not fit the voice's rate is raised and the sentence
    resynthesized (never truncated). ``ClipAudio.voice`` records the rate used.
    """
    n_total = int(round(duration * sr))
    lead = float(rng.uniform(*LEAD_RANGE))
    gain_db = float(rng.uniform(*SPEECH_RMS_DBFS))
    noise_db = float(rng.uniform(*NOISE_DBFS))
    pause_seed = int(rng.integers(2**63))  # same pause draws on every retry
    noise_rng = np.random.default_rng(rng.integers(2**63))

    v = voice
    for _ in range(12):
        utt = synthesize(words, v)
        audio22, shifts = _insert_pauses(utt, np.random.default_rng(pause_seed))
        speech_len = utt.speech_end + shifts[-1]
        if speech_len > duration - LEAD_RANGE[0] - MIN_TAIL:
            audio22, shifts = utt.audio, [0.0] * len(utt.words)
            speech_len = utt.speech_end
        budget = duration - LEAD_RANGE[0] - MIN_TAIL
        if speech_len <= budget:
            break
        if v.rate >= RATE_RANGE[1]:
            raise ValueError(f"{words} does not fit in {duration} s even at the fastest rate")
        # eSpeak's durations are not exactly proportional to 1 / rate: aim 5% faster than needed.
        faster = int(math.ceil(v.rate * max(1.1, 1.05 * speech_len / budget)))
        v = make_voice(v.language, v.variant, v.pitch, min(RATE_RANGE[1], faster), v.pitch_range)
    else:  # pragma: no cover - the rate reaches its maximum well before 12 tries
        raise ValueError(f"{words} does not fit in {duration} s")
    lead = min(lead, duration - MIN_TAIL - speech_len)
    lead = round(lead * sr) / sr

    # Speech level: RMS over the voiced part, to a per-clip level.
    speech = _resample(audio22, utt.sr, sr)
    active = np.abs(speech) > 1e-3
    rms = float(np.sqrt(np.mean(speech[active] ** 2))) if active.any() else 1.0
    speech = speech * (10 ** (gain_db / 20) / max(rms, 1e-6))
    peak = float(np.max(np.abs(speech))) if speech.size else 0.0
    if peak > 0.95:
        speech *= 0.95 / peak

    out = np.zeros(n_total, np.float32)
    i0 = int(round(lead * sr))
    n = min(speech.size, n_total - i0)
    out[i0:i0 + n] = speech[:n]
    # Background noise: gently low-passed white noise at a fixed RMS (GRID's booth hum/hiss).
    noise = lfilter([1.0], [1.0, -0.6], noise_rng.standard_normal(n_total))
    noise *= 10 ** (noise_db / 20) / float(np.sqrt(np.mean(noise**2)))
    out = np.clip(out + noise.astype(np.float32), -1.0, 1.0).astype(np.float32)

    # Timings in clip time: word i moved by lead + the pauses inserted before it.
    word_segs = [Segment(_q(lead + w.start + s), _q(lead + w.end + s), w.label)
                 for w, s in zip(utt.words, shifts, strict=True)]
    phonemes: list[Segment] = []
    wi = 0
    for p in utt.phonemes:
        while wi + 1 < len(utt.words) and p.start >= utt.words[wi + 1].start - 1e-9:
            wi += 1
        s = shifts[wi]
        phonemes.append(Segment(_q(lead + p.start + s), _q(lead + p.end + s), p.label))
    return ClipAudio(audio=out, sr=sr, words=complete_alignment(word_segs, duration), phonemes=phonemes,
                     voice=v)


def complete_alignment(words: list[Segment], duration: float = 3.0, sp_min: float = SP_MIN) -> list[Segment]:
    """Fill a word list out to a GRID alignment over ``[0, duration]``: ``sil`` before the first and
    after the last word, ``sp`` for gaps longer than ``sp_min``; shorter gaps are given to the
    preceding word. The result is contiguous (each segment starts where the previous one ends)."""
    out: list[Segment] = []
    t = 0.0
    for i, w in enumerate(words):
        start = max(w.start, t)
        if i == 0:
            if start > 0:
                out.append(Segment(0.0, start, "sil"))
        elif start - t > sp_min:
            out.append(Segment(t, start, "sp"))
        elif start > t:
            prev = out.pop()
            out.append(Segment(prev.start, start, prev.label))
        end = max(w.end, start)
        out.append(Segment(start, end, w.label))
        t = end
    if t < duration:
        out.append(Segment(t, duration, "sil"))
    return out
