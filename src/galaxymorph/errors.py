"""Errors that mean "the user asked for something that cannot be done".

The CLI prints these as one line and exits non-zero; anything else is a bug and keeps its
traceback. Raise :class:`GalaxymorphError` (or a subclass) with a message that names the
problem and, where possible, what to do about it.
"""


class GalaxymorphError(Exception):
    """A problem with the user's input, data or environment, not a bug in galaxymorph."""


class DataError(GalaxymorphError):
    """A data file is missing, malformed, or does not hold what was asked for."""


class DownloadError(GalaxymorphError):
    """A download failed, was cut short, or did not match its published hash."""


class WriteError(GalaxymorphError, OSError):
    """A file or folder could not be written (read-only, no permission, disk full).

    Also an OSError, with the ``errno`` of the failure and the ``filename`` it names, so code
    that handles a full disk keeps working; its message is one line naming the path."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def one_line(exc: BaseException, limit: int | None = 200) -> str:
    """An exception's message for a one-line error or warning: every run of whitespace (newlines
    included) becomes one space, cut at ``limit`` characters (None: whole); its type's name when
    it has no message."""
    text = " ".join(str(exc).split())
    return (text if limit is None else text[:limit]) or type(exc).__name__
