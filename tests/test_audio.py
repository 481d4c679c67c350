"""autalk.audio: MFCC rate and shape, 280 ms windows centred on video frames, train-only statistics."""

import numpy as np
import pytest

from autalk import audio as A

SR = 16000


def _noise(seconds: float, seed: int = 0, level: float = 0.01) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, level, int(round(seconds * SR))).astype(np.float32)


def test_mfcc_shape_and_rate():
    m = A.mfcc(_noise(3.0), SR)
    assert m.shape == (12, 300)  # 100 Hz, c0 dropped
    assert m.dtype == np.float32 and np.isfinite(m).all()
    assert A.mfcc(_noise(1.0), SR).shape == (12, 100)
    assert A.mfcc(_noise(2.345), SR).shape == (12, 234)  # floor(D * 100)
    with pytest.raises(ValueError):
        A.mfcc(np.zeros(50, np.float32), SR)
    with pytest.raises(ValueError):
        A.mfcc(np.zeros((2, SR), np.float32), SR)


def test_mfcc_drops_energy_coefficient():
    # c0 tracks loudness; c1..c12 of a scaled signal barely change, so dropping c0 removes the level.
    y = _noise(1.0, level=0.05)
    m1, m2 = A.mfcc(y, SR), A.mfcc(y * 4, SR)
    assert np.abs(m1 - m2).mean() < 0.05 * np.abs(m1).mean()


def test_mfcc_step_timing():
    # A click at time t shows up in MFCC step floor(t * 100) (+- its neighbour: the 25 ms window overlaps).
    y = _noise(2.0, level=1e-3)
    t_click = 0.735
    i = int(t_click * SR)
    y[i - 8: i + 8] += 1.0
    m = A.mfcc(y, SR)
    dev = np.abs(m - np.median(m, axis=1, keepdims=True)).sum(axis=0)
    assert int(np.argmax(dev)) in (72, 73, 74)


def test_window_shape_and_edge_padding():
    m = np.tile(np.arange(300, dtype=np.float32), (12, 1))  # column n holds the value n
    w = A.mfcc_windows(m, 75)
    assert w.shape == (75, 12, 28)
    # frame k spans steps 4k-12 .. 4k+15 (its centre (k+0.5)/25 s lies between columns 13 and 14)
    assert list(w[10, 0]) == list(range(28, 56))
    # edge padding at the start and at the end
    assert list(w[0, 0, :13]) == [0] * 13 and list(w[0, 0, 12:]) == list(range(0, 16))
    assert w[74, 0, -1] == 299 and list(w[74, 0, -13:]) == [299] * 13
    # the windows slide with the video: 40 ms = 4 steps per frame
    assert np.all(w[1:, 0, 14] - w[:-1, 0, 14] == 4)


def test_click_lands_in_centre_of_its_frames_window():
    k = 30  # frame 30 is centred at 1.22 s
    t_k = (k + 0.5) / 25
    y = _noise(3.0, level=1e-3)
    i = int(round(t_k * SR))
    y[i - 8: i + 8] += 1.0
    w = A.mfcc_windows(A.mfcc(y, SR), 75)
    dev = np.abs(w - np.median(w, axis=2, keepdims=True)).sum(axis=1)  # (T, 28)
    assert int(np.argmax(dev[k])) in (13, 14)  # the two centre columns of a 28-step window
    assert int(np.argmax(dev[k + 1])) in (9, 10)  # one frame later the click is 4 steps earlier
    assert int(np.argmax(dev[k - 2])) in (21, 22)


def test_norm_stats_from_train_only(tmp_path):
    rng = np.random.default_rng(1)
    train = [rng.normal(2.0, 3.0, (12, 200)).astype(np.float32) for _ in range(3)]
    test = [rng.normal(-50.0, 0.1, (12, 200)).astype(np.float32)]
    st = A.NormStats.from_mfccs(train, speakers=["s1", "s2"])
    allc = np.concatenate(train, axis=1)
    np.testing.assert_allclose(st.mean, allc.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(st.std, allc.std(axis=1), rtol=1e-4)
    assert st.n_steps == 600 and st.speakers == ["s1", "s2"]
    # test data did not leak in: its mean is far away
    assert np.all(np.abs(st.mean - 2.0) < 0.5)
    z = st.apply(np.stack([A.mfcc_windows(m, 10) for m in train]))  # (B, T, 12, 28)
    assert abs(float(z.mean())) < 0.2 and abs(float(z.std()) - 1) < 0.2
    st.save(tmp_path / "norm.json")
    st2 = A.NormStats.load(tmp_path / "norm.json")
    np.testing.assert_allclose(st2.mean, st.mean)
    np.testing.assert_allclose(st2.std, st.std)
    assert st2.speakers == ["s1", "s2"]
    torch = pytest.importorskip("torch")
    zt = st2.apply(torch.from_numpy(test[0]))
    np.testing.assert_allclose(zt.numpy(), st.apply(test[0]), rtol=1e-5)
    with pytest.raises(ValueError):
        A.NormStats.from_mfccs([])


def test_real_speech_recording(fixtures_dir):
    """CMU ARCTIC a0007 (4.0 s, 16 kHz): 400 MFCC steps, 100 windows, and speech differs from its silences."""
    from autalk.media import read_audio

    y = read_audio(fixtures_dir / "real" / "speech" / "arctic_a0007.wav", sr=SR)
    assert abs(len(y) / SR - 4.0) < 0.05
    m = A.mfcc(y, SR)
    assert m.shape[0] == 12 and abs(m.shape[1] - 400) <= 1
    w = A.mfcc_windows(m, 100)
    assert w.shape == (100, 12, 28) and np.isfinite(w).all()
    # frame-level energy separates the leading silence from the speech in the middle
    rms = np.sqrt(np.convolve(y**2, np.ones(400) / 400, mode="same"))[::640][:100]
    quiet, loud = np.argsort(rms)[:10], np.argsort(rms)[-10:]
    spread = np.abs(w[loud] - w[quiet].mean(axis=0)).mean()
    within_silence = np.abs(w[quiet] - w[quiet].mean(axis=0)).mean()
    assert spread > 2 * within_silence, (spread, within_silence)  # measured: 12.0 vs 3.9
