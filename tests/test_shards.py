"""Sharded preprocessing (``--shard K/N``) and ``--merge``: the merged cache equals an unsharded run's."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from autalk.cli import main as cli_main
from autalk.data import cache
from autalk.preprocess import AU_DETECTOR_FILE, merge_shards, parse_shard, preprocess_corpus, shard_speakers


def _close(a, b, where: str = "") -> None:
    """JSON-like values equal, floats to 1e-9 relative."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-9, abs=1e-12), where
    else:
        assert a == b, where


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The teaching corpus of test_au_calibration (5 speakers x 2 clips: 4 train, 1 test), preprocessed
    once unsharded and once as 2 shards (shard 1 by the CLI, shard 2 by the function) + a CLI merge."""
    from autalk.corpus.build import build_corpus

    tmp = tmp_path_factory.mktemp("shards")
    corpus = tmp / "corpus"
    build_corpus(corpus, speakers=5, clips=2, seed=0, workers=1, progress=False)
    whole = tmp / "whole"
    report = preprocess_corpus("synthgrid", corpus, whole, image_size=32, workers=1, progress=False)
    merged = tmp / "sharded"
    rc = cli_main(["preprocess", "--corpus", "synthgrid", "--root", str(corpus), "--image-size", "32",
                   "--workers", "1", "--quiet", "--shard", "1/2", "--out", str(merged / "shard-1-of-2")])
    assert rc == 0
    shard2 = preprocess_corpus("synthgrid", corpus, merged / "shard-2-of-2", image_size=32, workers=1,
                               progress=False, shard="2/2")
    assert cli_main(["preprocess", "--merge", "--out", str(merged)]) == 0  # finds the shards below --out
    return tmp, corpus, whole, report, merged, shard2


def test_shards_split_the_speakers_not_the_split(runs):
    _, _, whole, report, merged, shard2 = runs
    shard1 = _json(merged / "shard-1-of-2" / "shard-1-of-2.json")
    assert shard1["shard"]["speakers"] == ["s1", "s3", "s5"] and shard2["shard"]["speakers"] == ["s2", "s4"]
    split_of = {(c["speaker"], c["clip_id"]): c["split"] for c in cache.read_manifest(whole)["clips"]}
    for rep in (shard1, shard2):
        assert rep["splits"] == report["splits"]  # the whole corpus's split, not the shard's
        assert rep["speakers"] == ["s1", "s2", "s3", "s4", "s5"]
        assert {c["speaker"] for c in rep["clips"]} == set(rep["shard"]["speakers"])
        for c in rep["clips"]:
            assert c["split"] == split_of[(c["speaker"], c["clip_id"])]
    # a shard writes no whole-corpus file
    for d in ("shard-1-of-2", "shard-2-of-2"):
        for name in (cache.MANIFEST, cache.NORM, cache.REPORT, AU_DETECTOR_FILE):
            assert not (merged / d / name).exists(), (d, name)
    assert shard1["clips_kept"] + shard2["clips_kept"] == report["clips_kept"] == 10


def test_merged_cache_equals_the_unsharded_one(runs):
    _, _, whole, report, merged, _ = runs
    _close(_json(whole / cache.MANIFEST), _json(merged / cache.MANIFEST), "manifest")
    _close(_json(whole / cache.NORM), _json(merged / cache.NORM), "norm")
    assert (whole / AU_DETECTOR_FILE).is_file()
    _close(_json(whole / AU_DETECTOR_FILE), _json(merged / AU_DETECTOR_FILE), "au_detector")
    rep = _json(merged / cache.REPORT)
    for key in ("splits", "split_source", "clips_listed", "clips_kept", "clips_dropped", "frames_kept",
                "kept_per_split", "dropped", "decisions", "au_sources", "au_detector", "au_detector_fitted",
                "detector_agreement", "au_occurrence_rates", "au_loss_weights", "clips_processed_now"):
        _close(report[key], rep[key], key)
    assert rep["merge"] == {"clips_linked": 10, "clips_copied": 0, "clips_already_in_place": 0}
    assert [s["index"] for s in rep["shards"]] == [1, 2]
    # clip files are hard links to the shards' files, in the usual layout
    for c in cache.read_manifest(merged)["clips"]:
        k = 1 if c["speaker"] in ("s1", "s3", "s5") else 2
        assert os.path.samefile(merged / c["path"], merged / f"shard-{k}-of-2" / c["path"])


def test_merge_in_a_shared_out_and_again(runs, tmp_path):
    """Shards sharing one --out (clip files already in place); merging twice changes nothing."""
    _, _, whole, _, merged, _ = runs
    shared = tmp_path / "shared"
    for k in (1, 2):
        shutil.copytree(merged / f"shard-{k}-of-2", shared, dirs_exist_ok=True)
    rep = merge_shards([shared], shared)
    assert rep["merge"] == {"clips_linked": 0, "clips_copied": 0, "clips_already_in_place": 10}
    _close(_json(whole / cache.MANIFEST)["clips"], _json(shared / cache.MANIFEST)["clips"])
    linked = tmp_path / "linked"
    dirs = [merged / "shard-1-of-2", merged / "shard-2-of-2"]
    assert merge_shards(dirs, linked)["merge"]["clips_linked"] == 10
    again = merge_shards(dirs, linked)
    assert again["merge"] == {"clips_linked": 0, "clips_copied": 0, "clips_already_in_place": 10}
    _close(_json(whole / cache.NORM), _json(linked / cache.NORM))


def test_merge_copies_where_it_cannot_link(runs, tmp_path, monkeypatch):
    _, _, whole, _, merged, _ = runs

    def no_link(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    rep = merge_shards([merged], tmp_path / "copied")
    assert rep["merge"] == {"clips_linked": 0, "clips_copied": 10, "clips_already_in_place": 0}
    c = cache.read_manifest(tmp_path / "copied")["clips"][0]
    assert not os.path.samefile(tmp_path / "copied" / c["path"], merged / c["path"])
    _close(_json(whole / cache.MANIFEST), _json(tmp_path / "copied" / cache.MANIFEST))
    assert merge_shards([merged], tmp_path / "copied")["merge"]["clips_already_in_place"] == 10


def test_shard_speakers_and_parse():
    spk = ["s10", "s2", "s1", "s3"]
    assert shard_speakers(spk, 1, 2) == ["s1", "s3"] and shard_speakers(spk, 2, 2) == ["s2", "s10"]
    assert shard_speakers(spk, 1, 1) == ["s1", "s2", "s3", "s10"]
    assert parse_shard(" 3/8 ") == (3, 8) and parse_shard((1, 1)) == (1, 1) and parse_shard(None) is None


@pytest.mark.parametrize("value, message", [
    ("0/2", "K must be between 1 and 2"), ("3/2", "K must be between 1 and 2"), ("1/0", "N must be"),
    ("2", "--shard takes K/N"), ("a/b", "--shard takes K/N"), ("-1/2", "--shard takes K/N"),
    ("6/6", "shard 6/6 gets no speaker: the corpus has 5"),
])
def test_bad_shard_values_are_clear_cli_errors(runs, tmp_path, capsys, value, message):
    _, corpus, _, _, _, _ = runs
    rc = cli_main(["preprocess", "--corpus", "synthgrid", "--root", str(corpus), "--out", str(tmp_path / "o"),
                   "--quiet", f"--shard={value}"])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.glob("o/shard-*.json"))


def test_bad_merges_are_clear_cli_errors(runs, tmp_path, capsys):
    _, corpus, _, _, merged, _ = runs
    out = str(tmp_path / "m")
    assert cli_main(["preprocess", "--merge", str(merged / "shard-1-of-2"), "--out", out]) == 2
    assert "missing shard(s) 2/2" in capsys.readouterr().err
    assert cli_main(["preprocess", "--merge", str(tmp_path), "--out", out]) == 2
    assert "no shard-K-of-N.json" in capsys.readouterr().err
    assert cli_main(["preprocess", "--merge", "--shard", "1/2", "--out", out]) == 2
    assert "do not go together" in capsys.readouterr().err
    assert cli_main(["preprocess", "--merge", str(merged), "--corpus", "grid", "--out", out]) == 2
    assert "shards preprocessed synthgrid" in capsys.readouterr().err
    assert cli_main(["preprocess", "--shard", "1/2", "--out", out]) == 2
    assert "--corpus and --root are required" in capsys.readouterr().err
    assert not (tmp_path / "m" / cache.MANIFEST).exists()
