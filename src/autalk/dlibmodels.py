"""Locate dlib's model files shipped by the ``face_recognition_models`` wheel.

The package's own ``__init__`` imports ``pkg_resources`` (gone from setuptools >= 82), so the files are
located through importlib without importing it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from autalk.profiles import MissingResourceError

MODELS = {
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "cnn_detector": "mmod_human_face_detector.dat",
    "recognition": "dlib_face_recognition_resnet_model_v1.dat",
}


def model_path(name: str) -> Path:
    """Path of one dlib model file (keys of :data:`MODELS`)."""
    if name not in MODELS:
        raise ValueError(f"unknown dlib model {name!r}; choose one of {sorted(MODELS)}")
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingResourceError(
            "dlib models not found: `pip install face-recognition-models==0.3.0` (it ships the .dat files)")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / MODELS[name]
    if not path.is_file():
        raise MissingResourceError(f"{path} is missing; reinstall face-recognition-models")
    return path
