"""Published speaker splits and the deterministic 8:2 splitter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autalk.data.splits import assign, grid_split, load_split, natural_sorted, split_speakers, tcd_split

SPLITS = Path(__file__).resolve().parents[1] / "data" / "splits"


def test_published_files_match_their_definition():
    assert json.loads((SPLITS / "grid.json").read_text()) == grid_split()
    assert json.loads((SPLITS / "tcd.json").read_text()) == tcd_split()


def test_grid_split():
    g = load_split("grid")
    assert len(g["train"]) == 27 and len(g["test"]) == 6
    assert not set(g["train"]) & set(g["test"])
    assert set(g["train"]) | set(g["test"]) == {f"s{i}" for i in range(1, 35)} - {"s21"}
    assert g["test"] == ["s1", "s2", "s20", "s22", "s23", "s24"]
    found = assign(["s01", "s3", "s21", "s22"], g)
    assert found == {"train": ["s3"], "test": ["s01", "s22"], "unassigned": ["s21"]}


def test_tcd_split_by_number():
    t = load_split("tcd")
    assert len(t["train"]) == 49 and len(t["test"]) == 10
    found = assign(["01M", "02M", "07F", "59F", "Lipspkr1"], "tcd")
    assert found == {"train": ["02M", "59F"], "test": ["01M", "07F"], "unassigned": ["Lipspkr1"]}


def test_split_speakers_deterministic_and_disjoint():
    spk = [f"s{i}" for i in range(1, 11)]
    a = split_speakers(spk, seed=0)
    assert len(a["test"]) == 2 and len(a["train"]) == 8
    assert not set(a["train"]) & set(a["test"]) and set(a["train"]) | set(a["test"]) == set(spk)
    assert split_speakers(list(reversed(spk)), seed=0) == a  # order of the input does not matter
    assert a["train"] == natural_sorted(a["train"])  # natural order: s2 before s10
    assert split_speakers(["s1", "s2"]) in (
        {"train": ["s1"], "test": ["s2"]}, {"train": ["s2"], "test": ["s1"]}
    )
    assert any(split_speakers(spk, seed=s) != a for s in range(1, 6))  # the seed matters
    with pytest.raises(ValueError, match="at least 2 speakers"):
        split_speakers(["s1", "s1"])


def test_load_split_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no split named"):
        load_split("lrs3")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"train": ["s1"], "test": ["s1"]}))
    with pytest.raises(ValueError, match="both train and test"):
        load_split(str(bad))


def test_published_teaching_corpus_split_matches_the_rule():
    """data/splits/synthgrid.json lists, for each profile's corpus size, what split_speakers computes."""
    import json

    from autalk.data.splits import split_speakers
    from autalk.profiles import load_profile, project_root

    published = json.loads((project_root() / "data" / "splits" / "synthgrid.json").read_text())
    for name, entry in published["profiles"].items():
        n = load_profile(name)["corpus_speakers"]
        assert entry["speakers"] == n, f"{name}: profile has {n} speakers, the split file {entry['speakers']}"
        computed = split_speakers([f"s{i}" for i in range(1, n + 1)], test_fraction=0.2, seed=0)
        assert entry["train"] == computed["train"] and entry["test"] == computed["test"]
        assert not set(entry["train"]) & set(entry["test"])
