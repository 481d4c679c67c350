"""Speaker-disjoint train/test splits, published as files under ``data/splits/``.

The paper trains on 27 GRID speakers and tests on 6 (8:2), and uses 49/10 TCD-TIMIT volunteers, but
does not list them. The splits here are **this project's choice**, fixed and published:

``grid.json``
    33 usable speakers (s1..s34 without s21, which has no video). Test: s1, s2, s20, s22 (the
    unseen-speaker test set of LipNet, Assael et al. 2016, widely reused on GRID) plus s23 and s24
    (the next two ids after s22) = 6; train: the other 27.
``tcd.json``
    TCD-TIMIT volunteers are folders ``01M, 02M, 03F, ...``: a number 01..59 plus a sex letter. The split
    is defined on the number, so it does not depend on the letters: test = volunteers whose number n
    has ``(n - 1) % 6 == 0`` (01, 07, 13, ..., 55: 10 volunteers, spread over the whole list), train =
    the other 49. The three lipspeakers are in neither list.

Speakers are matched on their number (``s01`` = ``s1``, ``07F`` = ``07``); see :func:`speaker_number`.
For the teaching corpus (or any other speaker list) :func:`split_speakers` computes a deterministic 8:2
split from the names alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

SPLIT_NAMES = ("grid", "tcd")

GRID_SPEAKERS: tuple[str, ...] = tuple(f"s{i}" for i in range(1, 35) if i != 21)
GRID_TEST: tuple[str, ...] = ("s1", "s2", "s20", "s22", "s23", "s24")
TCD_VOLUNTEER_NUMBERS: tuple[int, ...] = tuple(range(1, 60))
TCD_TEST_RULE = "(n - 1) % 6 == 0"


def natural_key(name: str) -> tuple:
    """Sort key with numbers compared as numbers: s2 < s10."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(name)))


def natural_sorted(names) -> list[str]:
    return sorted(names, key=natural_key)


def speaker_number(name: str) -> int | None:
    """The number in a speaker id (``s7`` -> 7, ``07F`` -> 7, ``Lipspkr1`` -> None: not a volunteer)."""
    m = re.fullmatch(r"[sS]?0*(\d+)[MFmf]?", str(name).strip())
    return int(m.group(1)) if m else None


def _hash_rank(seed: int, speaker: str) -> str:
    return hashlib.sha256(f"{seed}:{speaker}".encode()).hexdigest()


def split_speakers(speakers: list[str], test_fraction: float = 0.2, seed: int = 0) -> dict[str, list[str]]:
    """A deterministic speaker-disjoint split: ``{"train": [...], "test": [...]}`` (natural order).

    ``round(n * test_fraction)`` speakers (at least 1, at most n - 1) go to test: those with the smallest
    ``sha256(f"{seed}:{speaker}")``. The result depends only on the set of names and ``seed`` (not on
    their order, nor on the numpy version). Raises ``ValueError`` for fewer than 2 distinct speakers.
    """
    uniq = natural_sorted(set(map(str, speakers)))
    if len(uniq) < 2:
        raise ValueError(f"a speaker-disjoint split needs at least 2 speakers, got {len(uniq)}: {uniq}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = min(len(uniq) - 1, max(1, int(round(len(uniq) * test_fraction))))
    test = set(sorted(uniq, key=lambda s: _hash_rank(seed, s))[:n_test])
    return {"train": [s for s in uniq if s not in test], "test": [s for s in uniq if s in test]}


def grid_split() -> dict:
    """The published GRID split (the content of ``data/splits/grid.json``)."""
    test = list(GRID_TEST)
    return {
        "name": "grid",
        "corpus": "GRID audiovisual corpus (Cooke et al. 2006)",
        "choice": "this project's choice: the paper reports 27 train / 6 test speakers, not which",
        "rule": "test = s1, s2, s20, s22 (LipNet's unseen-speaker test set, Assael et al. 2016) + s23, s24; "
        "train = the other 27 of s1..s34 (s21 has no video)",
        "match": "number",
        "train": [s for s in GRID_SPEAKERS if s not in test],
        "test": test,
        "excluded": {"s21": "no video in GRID"},
    }


def tcd_split() -> dict:
    """The published TCD-TIMIT split (the content of ``data/splits/tcd.json``)."""
    test = [n for n in TCD_VOLUNTEER_NUMBERS if (n - 1) % 6 == 0]
    return {
        "name": "tcd",
        "corpus": "TCD-TIMIT (Harte & Gillen 2015), volunteers",
        "choice": "this project's choice: the paper reports 49 train / 10 test speakers, not which",
        "rule": f"volunteer folders are <nn><M|F> (01M..59F); with n = int(nn): test = {TCD_TEST_RULE} "
        "(01, 07, ..., 55), train = the other 49; lipspeakers excluded. Matched on the number only.",
        "match": "number",
        "train": [f"{n:02d}" for n in TCD_VOLUNTEER_NUMBERS if n not in test],
        "test": [f"{n:02d}" for n in test],
        "excluded": {"lipspeakers": "not volunteers; not used by the paper's split"},
    }


BUILTIN = {"grid": grid_split, "tcd": tcd_split}


def splits_dir() -> Path:
    """``data/splits`` of the project (``$AUTALK_ROOT`` or the repository holding this package)."""
    from autalk.profiles import project_root

    d = project_root() / "data" / "splits"
    if d.is_dir():
        return d
    return Path(__file__).resolve().parents[3] / "data" / "splits"  # src/autalk/data -> repo root


def save_split(split: dict, path: str | os.PathLike[str]) -> Path:
    """Write a split as pretty JSON (used to publish ``data/splits/*.json``)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(split, indent=2) + "\n")
    return p


def load_split(name: str) -> dict:
    """A published split by name (``"grid"``, ``"tcd"``) or a path to a split JSON file.

    Falls back to the built-in definition (identical to the published file) when ``data/splits`` is not
    available, e.g. for a non-editable install.
    """
    p = Path(name)
    if p.suffix == ".json" or os.sep in str(name):
        if not p.is_file():
            raise FileNotFoundError(f"split file {p} not found")
        return _check(json.loads(p.read_text()), str(p))
    f = splits_dir() / f"{name}.json"
    if f.is_file():
        return _check(json.loads(f.read_text()), str(f))
    if name in BUILTIN:
        return BUILTIN[name]()
    raise FileNotFoundError(f"no split named {name!r} (looked for {f}); published: {', '.join(SPLIT_NAMES)}")


def _check(split: dict, source: str) -> dict:
    for k in ("train", "test"):
        if not isinstance(split.get(k), list):
            raise ValueError(f"{source}: a split needs a '{k}' list")
    overlap = set(split["train"]) & set(split["test"])
    if overlap:
        raise ValueError(f"{source}: speakers in both train and test: {natural_sorted(overlap)}")
    return split


def assign(speakers: list[str], split: dict | str) -> dict[str, list[str]]:
    """Sort the speakers found on disk into ``{"train", "test", "unassigned"}`` (each natural-sorted).

    ``split`` is a split dict or a name for :func:`load_split`. With ``"match": "number"`` (the published
    splits) speakers are matched on :func:`speaker_number`, else by exact name.
    """
    if isinstance(split, str):
        split = load_split(split)
    by_number = split.get("match") == "number"

    def key(s: str):
        return speaker_number(s) if by_number else str(s)

    train = {key(s) for s in split["train"]}
    test = {key(s) for s in split["test"]}
    out: dict[str, list[str]] = {"train": [], "test": [], "unassigned": []}
    for s in natural_sorted(set(map(str, speakers))):
        k = key(s)
        if k is not None and k in test:
            out["test"].append(s)
        elif k is not None and k in train:
            out["train"].append(s)
        else:
            out["unassigned"].append(s)
    return out
