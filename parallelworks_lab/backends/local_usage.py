"""What the built-in ``local`` cluster can tell a researcher that a scheduler's accounting
would: the peak memory and CPU time of a job's processes, and when a queued job should start.

Usage is sampled with psutil while a job runs (its whole process tree, every
``SAMPLE_SECONDS``) and kept in the job's folder, so a server restart loses no peak. The
job's wrapper adds the exact CPU time of every process it waited for (bash ``times``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import psutil

from ..privacy import write_json_private
from .base import UsageRecord

SAMPLE_SECONDS = 1.0
USAGE_FILE = "usage.json"
CPU_TIMES_FILE = "cpu_times"  # written by local_job.sh: the output of bash's `times`


def sample_tree(root: psutil.Process) -> tuple[float, float]:
    """Resident memory (MiB) and CPU seconds of a process and all its descendants now.

    CPU includes what each process's reaped children used (psutil's children_* times), so
    short-lived commands of a script still count."""
    rss = 0
    cpu = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            with proc.oneshot():
                rss += proc.memory_info().rss
                times = proc.cpu_times()
                cpu += times.user + times.system + times.children_user + times.children_system
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return rss / 2**20, cpu


@dataclass
class Peak:
    memory_mb: float = 0.0
    cpu_seconds: float = 0.0


def read_peak(job_dir: Path) -> Peak:
    try:
        data = json.loads((job_dir / USAGE_FILE).read_text())
        return Peak(float(data.get("memory_mb", 0)), float(data.get("cpu_seconds", 0)))
    except (OSError, ValueError, AttributeError):
        return Peak()


def record_sample(job_dir: Path, peak: Peak, memory_mb: float, cpu_seconds: float) -> Peak:
    """Keep the highest figures seen; the file is rewritten only when one grew."""
    grown = Peak(max(peak.memory_mb, memory_mb), max(peak.cpu_seconds, cpu_seconds))
    if grown != peak:
        write_json_private(
            job_dir / USAGE_FILE, {"memory_mb": grown.memory_mb, "cpu_seconds": grown.cpu_seconds}
        )
    return grown


_TIMES = re.compile(r"(\d+)m([\d.]+)s")


def waited_cpu_seconds(job_dir: Path) -> Optional[float]:
    """CPU seconds of the processes the wrapper waited for (second line of bash ``times``)."""
    try:
        lines = (job_dir / CPU_TIMES_FILE).read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 2:
        return None
    values = [int(m) * 60 + float(s) for m, s in _TIMES.findall(lines[1])]
    return sum(values) if values else None


def usage_record(
    job_dir: Path,
    *,
    elapsed_seconds: Optional[float],
    cpus: int,
    memory_mb: Optional[int],
    time_limit_minutes: Optional[int],
) -> UsageRecord:
    peak = read_peak(job_dir)
    waited = waited_cpu_seconds(job_dir)
    cpu = max(peak.cpu_seconds, waited or 0.0)
    return UsageRecord(
        source="measured",
        elapsed_seconds=None if elapsed_seconds is None else max(0, round(elapsed_seconds)),
        cpu_seconds=round(cpu, 3),
        max_memory_mb=round(peak.memory_mb, 1) if peak.memory_mb else None,
        cpus=cpus,
        requested_memory_mb=None if memory_mb is None else float(memory_mb),
        time_limit_seconds=None if time_limit_minutes is None else time_limit_minutes * 60,
    )


@dataclass
class Running:
    cpus: int
    ends_at: Optional[float]  # None: no time limit, its end cannot be foreseen


@dataclass
class Waiting:
    native_id: str
    cpus: int
    time_limit_minutes: Optional[int]


def estimate_starts(
    slots: int, now: float, running: Iterable[Running], waiting: Iterable[Waiting]
) -> dict[str, float]:
    """When each waiting job should start, first in first out, if every running job used its
    whole time limit (an upper bound, like a batch scheduler's backfill estimate). A job
    whose start depends on a job without a time limit gets no estimate."""
    events = sorted((r for r in running if r.ends_at is not None), key=lambda r: r.ends_at or 0.0)
    unbounded = sum(r.cpus for r in running if r.ends_at is None)
    busy = [(r.ends_at or 0.0, r.cpus) for r in events]
    estimates: dict[str, float] = {}
    free_now = slots - unbounded - sum(c for _, c in busy)
    for job in waiting:
        if job.cpus > slots - unbounded:
            break  # only a job without a limit ending would make room: unknowable
        start, free = now, free_now
        for ends_at, cpus in sorted(busy):
            if free >= job.cpus:
                break
            start, free = max(start, ends_at), free + cpus
        if free < job.cpus:
            break
        estimates[job.native_id] = start
        if job.time_limit_minutes is None:
            break  # everything behind it waits for an end nobody knows
        # FIFO: later jobs cannot start before this one; it holds its CPUs until its limit.
        busy = [(max(e, start), c) for e, c in busy if e > start]
        free_now = slots - unbounded - sum(c for _, c in busy)
        busy.append((start + job.time_limit_minutes * 60, job.cpus))
        free_now -= job.cpus
        now = start
    return estimates
