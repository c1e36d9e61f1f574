"""An array job seen as one job: its state and its usage from its tasks' (scheduler-neutral; the
Slurm, slurmrestd and Grid Engine backends all report arrays this way)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Optional

from ..states import TERMINAL_STATES, JobState
from .base import JobStatus, UsageRecord


def array_usage(records: list[UsageRecord]) -> UsageRecord:
    """An array job's usage from its tasks': each figure for one task (the longest run, the
    largest peak), so it reads against one task's request. CPU time is left out: the tasks'
    sum over the longest task's run would not be one task's efficiency."""

    def largest(values: list[Optional[float]]) -> Optional[float]:
        known = [v for v in values if v is not None]
        return max(known) if known else None

    elapsed = largest([r.elapsed_seconds for r in records])
    limit = largest([r.time_limit_seconds for r in records])
    cpus = largest([r.cpus for r in records])
    gpus = largest([r.gpus for r in records])
    return UsageRecord(
        source="sacct",
        elapsed_seconds=int(elapsed) if elapsed is not None else None,
        max_memory_mb=largest([r.max_memory_mb for r in records]),
        cpus=int(cpus) if cpus is not None else None,
        requested_memory_mb=largest([r.requested_memory_mb for r in records]),
        time_limit_seconds=int(limit) if limit is not None else None,
        gpus=int(gpus) if gpus is not None else None,
    )


def aggregate(tasks: list[JobStatus]) -> JobStatus:
    """An array job's state from its tasks' states."""
    states = [t.state for t in tasks]
    started = [t.started_at for t in tasks if t.started_at]
    ended = [t.ended_at for t in tasks if t.ended_at]
    codes = [t.exit_code for t in tasks if t.exit_code is not None]
    done = sum(s in TERMINAL_STATES for s in states)
    reason = f"{done}/{len(tasks)} tasks done"
    if all(s in TERMINAL_STATES for s in states):
        bad = [s for s in states if s is not JobState.COMPLETED]
        state = bad[0] if bad else JobState.COMPLETED
        return JobStatus(
            state=state,
            raw_state=state.value,
            reason=reason,
            exit_code=max(codes) if codes else None,
            started_at=min(started) if started else None,
            ended_at=max(ended) if ended else None,
        )
    if any(s in (JobState.RUNNING, JobState.COMPLETING) for s in states):
        state = JobState.RUNNING
    elif any(s is JobState.QUEUED for s in states):
        state = JobState.QUEUED
    elif any(s is JobState.HELD for s in states):
        state = JobState.HELD
    else:
        state = next(s for s in states if s not in TERMINAL_STATES)
    return JobStatus(
        state=state,
        raw_state=state.value,
        reason=reason,
        started_at=min(started) if started else None,
    )


def wanted_statuses(
    listed: Iterable[tuple[str, JobStatus]], wanted: set[str]
) -> dict[str, JobStatus]:
    """Of what a scheduler listed (native id, status), what was asked for: each wanted job, the
    tasks of a wanted array (and each wanted task), and a wanted array's own status from all of
    its listed tasks'."""
    statuses: dict[str, JobStatus] = {}
    tasks_of: dict[str, list[JobStatus]] = {}
    for key, status in listed:
        parent = status.parent_native_id
        if parent is not None:
            tasks_of.setdefault(parent, []).append(status)
            if parent in wanted or key in wanted:
                statuses[key] = status
        elif key in wanted:
            statuses[key] = status
    for parent, tasks in tasks_of.items():
        if parent in wanted:
            statuses[parent] = aggregate(tasks)
    return statuses
