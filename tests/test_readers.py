"""Corpus readers: real GRID clips, and a fixture corpus with every kind of broken piece."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from autalk.corpus.align import Segment, format_align, read_align, words_of
from autalk.corpus.grammar import words_from_id
from autalk.data.readers import list_clips, load_clip_av, resample_frames
from autalk.media import write_video, write_wav
from autalk.openface import write_openface_csv
from autalk.profiles import MissingResourceError

REAL_GRID = Path(__file__).parent / "fixtures" / "real" / "grid"
W, H = 64, 48


def _frames(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(1, H, W, 3), dtype=np.uint8)
    ramp = np.arange(n, dtype=np.uint8)[:, None, None, None] * 4  # frame k is distinguishable
    return base // 2 + ramp


def _tone(seconds: float, sr: int) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _align_text(words: list[str]) -> str:
    segs = [Segment(0.0, 0.1, "sil")]
    for i, w in enumerate(words):
        segs.append(Segment(0.1 + 0.1 * i, 0.2 + 0.1 * i, w))
    segs.append(Segment(0.7, 1.0, "sil"))
    return format_align(segs)


def _write_align(path: Path, clip_id: str, words_of_id: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_align_text(words_from_id(words_of_id or clip_id)))


def _dummy_video(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x01\xba" + b"x" * 64)  # enough for listing, which never decodes


@pytest.fixture(scope="module")
def broken_grid(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("grid")
    s3 = root / "s3"
    (s3 / "video").mkdir(parents=True)
    (s3 / "audio").mkdir()
    # 25 frames = 1.0 s, with a real MP2 track inside the .mpg (as GRID).
    for k, cid in enumerate(["bbaf2n", "lgir8n", "swao4n"]):
        write_video(s3 / "video" / f"{cid}.mpg", _frames(25, k), fps=25, audio=_tone(1.0, 25000), sr=25000)
        _write_align(s3 / "align" / f"{cid}.align", cid)
    write_wav(s3 / "audio" / "bbaf2n.wav", _tone(1.0, 44100), 44100)  # other sample rate
    write_wav(s3 / "audio" / "swao4n.wav", _tone(0.5, 16000), 16000)  # shorter than the video
    # lgir8n: no wav although the speaker has an audio folder
    (s3 / "video" / "pbin9a.mpg").write_bytes(b"")  # empty
    (s3 / "video" / "sgbz1p.mpg").write_bytes(np.random.default_rng(1).bytes(4000))  # corrupt
    _write_align(s3 / "align" / "sgbz1p.align", "sgbz1p", words_of_id="lrbk7s")  # one mismatching align
    # s4: an align folder holding another speaker's aligns under these ids (words do not match).
    for cid, other in [("bbaf2n", "pwij3a"), ("lgir8n", "srbv5s"), ("swao4n", "lbiu6n")]:
        _dummy_video(root / "s4" / "video" / f"{cid}.mpg")
        _write_align(root / "s4" / "align" / f"{cid}.align", cid, words_of_id=other)
    # s5/s6: Zenodo-style swap, alignments/s5 holds s6's aligns and vice versa.
    ids = {"s5": ["bgaa1a", "bgab2a", "bgac3a"], "s6": ["pria4n", "prib5n", "pric6n"]}
    for spk, other in (("s5", "s6"), ("s6", "s5")):
        for cid in ids[spk]:
            _dummy_video(root / spk / f"{cid}.mpg")  # videos directly in sN/ (Zenodo zips)
        for cid in ids[other]:
            _write_align(root / "alignments" / spk / f"{cid}.align", cid)
    # s21: alignments but no video.
    _write_align(root / "s21" / "align" / "bbaf2n.align", "bbaf2n")
    # Teaching-corpus AU ground truth for one clip.
    (s3 / "au").mkdir()
    write_openface_csv(s3 / "au" / "bbaf2n.csv", np.zeros((25, 5)), np.zeros((25, 5)))
    return root


def test_real_grid_clips():
    clips, problems = list_clips("grid", REAL_GRID)
    assert problems == []
    assert [c.clip_id for c in clips] == ["bbaf2n", "lgir8n", "swao4n"]
    for c in clips:
        assert c.speaker == "s1" and c.align is not None and c.audio is None
        assert words_of(read_align(c.align)) == words_from_id(c.clip_id)
    frames, audio, notes = load_clip_av(clips[0], fps=25, sr=16000)
    assert frames.shape == (75, 288, 360, 3) and frames.dtype == np.uint8
    assert audio.dtype == np.float32 and 2.9 < len(audio) / 16000 < 3.05
    assert np.abs(audio).max() > 0.01  # real speech, not silence
    assert any("audio taken from the video container" in n for n in notes)


def test_broken_grid_listing(broken_grid):
    clips, problems = list_clips("grid", broken_grid)
    by = {(c.speaker, c.clip_id): c for c in clips}
    reasons = {(p["speaker"], p["clip_id"]): p["reason"] for p in problems}
    # empty video skipped at listing time, with the reason
    assert ("s3", "pbin9a") not in by and "empty video" in reasons[("s3", "pbin9a")]
    # s21: no video -> no clips, one problem
    assert not any(c.speaker == "s21" for c in clips) and "no video" in reasons[("s21", "*")]
    # single mismatching align: only that clip's align is dropped
    assert by[("s3", "sgbz1p")].align is None
    assert any("alignment dropped" in n for n in by[("s3", "sgbz1p")].notes)
    assert all(by[("s3", c)].align is not None for c in ("bbaf2n", "lgir8n", "swao4n"))
    # missing wav noted at listing time
    assert by[("s3", "lgir8n")].audio is None and any("wav missing" in n for n in by[("s3", "lgir8n")].notes)
    # s4: misassigned folder (words vs ids) -> all its aligns dropped, reported
    assert "misassigned" in reasons[("s4", "*")]
    assert all(by[("s4", c)].align is None for c in ("bbaf2n", "lgir8n", "swao4n"))
    assert all(any("misassigned" in n for n in by[("s4", c)].notes) for c in ("bbaf2n", "lgir8n", "swao4n"))
    # s5/s6: swapped folders (ids do not match the videos) -> the right folder is found and used
    for spk, other in (("s5", "s6"), ("s6", "s5")):
        spk_clips = [c for c in clips if c.speaker == spk]
        assert len(spk_clips) == 3
        assert all(c.align is not None and c.align.parent.name == other for c in spk_clips)
        assert f"using align folder of '{other}'" in reasons[(spk, "*")]
    # deterministic natural order
    assert [c.speaker for c in clips] == sorted([c.speaker for c in clips], key=lambda s: int(s[1:]))
    assert list_clips("grid", broken_grid)[0] == clips


def test_broken_grid_loading(broken_grid):
    clips, _ = list_clips("grid", broken_grid, speakers=["s3"])
    by = {c.clip_id: c for c in clips}
    # 44.1 kHz wav: resampled to sr
    frames, audio, notes = load_clip_av(by["bbaf2n"], sr=16000)
    assert frames.shape == (25, H, W, 3)
    assert abs(len(audio) - 16000) <= 2 and any("44100 -> 16000" in n for n in notes)
    # missing wav: audio from the .mpg
    _, audio, notes = load_clip_av(by["lgir8n"], sr=16000)
    assert abs(len(audio) / 16000 - 1.0) < 0.1 and any("video container" in n for n in notes)
    # short wav: audio from the .mpg instead
    _, audio, notes = load_clip_av(by["swao4n"], sr=16000)
    assert len(audio) / 16000 > 0.9 and any("wav shorter than video" in n for n in notes)
    # corrupt video: a ValueError naming the clip
    with pytest.raises(ValueError, match="s3/sgbz1p"):
        load_clip_av(by["sgbz1p"])


def test_speaker_filter_max_per_speaker_and_synthgrid(broken_grid):
    clips, problems = list_clips("synthgrid", broken_grid, speakers=["3", "s99"], max_per_speaker=2)
    assert [c.clip_id for c in clips] == ["bbaf2n", "lgir8n"] and {c.corpus for c in clips} == {"synthgrid"}
    assert clips[0].au_csv is not None and clips[0].au_csv.name == "bbaf2n.csv"
    assert clips[1].au_csv is None and any("AU ground-truth" in n for n in clips[1].notes)
    assert any(p["speaker"] == "s99" and "not found" in p["reason"] for p in problems)
    with pytest.raises(MissingResourceError, match="not found"):
        list_clips("grid", broken_grid / "nowhere")
    with pytest.raises(ValueError, match="unknown corpus"):
        list_clips("lrs3", broken_grid)


def test_tcd_layout_30fps_to_25fps(tmp_path):
    d = tmp_path / "volunteers" / "01M" / "Clips" / "straightcam"
    d.mkdir(parents=True)
    write_video(d / "sa1.mp4", _frames(30), fps=30, audio=_tone(1.0, 16000), sr=16000, codec="h264")
    (tmp_path / "volunteers" / "02M" / "Clips").mkdir(parents=True)  # speaker without straightcam clips
    clips, problems = list_clips("tcd", tmp_path)
    assert [(c.speaker, c.clip_id) for c in clips] == [("01M", "sa1")]
    assert problems and problems[0]["speaker"] == "02M"
    frames, audio, notes = load_clip_av(clips[0], fps=25, sr=16000)
    assert frames.shape[0] == 25  # 30 frames @ 30 fps = 1 s -> 25 frames @ 25 fps
    assert any("30.000 -> 25 fps" in n for n in notes)
    assert abs(len(audio) / 16000 - 1.0) < 0.1


def test_resample_frames_nearest():
    src = np.arange(90).reshape(90, 1, 1, 1)
    out = resample_frames(src, 30.0, 25.0)
    assert out.shape[0] == 75
    # output frame k at time k/25 shows the source frame nearest to it: round(k * 30 / 25)
    assert out[:6, 0, 0, 0].tolist() == [0, 1, 2, 4, 5, 6]


def test_folder_corpus(tmp_path):
    src, silent = tmp_path / "src.mp4", tmp_path / "silent.mp4"
    write_video(src, _frames(10), fps=25, audio=_tone(0.4, 16000), sr=16000, codec="h264")
    write_video(silent, _frames(10), fps=25, codec="h264")
    for rel in ["spkB/clip2.mp4", "spkA/clip10.mp4", "spkA/clip2.mp4", "spkA/notes.txt",
                "w1/train/a.mp4", "w2/train/a.mp4"]:
        (tmp_path / "root" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(silent if rel.startswith("spkB") else src, tmp_path / "root" / rel)
    (tmp_path / "root" / "spkB" / "empty.mkv").write_bytes(b"")
    clips, problems = list_clips("folder", tmp_path / "root")
    assert [(c.speaker, c.clip_id) for c in clips] == [
        ("spkA", "clip2"), ("spkA", "clip10"), ("spkB", "clip2"),
        ("train", "w1__train__a.mp4"), ("train", "w2__train__a.mp4"),  # same speaker name and stem
    ]
    assert problems == [{"speaker": "spkB", "clip_id": "empty", "reason": problems[0]["reason"]}]
    frames, audio, _ = load_clip_av(clips[0])
    assert frames.shape == (10, H, W, 3) and len(audio) > 0
    # a clip without any audio track: clear error naming it
    with pytest.raises(ValueError, match="spkB/clip2: no usable audio"):
        load_clip_av(clips[2])
