"""The suite's error types, on the ground floor: tasks, algorithms, the harness and analysis
all raise or catch them, and none of them needs to import another layer to do so."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value or key is invalid. The message names the key and what is valid."""


class DivergenceError(RuntimeError):
    """A logged value is NaN or infinite: the run has diverged."""


class RunDirError(ValueError):
    """A run directory cannot be used as asked (foreign content, another config, bad files)."""


class DiskFullError(OSError):
    """The file system is full (or over quota): nothing was replaced, the old file is whole."""
