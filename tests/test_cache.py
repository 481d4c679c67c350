"""autalk.data.cache (atomic per-clip files, manifest, Eq. 1 weights) and autalk.data.dataset."""

import json

import numpy as np
import pytest
import torch

from autalk import audio as A
from autalk.data import cache
from autalk.data.dataset import ClipDataset, to_uint8


def _arrays(t: int = 20, s: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (t, s, s, 3), dtype=np.uint8)
    raw = rng.normal(0, 10, (12, 4 * t)).astype(np.float32)
    return {
        "frames": frames, "identity": frames[0].copy(), "mfcc": A.mfcc_windows(raw, t), "mfcc_raw": raw,
        "au_presence": rng.integers(0, 2, (t, 5), dtype=np.uint8),
        "au_intensity": rng.uniform(0, 5, (t, 5)).astype(np.float32),
        "landmarks": rng.uniform(0, s, (t, 68, 2)).astype(np.float32),
    }


def test_round_trip(tmp_path):
    p = cache.clip_path(tmp_path, "s1", "bbaf2n")
    arr = _arrays()
    assert cache.save_clip(p, arr, {"speaker": "s1", "clip_id": "bbaf2n", "image_size": 16})
    assert p.is_file() and cache.is_complete(p) and cache.is_complete(p, {"image_size": 16})
    assert not cache.is_complete(p, {"image_size": 64})  # other settings: not reusable
    back = cache.load_clip(p)
    for k, v in arr.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v), k
    assert back["meta"]["clip_id"] == "bbaf2n" and back["meta"]["cache_version"] == cache.CACHE_VERSION
    part = cache.load_clip(p, keys=["au_presence"], optional=["nope", "landmarks"])
    assert set(part) == {"au_presence", "landmarks", "meta"}
    assert cache.read_meta(p)["speaker"] == "s1"


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    p = cache.clip_path(tmp_path, "s1", "x")

    def boom(*a, **k):
        f = a[0]
        f.write(b"PK\x03\x04 partial bytes")  # something was written before the failure
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError):
        cache.save_clip(p, _arrays(), {})
    assert list(p.parent.iterdir()) == []  # no partial file, no temp file


def test_complete_file_is_not_replaced(tmp_path, monkeypatch):
    p = cache.clip_path(tmp_path, "s1", "x")
    cache.save_clip(p, _arrays(seed=1), {"tag": "first"})
    before = p.read_bytes()
    assert cache.save_clip(p, _arrays(seed=2), {"tag": "second"}) is False
    assert p.read_bytes() == before
    # a failing overwrite keeps the complete file intact
    monkeypatch.setattr(np, "savez_compressed", lambda *a, **k: (_ for _ in ()).throw(OSError("x")))
    with pytest.raises(OSError):
        cache.save_clip(p, _arrays(seed=3), {"tag": "third"}, overwrite=True)
    assert p.read_bytes() == before and cache.read_meta(p)["tag"] == "first"
    assert sorted(x.name for x in p.parent.iterdir()) == ["x.npz"]


def test_truncated_or_foreign_file_is_incomplete(tmp_path):
    p = cache.clip_path(tmp_path, "s1", "x")
    cache.save_clip(p, _arrays(), {})
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    assert not cache.is_complete(p)
    np.savez(p, frames=np.zeros(3))  # missing keys
    assert not cache.is_complete(p)
    assert not cache.is_complete(tmp_path / "nope.npz")
    (p.parent / f"y{cache.TMP_MARK}abc.npz").write_bytes(b"junk")
    assert cache.remove_temp_files(tmp_path) == 1


def test_loss_weights_eq1():
    pres = [np.array([[1, 1, 0, 1, 0]] * 3 + [[0, 1, 0, 1, 1]], dtype=np.uint8)]
    r, n = cache.au_occurrence_rates(pres)
    assert n == 4
    np.testing.assert_allclose(r, [0.75, 1.0, 0.0, 1.0, 0.25])
    w = cache.au_loss_weights(r)
    rr = np.maximum(r, cache.MIN_RATE)
    np.testing.assert_allclose(w, (1 / rr) * 5 / np.sum(1 / rr))
    assert w.mean() == pytest.approx(1.0)
    w2 = cache.au_loss_weights(np.array([0.5, 0.5, 0.25, 0.5, 0.5]))
    assert w2[2] == pytest.approx(2 * w2[0])  # half the rate, twice the weight


def _make_cache(tmp_path, lens=(20, 30, 12), test_lens=(25,)):
    entries, train_pres = [], []
    for i, t in enumerate(lens + test_lens):
        split = "train" if i < len(lens) else "test"
        spk = f"s{i + 1}"
        arr = _arrays(t=t, seed=i)
        p = cache.clip_path(tmp_path, spk, "c")
        cache.save_clip(p, arr, {"speaker": spk, "clip_id": "c", "n_frames": t})
        entries.append({"speaker": spk, "clip_id": "c", "split": split, "n_frames": t,
                        "path": str(p.relative_to(tmp_path))})
        if split == "train":
            train_pres.append(arr["au_presence"])
    m = cache.build_manifest(tmp_path, entries, {"train": ["s1", "s2", "s3"], "test": ["s4"]}, train_pres)
    cache.write_json(tmp_path / cache.MANIFEST, m)
    return m


def test_manifest(tmp_path):
    m = _make_cache(tmp_path)
    back = json.loads((tmp_path / cache.MANIFEST).read_text())
    assert back["n_clips"] == {"train": 3, "test": 1}
    assert set(back["au_loss_weights"]) == {"AU10", "AU14", "AU20", "AU25", "AU26"}
    assert back["au_stats_frames"] == 62  # train frames only
    assert cache.loss_weights(tmp_path).shape == (5,)
    assert m["au_occurrence_rates"] == back["au_occurrence_rates"]


def test_dataset_random_and_whole(tmp_path):
    _make_cache(tmp_path)
    ds = ClipDataset(tmp_path, "train", seq_len=15, mode="random", samples_per_clip=2)
    assert len(ds) == 4 and [s["speaker"] for s in ds.skipped] == ["s3"]  # 12 frames < 15
    torch.manual_seed(0)
    item = ds[0]
    assert item["frames"].shape == (15, 3, 16, 16) and item["frames"].dtype == torch.float32
    assert item["identity"].shape == (3, 16, 16)
    assert item["mfcc"].shape == (15, 12, 28) and item["au"].shape == (15, 5)
    assert item["au_intensity"].shape == (15, 5)
    assert float(item["frames"].min()) >= -1 and float(item["frames"].max()) <= 1
    assert set(torch.unique(item["au"]).tolist()) <= {0.0, 1.0}
    # the sample matches the cache at its start index, identity = first frame of the clip
    raw = cache.load_clip(tmp_path / "clips" / "s1" / "c.npz")
    s = int(item["start"])
    assert np.array_equal(to_uint8(item["frames"]), raw["frames"][s: s + 15])
    assert np.array_equal(to_uint8(item["identity"]), raw["frames"][0])
    np.testing.assert_allclose(item["mfcc"].numpy(), raw["mfcc"][s: s + 15])
    starts = {int(ds[0]["start"]) for _ in range(30)}
    assert len(starts) > 1  # random sub-sequences

    whole = ClipDataset(tmp_path, "test", mode="whole", normalize=A.NormStats(np.zeros(12), np.full(12, 2.0)))
    assert len(whole) == 1
    w = whole[0]
    assert w["frames"].shape == (25, 3, 16, 16) and int(w["start"]) == 0
    raw = cache.load_clip(tmp_path / "clips" / "s4" / "c.npz")
    np.testing.assert_allclose(w["mfcc"].numpy(), raw["mfcc"] / 2, rtol=1e-6)

    loader = torch.utils.data.DataLoader(ds, batch_size=2, shuffle=True)
    batch = next(iter(loader))
    assert batch["frames"].shape == (2, 15, 3, 16, 16) and batch["mfcc"].shape == (2, 15, 12, 28)
    with pytest.raises(ValueError):
        ClipDataset(tmp_path, "val")
    with pytest.raises(ValueError):
        ClipDataset(tmp_path, "train", mode="sometimes")


def test_dataset_lru_limit(tmp_path):
    _make_cache(tmp_path)
    ds = ClipDataset(tmp_path, "train", seq_len=5, cache_bytes=20 * 16 * 16 * 3 + 40000)
    for i in range(len(ds)):
        ds[i]
    assert len(ds._lru) == 1 and ds._lru_bytes <= ds.cache_bytes
    assert ds.n_frames == 62
    pre = ClipDataset(tmp_path, "train", seq_len=5, preload=True)
    assert len(pre._lru) == 3
    item = pre[0]
    assert item["frames"].is_contiguous() and item["frames"].dtype == torch.float32
