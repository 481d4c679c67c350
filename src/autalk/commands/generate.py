"""``autalk generate``: a talking-head mp4 from any photo and any speech, with a trained generator."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="make a talking-head mp4 from a photo and speech (or text)",
        description="Animate the face in a photo (or a video's first frame) with speech: the face is found "
        "and cropped as preprocessing crops it, the audio (any rate or channel count) becomes MFCC windows "
        "at 25 fps, the generator makes every frame, and an H.264 + AAC mp4 with the audio is written.",
    )
    p.add_argument("--face", required=True, metavar="IMAGE", help="a jpg/png photo, or a video (first frame)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--audio", metavar="FILE", help="speech: wav, flac, mp3, or a video with sound")
    src.add_argument(
        "--text", metavar="SENTENCE", help="speak this sentence with the project's eSpeak NG voice"
    )
    p.add_argument(
        "--checkpoint",
        metavar="CKPT",
        default=None,
        help="a generator checkpoint.pt (or its folder); default runs/quick/04_gan/checkpoint.pt",
    )
    p.add_argument(
        "--out",
        metavar="OUT.mp4",
        default=None,
        help="where to write the video (default: <face>_<audio or 'text'>.mp4 here)",
    )
    p.add_argument(
        "--paste-back",
        action="store_true",
        help="show the whole photo with the generated face blended in (default: the face crop)",
    )
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto (default cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no notes, only the result line")
    p.set_defaults(func=run)


def default_out(face: str, audio: str | None) -> Path:
    return Path(f"{Path(face).stem}_{Path(audio).stem if audio else 'text'}.mp4")


def run(args: argparse.Namespace) -> int:
    from autalk import runtime
    from autalk.generate import generate

    device = (
        runtime.pick_device(args.device, verbose=not args.quiet) if args.device == "auto" else args.device
    )

    def say(note: str) -> None:
        if not args.quiet or note.startswith("warning"):
            print(note, file=sys.stderr)

    out = Path(args.out) if args.out else default_out(args.face, args.audio)
    res = generate(
        args.face,
        audio=args.audio,
        text=args.text,
        checkpoint=args.checkpoint,
        out=out,
        paste_back=args.paste_back,
        device=device,
        progress=not args.quiet,
        on_note=say,
    )
    size = res.video.shape[1:3] if res.video is not None else res.frames.shape[1:3]
    print(
        f"wrote {res.out} ({len(res.frames)} frames, {res.duration:.2f} s at {res.fps:g} fps, "
        f"{size[1]}x{size[0]}, H.264 + AAC)"
    )
    return 0
