"""The efficiency card: what a finished job used next to what it asked for, and a short hint
when the request was much bigger than the need.

Amounts are shown beside every ratio: a percentage of a whole-node request can mislead.
"""

from __future__ import annotations

from typing import Optional

from ..backends.base import UsageRecord
from ..models import ResourceRequest
from .models import Usage

# Below these a request was far bigger than what the job needed (the thresholds).
LOW_MEMORY = 0.25
LOW_CPU = 0.25
LOW_TIME = 0.10


def format_memory(mb: float) -> str:
    """1536 -> '1.5 GiB', 300 -> '300 MiB'."""
    if mb >= 1024:
        gib = mb / 1024
        return f"{gib:.1f} GiB" if gib < 100 else f"{gib:.0f} GiB"
    return f"{mb:.0f} MiB" if mb >= 1 else f"{mb * 1024:.0f} KiB"


def format_duration(seconds: float) -> str:
    """45 -> '45 s', 540 -> '9 min', 5400 -> '1 h 30 min', 93600 -> '1 d 2 h'."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    days, hours = divmod(hours, 24)
    return f"{days} d" + (f" {hours} h" if hours else "")


def _ratio(used: Optional[float], asked: Optional[float]) -> Optional[float]:
    if used is None or not asked:
        return None
    return round(max(0.0, used / asked), 4)


def format_percent(ratio: float) -> str:
    """0.12 -> '12%'; below 1% says so instead of '0%'."""
    return f"{ratio * 100:.0f}%" if ratio >= 0.01 else "under 1%"


def build_usage(record: UsageRecord, resources: ResourceRequest) -> Usage:
    """The API's usage card from the scheduler's figures and the job's request."""
    cpus = record.cpus or resources.cpus  # ntasks x cpus_per_task: what the job holds
    time_limit = record.time_limit_seconds
    if time_limit is None and resources.time_limit_minutes is not None:
        time_limit = resources.time_limit_minutes * 60
    asked_memory = record.requested_memory_mb
    if asked_memory is None and resources.memory_mb is not None:
        asked_memory = float(resources.memory_mb * resources.nodes)
    cpu_efficiency = None
    if record.cpu_seconds is not None and record.elapsed_seconds and cpus:
        cpu_efficiency = round(min(1.0, record.cpu_seconds / (record.elapsed_seconds * cpus)), 4)
    usage = Usage(
        source=record.source,
        elapsed_seconds=record.elapsed_seconds,
        time_limit_seconds=time_limit,
        cpus=cpus,
        cpu_seconds=record.cpu_seconds,
        cpu_efficiency=cpu_efficiency,
        max_memory_mb=record.max_memory_mb,
        requested_memory_mb=asked_memory,
        memory_efficiency=_ratio(record.max_memory_mb, asked_memory),
        gpus=record.gpus if record.gpus is not None else resources.gpus,
    )
    usage.hints = hints(usage)
    usage.summary = summary(usage)
    return usage


def hints(usage: Usage) -> list[str]:
    """Short advice for next time when the request was much bigger than the need."""
    out: list[str] = []
    if (
        usage.memory_efficiency is not None
        and usage.memory_efficiency < LOW_MEMORY
        and usage.max_memory_mb is not None
        and usage.requested_memory_mb is not None
    ):
        out.append(
            f"It used {format_memory(usage.max_memory_mb)} of the "
            f"{format_memory(usage.requested_memory_mb)} it asked for: asking for about "
            f"{format_memory(max(usage.max_memory_mb * 1.2, 100))} next time lets it start "
            "sooner and leaves memory for others."
        )
    if (
        usage.cpu_efficiency is not None
        and usage.cpu_efficiency < LOW_CPU
        and usage.cpus is not None
        and usage.cpus > 1
    ):
        busy = max(1, round((usage.cpu_seconds or 0) / max(1, usage.elapsed_seconds or 1)))
        out.append(
            f"It kept about {busy} of its {usage.cpus} CPUs busy: unless your program uses "
            "several cores (threads, MPI, multiprocessing), ask for fewer CPUs."
        )
    if (
        usage.elapsed_seconds is not None
        and usage.time_limit_seconds
        and usage.elapsed_seconds / usage.time_limit_seconds < LOW_TIME
    ):
        out.append(
            f"It ran {format_duration(usage.elapsed_seconds)} of its "
            f"{format_duration(usage.time_limit_seconds)} limit: a shorter time limit "
            "usually starts sooner, because the scheduler can fit the job into gaps."
        )
    return out


def summary(usage: Usage) -> str:
    """One line for a notification or a table cell."""
    parts: list[str] = []
    if usage.memory_efficiency is not None and usage.max_memory_mb is not None:
        parts.append(
            f"used {format_percent(usage.memory_efficiency)} of its memory request "
            f"({format_memory(usage.max_memory_mb)} of "
            f"{format_memory(usage.requested_memory_mb or 0)})"
        )
    elif usage.max_memory_mb is not None:
        parts.append(f"peak memory {format_memory(usage.max_memory_mb)}")
    if usage.cpu_efficiency is not None:
        parts.append(f"CPUs {format_percent(usage.cpu_efficiency)} busy")
    if usage.elapsed_seconds is not None:
        text = f"ran {format_duration(usage.elapsed_seconds)}"
        if usage.time_limit_seconds:
            text += f" of {format_duration(usage.time_limit_seconds)}"
        parts.append(text)
    return ", ".join(parts)
