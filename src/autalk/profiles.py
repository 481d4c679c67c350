"""Profiles (params/*.yaml) and the runs/<profile>/<stage> layout shared by notebooks and the CLI.

Every stage writes only under ``runs/<profile>/<NN_stage>/`` and reads only what earlier stages wrote
there; :func:`require` turns a missing input into an error naming the notebook to run first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

PROFILES = ("smoke", "quick", "paper")

# Stage folder -> the notebook that writes it (used in "run X first" messages).
STAGES: dict[str, str] = {
    "00_corpus": "notebooks/00_teaching_corpus.ipynb",
    "01_preprocess": "notebooks/01_preprocessing.ipynb",
    "02_audio2au": "notebooks/02_audio2au_pretraining.ipynb",
    "03_au_classifier": "notebooks/03_au_classifier_pretraining.ipynb",
    "04_gan": "notebooks/04_gan_training.ipynb",
    "05_ablations": "notebooks/05_ablations_and_baselines.ipynb",
    "05_sync_expert": "notebooks/05_ablations_and_baselines.ipynb",
    "06_figures": "notebooks/06_figures_and_tables.ipynb",
}


class MissingStageError(FileNotFoundError):
    """An input that an earlier notebook (stage) should have written is absent."""


class MissingResourceError(FileNotFoundError):
    """An external resource (dataset, weights, model file) the user must provide is absent."""


def project_root() -> Path:
    """The repository root: ``$AUTALK_ROOT`` or the nearest parent of the cwd holding params/smoke.yaml."""
    env = os.environ.get("AUTALK_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "params" / "smoke.yaml").is_file() and (d / "src" / "autalk").is_dir():
            return d
    # Installed elsewhere (not editable): fall back to the cwd so relative paths still work.
    return here


def resolve(path: str | os.PathLike[str]) -> Path:
    """A path relative to the project root (absolute paths pass through)."""
    p = Path(path)
    return p if p.is_absolute() else project_root() / p


def load_profile(name_or_path: str) -> dict[str, Any]:
    """Read ``params/<name>.yaml`` (or a yaml path) into a flat dict."""
    p = Path(name_or_path)
    if p.suffix not in (".yaml", ".yml"):
        p = project_root() / "params" / f"{name_or_path}.yaml"
    if not p.is_file():
        raise MissingResourceError(f"profile file {p} not found; choose one of {', '.join(PROFILES)}")
    with open(p) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected a mapping of flat keys, got {type(data).__name__}")
    return data


def merged(profile: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """A notebook's full parameter set: ``params/<profile>.yaml`` overridden by every variable of the same
    name in ``namespace`` (the notebook's globals: its parameters cell and what papermill injected)."""
    params = load_profile(profile)
    for key in params:
        if key in namespace and isinstance(namespace[key], int | float | str | bool):
            params[key] = namespace[key]
    return params


def run_dir(profile: str, stage: str, create: bool = True) -> Path:
    """``runs/<profile>/<stage>`` under the project root."""
    d = project_root() / "runs" / profile / stage
    if create:
        d.mkdir(parents=True, exist_ok=True)
    return d


def require(path: str | os.PathLike[str], stage: str, profile: str | None = None) -> Path:
    """Return ``path`` if it exists, else raise naming the notebook that produces it."""
    p = resolve(path)
    if p.exists():
        return p
    nb = STAGES.get(stage, stage)
    prof = f" with profile '{profile}'" if profile else ""
    raise MissingStageError(f"{p} not found. Run {nb}{prof} first (or `make reproduce`).")


def write_manifest(profile: str, stage: str, data: dict[str, Any], name: str = "manifest.json") -> Path:
    """Record what a stage produced as ``runs/<profile>/<stage>/<name>`` (JSON) and return the path."""
    from autalk.fsutil import atomic_write_json

    return atomic_write_json(run_dir(profile, stage) / name, data, default=str)
