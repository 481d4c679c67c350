"""The foundation: profiles, the runs/ layout, the GRID grammar, .align files, media I/O, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autalk import media, profiles
from autalk.cli import main
from autalk.corpus import align, grammar
from autalk.nbcheck import problems

ROOT = Path(__file__).resolve().parents[1]


def test_profiles_share_keys_and_differ_in_size():
    smoke, quick, paper = (profiles.load_profile(p) for p in profiles.PROFILES)
    assert set(smoke) == set(quick) == set(paper), "every profile must define the same flat keys"
    assert smoke["profile"] == "smoke" and paper["image_size"] == 112
    assert smoke["corpus_speakers"] * smoke["corpus_clips"] < quick["corpus_speakers"] * quick["corpus_clips"]
    for p in (smoke, quick, paper):
        assert all(isinstance(v, (int, float, str, bool)) for v in p.values()), "profile values must be flat"


def test_unknown_profile_names_the_choices():
    with pytest.raises(profiles.MissingResourceError, match="smoke, quick, paper"):
        profiles.load_profile("nope")


def test_require_names_the_notebook_to_run_first(tmp_path):
    with pytest.raises(profiles.MissingStageError, match="00_teaching_corpus.ipynb"):
        profiles.require(tmp_path / "missing.json", stage="00_corpus", profile="smoke")
    (tmp_path / "there.json").write_text("{}")
    assert profiles.require(tmp_path / "there.json", stage="00_corpus") == tmp_path / "there.json"


def test_grid_ids_round_trip_over_the_grammar():
    rng = np.random.default_rng(0)
    for _ in range(200):
        words = grammar.sample_sentence(rng)
        assert grammar.words_from_id(grammar.sentence_id(words)) == words
    assert grammar.sentence_id("bin blue at f two now".split()) == "bbaf2n"
    assert grammar.words_from_id("bbaw2n") is None  # no 'w' in GRID's letters
    with pytest.raises(ValueError, match="not a valid word"):
        grammar.sentence_id("bin blue at f two later".split())


def test_real_grid_alignment_parses_and_matches_its_id(fixtures_dir):
    for path in sorted((fixtures_dir / "real" / "grid" / "s1" / "align").glob("*.align")):
        segs = align.read_align(path)
        assert segs[0].label == "sil" and segs[-1].label == "sil"
        assert align.words_of(segs) == grammar.words_from_id(path.stem)
        assert align.parse_align(align.format_align(segs)) == segs


def test_malformed_alignment_is_a_clear_error():
    with pytest.raises(ValueError, match="x.align:2"):
        align.parse_align("0 100 sil\n100 abc bin\n", source="x.align")


def test_video_round_trip_keeps_frames_and_audio(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.zeros((10, 48, 64, 3), np.uint8)
    frames[:, 10:30, 20:40] = rng.integers(0, 255, 3, dtype=np.uint8)  # a flat coloured square
    audio = (0.3 * np.sin(2 * np.pi * 440 * np.arange(10000) / 25000)).astype(np.float32)
    media.write_video(tmp_path / "a.mpg", frames, fps=25, audio=audio, sr=25000)
    back, fps = media.read_video(tmp_path / "a.mpg")
    assert back.shape == frames.shape and fps == 25
    assert np.abs(back.astype(int) - frames).mean() < 6
    sound = media.read_audio(tmp_path / "a.mpg", sr=16000)
    assert abs(len(sound) / 16000 - 0.4) < 0.1 and np.abs(sound).max() > 0.1


def test_media_rejects_bad_files(tmp_path):
    (tmp_path / "empty.mpg").write_bytes(b"")
    (tmp_path / "junk.mpg").write_bytes(np.random.default_rng(0).bytes(2000))
    for name in ("empty.mpg", "junk.mpg", "absent.mpg"):
        with pytest.raises(ValueError):
            media.read_video(tmp_path / name)
    with pytest.raises(ValueError, match="frames must be"):
        media.write_video(tmp_path / "x.mpg", np.zeros((3, 8, 8), np.uint8))


def test_notebook_checker_flags_outputs(tmp_path):
    nb = {"metadata": {"kernelspec": {"name": "python3"}}, "cells": [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "x = 1", "outputs": [],
         "execution_count": None},
        {"cell_type": "code", "metadata": {}, "source": "x", "outputs": [{"output_type": "stream"}],
         "execution_count": 3}]}
    p = tmp_path / "nb.ipynb"
    p.write_text(json.dumps(nb))
    msgs = problems(p)
    assert any("outputs" in m for m in msgs) and any("execution count" in m for m in msgs)


def test_committed_notebooks_are_clean():
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert problems(nb) == [], nb.name


def test_cli_lists_corpus_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "corpus" in capsys.readouterr().out
