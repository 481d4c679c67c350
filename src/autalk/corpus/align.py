"""GRID ``.align`` files: one ``start end token`` line per token, times in 1/25000 s units.

Tokens are the six words plus ``sil`` (leading/trailing silence) and ``sp`` (short pauses).
At 25 fps one video frame is 1000 units, so ``start // 1000`` is the frame index.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ALIGN_RATE = 25000  # units per second
SILENCE_TOKENS = frozenset({"sil", "sp"})


@dataclass(frozen=True)
class Segment:
    """A labelled time span in seconds."""

    start: float
    end: float
    label: str

    @property
    def duration(self) -> float:
        return self.end - self.start


def format_align(segments: list[Segment]) -> str:
    """Render segments (seconds) as GRID ``.align`` text (integer 1/25000 s units)."""
    lines = []
    for s in segments:
        a, b = round(s.start * ALIGN_RATE), round(s.end * ALIGN_RATE)
        if b < a:
            raise ValueError(f"segment {s.label!r} ends before it starts ({s.start} > {s.end})")
        lines.append(f"{a} {b} {s.label}")
    return "\n".join(lines) + "\n"


def parse_align(text: str, source: str = "<align>") -> list[Segment]:
    """Parse GRID ``.align`` text into segments in seconds; raise ``ValueError`` on malformed lines."""
    out: list[Segment] = []
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise ValueError(f"{source}:{n}: expected 'start end word', got {line!r}")
        try:
            a, b = int(parts[0]), int(parts[1])
        except ValueError as e:
            raise ValueError(f"{source}:{n}: times must be integers, got {line!r}") from e
        out.append(Segment(a / ALIGN_RATE, b / ALIGN_RATE, parts[2]))
    if not out:
        raise ValueError(f"{source}: empty alignment")
    return out


def read_align(path: str | os.PathLike[str]) -> list[Segment]:
    """Read a GRID ``.align`` file."""
    p = Path(path)
    return parse_align(p.read_text(), source=str(p))


def words_of(segments: list[Segment]) -> list[str]:
    """The spoken words of an alignment (``sil``/``sp`` removed)."""
    return [s.label for s in segments if s.label not in SILENCE_TOKENS]
