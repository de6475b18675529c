"""Text rules every reader of user input shares: messages that quote it stay one line."""

from __future__ import annotations


def printable(text: str) -> str:
    """`text` with line breaks and other control characters escaped, so a message quoting it (a key
    from a file, a recorded value, an option) stays one line."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
