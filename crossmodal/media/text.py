"""Text that cannot be encoded as UTF-8: a lone surrogate, which JSON's `\\ud800` escapes can carry.

Python accepts such strings, but protobuf (the flow's wire format), SQLite's UTF-8 text and JSON responses cannot
encode them, so each place that takes text from outside checks it first and refuses it with the reason.
"""
from __future__ import annotations

from typing import Any


def invalid_unicode(text: str) -> str | None:
    """Why `text` is not valid Unicode text, or None when it encodes as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"not valid Unicode text (a lone surrogate {text[error.start]!r} at position {error.start})"
    return None


def first_invalid_string(value: Any, where: str = "body") -> str | None:
    """`<where>: <reason>` for the first string (or key) of a parsed JSON value that is not valid Unicode."""
    if isinstance(value, str):
        reason = invalid_unicode(value)
        return f"{where}: {reason}" if reason else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = first_invalid_string(key, where) or first_invalid_string(item, f"{where}.{key}")
            if found:
                return found
    if isinstance(value, list):
        for position, item in enumerate(value):
            found = first_invalid_string(item, f"{where}[{position}]")
            if found:
                return found
    return None
