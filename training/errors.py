"""Errors that name what the user has to fix.

Every check at the edge of seethrough (bad arrays, a black box returning the wrong thing, an
unreadable checkpoint, an unknown layer) raises a subclass of :class:`SeethroughError`, so the
command-line tools can print one line instead of a traceback.
"""

from __future__ import annotations


class SeethroughError(Exception):
    """Base class of every error that is the caller's to fix."""


class InputError(SeethroughError, ValueError):
    """Input data has the wrong shape, dtype, size, or holds NaN/inf."""


class BlackBoxError(SeethroughError, ValueError):
    """A black box returned something that cannot be used as scores."""


class CheckpointError(SeethroughError, ValueError):
    """A checkpoint is missing, corrupt, unsafe, or does not fit the model."""


class ConfigError(SeethroughError, ValueError):
    """A configuration file or command-line option is unknown or invalid."""
