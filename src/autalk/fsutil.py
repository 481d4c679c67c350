"""Atomic file writes: readers never see a half-written file; concurrent writers never share a temp name."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", prefix: str | None = None,
                suffix: str = ".tmp") -> Iterator[IO[Any]]:
    """Open a unique temp file beside ``path`` for writing; on success flush, fsync and rename it over
    ``path``; on any error remove it and leave ``path`` untouched."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix if prefix is not None else f".{p.name}.", suffix=suffix,
                               dir=p.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`atomic_open`)."""
    with atomic_open(path, "w") as f:
        f.write(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike[str], data: Any, **dumps_kwargs: Any) -> Path:
    """``json.dumps(data, indent=1)`` written with :func:`atomic_write_text`."""
    return atomic_write_text(path, json.dumps(data, indent=1, **dumps_kwargs))
