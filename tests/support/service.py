"""A :class:`JobService` for tests that drive the service directly (no HTTP): built on a
fresh database, and waited on through the store, never the scheduler."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from parallelworks_lab.models import Job
from parallelworks_lab.service import JobService
from parallelworks_lab.states import JobState
from parallelworks_lab.store import JobStore

from .waiting import wait_until_async


def build_service(
    state_dir: Path,
    clusters: list[dict[str, Any]],
    *,
    root_dir: Optional[Path] = None,
    **options: Any,
) -> JobService:
    """A service (not started) with ``clusters``, its database and state in ``state_dir``; jobs
    run in ``root_dir`` (default: ``state_dir``). ``options``: the rest of JobService's
    keyword arguments (``poll_interval``, ``backend_classes``, ...)."""
    return JobService(
        JobStore(state_dir / "jobs.sqlite"),
        clusters=clusters,
        state_dir=state_dir,
        root_dir=root_dir or state_dir,
        log=logging.getLogger("test"),
        **options,
    )


async def wait_for_job(
    service: JobService,
    job_id: str,
    check: Callable[[Job], Any],
    *,
    what: str = "condition",
    timeout: float = 60.0,
    interval: float = 0.1,
) -> Job:
    """The job once ``check`` holds for it (as the store has it)."""
    return await wait_until_async(
        lambda: service.get_job(job_id),
        check,
        what=f"job {job_id}: {what}",
        timeout=timeout,
        interval=interval,
    )


async def wait_state(
    service: JobService, job_id: str, states: set[JobState], timeout: float = 20.0
) -> Job:
    """The job once it is in one of ``states``."""
    return await wait_for_job(
        service,
        job_id,
        lambda job: job.state in states,
        what=f"state in {sorted(s.value for s in states)}",
        timeout=timeout,
        interval=0.05,
    )


async def wait_terminal(service: JobService, job_id: str, timeout: float = 60.0) -> Job:
    """The job once it has ended."""
    return await wait_for_job(
        service, job_id, lambda job: job.terminal, what="ended", timeout=timeout
    )
