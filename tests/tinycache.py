"""Tests use the package's tiny synthetic cache (``autalk.data.tiny``)."""

from autalk.data.tiny import SIZE, SPEAKERS, make_cache, tiny_params, write_params  # noqa: F401
