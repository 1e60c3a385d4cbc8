"""The package's own error types, so callers can catch one family.

Every message names what is wrong *and* how to fix it; the CLI prints it as a
single line (no traceback) and exits with status 2.
"""


class CourseError(Exception):
    """Base class of every error this package raises on purpose."""


class DataError(CourseError, ValueError):
    """A data file or directory is missing, truncated, corrupt or inconsistent."""


class ConfigError(CourseError, ValueError):
    """A run setting has an unknown name, a wrong type or an out-of-range value."""


class CheckpointError(CourseError, ValueError):
    """A checkpoint cannot be read or does not fit the model."""
