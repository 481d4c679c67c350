"""Video and audio I/O through OpenCV and the ffmpeg binary shipped by ``imageio-ffmpeg``.

GRID keeps its sound inside the ``.mpg`` (MPEG-1 video + MP2 audio), so the corpus writer muxes the
same way and the readers can always fall back to the container's audio track.
"""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary (from imageio-ffmpeg; no system ffmpeg needed)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _run_ffmpeg(args: list[str], stdin: bytes | None = None) -> bytes:
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"ffmpeg failed ({' '.join(args[:6])} ...): {err}")
    return proc.stdout


# ---- reading -------------------------------------------------------------------------------------


def read_video(path: str | os.PathLike[str], max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Decode a video to RGB frames ``(T,H,W,3) uint8`` and its frame rate.

    Raises ``ValueError`` for an unreadable or empty file (the caller decides whether to skip it).
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise ValueError(f"{path}: missing or empty video file")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ValueError(f"{path}: OpenCV cannot open this video")
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or 0.0
        frames = []
        while max_frames is None or len(frames) < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    if not frames:
        raise ValueError(f"{path}: no decodable frames")
    return np.stack(frames), fps


def read_audio(path: str | os.PathLike[str], sr: int = 16000) -> np.ndarray:
    """Decode the audio of any file ffmpeg reads (wav, mpg, mp4) to mono float32 at ``sr`` Hz."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: missing audio/video file")
    try:
        raw = _run_ffmpeg(["-i", str(path), "-vn", "-ac", "1", "-ar", str(sr), "-f", "f32le", "-"])
    except RuntimeError as e:
        raise ValueError(f"{path}: cannot decode audio: {e}") from e
    audio = np.frombuffer(raw, dtype=np.float32).copy()
    if audio.size == 0:
        raise ValueError(f"{path}: no audio stream")
    return audio


def read_wav(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Read a wav file as mono float32 and its native sample rate (no resampling)."""
    import soundfile as sf

    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return audio.mean(axis=1), int(sr)


# ---- writing -------------------------------------------------------------------------------------


def write_wav(path: str | os.PathLike[str], audio: np.ndarray, sr: int) -> None:
    """Write mono float audio in [-1,1] as 16-bit PCM wav."""
    import soundfile as sf

    sf.write(str(path), np.clip(audio, -1, 1), sr, subtype="PCM_16", format="WAV")


def write_video(
    path: str | os.PathLike[str],
    frames: np.ndarray,
    fps: float = 25.0,
    audio: np.ndarray | None = None,
    sr: int = 25000,
    codec: str = "mpeg1",
) -> None:
    """Encode RGB frames ``(T,H,W,3) uint8`` (and optional mono audio) with ffmpeg.

    ``codec="mpeg1"`` writes GRID's format (MPEG-1 video + MP2 audio in an MPEG-PS ``.mpg``);
    ``codec="h264"`` writes an MP4 (H.264 + AAC) that browsers play inline.
    """
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T,H,W,3) uint8, got {frames.shape}")
    t, h, w, _ = frames.shape
    args = ["-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-"]
    with tempfile.TemporaryDirectory() as tmp:
        if audio is not None:
            wav = Path(tmp) / "a.wav"
            write_wav(wav, audio, sr)
            args += ["-i", str(wav)]
        if codec == "mpeg1":
            # Fixed quantiser + no B-frames: deterministic bytes and quality close to GRID's.
            args += ["-c:v", "mpeg1video", "-q:v", "2", "-bf", "0", "-g", "12", "-pix_fmt", "yuv420p"]
            if audio is not None:
                args += ["-c:a", "mp2", "-b:a", "128k", "-ar", "44100"]  # GRID: 44.1 kHz MP2
            args += ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-f", "mpeg"]
        elif codec == "h264":
            args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]
            if audio is not None:
                args += ["-c:a", "aac", "-b:a", "96k"]
            args += ["-movflags", "+faststart", "-f", "mp4"]
        else:
            raise ValueError(f"unknown codec {codec!r}; use 'mpeg1' or 'h264'")
        _run_ffmpeg([*args, str(path)], stdin=frames.tobytes())


# ---- notebooks -----------------------------------------------------------------------------------


def video_html(frames: np.ndarray, audio: np.ndarray | None = None, sr: int = 25000, fps: float = 25.0,
               width: int = 360) -> str:
    """An HTML5 ``<video>`` tag (H.264 + AAC, base64-embedded) that plays inline with sound."""
    with tempfile.TemporaryDirectory() as tmp:
        mp4 = Path(tmp) / "clip.mp4"
        h, w = frames.shape[1:3]
        # libx264 with yuv420p needs even sizes.
        frames = frames[:, : h - h % 2, : w - w % 2]
        write_video(mp4, frames, fps=fps, audio=audio, sr=sr, codec="h264")
        b64 = base64.b64encode(mp4.read_bytes()).decode()
    return (f'<video width="{width}" controls><source src="data:video/mp4;base64,{b64}" '
            'type="video/mp4">Your browser cannot play this video.</video>')


def show_video(frames: np.ndarray, audio: np.ndarray | None = None, sr: int = 25000, fps: float = 25.0,
               width: int = 360):
    """Display a clip inline in Jupyter, with sound when ``audio`` is given."""
    from IPython.display import HTML

    return HTML(video_html(frames, audio, sr=sr, fps=fps, width=width))
