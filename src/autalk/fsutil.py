"""Atomic file writes: readers never see a half-written file; concurrent writers never share a temp name."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to a unique temp file beside ``path``, then rename it over ``path``."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def atomic_write_json(path: str | os.PathLike[str], data: Any, **dumps_kwargs: Any) -> Path:
    """``json.dumps(data, indent=1)`` written with :func:`atomic_write_text`."""
    return atomic_write_text(path, json.dumps(data, indent=1, **dumps_kwargs))
