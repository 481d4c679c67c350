"""Checkpoints: module weights, optimizer states, the config as JSON and the step, in one file.

The file is a ``torch.save`` of plain containers (tensors, numbers, strings), read back with
``torch.load(weights_only=True)``, so loading never runs pickled code. The config is stored as a JSON
string; ``load_checkpoint(path, expected_config=...)`` compares it field by field and refuses a
mismatch with a readable diff (``ConfigMismatchError``) before any weights are touched.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from autalk.config import to_dict

FORMAT = "autalk-checkpoint-v1"


class ConfigMismatchError(ValueError):
    """A checkpoint was saved with a config other than the one expected."""


class CheckpointError(ValueError):
    """A file is not a readable autalk checkpoint, or does not fit the modules given."""


@dataclass
class Checkpoint:
    path: Path
    step: int
    config: dict[str, Any]
    state_dicts: dict[str, dict[str, Tensor]]
    optimizers: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def _config_dict(config: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return to_dict(config)
    if isinstance(config, Mapping):
        return json.loads(json.dumps(config))  # normalise tuples to lists, check it is JSON
    raise TypeError(f"config must be a config dataclass or a dict, got {type(config).__name__}")


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_diff(saved: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """One line per differing field (dotted names), e.g. "model.image_size: checkpoint 64, expected 112"."""
    a, b = _flatten(saved), _flatten(expected)
    lines = []
    for key in sorted(set(a) | set(b)):
        if key not in b:
            lines.append(f"{key}: checkpoint {a[key]!r}, expected (no such field)")
        elif key not in a:
            lines.append(f"{key}: checkpoint (no such field), expected {b[key]!r}")
        elif a[key] != b[key]:
            lines.append(f"{key}: checkpoint {a[key]!r}, expected {b[key]!r}")
    return lines


def save_checkpoint(
    path: str | os.PathLike[str],
    modules: Mapping[str, nn.Module],
    config: Any,
    step: int,
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``modules`` (name -> module), optimizer states, ``config`` (dataclass or dict) and ``step``.

    ``extra`` must be JSON-serialisable (metrics, data split name...). Written to a temporary file and
    renamed, so an interrupted save never leaves a truncated checkpoint behind.
    """
    path = Path(path)
    payload = {
        "format": FORMAT,
        "step": int(step),
        "config_json": json.dumps(_config_dict(config), sort_keys=True),
        "extra_json": json.dumps(dict(extra or {}), sort_keys=True),
        "state_dicts": {
            name: {k: v.detach().cpu() for k, v in m.state_dict().items()} for name, m in modules.items()
        },
        "optimizers": {name: opt.state_dict() for name, opt in (optimizers or {}).items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(
    path: str | os.PathLike[str],
    expected_config: Any | None = None,
    modules: Mapping[str, nn.Module] | None = None,
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
) -> Checkpoint:
    """Read a checkpoint safely (``weights_only=True``) and optionally restore it.

    ``expected_config``: refuse with ``ConfigMismatchError`` (listing every differing field) unless
    the saved config equals it. ``modules`` / ``optimizers``: name -> object to load the saved state
    into (strict); a missing name or mismatched tensor raises ``CheckpointError`` naming the file.
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # arbitrary pickles are refused here by weights_only=True
        raise CheckpointError(f"{path}: not a safe autalk checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an autalk checkpoint (expected format {FORMAT!r})")
    ckpt = Checkpoint(
        path=path,
        step=int(payload["step"]),
        config=json.loads(payload["config_json"]),
        state_dicts=payload["state_dicts"],
        optimizers=payload["optimizers"],
        extra=json.loads(payload["extra_json"]),
    )
    if expected_config is not None:
        diff = config_diff(ckpt.config, _config_dict(expected_config))
        if diff:
            raise ConfigMismatchError(
                f"{path} was saved with a different config ({len(diff)} field(s) differ):\n  "
                + "\n  ".join(diff)
            )
    for kind, targets, states in (
        ("module", modules, ckpt.state_dicts),
        ("optimizer", optimizers, ckpt.optimizers),
    ):
        for name, target in (targets or {}).items():
            if name not in states:
                raise CheckpointError(f"{path} has no {kind} {name!r}; it holds {sorted(states)}")
            try:
                target.load_state_dict(states[name])  # strict by default for modules
            except (RuntimeError, ValueError, KeyError) as e:
                raise CheckpointError(f"{path}: {kind} {name!r} does not fit the saved state:\n{e}") from e
    return ckpt
