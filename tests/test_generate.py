"""``autalk generate`` and ``autalk.generate``: a tiny random generator saved the way training saves it,
a real GRID face and real read speech (16 kHz mono, and a 44.1 kHz stereo copy)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf
import torch

from autalk import cli
from autalk import generate as G
from autalk.audio import NormStats
from autalk.checkpoint import save_checkpoint
from autalk.config import ExperimentConfig, LossConfig, tiny_model_config
from autalk.media import ffmpeg_exe, read_video
from autalk.networks import Generator

REAL = Path(__file__).parent / "fixtures" / "real"
GRID_VIDEO = REAL / "grid" / "s1" / "video" / "bbaf2n.mpg"
SPEECH = REAL / "speech" / "arctic_a0007.wav"  # 16 kHz mono, 4.0 s
SIZE = 64


def gen_config(stage: str = "generator", **model: object) -> dict:
    exp = ExperimentConfig(
        name="full", model=tiny_model_config(image_size=SIZE, **model), loss=LossConfig(vgg_weights="random")
    )
    return {
        "stage": stage,
        "experiment": exp.to_dict(),
        "baseline": None,
        "train": {},
        "mouth_box_yyxx": [36, 54, 20, 44],
        "data": {},
    }


def save_generator(path: Path, config: dict | None = None, gen: Generator | None = None) -> Path:
    """A checkpoint as the generator stage writes it (random tiny weights)."""
    torch.manual_seed(0)
    gen = gen or Generator(tiny_model_config(image_size=SIZE))
    norm = NormStats(np.zeros(12, np.float32), np.full(12, 20.0, np.float32), 100, ["s1"])
    return save_checkpoint(
        path,
        {"generator": gen},
        config or gen_config(),
        step=1,
        extra={"mfcc_norm": norm.to_dict(), "epoch": 0, "complete": True},
    )


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("generate")
    frame = read_video(GRID_VIDEO, max_frames=1)[0][0]  # (288,360,3) RGB
    cv2.imwrite(str(d / "face.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(d / "blank.jpg"), np.full((240, 320, 3), 128, np.uint8))
    small = cv2.resize(frame, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA)
    two = np.zeros((288, 360 + small.shape[1], 3), np.uint8)  # the real face left, a smaller copy right
    two[:, :360], two[: small.shape[0], 360:] = frame, small
    cv2.imwrite(str(d / "two.png"), cv2.cvtColor(two, cv2.COLOR_RGB2BGR))
    y, sr = sf.read(str(SPEECH), dtype="float32")
    y44 = G.resample(y, sr, 44100)
    sf.write(str(d / "stereo44k.wav"), np.stack([y44, 0.5 * y44], axis=1), 44100)
    sf.write(str(d / "no_samples.wav"), np.zeros((0,), np.float32), 16000)
    (d / "empty.wav").write_bytes(b"")
    (d / "garbage.wav").write_text("this is not audio\n" * 50)
    save_generator(d / "ckpt.pt")
    return {
        "dir": d,
        "face": d / "face.png",
        "blank": d / "blank.jpg",
        "two": d / "two.png",
        "stereo": d / "stereo44k.wav",
        "no_samples": d / "no_samples.wav",
        "empty": d / "empty.wav",
        "garbage": d / "garbage.wav",
        "ckpt": d / "ckpt.pt",
        "frame": frame,
    }


def probe(path: Path) -> tuple[float, list[str]]:
    """(duration in s, stream lines) from ``ffmpeg -i`` (it exits 1 without an output: fine)."""
    err = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    ).stderr
    h, m, s = re.search(r"Duration: (\d+):(\d+):([\d.]+)", err).groups()
    return 3600 * int(h) + 60 * int(m) + float(s), [ln.strip() for ln in err.splitlines() if "Stream #" in ln]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = cli.main(["generate", "--quiet", *args])
    out, err = capsys.readouterr()
    return rc, out, err


# ---- pieces ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["paper", "no_audio2au", "cran", "speech2vid"])
def test_render_matches_the_generator_forward(kind: str) -> None:
    """render() splits the forward pass (sequence part once, decoder in chunks): same frames."""
    from autalk.baselines import build_baseline
    from autalk.data.dataset import to_uint8

    torch.manual_seed(0)
    cfg = tiny_model_config(image_size=SIZE, use_audio2au=kind != "no_audio2au")
    gen = (Generator(cfg) if kind in ("paper", "no_audio2au") else build_baseline(kind, cfg)[0]).eval()
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    windows = rng.normal(size=(11, 12, 28)).astype(np.float32)
    with torch.no_grad():
        ref = to_uint8(gen(G._to_tensor(crop)[None], torch.from_numpy(windows)[None]).frames[0])
    got = G.render(gen, crop, windows, chunk=4)  # 3 chunks, the last one short
    assert got.shape == (11, SIZE, SIZE, 3) and got.dtype == np.uint8
    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1


def test_prepare_face_crops_like_preprocessing(assets: dict) -> None:
    """One photo gives (nearly) the square preprocessing cuts from the whole clip's landmarks."""
    from autalk.faces import FaceDetector, LandmarkPredictor, crop_box, track_face

    crop, info = G.prepare_face(assets["face"], SIZE)
    assert crop.shape == (SIZE, SIZE, 3) and crop.dtype == np.uint8 and info.n_faces == 1
    frames, _ = read_video(GRID_VIDEO)
    track = track_face(frames, FaceDetector())
    x0, y0, side = crop_box(track.boxes, LandmarkPredictor()(frames, track.boxes))
    gx, gy, gside = info.square
    assert abs(gside - side) <= 0.05 * side and abs(gx - x0) <= 0.05 * side and abs(gy - y0) <= 0.05 * side
    # The same crop from the array, the png and the video (its first frame).
    assert np.array_equal(G.prepare_face(assets["frame"], SIZE)[0], crop)
    assert np.array_equal(G.prepare_face(GRID_VIDEO, SIZE)[0], crop)


def test_several_faces_take_the_largest_with_a_warning(assets: dict) -> None:
    _, info = G.prepare_face(assets["two"], SIZE)
    assert info.n_faces == 2
    assert info.square[0] + info.square[2] / 2 < 360  # the full-size face on the left
    assert any(n.startswith("warning: 2 faces found; using the largest") for n in info.notes)


def test_audio_features_any_rate_and_channels(assets: dict) -> None:
    norm = NormStats(np.zeros(12, np.float32), np.full(12, 20.0, np.float32))
    y, sr = sf.read(str(SPEECH), dtype="float32")
    mono = G.audio_features(y, sr, norm)
    notes: list[str] = []
    y2, sr2 = G.load_speech(assets["stereo"], notes=notes)
    stereo = G.audio_features(y2, sr2, norm)
    assert mono.shape == stereo.shape == (100, 12, 28) and stereo.dtype == np.float32
    assert "audio: 2 channels mixed to mono" in notes
    # Resampled 44.1 kHz speech gives the same MFCCs up to resampling noise.
    assert np.corrcoef(mono.ravel(), stereo.ravel())[0, 1] > 0.98
    assert G.audio_features(y, sr, norm, n_frames=7).shape == (7, 12, 28)
    notes = []
    y3, sr3 = G.load_speech(GRID_VIDEO, notes=notes)  # the sound track of a video
    assert sr3 == 16000 and abs(len(y3) / sr3 - 3.0) < 0.05 and "decoded with ffmpeg" in notes[0]


# ---- generate() and the command --------------------------------------------------------------------


def test_cli_writes_h264_aac_with_the_right_frames(
    assets: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "talk.mp4"
    rc, stdout, _ = run_cli(
        [
            "--face",
            str(assets["face"]),
            "--audio",
            str(SPEECH),
            "--checkpoint",
            str(assets["ckpt"]),
            "--out",
            str(out),
        ],
        capsys,
    )
    assert rc == 0 and f"wrote {out}" in stdout
    frames, fps = read_video(out)
    assert frames.shape == (100, SIZE, SIZE, 3) and fps == 25.0  # round(4.0 s * 25)
    duration, streams = probe(out)
    assert abs(duration - 4.0) < 0.1
    assert any("Video: h264" in s for s in streams) and any("Audio: aac" in s for s in streams)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.mp4"]  # no temporary file left


def test_generate_stereo_44k_says_what_it_did(assets: dict, tmp_path: Path) -> None:
    res = G.generate(
        assets["face"],
        audio=assets["stereo"],
        checkpoint=assets["ckpt"],
        out=tmp_path / "s.mp4",
        progress=False,
    )
    assert res.frames.shape == (100, SIZE, SIZE, 3) and res.sr == 44100 and res.fps == 25.0
    assert "audio: 2 channels mixed to mono" in res.notes
    assert any("resampled 44100 -> 16000 Hz" in n for n in res.notes)
    assert len(read_video(res.out)[0]) == 100
    assert abs(probe(res.out)[0] - 4.0) < 0.1


def test_generate_text_and_paste_back(assets: dict, tmp_path: Path, capsys) -> None:
    out = tmp_path / "text.mp4"
    rc, stdout, _ = run_cli(
        [
            "--face",
            str(assets["face"]),
            "--text",
            "bin blue at f two now",
            "--checkpoint",
            str(assets["ckpt"]),
            "--out",
            str(out),
            "--paste-back",
        ],
        capsys,
    )
    assert rc == 0 and out.is_file()
    frames, _ = read_video(out)
    assert frames.shape[1:] == (288, 360, 3)  # the whole photo
    res = G.generate(
        assets["frame"],
        text="bin blue at f two now",
        checkpoint=assets["ckpt"],
        paste_back=True,
        progress=False,
    )
    assert len(frames) == len(res.frames) == round(len(res.audio) / res.sr * 25)
    assert res.out is None and res.video.shape == (len(res.frames), 288, 360, 3)
    x0, y0, side = res.box
    outside = np.ones((288, 360), bool)
    outside[max(0, y0) : y0 + side, max(0, x0) : x0 + side] = False
    assert np.array_equal(
        res.video[:, outside], np.broadcast_to(assets["frame"][outside], res.video[:, outside].shape)
    )


def test_in_memory_audio(assets: dict) -> None:
    y, sr = sf.read(str(SPEECH), dtype="int16")
    res = G.generate(assets["frame"], audio=(y[:8000], sr), checkpoint=assets["ckpt"], progress=False)
    assert res.frames.shape[0] == 12 and res.audio.dtype == np.float32  # 0.5 s -> round(12.5) = 12


# ---- bad input: one line, exit code 2, no file -----------------------------------------------------


def assert_refused(
    assets: dict, tmp_path: Path, capsys, args: list[str], message: str, out: Path | None = None
) -> None:
    out = out or tmp_path / "never.mp4"
    base = {
        "--face": str(assets["face"]),
        "--audio": str(SPEECH),
        "--checkpoint": str(assets["ckpt"]),
        "--out": str(out),
    }
    it = iter(args)
    base.update(dict(zip(it, it, strict=True)))
    if base.get("--text"):
        base.pop("--audio")
    rc, stdout, err = run_cli([x for kv in base.items() for x in kv if x is not None], capsys)
    assert rc == 2, err
    assert message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
    if out.parent.is_dir():
        assert not [p for p in out.parent.iterdir() if p.name.startswith(".") and "part" in p.name]


def test_no_face(assets: dict, tmp_path: Path, capsys) -> None:
    assert_refused(assets, tmp_path, capsys, ["--face", str(assets["blank"])], "no face found")


def test_missing_and_unreadable_face(assets: dict, tmp_path: Path, capsys) -> None:
    assert_refused(assets, tmp_path, capsys, ["--face", str(tmp_path / "nope.jpg")], "not found")
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    assert_refused(assets, tmp_path, capsys, ["--face", str(bad)], "not a readable image")


@pytest.mark.parametrize(
    "key,message",
    [
        ("empty", "empty audio file (0 bytes)"),
        ("no_samples", "holds no samples"),
        ("garbage", "not a readable audio file"),
    ],
)
def test_bad_audio(assets: dict, tmp_path: Path, capsys, key: str, message: str) -> None:
    assert_refused(assets, tmp_path, capsys, ["--audio", str(assets[key])], message)


def test_missing_or_too_short_audio(assets: dict, tmp_path: Path, capsys) -> None:
    assert_refused(assets, tmp_path, capsys, ["--audio", str(tmp_path / "none.wav")], "not found")
    short = tmp_path / "short.wav"
    sf.write(str(short), np.zeros(160, np.float32), 16000)  # 10 ms
    assert_refused(assets, tmp_path, capsys, ["--audio", str(short)], "too short for one video frame")


def test_bad_checkpoints(assets: dict, tmp_path: Path, capsys) -> None:
    other_stage = save_generator(tmp_path / "a2au.pt", gen_config(stage="audio2au"))
    assert_refused(assets, tmp_path, capsys, ["--checkpoint", str(other_stage)], "stage 'audio2au'")
    other_cfg = save_generator(tmp_path / "wide.pt", gen_config(base_channels=16))  # weights are width 8
    assert_refused(assets, tmp_path, capsys, ["--checkpoint", str(other_cfg)], "does not fit")
    not_ours = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, not_ours)
    assert_refused(assets, tmp_path, capsys, ["--checkpoint", str(not_ours)], "not an autalk checkpoint")
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    assert_refused(assets, tmp_path, capsys, ["--checkpoint", str(text)], "not a safe autalk checkpoint")
    assert_refused(assets, tmp_path, capsys, ["--checkpoint", str(tmp_path / "gone.pt")], "not found")


def test_bad_device(assets: dict, tmp_path: Path, capsys) -> None:
    assert_refused(assets, tmp_path, capsys, ["--device", "gpu"], "not a torch device")
    if not torch.cuda.is_available():
        assert_refused(assets, tmp_path, capsys, ["--device", "cuda"], "no CUDA GPU is visible")


def test_default_checkpoint_missing_says_how_to_make_one(
    assets: dict, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTALK_ROOT", str(tmp_path))
    rc, _, err = run_cli(
        ["--face", str(assets["face"]), "--audio", str(SPEECH), "--out", str(tmp_path / "x.mp4")], capsys
    )
    assert rc == 2
    assert "notebooks/04_gan_training.ipynb" in err and "autalk train generator --profile quick" in err


def test_unwritable_outputs(assets: dict, tmp_path: Path, capsys) -> None:
    assert_refused(assets, tmp_path, capsys, [], "does not exist", out=tmp_path / "no_dir" / "o.mp4")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert_refused(assets, tmp_path, capsys, [], "is not a folder", out=a_file / "o.mp4")
    assert_refused(assets, tmp_path, capsys, [], "name it *.mp4", out=tmp_path / "o.avi")
    folder = tmp_path / "folder.mp4"
    folder.mkdir()
    rc, _, err = run_cli(
        [
            "--face",
            str(assets["face"]),
            "--audio",
            str(SPEECH),
            "--checkpoint",
            str(assets["ckpt"]),
            "--out",
            str(folder),
        ],
        capsys,
    )
    assert rc == 2 and "is a folder" in err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_folder(assets: dict, tmp_path: Path, capsys) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert_refused(assets, tmp_path, capsys, [], "not writable", out=ro / "o.mp4")
    finally:
        ro.chmod(0o755)


def test_failed_encoding_leaves_nothing(
    assets: dict, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import autalk.media

    def broken(path, *a, **k):
        Path(path).write_bytes(b"half a video")
        raise RuntimeError("ffmpeg failed (-y ...): No space left on device\nmore detail")

    monkeypatch.setattr(autalk.media, "write_video", broken)
    assert_refused(assets, tmp_path, capsys, [], "No space left on device")


def test_api_refuses_audio_and_text_together(assets: dict) -> None:
    with pytest.raises(ValueError, match="either audio"):
        G.generate(assets["frame"], audio=SPEECH, text="bin blue", checkpoint=assets["ckpt"])
