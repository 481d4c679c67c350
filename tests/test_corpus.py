"""The teaching corpus builder: GRID layout, determinism, resumability, bad input, lip timing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from autalk.cli import main
from autalk.corpus import align, build, grammar
from autalk.media import read_audio, read_video, read_wav
from autalk.openface import read_openface_csv

VOWELS = ("a", "e", "i", "o", "u", "@", "3", "A", "E", "I", "O", "U", "V")


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus") / "synthgrid"
    summary = build.build_corpus(out, speakers=2, clips=3, seed=0, workers=2, progress=False)
    assert summary["built"] == 6 and summary["skipped"] == 0
    return out


def test_grid_layout_and_formats(small_corpus):
    clips = build.list_corpus(small_corpus)
    assert list(clips) == ["s1", "s2"] and all(len(v) == 3 for v in clips.values())
    meta = json.loads((small_corpus / "corpus.json").read_text())
    assert meta["n_clips"] == 6 and meta["seed"] == 0 and meta["aus"] == [10, 14, 20, 25, 26]
    for spk, ids in clips.items():
        assert (small_corpus / spk / "speaker.json").is_file()
        for cid in ids:
            d = small_corpus / spk
            frames, fps = read_video(d / "video" / f"{cid}.mpg")
            assert frames.shape == (75, 288, 360, 3) and fps == 25
            wav, sr = read_wav(d / "audio" / f"{cid}.wav")
            assert sr == 25000 and len(wav) == 75000
            sound = read_audio(d / "video" / f"{cid}.mpg", sr=25000)  # GRID keeps audio inside the .mpg
            assert abs(len(sound) - 75000) < 2500 and np.abs(sound).max() > 0.05
            segs = align.read_align(d / "align" / f"{cid}.align")
            assert align.words_of(segs) == grammar.words_from_id(cid)
            assert segs[0].label == "sil" and segs[-1].label == "sil"
            assert segs[0].start == 0 and abs(segs[-1].end - 3.0) < 1e-6
            gaps = [(a, b) for a, b in zip(segs, segs[1:], strict=False) if a.end != b.start]
            assert not gaps, f"gaps in the alignment: {gaps}"
            aus = read_openface_csv(d / "au" / f"{cid}.csv")
            assert aus.intensity.shape == (75, 5) and aus.valid.all()
            assert aus.intensity.min() >= 0 and aus.intensity.max() <= 5
            assert not list(d.glob("*/*.tmp"))


def test_speakers_are_distinct_and_speak(small_corpus):
    a = build.load_clip(small_corpus, "s1", build.list_corpus(small_corpus)["s1"][0])
    b = build.load_clip(small_corpus, "s2", build.list_corpus(small_corpus)["s2"][0])
    assert np.abs(a.frames[0].astype(int) - b.frames[0]).mean() > 10, "two speakers look the same"
    # the mouth moves: AU25 varies over the clip and is near zero in the leading silence
    assert a.intensity[:, 3].max() > 2 and a.intensity[:3, 3].max() < 0.5
    # frames are not static (speech, blinks, head motion)
    assert np.abs(np.diff(a.frames.astype(np.int16), axis=0)).mean() > 0.2


def test_same_seed_same_corpus_and_prefix_stable(small_corpus, tmp_path):
    other = build.build_corpus(tmp_path / "c", speakers=1, clips=2, seed=0, workers=1, progress=False)
    assert other["built"] == 2
    ids = build.list_corpus(tmp_path / "c")["s1"]
    assert ids == build.list_corpus(small_corpus)["s1"][: len(ids)] or set(ids) <= set(
        build.list_corpus(small_corpus)["s1"])
    for cid in ids:
        for sub, ext in (("audio", "wav"), ("align", "align"), ("au", "csv"), ("phonemes", "phn")):
            assert (tmp_path / "c/s1" / sub / f"{cid}.{ext}").read_bytes() == (
                small_corpus / "s1" / sub / f"{cid}.{ext}").read_bytes(), f"{sub} differs"
        f1, _ = read_video(tmp_path / "c/s1/video" / f"{cid}.mpg")
        f2, _ = read_video(small_corpus / "s1/video" / f"{cid}.mpg")
        assert np.array_equal(f1, f2)


def test_rerun_skips_complete_and_repairs_partial_clips(tmp_path):
    out = tmp_path / "c"
    build.build_corpus(out, speakers=1, clips=2, seed=3, workers=1, progress=False)
    cid = build.list_corpus(out)["s1"][0]
    (out / "s1/au" / f"{cid}.csv").unlink()  # as if killed before the last rename
    (out / "s1/video" / "junk.mpg.tmp").write_bytes(b"half")
    again = build.build_corpus(out, speakers=1, clips=2, seed=3, workers=1, progress=False)
    assert again["built"] == 1 and again["skipped"] == 1
    assert (out / "s1/au" / f"{cid}.csv").is_file() and not list(out.glob("s1/*/*.tmp"))


def test_other_seed_in_same_folder_is_refused(tmp_path):
    build.build_corpus(tmp_path / "c", speakers=1, clips=1, seed=0, workers=1, progress=False)
    with pytest.raises(ValueError, match="seed 0"):
        build.build_corpus(tmp_path / "c", speakers=1, clips=1, seed=1, workers=1, progress=False)


@pytest.mark.parametrize("args, message", [
    (["--speakers", "0"], "--speakers must be between"),
    (["--clips", "0"], "--clips must be between"),
    (["--voices", "robot9"], "unknown voice 'robot9'"),
    (["--workers", "0"], "--workers must be at least 1"),
])
def test_cli_bad_arguments(tmp_path, capsys, args, message):
    assert main(["corpus", "--out", str(tmp_path / "c"), "--quiet", *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_cli_unwritable_folder(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    assert main(["corpus", "--out", str(ro / "c"), "--quiet"]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_cli_unwritable_folder_under_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("a file, not a folder")
    assert main(["corpus", "--out", str(tmp_path / "f" / "c"), "--quiet"]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_cli_builds(tmp_path, capsys):
    assert main(["corpus", "--out", str(tmp_path / "c"), "--speakers", "1", "--clips", "1",
                 "--workers", "1", "--quiet"]) == 0
    assert "1 speakers, 1 clips" in capsys.readouterr().out


def test_full_size_plan_is_valid():
    jobs = build.plan("/nonexistent", speakers=33, clips=1000, seed=0)
    assert len(jobs) == 33000
    for s in (1, 17, 33):
        ids = [j.clip_id for j in jobs if j.speaker == s]
        assert len(set(ids)) == 1000, "clip ids must be unique within a speaker"


def test_mouth_opens_during_vowels_within_one_frame(small_corpus):
    """dlib's inner-lip gap on the rendered frames opens during every clear vowel (+-1 frame)."""
    import dlib

    from autalk.dlibmodels import model_path

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(model_path("landmarks68")))
    checked = 0
    for spk, ids in build.list_corpus(small_corpus).items():
        clip = build.load_clip(small_corpus, spk, ids[0])
        boxes = detector(clip.frames[0], 0)
        assert len(boxes) == 1
        gaps = []
        for frame in clip.frames:
            pts = predictor(frame, boxes[0])
            top = np.mean([pts.part(i).y for i in (61, 62, 63)])
            bottom = np.mean([pts.part(i).y for i in (67, 66, 65)])
            gaps.append(bottom - top)
        gaps = np.array(gaps)
        closed = np.median(gaps[:5])  # leading silence: lips together
        for ph in clip.phonemes:
            if not ph.label.startswith(VOWELS) or ph.duration < 0.1:
                continue
            k0, k1 = int(ph.start * 25), int(np.ceil(ph.end * 25))
            window = gaps[max(0, k0 - 1): k1 + 1]
            assert window.max() > closed + 2, f"{spk}/{clip.clip_id}: mouth shut during {ph}"
            checked += 1
    assert checked >= 4
