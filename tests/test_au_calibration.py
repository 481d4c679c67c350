"""Calibration of the landmark AU detector inside preprocessing: fitted on the train speakers' CSV
labels, saved as au_detector.json, evaluated on the held-out test speakers; --au-detector for corpora
without CSVs (real GRID fixtures)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autalk.au import AUDetector, agreement, default_detector
from autalk.cli import main as cli_main
from autalk.data import cache
from autalk.preprocess import AU_DETECTOR_FILE, preprocess_corpus

REAL = Path(__file__).parent / "fixtures" / "real" / "grid"


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """A small teaching corpus (5 speakers x 2 clips: 4 train, 1 test) preprocessed once."""
    from autalk.corpus.build import build_corpus

    tmp = tmp_path_factory.mktemp("calib")
    build_corpus(tmp / "corpus", speakers=5, clips=2, seed=0, workers=1, progress=False)
    out = tmp / "cache"
    report = preprocess_corpus("synthgrid", tmp / "corpus", out, image_size=32, workers=1, progress=False)
    return tmp, out, report


def _clips(out: Path, split: str) -> list[dict]:
    return [c for c in cache.read_manifest(out)["clips"] if c["split"] == split]


def test_fitted_detector_saved_with_provenance(calibrated):
    _, out, report = calibrated
    path = out / AU_DETECTOR_FILE
    assert report["au_detector_fitted"] == AU_DETECTOR_FILE and path.is_file()
    det = AUDetector.load(path)
    train = _clips(out, "train")
    assert det.info["fitted_on_speakers"] == report["splits"]["train"] and len(report["splits"]["train"]) == 4
    assert det.info["held_out_speakers"] == report["splits"]["test"]
    assert det.info["n_frames"] == sum(c["n_frames"] for c in train) == 600
    assert det.info["n_clips"] == len(train) == 8
    assert "not validated on real faces" in det.info["caveat"]
    fitted = report["detector_agreement"]["fitted"]
    assert fitted["fingerprint"] == det.fingerprint() != default_detector().fingerprint()
    assert fitted["speakers"] == report["splits"]["train"] and fitted["n_frames"] == 600
    json.loads(path.read_text())  # strict JSON (no NaN)


def test_agreement_default_on_all_fitted_on_test_only(calibrated):
    _, out, report = calibrated
    ag = report["detector_agreement"]
    test = _clips(out, "test")
    n_test = sum(c["n_frames"] for c in test)
    assert ag["default_rules"]["n_frames"] == report["frames_kept"] == 750
    assert ag["default_rules"]["n_clips"] == 10
    for key in ("fitted_on_train", "default_rules_on_test"):
        assert ag[key]["speakers"] == report["splits"]["test"], key
        assert ag[key]["n_frames"] == n_test == 150 and ag[key]["n_clips"] == len(test) == 2, key
        assert ag[key]["evaluated_on"].startswith("test speakers"), key
    assert not set(ag["fitted_on_train"]["speakers"]) & set(ag["fitted"]["speakers"])
    # recompute the held-out numbers independently: the saved detector on the test clips' landmarks
    det = AUDetector.load(out / AU_DETECTOR_FILE)
    pred, ref, true = [], [], []
    for c in test:
        d = cache.load_clip(out / c["path"], keys=("landmarks", "au_presence"))
        pred.append(det.predict(d["landmarks"])[1])  # neutral = the clip's first frame
        ref.append(default_detector().predict(d["landmarks"])[1])
        true.append(d["au_presence"])
    mine = agreement(np.concatenate(pred), np.concatenate(true))
    assert ag["fitted_on_train"]["avg_f1"] == pytest.approx(mine["avg_f1"])
    for au, v in mine["per_au"].items():
        assert ag["fitted_on_train"]["per_au"][au]["tp"] == v["tp"], au
        assert ag["fitted_on_train"]["per_au"][au]["fp"] == v["fp"], au
    rules = agreement(np.concatenate(ref), np.concatenate(true))
    assert ag["default_rules_on_test"]["avg_f1"] == pytest.approx(rules["avg_f1"])


def test_fitted_beats_the_hand_set_rules_held_out(calibrated):
    _, _, report = calibrated
    ag = report["detector_agreement"]
    fit, rules = ag["fitted_on_train"], ag["default_rules_on_test"]
    print(f"held-out mean F1: rules {rules['avg_f1']:.3f}, fitted {fit['avg_f1']:.3f}")
    # measured 0.41 -> 0.62 on this corpus (0.36 -> 0.60, 0.48 -> 0.58 for corpus seeds 1, 2)
    assert fit["avg_f1"] >= rules["avg_f1"] + 0.05
    # the rules never find the dimpler (AU14, F1 0 on every corpus seed tried); the fit does
    assert fit["per_au"]["AU14"]["f1"] > rules["per_au"]["AU14"]["f1"]
    assert fit["per_au"]["AU25"]["f1"] > 0.85  # lips parting stays easy


def test_resumed_run_refits_from_the_cache(calibrated):
    tmp, out, report = calibrated
    before = (out / AU_DETECTOR_FILE).read_text()
    (out / AU_DETECTOR_FILE).unlink()
    again = preprocess_corpus("synthgrid", tmp / "corpus", out, image_size=32, workers=1, progress=False)
    assert again["clips_processed_now"] == 0 and again["clips_resumed_from_cache"] == 10
    assert (out / AU_DETECTOR_FILE).read_text() == before  # same cache, same fit
    assert again["detector_agreement"]["fitted_on_train"] == report["detector_agreement"]["fitted_on_train"]


def test_au_detector_option_labels_a_corpus_without_csvs(calibrated, tmp_path, capsys):
    _, out, _ = calibrated
    fitted_path = out / AU_DETECTOR_FILE
    det = AUDetector.load(fitted_path)
    grid = tmp_path / "grid"
    rc = cli_main(["preprocess", "--corpus", "grid", "--root", str(REAL), "--out", str(grid),
                   "--image-size", "32", "--workers", "1", "--quiet", "--au-detector", str(fitted_path)])
    assert rc == 0
    capsys.readouterr()
    report = json.loads((grid / "report.json").read_text())
    assert report["au_sources"] == {"landmark-detector": 3}
    assert report["au_detector"]["fingerprint"] == det.fingerprint()
    assert report["au_detector"]["path"] == str(fitted_path)
    assert report["detector_agreement"] is None and report["au_detector_fitted"] is None
    assert not (grid / AU_DETECTOR_FILE).exists()  # nothing to fit on without CSVs
    for p in sorted(grid.glob("clips/s1/*.npz")):
        a = cache.load_clip(p, keys=("landmarks", "au_presence", "au_intensity", "au_from_detector"))
        assert a["meta"]["au_detector"] == {"source": det.source, "path": str(fitted_path),
                                            "fingerprint": det.fingerprint()}
        assert a["au_from_detector"].all()
        inten, pres = det.predict(a["landmarks"])  # the labels are the fitted detector's
        np.testing.assert_array_equal(a["au_presence"], pres)
        np.testing.assert_allclose(a["au_intensity"], inten, atol=1e-6)
    # without the option the clips are redone with the hand-set rules (the cache was labelled otherwise)
    back = preprocess_corpus("grid", REAL, grid, image_size=32, workers=1, progress=False)
    assert back["clips_redone_for_au_detector"] == 3 and back["clips_resumed_from_cache"] == 0
    assert back["au_detector"]["fingerprint"] == default_detector().fingerprint()
    meta = cache.read_meta(grid / "clips" / "s1" / "bbaf2n.npz")
    assert meta["au_detector"]["source"] == "default hand-set rules" and meta["au_detector"]["path"] is None
    with pytest.raises(FileNotFoundError, match="AU detector"):
        preprocess_corpus("grid", REAL, grid, au_detector=tmp_path / "missing.json", progress=False)


def test_au_detector_that_calibration_would_overwrite_is_refused(calibrated):
    tmp, out, _ = calibrated
    before = (out / AU_DETECTOR_FILE).read_bytes()
    with pytest.raises(ValueError, match="calibration writes"):
        preprocess_corpus("synthgrid", tmp / "corpus", out, image_size=32, workers=1, progress=False,
                          au_detector=out / AU_DETECTOR_FILE)
    assert (out / AU_DETECTOR_FILE).read_bytes() == before
