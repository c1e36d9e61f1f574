"""What to ask for next time: from what earlier runs of the same script really used.

The suggestion covers what a wrong guess costs most: memory (too little kills the job, too much
makes it wait) and time (too little kills it, too much makes it wait). Headroom is generous
and values are rounded to numbers a person would type; nothing is applied without the user.
"""

from __future__ import annotations

import math
from typing import Optional

from ..models import Job, ResourceRequest
from .models import Suggestion
from .usage import format_duration, format_memory

MEMORY_HEADROOM = 1.2
TIME_HEADROOM = 1.5
RUNS_LOOKED_AT = 10


def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank): the largest value of a handful of runs."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def round_memory_mb(mb: float) -> int:
    """Up to a number people type: 256 MiB steps below 2 GiB, whole GiB above."""
    if mb <= 2048:
        return max(256, math.ceil(mb / 256) * 256)
    return math.ceil(mb / 1024) * 1024


def round_minutes(seconds: float) -> int:
    """Up to 5-minute steps below 1 h, 15-minute steps above."""
    minutes = seconds / 60
    step = 5 if minutes <= 60 else 15
    return max(5, math.ceil(minutes / step) * step)


def suggest(runs: list[Job], matched_by: Optional[str], asked: ResourceRequest) -> Suggestion:
    measured = [job for job in runs if job.usage is not None]
    if not measured:
        return Suggestion()
    memories = [j.usage.max_memory_mb for j in measured if j.usage and j.usage.max_memory_mb]
    elapsed = [
        float(j.usage.elapsed_seconds)
        for j in measured
        if j.usage and j.usage.elapsed_seconds is not None
    ]
    resources: dict[str, int] = {}
    used: list[str] = []
    wanted: list[str] = []
    max_memory = max(memories) if memories else None
    max_elapsed = int(max(elapsed)) if elapsed else None
    if memories:
        resources["memory_mb"] = round_memory_mb(p95(memories) * MEMORY_HEADROOM)
        used.append(format_memory(max(memories)))
        if asked.memory_mb is not None:
            wanted.append(format_memory(asked.memory_mb))
    if elapsed:
        resources["time_limit_minutes"] = round_minutes(p95(elapsed) * TIME_HEADROOM)
        used.append(format_duration(max(elapsed)))
        if asked.time_limit_minutes is not None:
            wanted.append(format_duration(asked.time_limit_minutes * 60))
    count = len(measured)
    runs_text = "The last run" if count == 1 else f"The last {count} runs"
    message = f"{runs_text} used at most {' and '.join(used)}"
    message += f"; you asked for {' and '.join(wanted)}." if wanted else "."
    return Suggestion(
        runs=count,
        matched_by="script" if matched_by == "script" else "name" if matched_by else None,
        resources=resources,
        max_memory_mb=max_memory,
        max_elapsed_seconds=max_elapsed,
        message=message,
        job_ids=[job.id for job in measured],
    )
