"""OpenFace CSV reader/writer: a real OpenFace file, our writer's output, header quirks, filtering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autalk import PAPER_AUS
from autalk.openface import read_openface_csv, write_openface_csv

REAL = Path(__file__).parent / "fixtures" / "real" / "openface" / "OpenFace_Test.csv"


def test_real_openface_csv():
    # Old-format file: leading-space names, no face_id, 431 columns; all five paper AUs present.
    au = read_openface_csv(REAL)
    assert au.intensity.shape == (100, 5) and au.intensity.dtype == np.float32
    assert au.presence.shape == (100, 5) and au.presence.dtype == np.uint8
    assert au.frame[0] == 1 and au.frame[-1] == 100
    assert au.timestamp[:3].tolist() == pytest.approx([0.0, 0.001, 0.002])
    assert not np.isnan(au.intensity).any()
    assert au.valid.all() and au.n_dropped == 0  # confidence 0.88..0.98, success 1 everywhere
    # AU26 is the only one with non-zero intensity in this file (max 0.3174).
    assert au.intensity[:, PAPER_AUS.index(26)].max() == pytest.approx(0.3174)
    assert "100 frames, all valid" in au.summary()
    # A stricter confidence threshold drops frames, counted and explained.
    strict = read_openface_csv(REAL, min_confidence=0.9)
    assert strict.n_dropped == 99 and strict.valid.sum() == 1
    assert "99 with confidence<0.9" in strict.summary()
    # AU28 has a presence column only: intensity is NaN.
    au28 = read_openface_csv(REAL, aus=(25, 28))
    assert np.isnan(au28.intensity[:, 1]).all() and not np.isnan(au28.intensity[:, 0]).any()


def test_round_trip_and_format(tmp_path):
    rng = np.random.default_rng(0)
    inten = np.round(rng.uniform(0, 5, size=(12, 5)), 4)
    pres = (inten > 1.5).astype(np.uint8)
    conf = np.full(12, 0.95)
    conf[3] = 0.5
    succ = np.ones(12, dtype=int)
    succ[7] = 0
    p = tmp_path / "clip.csv"
    write_openface_csv(p, inten, pres, fps=25.0, confidence=conf, success=succ)
    lines = p.read_text().splitlines()
    assert lines[0].startswith("frame, face_id, timestamp, confidence, success, AU10_r")
    assert lines[1].startswith("1, 0, 0.000, ") and lines[2].startswith("2, 0, 0.040, ")
    au = read_openface_csv(p)
    np.testing.assert_allclose(au.intensity, inten, atol=1e-4)
    np.testing.assert_array_equal(au.presence, pres)
    np.testing.assert_allclose(au.timestamp, np.arange(12) / 25.0)
    assert au.valid.tolist() == [i not in (3, 7) for i in range(12)]
    assert au.n_dropped == 2
    s = au.summary()
    assert "2 dropped" in s and "1 with success==0" in s and "1 with confidence<0.8" in s


def test_presence_only_au_written_without_r_column(tmp_path):
    p = tmp_path / "a.csv"
    write_openface_csv(p, np.ones((3, 2)), np.ones((3, 2)), aus=(26, 28))
    header = p.read_text().splitlines()[0].split(", ")
    assert "AU28_c" in header and "AU28_r" not in header and "AU26_r" in header
    au = read_openface_csv(p, aus=(26, 28))
    assert np.isnan(au.intensity[:, 1]).all() and au.presence.all()


def test_missing_au_columns_is_a_clear_error(tmp_path):
    p = tmp_path / "pose_only.csv"
    p.write_text("frame, face_id, timestamp, confidence, success, pose_Rx\n1, 0, 0.0, 0.9, 1, 0.1\n")
    with pytest.raises(ValueError, match=r"pose_only\.csv.*AU10_c.*AU26_r"):
        read_openface_csv(p)


def test_header_quirks_bom_extra_columns_and_multiface(tmp_path):
    cols = ["face_id", "frame", "gaze_0_x", "timestamp", "success", "confidence", "AU10_r", "AU10_c"]
    rows = [
        [1, 1, 0.3, 0.0, 1, 0.99, 4.0, 1],  # second face of frame 1: ignored
        [0, 1, 0.3, 0.0, 1, 0.99, 2.0, 1],
        [0, 2, 0.3, 0.04, 0, 0.1, 0.0, 0],
    ]
    text = ",".join(cols) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n\n"
    p = tmp_path / "multi.csv"
    p.write_bytes(b"\xef\xbb\xbf" + text.encode())
    au = read_openface_csv(p, aus=(10,))
    assert au.frame.tolist() == [1, 2]
    assert au.intensity[:, 0].tolist() == [2.0, 0.0]
    assert au.valid.tolist() == [True, False]
    assert any("multi-face" in n for n in au.notes)
