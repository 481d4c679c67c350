"""autalk.preprocess on the real GRID fixtures and on a corpus with broken clips; resume; the CLI."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from autalk import PAPER_AUS
from autalk import audio as A
from autalk.cli import main as cli_main
from autalk.data import cache
from autalk.data.dataset import ClipDataset
from autalk.media import read_video, write_video
from autalk.openface import write_openface_csv
from autalk.preprocess import preprocess_corpus

REAL = Path(__file__).parent / "fixtures" / "real" / "grid"
REAL_IDS = ("bbaf2n", "lgir8n", "swao4n")


def _csv(path: Path, t: int = 75, failed: int = 0, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    inten = rng.uniform(0, 3, (t, 5))
    success = np.ones(t, dtype=int)
    success[:failed] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    write_openface_csv(path, inten, (inten >= 1.5).astype(np.uint8), success=success)


@pytest.fixture(scope="module")
def broken_corpus(tmp_path_factory) -> Path:
    """A teaching-corpus layout (synthgrid) mixing good real GRID clips with broken ones."""
    root = tmp_path_factory.mktemp("corpus")

    def video(spk: str, cid: str) -> Path:
        p = root / spk / "video" / f"{cid}.mpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    # good clips (real GRID video with its MP2 audio inside)
    shutil.copy(REAL / "s1" / "video" / "bbaf2n.mpg", video("s1", "bbaf2n"))
    _csv(root / "s1" / "au" / "bbaf2n.csv", failed=5)  # 5 frames OpenFace "failed"
    shutil.copy(REAL / "s1" / "video" / "lgir8n.mpg", video("s1", "lgir8n"))  # no CSV: detector labels
    for spk in ("s2", "s3"):
        shutil.copy(REAL / "s1" / "video" / "swao4n.mpg", video(spk, "swao4n"))
        _csv(root / spk / "au" / "swao4n.csv", seed=int(spk[1:]))
    # broken clips
    video("s1", "bbac1a").write_bytes(b"")  # empty file
    video("s1", "bbad2a").write_bytes(np.random.default_rng(0).bytes(20000))  # corrupt
    shutil.copy(REAL / "s1" / "video" / "bbaf2n.mpg", video("s2", "bbae3a"))
    (root / "s2" / "au" / "bbae3a.csv").write_text("frame, face_id, timestamp, confidence, success\n"
                                                 "1, 0, 0.0, 0.98, 1\n")  # no AU columns
    noise = np.random.default_rng(1).integers(90, 140, (20, 288, 360, 3), dtype=np.uint8)
    write_video(video("s2", "bbaf4a"), noise, audio=np.zeros(20000, np.float32), sr=25000)  # no face
    frames, _ = read_video(REAL / "s1" / "video" / "lgir8n.mpg")
    # 1 s of audio for 3 s of video
    write_video(video("s3", "bbag5a"), frames, audio=np.zeros(25000, np.float32), sr=25000)
    return root


@pytest.fixture(scope="module")
def broken_run(broken_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("cache")
    report = preprocess_corpus("synthgrid", broken_corpus, out, image_size=32, workers=1, progress=False)
    return out, report


def test_broken_clips_are_skipped_with_reasons(broken_run):
    out, report = broken_run
    reasons = {d["clip_id"]: d["reason"] for d in report["dropped"]}
    assert set(reasons) == {"bbac1a", "bbad2a", "bbae3a", "bbaf4a", "bbag5a"}
    assert "empty" in reasons["bbac1a"]
    assert reasons["bbad2a"].startswith("unreadable media")
    assert reasons["bbae3a"].startswith("OpenFace CSV unusable") and "AU10_c" in reasons["bbae3a"]
    assert reasons["bbaf4a"].startswith("face detection failed")
    assert reasons["bbag5a"].startswith("audio shorter than video")
    assert report["clips_kept"] == 4 and report["clips_dropped"] == 5 and report["frames_kept"] == 300
    manifest = json.loads((out / "manifest.json").read_text())
    kept = sorted((e["speaker"], e["clip_id"]) for e in manifest["clips"])
    assert kept == [("s1", "bbaf2n"), ("s1", "lgir8n"), ("s2", "swao4n"), ("s3", "swao4n")]
    files = sorted(p.relative_to(out).as_posix() for p in out.glob("clips/*/*"))
    assert files == [f"clips/{s}/{c}.npz" for s, c in kept]  # nothing for the dropped clips
    assert json.loads((out / "report.json").read_text())["clips_kept"] == 4


def test_au_sources_and_counted_decisions(broken_run):
    out, report = broken_run
    dec = report["decisions"]
    assert dec["openface_frames_dropped"] == 5
    assert dec["au_frames_from_detector"] == 75 + 5  # lgir8n entirely, 5 failed frames of bbaf2n
    assert dec["au_frames_from_csv"] == 3 * 75 - 5
    assert dec["audio_from_video"] == 4
    assert dec["frames"] == 300
    assert report["au_sources"] == {"openface-csv": 3, "landmark-detector": 1}
    a = cache.load_clip(out / "clips" / "s1" / "bbaf2n.npz")
    assert a["meta"]["au_source"] == "openface-csv"
    assert a["au_from_detector"].tolist() == [1] * 5 + [0] * 70
    np.testing.assert_array_equal(a["au_presence"][:5], a["au_presence_detector"][:5])
    b = cache.load_clip(out / "clips" / "s1" / "lgir8n.npz")
    assert b["meta"]["au_source"] == "landmark-detector" and "au_presence_detector" not in b
    assert a["frames"].shape == (75, 32, 32, 3) and a["frames"].dtype == np.uint8
    assert np.array_equal(a["identity"], a["frames"][0])
    assert a["mfcc"].shape == (75, 12, 28) and a["landmarks"].shape == (75, 68, 2)
    assert a["au_presence"].shape == (75, 5) and a["au_intensity"].dtype == np.float32
    # landmarks lie in crop coordinates
    assert 0 <= a["landmarks"].min() and a["landmarks"].max() <= 32
    rules = report["detector_agreement"]["default_rules"]  # hand-set rules on every CSV frame
    assert rules["n_clips"] == 3 and rules["n_frames"] == 3 * 75 - 5
    assert set(rules["per_au"]) == {f"AU{a:02d}" for a in PAPER_AUS}
    # the rules' cached labels (au_presence_detector) are what the report scores
    assert rules["per_au"]["AU25"]["n_pred"] == int(a["au_presence_detector"][5:, 3].sum()) + sum(
        int(cache.load_clip(out / "clips" / s / "swao4n.npz")["au_presence_detector"][:, 3].sum())
        for s in ("s2", "s3"))
    # every clip records the detector that labelled its non-CSV frames: the hand-set rules
    assert a["meta"]["au_detector"]["source"] == "default hand-set rules"
    assert report["au_detector"]["fingerprint"] == a["meta"]["au_detector"]["fingerprint"]


def test_splits_norm_and_weights_from_train_only(broken_run):
    out, report = broken_run
    m = json.loads((out / "manifest.json").read_text())
    train, test = m["splits"]["train"], m["splits"]["test"]
    assert sorted(train + test) == ["s1", "s2", "s3"] and len(test) == 1  # 8:2 of three speakers
    norm = A.NormStats.load(out / "norm.json")
    assert norm.speakers == train
    train_clips = [c for c in m["clips"] if c["split"] == "train"]
    raw = [cache.load_clip(out / c["path"], keys=["mfcc_raw"])["mfcc_raw"] for c in train_clips]
    ref = A.NormStats.from_mfccs(raw)
    np.testing.assert_allclose(norm.mean, ref.mean, rtol=1e-5)
    pres = np.concatenate([cache.load_clip(out / c["path"], keys=["au_presence"])["au_presence"]
                           for c in train_clips])
    np.testing.assert_allclose(list(m["au_occurrence_rates"].values()), pres.mean(axis=0), rtol=1e-6)
    w = np.array(list(m["au_loss_weights"].values()))
    assert w.mean() == pytest.approx(1.0)
    ds = ClipDataset(out, "train", seq_len=8, normalize=True)
    item = ds[0]
    assert item["frames"].shape == (8, 3, 32, 32) and item["mfcc"].shape == (8, 12, 28)
    assert item["frames"].min() >= -1 and item["frames"].max() <= 1
    whole = ClipDataset(out, "test", mode="whole")
    assert len(whole) == len(m["clips"]) - len(train_clips) and whole[0]["frames"].shape[0] == 75
    assert torch.isfinite(item["mfcc"]).all()


def test_resume_skips_completed_clips(broken_corpus, broken_run):
    out, _ = broken_run
    p = out / "clips" / "s1" / "lgir8n.npz"
    stamps = {q: q.stat().st_mtime_ns for q in out.glob("clips/*/*.npz")}
    p.unlink()
    (out / "clips" / "s1" / f"x{cache.TMP_MARK}junk.npz").write_bytes(b"debris of a killed run")
    report = preprocess_corpus("synthgrid", broken_corpus, out, image_size=32, workers=1, progress=False)
    assert report["clips_processed_now"] == 1 and report["clips_resumed_from_cache"] == 3
    assert report["clips_kept"] == 4 and report["temp_files_removed"] == 1
    for q, t in stamps.items():
        if q != p:
            assert q.stat().st_mtime_ns == t  # complete files untouched
    assert cache.is_complete(p)
    # aggregated numbers cover the resumed clips too
    assert report["decisions"]["openface_frames_dropped"] == 5 and report["frames_kept"] == 300


def test_resume_does_not_reuse_clips_of_another_corpus(tmp_path):
    """Same output folder, another corpus holding the same speaker/clip ids: nothing is reused."""
    out = tmp_path / "cache"
    first = preprocess_corpus("grid", REAL, out, image_size=32, workers=1, progress=False, calibrate=False)
    assert first["clips_processed_now"] == 3
    other = tmp_path / "other"
    shutil.copytree(REAL, other)
    again = preprocess_corpus("grid", other, out, image_size=32, workers=1, progress=False, calibrate=False)
    assert again["clips_processed_now"] == 3 and again["clips_resumed_from_cache"] == 0
    for cid in REAL_IDS:
        assert cache.read_meta(out / "clips" / "s1" / f"{cid}.npz")["video"].startswith(str(other))
    same = preprocess_corpus("grid", other, out, image_size=32, workers=1, progress=False, calibrate=False)
    assert same["clips_resumed_from_cache"] == 3
    # a clip rebuilt in place (same path, new file) is processed again, the others are reused
    video = other / "s1" / "video" / "bbaf2n.mpg"
    video.write_bytes(video.read_bytes())
    os.utime(video, ns=(video.stat().st_atime_ns, video.stat().st_mtime_ns + 10**9))
    rebuilt = preprocess_corpus("grid", other, out, image_size=32, workers=1, progress=False, calibrate=False)
    assert rebuilt["clips_processed_now"] == 1 and rebuilt["clips_resumed_from_cache"] == 2


def test_real_grid_two_workers_and_cli(tmp_path, capsys):
    out = tmp_path / "grid"
    rc = cli_main(["preprocess", "--corpus", "grid", "--root", str(REAL), "--out", str(out),
                   "--image-size", "48", "--workers", "2", "--quiet"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "3 kept" in text
    report = json.loads((out / "report.json").read_text())
    assert report["clips_kept"] == 3 and report["clips_dropped"] == 0
    assert report["splits"]["test"] == ["s1"]  # GRID's published split puts s1 in test
    for cid in REAL_IDS:
        a = cache.load_clip(out / "clips" / "s1" / f"{cid}.npz")
        assert a["frames"].shape == (75, 48, 48, 3)
        assert a["meta"]["au_source"] == "landmark-detector"
        assert a["detected"].sum() >= 14  # HOG found the real face on the sampled frames
        # crops are faces, not background: the mouth landmarks sit in the lower half, centred
        mouth = a["landmarks"][:, 48:68].mean(axis=(0, 1))
        assert 12 < mouth[0] < 36 and 24 < mouth[1] < 46
    missing = str(tmp_path / "none")
    assert cli_main(["preprocess", "--corpus", "grid", "--root", missing, "--out", str(out)]) == 2
    assert "not found" in capsys.readouterr().err
