"""Talking heads on demand: one photo (or a video's first frame) and any speech -> an mp4.

The steps are the training pipeline's own, so the generator sees what it was trained on:

1. **Face**: dlib HOG detector, 68 landmarks, and the fixed square of :func:`autalk.faces.crop_box`
   resized with :func:`autalk.faces.crop_faces`, exactly as :func:`autalk.preprocess.preprocess_clip`
   cuts the cache's crops (one still image is a one-frame "clip").
2. **Audio**: mixed to mono and resampled to :data:`autalk.audio.SAMPLE_RATE` (both said in the notes),
   12 MFCCs, one 280 ms window per video frame at 25 fps (``round(duration * 25)`` frames), normalised
   with the MFCC statistics stored in the checkpoint. ``text=`` speaks a sentence with the teaching
   corpus's eSpeak NG voice instead.
3. **Frames**: the generator runs over the whole sequence at once (its GRU carries state from frame to
   frame, so cutting the audio into independent chunks would change the result); only the image decoder,
   which is per frame, runs in chunks, which bounds memory for long audio.
4. **Video**: H.264 + AAC mp4 through :func:`autalk.media.write_video`, written to a temporary file in the
   destination folder and renamed, so a failure never leaves a partial file.

:func:`generate` does all of it; :func:`prepare_face`, :func:`audio_features` and :func:`render` are the
pieces an interactive demo reuses (detect once, then re-render for every new recording).
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autalk import audio as A

if TYPE_CHECKING:
    import torch
    from torch import nn

    from autalk.corpus.speech import Voice

FPS = 25.0  # the video rate every corpus is resampled to (GRID's)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
DEFAULT_CHECKPOINT = Path("runs") / "quick" / "04_gan" / "checkpoint.pt"
DECODE_CHUNK = 32  # frames per decoder call: ~200 MB at 112 px (speed is the same from 16 to 100)
PROGRESS_MIN_FRAMES = 250  # a progress bar for audio longer than 10 s
TEXT_SPEAKER = 1  # --text speaks with the teaching corpus's voice of speaker s1 (seed 0)
TEXT_PAD_S = 0.3  # silence around synthesised text, so the mouth starts and ends at rest
MAX_PASTE_SIDE = 1280  # paste-back frames are downscaled to this longer side (every frame is held in memory)
PASTE_FEATHER = 0.08  # paste-back blends the crop's outer 8% into the photo instead of a hard edge

Notes = list[str]


# ---- results ---------------------------------------------------------------------------------------


@dataclass
class FaceInfo:
    """Where the face was found in the source image.

    square: ``(x0, y0, side)`` the crop square in image pixels (may extend past the image; edge-filled).
    box: ``(4,)`` the detector's box x0,y0,x1,y1; landmarks: ``(68,2)`` x,y in image pixels.
    transform: ``(3,3)`` image pixels -> crop pixels (see :func:`autalk.faces.crop_faces`).
    """

    image: np.ndarray  # (H,W,3) uint8 RGB, the source image
    square: tuple[int, int, int]
    box: np.ndarray
    landmarks: np.ndarray
    transform: np.ndarray
    n_faces: int
    notes: Notes = field(default_factory=list)


@dataclass
class GenerationResult:
    """What :func:`generate` made. ``frames`` are the generated face crops; ``video`` what the mp4 shows
    (the crops, or the photo with the crops pasted back)."""

    frames: np.ndarray  # (T,S,S,3) uint8
    audio: np.ndarray  # (N,) float32 mono, the audio muxed into the mp4
    sr: int
    fps: float
    face: FaceInfo
    out: Path | None
    notes: Notes
    video: np.ndarray | None = None  # (T,H,W,3) uint8 with paste_back, else None (the mp4 shows frames)

    @property
    def box(self) -> tuple[int, int, int]:
        """The crop square ``(x0, y0, side)`` in source-image pixels."""
        return self.face.square

    @property
    def duration(self) -> float:
        return len(self.frames) / self.fps


# ---- face ------------------------------------------------------------------------------------------


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """An image file (jpg, png, ...) or a video's first frame as ``(H,W,3) uint8`` RGB."""
    import cv2

    from autalk.media import read_video

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"face image {p} not found")
    if p.stat().st_size == 0:
        raise ValueError(f"{p}: empty file (0 bytes); pass a jpg/png photo or a video")
    if p.suffix.lower() in IMAGE_SUFFIXES:
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)  # grey and RGBA become 3-channel BGR
        if bgr is None:
            raise ValueError(f"{p}: not a readable image; pass a jpg or png photo")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    try:
        frames, _ = read_video(p, max_frames=1)
    except ValueError as e:
        raise ValueError(
            f"{p}: neither an image ({', '.join(IMAGE_SUFFIXES)}) nor a readable video ({e})"
        ) from None
    return frames[0]


def as_rgb(image: np.ndarray, name: str = "image") -> np.ndarray:
    """An in-memory image as contiguous ``(H,W,3) uint8`` RGB (grey and RGBA accepted; RGB order assumed)."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    if img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 16:
        raise ValueError(f"{name} must be an (H,W,3) RGB image, got shape {img.shape}")
    if img.dtype != np.uint8:
        if np.issubdtype(img.dtype, np.floating) and img.max() <= 1.0:
            img = img * 255.0  # float images in [0,1]
        img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


@functools.lru_cache(maxsize=1)
def _face_models() -> tuple[Any, Any, Any]:
    """(HOG detector, HOG detector on a 2x upsampled image for small faces, 68-point predictor)."""
    from autalk.faces import FaceDetector, LandmarkPredictor

    return FaceDetector("hog"), FaceDetector("hog", upsample=1), LandmarkPredictor()


def prepare_face(image: str | os.PathLike[str] | np.ndarray, size: int = 64) -> tuple[np.ndarray, FaceInfo]:
    """Find the face and cut the generator's identity crop ``(size,size,3) uint8``, as preprocessing does.

    ``image``: a path (photo or video: its first frame) or an ``(H,W,3)`` RGB array; ``size``: the
    generator's ``cfg.image_size``. Several faces: the largest is used and a note says so. No face: a
    ``ValueError`` saying what to try.
    """
    from autalk.faces import crop_box, crop_faces

    name = str(image) if not isinstance(image, np.ndarray) else "the image"
    img = read_image(image) if not isinstance(image, np.ndarray) else as_rgb(image)
    detector, upsampled, predictor = _face_models()
    notes: Notes = []
    faces = detector.detect(img)
    if not faces:  # HOG misses faces narrower than ~80 px: try once on the image upsampled 2x
        faces = upsampled.detect(img)
        if faces:
            notes.append("face found only on the 2x upsampled image (small face): expect a soft crop")
    if not faces:
        h, w = img.shape[:2]
        raise ValueError(
            f"{name}: no face found ({w}x{h} image, dlib HOG detector). Use a frontal, "
            "well-lit photo with the face at least ~80 px wide"
        )
    if len(faces) > 1:
        x0, y0, x1, y1 = (int(round(v)) for v in faces[0][:4])
        notes.append(
            f"warning: {len(faces)} faces found; using the largest ({x1 - x0}x{y1 - y0} px at x={x0}, y={y0})"
        )
    box = np.asarray(faces[0][:4], dtype=np.float32)
    lm = predictor.predict(img, box)  # (68,2) image pixels
    square = crop_box(box[None], lm[None])  # from the landmarks, as for every cached clip
    crops, _, transform = crop_faces(img[None], None, lm[None], size, square=square)
    info = FaceInfo(
        image=img, square=square, box=box, landmarks=lm, transform=transform, n_faces=len(faces), notes=notes
    )
    return crops[0], info


# ---- audio -----------------------------------------------------------------------------------------


def to_mono(audio: np.ndarray, notes: Notes | None = None) -> np.ndarray:
    """``(N,)``, ``(N,C)`` or ``(C,N)`` (C <= 8) float audio -> ``(N,)`` float32, channels averaged."""
    y = np.asarray(audio)
    if y.ndim == 2:
        if y.shape[0] <= 8 < y.shape[1]:  # channels first (librosa / torchaudio layout)
            y = y.T
        if y.shape[1] > 1 and notes is not None:
            notes.append(f"audio: {y.shape[1]} channels mixed to mono")
        y = y.mean(axis=1)
    if y.ndim != 1:
        raise ValueError(f"audio must be (N,) mono or (N, channels), got shape {np.shape(audio)}")
    if np.issubdtype(y.dtype, np.integer):  # PCM integers -> [-1, 1]
        y = y / float(np.iinfo(y.dtype).max + 1)
    y = np.ascontiguousarray(y, dtype=np.float32)
    if not np.isfinite(y).all():
        raise ValueError("audio contains NaN or infinite samples")
    return y


def resample(audio: np.ndarray, sr: int, target: int = A.SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling of mono audio (identity when the rates agree)."""
    import math

    from scipy.signal import resample_poly

    if int(sr) == int(target):
        return np.asarray(audio, dtype=np.float32)
    g = math.gcd(int(sr), int(target))
    return resample_poly(audio, int(target) // g, int(sr) // g).astype(np.float32)


def n_video_frames(n_samples: int, sr: int, fps: float = FPS) -> int:
    """Video frames for an audio clip: ``round(duration * fps)``."""
    return int(round(n_samples / sr * fps))


def read_speech(path: str | os.PathLike[str], notes: Notes) -> tuple[np.ndarray, int]:
    """Any audio file (wav/flac/ogg through soundfile, anything else through ffmpeg): mono float32, sr."""
    import soundfile as sf

    from autalk.media import read_audio

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"audio file {p} not found")
    if p.stat().st_size == 0:
        raise ValueError(f"{p}: empty audio file (0 bytes)")
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)  # (N,C)
    except Exception:  # not a soundfile format (mp3, m4a, a video...): let ffmpeg decode it
        try:
            data, sr = read_audio(p, A.SAMPLE_RATE)[:, None], A.SAMPLE_RATE
        except ValueError:
            raise ValueError(
                f"{p}: not a readable audio file (neither soundfile nor ffmpeg can decode "
                "an audio stream); pass a wav, flac, mp3 or a video with sound"
            ) from None
        notes.append(f"audio: decoded with ffmpeg as mono {A.SAMPLE_RATE} Hz")
    if len(data) == 0:
        raise ValueError(f"{p}: the audio file holds no samples")
    return to_mono(data, notes), int(sr)


def speak(text: str, voice: Voice | None = None) -> tuple[np.ndarray, int]:
    """Speech for ``text`` from libespeak-ng with the teaching corpus's voice (speaker s1 by default),
    padded with :data:`TEXT_PAD_S` of silence on each side: ``(N,) float32``, sample rate."""
    from autalk.corpus import speech

    words = text.split()
    if not words:
        raise ValueError('--text is empty: give a sentence, e.g. --text "bin blue at f two now"')
    try:
        utt = speech.synthesize(words, voice or speech.voice_for_speaker(TEXT_SPEAKER))
    except RuntimeError as e:
        raise ValueError(f"eSpeak NG could not speak {text!r}: {e}") from None
    pad = np.zeros(int(round(TEXT_PAD_S * utt.sr)), dtype=np.float32)
    return np.concatenate([pad, utt.audio.astype(np.float32), pad]), int(utt.sr)


def load_speech(
    audio: str | os.PathLike[str] | tuple[np.ndarray, int] | None = None,
    text: str | None = None,
    notes: Notes | None = None,
) -> tuple[np.ndarray, int]:
    """The speech to animate, from exactly one of ``audio`` (a path or ``(samples, sr)``) and ``text``:
    ``(N,) float32`` mono at its own sample rate (features resample later; the mp4 keeps this rate)."""
    notes = [] if notes is None else notes
    if (audio is None) == (text is None):
        raise ValueError("give either audio (a file or (samples, sample_rate)) or text, not both or neither")
    if text is not None:
        y, sr = speak(text)
        notes.append(f"audio: {text!r} spoken by eSpeak NG ({len(y) / sr:.2f} s at {sr} Hz)")
    elif isinstance(audio, tuple):
        if len(audio) != 2 or int(audio[1]) <= 0:
            raise ValueError("in-memory audio must be a (samples, sample_rate) pair with sample_rate > 0")
        y, sr = to_mono(audio[0], notes), int(audio[1])
        if len(y) == 0:
            raise ValueError("the audio array holds no samples")
    else:
        y, sr = read_speech(audio, notes)
    if n_video_frames(len(y), sr) < 1:
        raise ValueError(
            f"audio is {1000 * len(y) / sr:.0f} ms long: too short for one video frame ({1000 / FPS:.0f} ms)"
        )
    return y, sr


def audio_features(audio: np.ndarray, sr: int, norm: A.NormStats, n_frames: int | None = None) -> np.ndarray:
    """Normalised MFCC windows, one per video frame at 25 fps: ``(T,12,28) float32``.

    ``audio``: mono (or ``(N,C)``: averaged) at any rate (resampled to 16 kHz); ``n_frames`` defaults to
    ``round(duration * 25)``; ``norm``: the checkpoint's statistics (``load_generator``'s second value).
    """
    y = to_mono(audio)
    t = n_video_frames(len(y), sr) if n_frames is None else int(n_frames)
    m = A.mfcc(resample(y, sr), A.SAMPLE_RATE)  # (12, N/160)
    windows = A.mfcc_windows(m, t, fps=FPS)  # (T,12,28)
    return np.ascontiguousarray(norm.apply(windows), dtype=np.float32)


# ---- generator -------------------------------------------------------------------------------------


def default_checkpoint() -> Path:
    """``runs/quick/04_gan/checkpoint.pt`` under the project root, or an error saying how to make one."""
    from autalk.profiles import MissingStageError, project_root

    p = project_root() / DEFAULT_CHECKPOINT
    if not p.is_file():
        raise MissingStageError(
            f"no --checkpoint given and {p} does not exist: train one with "
            "notebooks/04_gan_training.ipynb or `autalk train generator --profile quick`"
        )
    return p


def check_device(device: str) -> str:
    """``device`` if torch can use it, else a ``ValueError`` saying what to pass instead."""
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device {device!r}: not a torch device; use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA GPU is visible to torch; use --device cpu")
    return device


def load_model(
    checkpoint: str | os.PathLike[str] | None, device: str = "cpu", notes: Notes | None = None
) -> tuple[nn.Module, A.NormStats, Any]:
    """``autalk.stages.load_generator`` with the default checkpoint and one-line errors.

    A folder means its ``checkpoint.pt``. Returns (generator in eval mode, MFCC NormStats, Checkpoint).
    """
    from autalk.checkpoint import CheckpointError
    from autalk.stages import load_generator

    check_device(device)
    if checkpoint is None:
        path = default_checkpoint()
        if notes is not None:
            notes.append(f"no --checkpoint given: using {path}")
    else:
        path = Path(checkpoint)
        if path.is_dir():
            path = path / "checkpoint.pt"
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {path} not found; pass runs/<profile>/04_gan/checkpoint.pt")
    try:
        gen, norm, ck = load_generator(path, device)
    except CheckpointError as e:  # the strict-load message appends torch's key listing: keep line one
        first = str(e).splitlines()[0].rstrip(":")
        hint = "" if "stage" in first else " (another model config or autalk version?)"
        raise CheckpointError(first + hint) from None
    except (KeyError, TypeError) as e:  # a checkpoint of the right format without the generator's config
        raise CheckpointError(
            f"{path}: generator checkpoint without a usable experiment config or "
            f"mfcc_norm ({type(e).__name__}: {e}); retrain it with this autalk"
        ) from None
    if notes is not None and not ck.extra.get("complete", True):
        notes.append(
            f"{path} is from an unfinished run (epoch {ck.extra.get('epoch', '?')}): expect rough frames"
        )
    return gen, norm, ck


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (...,H,W,3) -> float32 (...,3,H,W) in [-1,1], the dataset's scaling (``dataset.to_image``)."""
    from autalk.data.dataset import to_image

    return to_image(image)


def _decode_features(gen: nn.Module, identity: torch.Tensor, mfcc: torch.Tensor):
    """The generator's forward pass up to the decoder input over the whole sequence:
    (per-frame GRU outputs (T,hidden), skips [e1..e4] each (1,C,h,w)) — ``Generator.encode``."""
    ft, skips, _ = gen.encode(identity, mfcc)
    return ft[0], skips


def _to_uint8(frames: torch.Tensor) -> np.ndarray:
    """float (N,3,H,W) in [-1,1] -> uint8 (N,H,W,3)."""
    from autalk.data.dataset import to_uint8

    return to_uint8(frames)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` torch CPU threads (None: unchanged), restoring the setting after."""
    import torch

    old = torch.get_num_threads()
    if n is not None and n != old:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


def render(
    generator: nn.Module,
    identity_crop: np.ndarray,
    mfcc_windows: np.ndarray,
    progress: bool = False,
    chunk: int = DECODE_CHUNK,
    threads: int | None = 1,
) -> np.ndarray:
    """Generate every frame: identity ``(S,S,3) uint8`` + windows ``(T,12,28)`` -> ``(T,S,S,3) uint8``.

    The recurrent part sees the whole sequence in one pass; the paper generator's decoder then runs
    ``chunk`` frames at a time (generators with their own ``forward``, e.g. Speech2Vid, run in one call).

    Speed on CPU: the decoder is switched to channels-last memory (same numbers, ~1.6x faster) and torch
    runs on ``threads`` threads (default 1): on a shared 2-core machine a second thread made the small
    LSTM/GRU steps ~100x and the 64 px decoder ~6x slower, and gained nothing at 112 px.
    """
    import torch
    from tqdm.auto import tqdm

    from autalk.networks import Generator, check_generator_inputs

    device = next(generator.parameters()).device
    s = identity_crop.shape[0]
    ident = _to_tensor(np.asarray(identity_crop, dtype=np.uint8))[None].to(device)  # (1,3,S,S)
    mfcc = torch.from_numpy(np.ascontiguousarray(mfcc_windows, dtype=np.float32))[None].to(device)
    t = mfcc.shape[1]
    cpu = device.type == "cpu"
    with torch_threads(threads if cpu else None), torch.inference_mode():
        if type(generator).forward is not Generator.forward:  # e.g. Speech2Vid: one call
            return _to_uint8(generator(ident, mfcc).frames[0])
        check_generator_inputs(generator.cfg, ident, mfcc)
        fmt = torch.channels_last if cpu else torch.contiguous_format
        generator.decoder.to(memory_format=fmt)  # no copy once converted
        ft, skips = _decode_features(generator, ident, mfcc)  # (T,hidden), [(1,C,h,w)]
        skips = [e.contiguous(memory_format=fmt) for e in skips]
        out = np.empty((t, s, s, 3), dtype=np.uint8)
        with tqdm(
            total=t, desc="frames", unit="frame", disable=not progress or t < PROGRESS_MIN_FRAMES, leave=False
        ) as bar:
            for a in range(0, t, chunk):
                n = min(chunk, t - a)
                frames = generator.decoder(ft[a : a + n], [e.expand(n, *e.shape[1:]) for e in skips])
                out[a : a + n] = _to_uint8(frames)  # (n,S,S,3)
                bar.update(n)
    return out


# ---- paste-back and writing ------------------------------------------------------------------------


def _feather_mask(side: int) -> np.ndarray:
    """(side,side,1) float32 weights: 1 inside, ramping to 0 over the outer PASTE_FEATHER of the square."""
    ramp = max(1, int(round(PASTE_FEATHER * side)))
    d = np.minimum(np.arange(side), np.arange(side)[::-1]).astype(np.float32)
    w = np.clip((d + 0.5) / ramp, 0.0, 1.0)
    return np.minimum(w[:, None], w[None, :])[:, :, None]


def paste_faces(
    image: np.ndarray, crops: np.ndarray, square: tuple[int, int, int], notes: Notes | None = None
) -> np.ndarray:
    """Each crop ``(T,S,S,3)`` resized to the square and blended into the photo: ``(T,H',W',3) uint8``.

    Large photos are first downscaled to :data:`MAX_PASTE_SIDE`; sizes are made even (H.264 4:2:0).
    """
    import cv2

    img = np.asarray(image)
    x0, y0, side = square
    h, w = img.shape[:2]
    scale = min(1.0, MAX_PASTE_SIDE / max(h, w))
    if scale < 1.0:
        nw, nh = int(round(w * scale)), int(round(h * scale))
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
        x0, y0, side = int(round(x0 * scale)), int(round(y0 * scale)), max(2, int(round(side * scale)))
        if notes is not None:
            notes.append(f"paste-back: photo downscaled {w}x{h} -> {nw}x{nh} (frames are held in memory)")
        h, w = nh, nw
    h2, w2 = h - h % 2, w - w % 2
    img = img[:h2, :w2]
    # The part of the square inside the frame.
    ax, ay, bx, by = max(0, x0), max(0, y0), min(w2, x0 + side), min(h2, y0 + side)
    if ax >= bx or ay >= by:
        raise ValueError("paste-back: the face square lies outside the image")
    mask = _feather_mask(side)[ay - y0 : by - y0, ax - x0 : bx - x0]
    base = img[ay:by, ax:bx].astype(np.float32) * (1.0 - mask)
    interp = cv2.INTER_CUBIC if side > crops.shape[1] else cv2.INTER_AREA
    out = np.repeat(img[None], len(crops), axis=0)
    for i, crop in enumerate(crops):
        big = cv2.resize(crop, (side, side), interpolation=interp)[ay - y0 : by - y0, ax - x0 : bx - x0]
        out[i, ay:by, ax:bx] = np.clip(base + big.astype(np.float32) * mask + 0.5, 0, 255).astype(np.uint8)
    return out


def check_output_path(out: str | os.PathLike[str]) -> Path:
    """Fail early (before any work) when ``out`` cannot be written as an mp4."""
    p = Path(out)
    if p.suffix.lower() != ".mp4":
        raise ValueError(f"--out {p}: the video is H.264 + AAC in an mp4; name it *.mp4")
    if p.is_dir():
        raise ValueError(f"--out {p} is a folder; give a file name such as {p / 'talking.mp4'}")
    parent = p.parent
    if not parent.exists():
        raise FileNotFoundError(f"--out {p}: folder {parent} does not exist; create it first")
    if not parent.is_dir():
        raise NotADirectoryError(f"--out {p}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"--out {p}: folder {parent} is not writable; choose another --out")
    return p


def write_mp4(
    out: str | os.PathLike[str], frames: np.ndarray, audio: np.ndarray, sr: int, fps: float = FPS
) -> Path:
    """H.264 + AAC mp4 via :func:`autalk.media.write_video`, written to a temporary file beside ``out``
    and renamed into place; nothing is left behind on failure."""
    from autalk.media import write_video

    out = check_output_path(out)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".part.mp4", dir=out.parent)
    except OSError as e:
        raise PermissionError(f"--out {out}: cannot create a file in {out.parent} ({e.strerror})") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write_video(tmp, frames, fps=fps, audio=audio, sr=sr, codec="h264")
        os.replace(tmp, out)
    except RuntimeError as e:  # ffmpeg's own failure (disk full, ...): one line, no partial file
        raise ValueError(f"writing {out} failed: {str(e).splitlines()[0]}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return out


# ---- everything ------------------------------------------------------------------------------------


def generate(
    face: str | os.PathLike[str] | np.ndarray,
    audio: str | os.PathLike[str] | tuple[np.ndarray, int] | None = None,
    text: str | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    paste_back: bool = False,
    device: str = "cpu",
    progress: bool = True,
    on_note: Callable[[str], None] | None = None,
) -> GenerationResult:
    """A talking head from one face and some speech; writes ``out`` (an mp4) when given.

    ``face``: photo / video path or ``(H,W,3)`` RGB array. ``audio``: a file (any rate, any channel count)
    or ``(samples, sr)``; or ``text`` to speak with eSpeak NG. ``checkpoint``: a ``04_gan`` checkpoint.pt
    (default ``runs/quick/04_gan/checkpoint.pt``). ``paste_back``: the mp4 shows the whole photo with the
    generated face blended in. ``on_note``: called with each note (resampling, several faces, ...) as it
    happens; all notes are also in the result. Bad input raises ``ValueError`` / ``FileNotFoundError``
    with a one-line message, before any file is created.
    """
    notes: Notes = []

    def note_all(new: Notes) -> None:
        for n in new:
            notes.append(n)
            if on_note is not None:
                on_note(n)

    if out is not None:
        check_output_path(out)
    step: Notes = []
    gen, norm, _ = load_model(checkpoint, device, step)
    note_all(step)
    step = []
    y, sr = load_speech(audio, text, step)
    if sr != A.SAMPLE_RATE:
        step.append(f"audio: resampled {sr} -> {A.SAMPLE_RATE} Hz for the MFCCs (the mp4 keeps {sr} Hz)")
    note_all(step)
    crop, info = prepare_face(face, gen.cfg.image_size)
    note_all(info.notes)
    windows = audio_features(y, sr, norm)  # (T,12,28)
    frames = render(gen, crop, windows, progress=progress)
    step = []
    video = paste_faces(info.image, frames, info.square, step) if paste_back else None
    note_all(step)
    written = write_mp4(out, frames if video is None else video, y, sr) if out is not None else None
    return GenerationResult(
        frames=frames, audio=y, sr=sr, fps=FPS, face=info, out=written, notes=notes, video=video
    )
