"""The GRID-format teaching corpus: synthetic speakers whose mouths follow known AU intensities.

``build_corpus`` is what ``autalk corpus`` and notebook 00 call; the pieces are ``grammar`` (GRID
sentences), ``speech`` (libespeak-ng voices and timings), ``visemes`` (phonemes -> AU tracks),
``face`` (the renderer), ``align`` (GRID ``.align`` files) and ``build`` (the writer).
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_corpus", "plan", "render_clip_job", "speaker_identity", "speaker_voice"]


def __getattr__(name: str) -> Any:
    # Lazy: importing autalk.corpus.align or .grammar must not load the renderer and espeak.
    if name in __all__:
        from autalk.corpus import build

        return getattr(build, name)
    raise AttributeError(f"module 'autalk.corpus' has no attribute {name!r}")
