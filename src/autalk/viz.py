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


def au_probability_timeline(prob: np.ndarray, labels: np.ndarray, words: Sequence[Segment] = (),
                            phonemes: Sequence[Segment] = (), fps: float = FPS, title: str = "",
                            threshold: float = 0.5) -> plt.Figure:
    """One row per AU: predicted probability (line) against the 0/1 labels (shaded), words and phonemes
    written under the time axis. ``prob``, ``labels``: (T, A) in PAPER_AUS order."""
    t = (np.arange(len(prob)) + 0.5) / fps
    n = prob.shape[1]
    fig, axes = plt.subplots(n + 1, 1, figsize=(11, 1.25 * n + 1.2), sharex=True,
                             gridspec_kw={"height_ratios": [1] * n + [0.7]})
    for i, ax in enumerate(axes[:n]):
        ax.fill_between(t, 0, 1, where=labels[:, i] > 0, step="mid", color=AU_COLORS[i], alpha=0.2,
                        label="label: present")
        ax.plot(t, prob[:, i], color=AU_COLORS[i], lw=1.6, label="predicted probability")
        ax.axhline(threshold, color="0.5", lw=0.6, ls=":")
        ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel(f"AU{PAPER_AUS[i]}\nP(present)", fontsize=8)
    axes[0].legend(loc="upper right", fontsize=7, ncol=2)
    if title:
        axes[0].set_title(title)
    lab = axes[n]
    lab.set_yticks([])
    lab.set_ylim(0, 1)
    _label_segments(lab, words, 0.55, fontsize=9)
    _label_segments(lab, phonemes, 0.1, fontsize=7, lines=False)
    lab.set_ylabel("words /\nphonemes", fontsize=8)
    lab.set_xlabel("time (s)")
    lab.set_xlim(0, len(prob) / fps)
    fig.tight_layout()
    return fig


def pca_scatter(features: np.ndarray, present: np.ndarray, title: str = "") -> plt.Figure:
    """Features (N, F) projected on their first two principal components, coloured by presence (N,)."""
    x = features - features.mean(0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    z = x @ vt[:2].T
    var = s**2 / max((s**2).sum(), 1e-12)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for val, colour, name in ((0, "0.6", "absent"), (1, "tab:red", "present")):
        m = present == val
        ax.scatter(z[m, 0], z[m, 1], s=4, alpha=0.5, c=colour, label=f"{name} ({int(m.sum())} frames)")
    ax.set_xlabel(f"PC 1 ({100 * var[0]:.0f}% of variance)")
    ax.set_ylabel(f"PC 2 ({100 * var[1]:.0f}% of variance)")
    ax.legend(fontsize=8, markerscale=3)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def lower_face_grid(lowers: np.ndarray, pred: np.ndarray, true: np.ndarray, ncols: int = 6,
                    titles: Sequence[str] | None = None) -> plt.Figure:
    """Lower faces (N,h,w,3) uint8 with their AUs: under each image one tag per AU, green when the
    prediction matches the label, red when it does not ("+" predicted present, "-" predicted absent)."""
    n = len(lowers)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.1 * ncols, 1.75 * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(lowers[k])
        wrong = pred[k] != true[k]
        for i, au in enumerate(PAPER_AUS):
            ax.text(i / len(PAPER_AUS), -0.08, f"{'+' if pred[k, i] else '-'}{au}", transform=ax.transAxes,
                    fontsize=7, color="red" if wrong[i] else "green", ha="left", va="top",
                    fontweight="bold" if wrong[i] else "normal")
        if wrong.any():
            for s in ax.spines.values():
                s.set_visible(True)
                s.set_edgecolor("red")
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[k], fontsize=7)
    fig.tight_layout()
    return fig


def gan_samples(identity: np.ndarray, real: np.ndarray, fake: np.ndarray, title: str = "",
                labels: Sequence[str] | None = None) -> plt.Figure:
    """Columns = clips; rows: identity image, ground truth, generated, |generated - truth| (mean over RGB,
    0-255 shown as 0-64 so small errors are visible). All inputs (N,S,S,3) uint8."""
    n = len(real)
    fig, axes = plt.subplots(4, n, figsize=(1.6 * n + 0.8, 6.6), squeeze=False)
    diff = np.abs(fake.astype(np.int16) - real.astype(np.int16)).mean(-1)
    names = ("identity I_id", "ground truth", "generated", "|difference|")
    for j in range(n):
        for i, img in enumerate((identity[j], real[j], fake[j], diff[j])):
            ax = axes[i, j]
            if i == 3:
                ax.imshow(img, cmap="magma", vmin=0, vmax=64)
            else:
                ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(names[i], fontsize=8)
        if labels is not None:
            axes[0, j].set_title(labels[j], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
