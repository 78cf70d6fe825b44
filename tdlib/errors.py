"""The one exception type that tdlib raises for problems a person can fix.

The command line turns a ``TdlibError`` into one sentence on stderr and exit status 2, without a
traceback; anything else is a bug in tdlib and keeps its traceback.
"""
from __future__ import annotations


class TdlibError(Exception):
    """A problem with the input, the configuration or the environment, stated so a person can act."""


class DataError(TdlibError):
    """A file or record is missing, malformed or inconsistent."""


class ConfigError(TdlibError):
    """A configuration value, profile or override is not valid."""


class ModelError(TdlibError):
    """A model cannot be found, loaded or does not have the expected shape."""
