"""Turning what a user types (``mem="4G"``, ``time="1:30:00"``, Python code) into a request."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Optional, Union

from .. import notebook_job
from ..errors import InvalidRequest
from ..models import ResourceRequest

RESOURCE_FIELDS = tuple(ResourceRequest.model_fields)

_MEM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_MEM_FACTORS = {"": 1.0, "K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0 * 1024}


def parse_memory(value: Union[str, int]) -> int:
    """Memory in MiB from ``4096``, ``"4096"``, ``"500M"``, ``"4G"``, ``"1T"`` (binary units)."""
    if isinstance(value, int):
        return value
    match = _MEM.match(value)
    if not match:
        raise ValueError(f"'{value}' is not a memory size (e.g. 4096, 500M, 4G)")
    number, unit = float(match.group(1)), match.group(2).upper()
    return max(1, int(-(-number * _MEM_FACTORS[unit] // 1)))


def parse_time(value: Union[str, int]) -> int:
    """Walltime in minutes, from Slurm's forms: ``90``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``,
    ``D-HH:MM``, ``D-HH:MM:SS`` (seconds round up to a minute)."""
    if isinstance(value, int):
        return value
    text = value.strip()
    days = 0
    if "-" in text:
        day_text, _, text = text.partition("-")
        if not day_text.isdigit():
            raise ValueError(f"'{value}' is not a time limit")
        days = int(day_text)
        parts = text.split(":")
        if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
            raise ValueError(f"'{value}' is not a time limit")
        hours, minutes, seconds = ([int(p) for p in parts] + [0, 0])[:3]
    else:
        parts = text.split(":")
        if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
            raise ValueError(f"'{value}' is not a time limit (e.g. 90, 1:30:00, 2-00:00:00)")
        if len(parts) == 1:
            hours, minutes, seconds = 0, int(parts[0]), 0
        elif len(parts) == 2:
            hours, minutes, seconds = 0, int(parts[0]), int(parts[1])
        else:
            hours, minutes, seconds = (int(p) for p in parts)
    total = days * 1440 + hours * 60 + minutes + (1 if seconds else 0)
    if total < 1:
        raise ValueError(f"'{value}' is shorter than a minute")
    return total


def build_resources(options: Mapping[str, Any]) -> dict[str, Any]:
    """Resource keyword arguments (with the ``mem``/``time`` aliases) as a ResourceRequest dict."""
    resources: dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        if key == "mem":
            key, value = "memory_mb", value
        elif key == "time":
            key, value = "time_limit_minutes", value
        if key not in RESOURCE_FIELDS:
            known = ", ".join([*RESOURCE_FIELDS, "mem", "time"])
            raise TypeError(f"unknown resource '{key}'; known: {known}")
        try:
            if key == "memory_mb":
                value = parse_memory(value)
            elif key == "time_limit_minutes":
                value = parse_time(value)
        except ValueError as exc:
            raise InvalidRequest.for_field(f"resources.{key}", str(exc)) from None
        resources[key] = value
    return resources


def _resolve_dir(working_dir: Optional[str]) -> str:
    """Relative working dirs resolve against this process's cwd, like sbatch's."""
    if working_dir is None or working_dir == "":
        return os.getcwd()
    if working_dir.startswith("~") or os.path.isabs(working_dir):
        return working_dir
    return os.path.join(os.getcwd(), working_dir)


def python_script(python: str, code: str) -> str:
    """A batch script running ``code`` with the cluster's interpreter.

    The code is written to a temporary file through a quoted here-document, so the shell never
    interprets any of it; the interpreter words are quoted one by one.
    """
    return (
        notebook_job.SCRIPT_HEAD
        + notebook_job.heredoc('"$pwlab_tmp/cell.py"', code)
        + notebook_job.interpreter_words(python)
        + ' "$pwlab_tmp/cell.py"\n'
    )
