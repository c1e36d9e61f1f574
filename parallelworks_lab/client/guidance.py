"""Guidance as a notebook shows it: why a job waits and when it should start, what a finished
job used (the efficiency card) with its hints, and where it came from.

One set of rows (label, plain text) feeds every notebook frontend: the :class:`Job`'s text and
HTML repr (so ``%pw status``), the JobMonitor widget, and the magics' ``--suggest``.
"""

from __future__ import annotations

import html
import math
from datetime import datetime, timezone
from typing import Optional

from ..guidance.models import Provenance, ReasonExplanation, Suggestion, Usage
from ..guidance.usage import format_duration, format_memory, format_percent
from ..models import Job as JobInfo
from ..states import JobState

Row = tuple[str, str]

WAITING_STATES = (JobState.SUBMITTING, JobState.QUEUED, JobState.HELD, JobState.SUSPENDED)
USAGE_SOURCES = {
    "sacct": "from Slurm's accounting (sacct)",
    "qacct": "from Grid Engine's accounting (qacct)",
    "measured": "measured on the job's processes",
}


def estimate_text(when: datetime, now: Optional[datetime] = None) -> str:
    """``expected to start around 14:05 (in 12 min), the scheduler's estimate``."""
    now = now or datetime.now(timezone.utc)
    local = when.astimezone()
    clock = local.strftime("%H:%M")
    if local.date() != now.astimezone().date():
        clock = local.strftime("%a %d %b %H:%M")
    seconds = (when - now).total_seconds()
    if seconds < 60:
        relative = "any moment now"
    else:
        relative = "in " + format_duration(math.ceil(seconds / 60) * 60)
    return f"expected to start around {clock} ({relative}), the scheduler's estimate"


def reason_rows(explained: ReasonExplanation, waiting: bool) -> list[Row]:
    """The reason sentence (the raw code when we have no explanation) and the advice."""
    label = "Why it waits" if waiting else "Why"
    text = explained.summary
    if explained.known and explained.code not in text:
        text += f" (scheduler reason: {explained.code})"
    rows = [(label, text)]
    if explained.advice:
        rows.append(("What you can do", explained.advice))
    for line in explained.details:
        rows.append(("The scheduler says", line))
    return rows


def usage_rows(usage: Usage) -> list[Row]:
    """The efficiency card: amounts beside every percentage, then the hints."""
    rows: list[Row] = []
    if usage.elapsed_seconds is not None:
        text = f"ran {format_duration(usage.elapsed_seconds)}"
        if usage.time_limit_seconds:
            share = usage.elapsed_seconds / usage.time_limit_seconds
            limit = format_duration(usage.time_limit_seconds)
            text += f" of its {limit} limit ({format_percent(share)})"
        rows.append(("Time", text))
    if usage.cpu_efficiency is not None:
        text = f"CPU efficiency {format_percent(usage.cpu_efficiency)}"
        if usage.cpu_seconds is not None and usage.elapsed_seconds is not None and usage.cpus:
            text += (
                f" ({format_duration(usage.cpu_seconds)} of CPU time in "
                f"{format_duration(usage.elapsed_seconds)} on {usage.cpus} CPU"
                f"{'s' if usage.cpus != 1 else ''})"
            )
        rows.append(("CPU", text))
    elif usage.cpus:
        rows.append(("CPU", f"{usage.cpus} CPU{'s' if usage.cpus != 1 else ''}"))
    if usage.max_memory_mb is not None:
        text = f"peak {format_memory(usage.max_memory_mb)}"
        if usage.requested_memory_mb:
            text += f" of {format_memory(usage.requested_memory_mb)} requested"
            if usage.memory_efficiency is not None:
                text += f" ({format_percent(usage.memory_efficiency)})"
        rows.append(("Memory", text))
    rows.append(("GPUs", f"{usage.gpus} requested"))
    rows.append(("Figures", USAGE_SOURCES.get(usage.source, usage.source)))
    rows += [("Hint", hint) for hint in usage.hints]
    return rows


def provenance_text(provenance: Provenance) -> str:
    """``notebook analysis/run.ipynb, cell 1a2b · git 0c3f9e1 (modified) · modules gcc/12``."""
    parts: list[str] = []
    if provenance.notebook_path:
        where = f"notebook {provenance.notebook_path}"
        if provenance.cell_id:
            where += f", cell {provenance.cell_id}"
        parts.append(where)
    elif provenance.cell_id:
        parts.append(f"cell {provenance.cell_id}")
    if provenance.git_commit:
        parts.append(
            f"git {provenance.git_commit[:7]}" + (" (modified)" if provenance.git_dirty else "")
        )
    if provenance.modules:
        parts.append("modules " + ", ".join(provenance.modules))
    if provenance.user:
        parts.append(f"by {provenance.user}")
    return " · ".join(parts)


def job_rows(info: JobInfo, now: Optional[datetime] = None) -> list[Row]:
    """Everything guidance says about one job, in the order a person reads it."""
    rows: list[Row] = []
    waiting = info.state in WAITING_STATES and not info.terminal
    explained = info.reason_explained
    if explained is not None and (waiting or info.state is not JobState.COMPLETED):
        rows += reason_rows(explained, waiting)
    if waiting and info.estimated_start is not None:
        rows.append(("Expected start", estimate_text(info.estimated_start, now)))
    if waiting and info.partition_load is not None:
        rows.append(("Partition", info.partition_load.text))
    if info.usage is not None:
        rows += usage_rows(info.usage)
    if info.provenance is not None:
        text = provenance_text(info.provenance)
        if text:
            rows.append(("From", text))
    return rows


def rows_text(rows: list[Row], indent: str = "  ") -> str:
    return "\n".join(f"{indent}{label}: {text}" for label, text in rows)


def rows_html(rows: list[Row]) -> str:
    """Table rows (``<tr>``) for the job's HTML summary."""
    out = []
    for label, text in rows:
        style = "text-align:left"
        if label == "Hint":
            style += ";color:var(--jp-warn-color1, #f57c00)"
        out.append(
            f'<tr><th style="text-align:left;padding-right:1em">{html.escape(label)}</th>'
            f'<td style="{style}">{html.escape(text)}</td></tr>'
        )
    return "".join(out)


def suggestion_text(suggestion: Suggestion) -> Optional[str]:
    """The suggestion's message and what it suggests; None when there were no earlier runs."""
    if not suggestion.message:
        return None
    wanted = []
    memory = suggestion.resources.get("memory_mb")
    if memory is not None:
        wanted.append(f"memory {format_memory(memory)}")
    minutes = suggestion.resources.get("time_limit_minutes")
    if minutes is not None:
        wanted.append(f"time limit {format_duration(minutes * 60)}")
    text = suggestion.message
    if wanted:
        text += " Suggested: " + ", ".join(wanted) + "."
    return text


def memory_option(mb: int) -> str:
    """A memory size as people type it (and :func:`parse_memory` reads): ``2G``, ``512M``."""
    return f"{mb // 1024}G" if mb % 1024 == 0 else f"{mb}M"


def time_option(minutes: int) -> str:
    """A time limit as people type it (and :func:`parse_time` reads): ``45``, ``1:30:00``."""
    if minutes < 60:
        return str(minutes)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return f"{days}-{hours:02d}:{mins:02d}:00" if days else f"{hours}:{mins:02d}:00"
