"""Real corpora on disk: ``readers`` (GRID, TCD-TIMIT, the teaching corpus, plain folders) and
``splits`` (the published speaker-disjoint train/test splits under ``data/splits/``)."""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "ClipSource": "readers",
    "list_clips": "readers",
    "load_clip_av": "readers",
    "natural_key": "splits",
    "split_speakers": "splits",
    "load_split": "splits",
    "assign": "splits",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # Lazy, so that `autalk.data.splits` does not pull in OpenCV through the readers.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"autalk.data.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'autalk.data' has no attribute {name!r}")
