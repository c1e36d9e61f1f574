"""Notebook parameters as people type them (``alpha=0.1``), shared by the magics (``-p``) and
the ResourceForm widget, which must not import the magics (nor IPython's magic machinery)."""

from __future__ import annotations

import ast
from typing import Any


class ParameterError(ValueError):
    """Not ``NAME=VALUE``."""


def parse_parameter(pair: str) -> tuple[str, Any]:
    """``alpha=0.1``: a Python literal when it is one (0.1, True, [1, 2]), else the text."""
    name, sep, text = pair.partition("=")
    if not sep or not name.strip():
        raise ParameterError(f"-p {pair!r}: expected NAME=VALUE")
    try:
        value: Any = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = text
    return name.strip(), value
