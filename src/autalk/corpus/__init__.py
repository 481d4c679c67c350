"""The GRID-format teaching corpus: synthetic speakers whose mouths follow known AU intensities.

``build_corpus`` is what ``autalk corpus`` and notebook 00 call; the pieces are ``grammar`` (GRID
sentences), ``speech`` (libespeak-ng voices and timings), ``visemes`` (phonemes -> AU tracks),
``face`` (the renderer) and ``align`` (GRID ``.align`` files).
"""

from autalk.corpus.build import build_corpus, plan, render_clip_job, speaker_identity, speaker_voice

__all__ = ["build_corpus", "plan", "render_clip_job", "speaker_identity", "speaker_voice"]
