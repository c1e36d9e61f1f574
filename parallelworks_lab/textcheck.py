"""Text a request may carry: strings that encode as UTF-8, and how to show one that does not."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Optional

SURROGATES = re.compile("[\ud800-\udfff]")


def shown(text: str) -> str:
    """``text`` safe to put in an error message or a log line (bad characters as escapes)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _problem(text: str) -> Optional[str]:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"contains {shown(text[exc.start : exc.end])} at position {exc.start}"
    return None


def not_utf8_problem(value: Any) -> Optional[str]:
    """Why ``value`` (a string, or a list/dict of them) cannot be encoded as UTF-8; None if it can.

    JSON may spell a lone UTF-16 surrogate (``"\\ud800"``), which Python decodes into a string
    that no file, environment or command line can hold.
    """
    if isinstance(value, str):
        problem = _problem(value)
        return f"is not valid Unicode text: {problem}" if problem else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and (problem := _problem(key)):
                return f"name '{shown(key)}' is not valid Unicode text: {problem}"
            if isinstance(item, str) and (problem := _problem(item)):
                return f"value of '{shown(str(key))}' is not valid Unicode text: {problem}"
            if not isinstance(item, str) and (problem := not_utf8_problem(item)):
                return problem
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if problem := not_utf8_problem(item):
                return f"item {index} {problem}"
    return None


def storable(text: Optional[str]) -> Optional[str]:
    """Scheduler text made storable: characters UTF-8 cannot hold become U+FFFD.

    A scheduler's JSON may carry lone surrogates (in a job's reason, a path) that SQLite cannot
    store; one such job must not make every status update of its cluster fail.
    """
    if text is None or not_utf8_problem(text) is None:
        return text
    # Surrogates are the only code points UTF-8 cannot encode.
    return SURROGATES.sub("\ufffd", text)
