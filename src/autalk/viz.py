"""Plots shared by the notebooks (matplotlib; every axis labelled with its unit)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from autalk import FPS, PAPER_AUS
from autalk.corpus.align import SILENCE_TOKENS, Segment

AU_NAMES = {10: "upper lip raiser", 14: "dimpler", 20: "lip stretcher", 25: "lips part", 26: "jaw drop"}
AU_COLORS = ("tab:red", "tab:orange", "tab:green", "tab:blue", "tab:purple")


def image_grid(images: Sequence[np.ndarray], titles: Sequence[str] | None = None, ncols: int = 6,
               size: float = 2.0) -> plt.Figure:
    """A grid of RGB uint8 images with optional titles."""
    n = len(images)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 0.85), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i])
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return fig


def _label_segments(ax: plt.Axes, segs: Sequence[Segment], y: float, fontsize: int = 8,
                    lines: bool = True) -> None:
    for s in segs:
        if lines:
            ax.axvline(s.start, color="0.6", lw=0.5, zorder=0)
        if s.label not in SILENCE_TOKENS:
            ax.text((s.start + s.end) / 2, y, s.label, ha="center", va="bottom", fontsize=fontsize,
                    transform=ax.get_xaxis_transform())


def clip_overview(audio: np.ndarray, sr: int, words: Sequence[Segment], phonemes: Sequence[Segment],
                  intensity: np.ndarray, fps: float = FPS, title: str = "") -> plt.Figure:
    """Waveform with words, spectrogram with phonemes, and the five AU intensity curves, on one time axis."""
    import librosa

    t_audio = np.arange(len(audio)) / sr
    fig, (a0, a1, a2) = plt.subplots(3, 1, figsize=(11, 7.5), sharex=True,
                                     gridspec_kw={"height_ratios": [1, 1.4, 1.6]})
    a0.plot(t_audio, audio, lw=0.4, color="k")
    a0.set_ylabel("amplitude\n(full scale)")
    _label_segments(a0, words, 1.01, fontsize=9)
    if title:
        a0.set_title(title, pad=16)
    spec = librosa.amplitude_to_db(np.abs(librosa.stft(audio, n_fft=512, hop_length=128)), ref=np.max)
    freqs = librosa.fft_frequencies(sr=sr, n_fft=512)
    times = librosa.frames_to_time(np.arange(spec.shape[1]), sr=sr, hop_length=128)
    mesh = a1.pcolormesh(times, freqs / 1000, spec, shading="auto", cmap="magma", vmin=-80, vmax=0)
    a1.set_ylim(0, 8)
    a1.set_ylabel("frequency (kHz)")
    _label_segments(a1, phonemes, 1.01, fontsize=7)
    fig.colorbar(mesh, ax=a1, pad=0.01, label="dB")
    t_frames = (np.arange(len(intensity)) + 0.5) / fps  # frame k is sampled at its centre
    for i, au in enumerate(PAPER_AUS):
        a2.plot(t_frames, intensity[:, i], color=AU_COLORS[i], lw=1.6, label=f"AU{au} {AU_NAMES[au]}")
    for s in phonemes:
        a2.axvline(s.start, color="0.85", lw=0.5, zorder=0)
    a2.set_ylim(-0.1, 5.1)
    a2.set_ylabel("AU intensity (0-5)")
    a2.set_xlabel("time (s)")
    a2.legend(loc="upper right", fontsize=8, ncol=3)
    a2.set_xlim(0, len(audio) / sr)
    # Leave the colorbar's width on the other rows too so the time axes line up.
    for ax in (a0, a2):
        ax.set_position([ax.get_position().x0, ax.get_position().y0, a1.get_position().width,
                         ax.get_position().height])
    return fig


def occurrence_bars(rates: np.ndarray, title: str = "AU occurrence rate") -> plt.Figure:
    """Bar plot of per-AU occurrence rates r_i (fraction of frames where the AU is present)."""
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar([f"AU{a}" for a in PAPER_AUS], rates, color=AU_COLORS)
    for i, r in enumerate(rates):
        ax.text(i, r, f"{r:.2f}", ha="center", va="bottom", fontsize=9)
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction of frames")
    ax.set_title(title)
    fig.tight_layout()
    return fig
