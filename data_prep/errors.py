"""Errors raised by data_prep.

Every error is a ``ValueError`` subclass whose message says what is wrong *and* what to do, so that
the CLI can print it as one line (no traceback) and exit with status 2.
"""


class DataPrepError(ValueError):
    """Base class of every user-facing data_prep error."""


class CorpusLayoutError(DataPrepError):
    """A corpus folder is missing or does not have the documented layout / file names."""


class AudioError(DataPrepError):
    """An audio file cannot be used: unreadable, empty, silent, NaN, or too short."""
