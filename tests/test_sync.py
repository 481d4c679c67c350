"""autalk.sync: our lip-sync expert (not the public SyncNet weights) and LSE-D / LSE-C.

Unit tests on hand-made inputs and the tiny cache, then the acceptance test: trained on the training
speakers of a small teaching corpus, the expert tells aligned from shifted audio on the held-out
speaker, and on the real GRID clips (cropped by the project's preprocessing)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tinycache import make_cache

from autalk import sync
from autalk.audio import NormStats
from autalk.checkpoint import CheckpointError, ConfigMismatchError
from autalk.data import cache
from autalk.data.readers import list_clips
from autalk.profiles import MissingStageError
from autalk.sync import SyncConfig, SyncNet, SyncStage, contrastive_loss, lse
from autalk.train import fit

REAL = Path(__file__).parent / "fixtures" / "real" / "grid"
TINY = SyncConfig(mouth_h=16, mouth_w=32, video_channels=8, audio_channels=16, embed_dim=32, epochs=4,
                  batch_size=32, lr=3e-3, augment=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    r = tmp_path_factory.mktemp("sync_run")
    make_cache(r / "01_preprocess")
    return r


# ---- inputs, network, loss ----


def test_network_shapes_and_unit_embeddings():
    net = SyncNet(SyncConfig(video_channels=8, audio_channels=16, embed_dim=24)).eval()
    ev, ea = net(torch.zeros(3, 5, 32, 64), torch.randn(7, 12, 20))
    assert ev.shape == (3, 24) and ea.shape == (7, 24)
    assert torch.allclose(ev.norm(dim=1), torch.ones(3)) and torch.allclose(ea.norm(dim=1), torch.ones(7))
    assert net.mouth_size == (32, 64) and net.label == sync.LABEL and "not the public SyncNet" in sync.LABEL


def test_mouth_crops_take_the_lower_half_at_a_fixed_size():
    for s in (64, 112, 32):
        frames = np.zeros((4, s, s, 3), np.uint8)
        frames[:, s // 2 :] = 200  # lower half bright, upper half black
        m = sync.mouth_crops(frames, (32, 64))
        assert m.shape == (4, 32, 64) and m.dtype == np.uint8
        assert (m == 200).all(), s
    with pytest.raises(ValueError, match="uint8"):
        sync.mouth_crops(np.zeros((4, 64, 64, 3), np.float32), (32, 64))


def test_windows_pair_frames_with_the_right_audio(run):
    ds = sync.SyncWindows(run / "01_preprocess", "train", TINY)
    assert len(ds.clips) == 9
    b = ds[list(range(0, len(ds), 7))]
    n = b["video"].shape[0]
    assert b["video"].shape == (n, 5, 16, 32) and b["audio"].shape == (n, 12, 20)
    assert b["audio_neg"].shape == (n, 2, 12, 20) and b["shift"].shape == (n, 2)
    assert -1 <= float(b["video"].min()) and float(b["video"].max()) <= 1
    shift = b["shift"].abs()
    assert ((shift >= 3) & (shift <= 15)).all()
    # compare with the clip read directly: window k = frames k..k+4 = MFCC steps 4k..4k+19
    norm = NormStats.load(run / "01_preprocess" / cache.NORM)
    for i, row in enumerate(ds.rows[list(range(0, len(ds), 7))]):
        clip, k = int(row[0]), int(row[1])
        d = cache.load_clip(run / "01_preprocess" / ds.clips[clip]["path"], keys=["frames", "mfcc_raw"])
        m = sync.normalise_mfcc(d["mfcc_raw"], norm, TINY.audio_norm)
        assert np.allclose(b["audio"][i].numpy(), m[:, 4 * k : 4 * k + 20], atol=1e-5)
        for j, s in enumerate(b["shift"][i].tolist()):
            a = 4 * (k + s)
            assert np.allclose(b["audio_neg"][i, j].numpy(), m[:, a : a + 20], atol=1e-5)
        mouth = sync.mouth_crops(d["frames"][k : k + 5], (16, 32))
        assert np.allclose(b["video"][i].numpy(), mouth / 127.5 - 1, atol=1e-6)


def test_contrastive_loss_on_hand_made_embeddings():
    e = torch.eye(4)
    far = -e[:, None, :].repeat(1, 3, 1)  # antipodal: d = 2 > margin
    terms = contrastive_loss(e, e.clone(), far, margin=1.0)
    assert float(terms["L_pos"]) == 0.0 and float(terms["L_neg"]) == 0.0 and float(terms["L_sync"]) == 0.0
    same = e[:, None, :].repeat(1, 3, 1)  # negatives on top of the video: d = 0 -> margin^2
    assert float(contrastive_loss(e, e, same, margin=1.0)["L_neg"]) == pytest.approx(1.0, abs=1e-5)
    ortho = e.roll(1, dims=0)  # unit vectors at right angles: d^2 = 2
    t = contrastive_loss(e, ortho, ortho[:, None], margin=1.5)
    assert float(t["L_pos"]) == pytest.approx(2.0)
    assert float(t["L_neg"]) == pytest.approx((1.5 - 2**0.5) ** 2)
    v = e.clone().requires_grad_(True)  # gradients stay finite at d = 0
    contrastive_loss(v, e, same, margin=1.0)["L_sync"].backward()
    assert torch.isfinite(v.grad).all()


def test_audio_normalisation_per_clip_or_from_the_cache():
    m = np.random.default_rng(0).normal(5, 3, (12, 100)).astype(np.float32)
    clip = sync.normalise_mfcc(m, None, "clip")
    assert np.allclose(clip.mean(1), 0, atol=1e-5) and np.allclose(clip.std(1), 1, atol=1e-4)
    norm = NormStats(np.full(12, 5, np.float32), np.full(12, 2, np.float32))
    assert np.allclose(sync.normalise_mfcc(m, norm, "cache"), (m - 5) / 2)
    with pytest.raises(ValueError, match="normalisation"):
        sync.normalise_mfcc(m, None, "cache")


# ---- LSE ----


class OffsetModel:
    """A fake expert: the video embedding is the 5 frames' grey levels, the audio embedding the 5 frames'
    mean of MFCC coefficient 0. Distances are then zero exactly where audio and video carry the same
    sequence of levels."""

    mouth_size = (8, 16)
    audio_norm = "cache"

    def embed_video(self, v: torch.Tensor) -> torch.Tensor:
        return v.mean(dim=(2, 3))  # (B, 5)

    def embed_audio(self, a: torch.Tensor) -> torch.Tensor:
        return a[:, 0].reshape(len(a), 5, 4).mean(-1)  # (B, 5)


def _coded_clip(t: int = 60, delay: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Frames whose grey level is a random code per frame, and MFCCs carrying the code ``delay`` frames
    later (the audio lags the video by ``delay`` frames)."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 256, t).astype(np.uint8)
    frames = np.broadcast_to(g[:, None, None, None], (t, 32, 32, 3)).copy()
    m = rng.normal(0, 1, (12, 4 * t)).astype(np.float32)
    code = np.repeat(g.astype(np.float32) / 127.5 - 1, 4)  # the frames' levels as the video stream sees them
    if delay >= 0:
        m[0, 4 * delay :] = code[: 4 * (t - delay)]
    else:
        m[0, : 4 * (t + delay)] = code[-4 * delay :]
    return frames, m


@pytest.mark.parametrize("delay", [3, 0, -5])
def test_lse_finds_a_known_offset(delay):
    frames, m = _coded_clip(delay=delay)
    norm = NormStats(np.zeros(12, np.float32), np.ones(12, np.float32))
    r = lse(OffsetModel(), frames, m, norm)
    assert r["offset"] == delay  # positive = audio lags video
    assert r["dists"].shape == (31,) and list(r["offsets"]) == list(range(-15, 16))
    assert r["lse_d"] == pytest.approx(0.0, abs=1e-6) == r["dists"][15 + delay]
    assert r["lse_c"] == pytest.approx(np.median(r["dists"]) - r["dists"].min()) and r["lse_c"] > 0.1
    assert r["n_windows"].max() == 56 and r["n_windows"].min() == 41  # windows whose shifted audio exists


def test_lse_refuses_short_clips_and_missing_norm():
    frames, m = _coded_clip(t=12)
    norm = NormStats(np.zeros(12, np.float32), np.ones(12, np.float32))
    with pytest.raises(ValueError, match="too short for offsets"):
        lse(OffsetModel(), frames, m, norm)
    assert lse(OffsetModel(), frames, m, norm, max_offset=3)["offset"] == 3
    with pytest.raises(ValueError, match="normalisation"):
        lse(OffsetModel(), frames, m, None)


# ---- training through autalk.train ----


def test_train_steps_lower_the_loss_on_a_fixed_batch(run):
    torch.manual_seed(0)
    st = SyncStage(run / "01_preprocess", TINY)
    np.random.seed(0)
    batch = st.dataset()[list(range(0, 180, 6))]
    first = float(st.train_step(batch, 0)["L_sync"])
    for _ in range(12):
        last = st.train_step(batch, 0)
    assert float(last["L_sync"]) < 0.5 * first, (first, float(last["L_sync"]))
    assert set(last) == {"L_sync", "L_pos", "L_neg", "pair_acc"}


def test_train_sync_expert_writes_checkpoint_metrics_and_resumes(run, capsys):
    m = sync.train_sync_expert(run, cfg=TINY, progress=False)
    out = run / sync.SYNC_DIR
    assert (out / "checkpoint.pt").is_file() and (out / "log.csv").is_file()
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["label"] == sync.LABEL and saved["split"] == "test" and saved["speakers"] == ["s4"]
    for k in ("aligned", "shifted", "sync_accuracy", "offset_accuracy", "lse_d", "lse_c"):
        assert np.isfinite(saved[k]), k
    assert len(saved["clips"]) == 3 and m["n_clips"] == 3
    # load_sync_expert: from the run, the stage folder or the file; same embeddings as the trained one
    model = sync.load_sync_expert(run)
    assert not model.training and model.norm is not None and model.cfg == SyncConfig(**TINY.network())
    for p in (out, out / "checkpoint.pt"):
        assert sync.load_sync_expert(p).cfg == model.cfg
    d = cache.load_clip(run / "01_preprocess" / "clips" / "s4" / "c30.npz", keys=["frames", "mfcc_raw"])
    r = lse(model, d["frames"], d["mfcc_raw"])
    assert r["lse_d"] == pytest.approx(saved["clips"][0]["lse_d"], rel=1e-5)
    # resume: nothing left to train; a changed network is refused with a readable diff
    again = sync.train_sync_expert(run, cfg=TINY, progress=False)
    assert again["train_seconds_this_call"] < 1.0
    with pytest.raises(ConfigMismatchError, match="sync.margin"):
        fit(SyncStage(run / "01_preprocess", SyncConfig(**{**TINY.network(), "margin": 0.5})), out)
    with pytest.raises(CheckpointError, match="not the sync expert"):
        _other_checkpoint(run)
    with pytest.raises(MissingStageError, match="train_sync_expert"):
        sync.load_sync_expert(run / "nowhere")


def _other_checkpoint(run):
    from autalk.checkpoint import save_checkpoint

    p = run / "other" / "checkpoint.pt"
    save_checkpoint(p, {"m": torch.nn.Linear(1, 1)}, {"stage": "audio2au"}, 0)
    sync.load_sync_expert(p)


def test_config_from_profile_keys():
    c = SyncConfig.from_params({"sync_epochs": 7, "sync_batch": 32, "sync_lr": "5e-4", "seed": 3})
    assert (c.epochs, c.batch_size, c.lr, c.seed) == (7, 32, 5e-4, 3)
    assert SyncConfig.from_params({}) == SyncConfig()
    tc = c.train_config()
    assert (tc.epochs, tc.batch_size, tc.lr, tc.beta1) == (7, 32, 5e-4, 0.9)
    with pytest.raises(ValueError, match="min_shift"):
        SyncConfig(min_shift=5, max_shift=4)


# ---- acceptance: sync vs off-sync, held-out synthetic speaker and real GRID ----

ACCEPT = SyncConfig(mouth_h=24, mouth_w=48, video_channels=8, epochs=20, batch_size=32, lr=2e-3)


@pytest.fixture(scope="module")
def teaching_expert(tmp_path_factory):
    """A small teaching corpus (4 speakers x 3 clips: 3 train speakers, 1 test), preprocessed at 48 px
    by the project's pipeline, and our sync expert trained on its training speakers only (~20 s)."""
    from autalk.corpus.build import build_corpus
    from autalk.preprocess import preprocess_corpus

    tmp = tmp_path_factory.mktemp("sync_teaching")
    build_corpus(tmp / "corpus", speakers=4, clips=3, seed=0, workers=1, progress=False)
    run = tmp / "run"
    preprocess_corpus("synthgrid", tmp / "corpus", run / "01_preprocess", image_size=48, workers=1,
                      progress=False)
    torch.manual_seed(0)
    return run, sync.train_sync_expert(run, cfg=ACCEPT, progress=False)


def _delayed(mfcc_raw: np.ndarray, frames: int) -> np.ndarray:
    """The audio delayed by ``frames`` video frames (4 MFCC steps each; the first step repeated)."""
    return np.concatenate([np.repeat(mfcc_raw[:, :1], 4 * frames, 1), mfcc_raw], 1)[:, : mfcc_raw.shape[1]]


@pytest.mark.slow
def test_expert_tells_sync_from_off_sync_on_the_held_out_speaker(teaching_expert):
    run, m = teaching_expert
    split = json.loads((run / "01_preprocess" / "manifest.json").read_text())["splits"]
    assert m["speakers"] == split["test"] and not set(split["test"]) & set(split["train"])
    print(f"\nheld-out speaker {m['speakers']}: aligned {m['aligned']:.3f} vs shifted {m['shifted']:.3f}, "
          f"sync accuracy {m['sync_accuracy']:.3f}, offsets {[c['offset'] for c in m['clips']]}")
    assert all(c["aligned"] < c["shifted"] for c in m["clips"]), m["clips"]
    assert m["aligned"] < m["shifted"] - 0.1
    assert m["sync_accuracy"] > 0.55  # per window and off-sync shift; chance 0.5
    assert sum(abs(c["offset"]) <= 1 for c in m["clips"]) >= 2


@pytest.mark.slow
def test_expert_on_the_real_grid_clips(teaching_expert):
    """Trained on synthetic faces and espeak speech only: on real GRID (cropped by preprocess_clip) the
    aligned audio is still nearer than the mean off-sync audio for most clips. The offset estimates are
    printed, not asserted (one clip's is not robust across seeds)."""
    from autalk.preprocess import load_models, preprocess_clip

    run, _ = teaching_expert
    model = sync.load_sync_expert(run)
    models = load_models()
    sources, _ = list_clips("grid", REAL)
    assert len(sources) == 3
    closer = 0
    for src in sources:
        c = preprocess_clip(src, 48, models["detector"], models["predictor"], models["au"]).arrays
        r = lse(model, c["frames"], c["mfcc_raw"])
        late = lse(model, c["frames"], _delayed(c["mfcc_raw"], 3))
        shifted = float(r["dists"][np.abs(r["offsets"]) >= ACCEPT.min_shift].mean())
        print(f"real GRID s1/{src.clip_id}: aligned {r['dists'][15]:.3f} vs mean shifted {shifted:.3f}, "
              f"offset {r['offset']:+d} (audio delayed 3 frames: {late['offset']:+d}), "
              f"LSE-D {r['lse_d']:.3f}, LSE-C {r['lse_c']:.3f}")
        closer += int(r["dists"][15] < shifted)
    assert closer >= 2
