"""One line of an exception, for messages that must fit on one line of stderr."""

from __future__ import annotations


def first_line(exc: BaseException, typed: bool = False) -> str:
    """The first line of `exc`'s message (its type's name if it has none); `typed` puts the
    type in front, for errors from code that is not ours (Keras, a user's file)."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    line = text.splitlines()[0]
    return f"{type(exc).__name__}: {line}" if typed else line
