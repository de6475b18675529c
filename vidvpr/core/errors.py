"""User-facing errors. The library raises these; only the CLI turns them into exit codes."""

from __future__ import annotations


class VidvprError(Exception):
    """Base class: a problem the user can fix, reported as one line without a traceback."""

    exit_code = 1


class BadInput(VidvprError):
    """An input file, argument or option is missing, malformed or out of range."""

    exit_code = 2


class ToolMissing(VidvprError):
    """A required external tool or library feature (ffmpeg, an encoder) is not available."""

    exit_code = 3


class OutputError(VidvprError):
    """An output cannot be written (unwritable directory, disk full)."""

    exit_code = 4


class ProcessFailed(VidvprError):
    """An external process (ffmpeg) failed; the message carries the tail of its stderr."""

    exit_code = 5
