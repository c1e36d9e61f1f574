"""One Poller per cluster: one batched backend query per interval for all of its live jobs.

The number of browser tabs, widgets or kernels watching has no effect on scheduler load: they all
read the store and listen to events; only this loop talks to the scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Optional, Union

from .backends.base import JobStatus, UsageRecord, storable_answer
from .clusters import Cluster
from .errors import ClusterUnreachable, PWLabError, RateLimited
from .guidance.usage import build_usage
from .models import Job
from .states import JobState
from .store import JobStore, LiveRow, iso

MAX_BACKOFF_SECONDS = 60.0
# Under a scheduler's rate limit: at most one query this often, for this long after the last
# refusal (Slurm sites refill a user's calls at about 4 a minute).
RATE_LIMITED_INTERVAL = 15.0
RATE_LIMITED_COOLDOWN = 120.0
# Wake-ups closer together than this are merged into one poll (e.g. a burst of job ends).
MIN_GAP_SECONDS = 0.2
ESTIMATE_SLACK = 60.0  # seconds
YIELD_EVERY = 500  # jobs compared between turns for the server's other requests


class Poller:
    def __init__(
        self,
        cluster: Cluster,
        store: JobStore,
        interval: float,
        on_job_change: Callable[[Job], None],
        on_status_change: Callable[[Cluster], None],
        is_submitting: Callable[[str], bool],
        log: logging.Logger,
        timeout: float = 60.0,
    ) -> None:
        self.cluster = cluster
        self.store = store
        self.interval = interval
        self.timeout = timeout
        self._on_job_change = on_job_change
        self._on_status_change = on_status_change
        self._is_submitting = is_submitting
        self._log = log
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.polls = 0  # scheduler queries made: benchmarks read it

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"pwlab-poller-{self.cluster.id}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        # Before Python 3.12, wait_for can swallow a cancellation that races the wake-up it
        # waits for (gh-86296), and the loop would go on: cancel until it has really ended.
        while not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=0.5)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        failures = 0
        slow_until = 0.0  # after a rate limit: no faster than RATE_LIMITED_INTERVAL until then
        while True:
            try:
                asked = await self.poll_once()
                failures = 0
                # Only an answer says the cluster is fine (a bad token must not look "ok").
                if asked and self.cluster.set_status("ok"):
                    self._on_status_change(self.cluster)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                message = exc.message if isinstance(exc, PWLabError) else f"{exc!r}"
                # Never mark jobs failed because the scheduler could not be asked.
                self._log.warning("polling cluster %s failed: %s", self.cluster.id, message)
                status = (
                    exc.cluster_status if isinstance(exc, ClusterUnreachable) else "unreachable"
                )
                if self.cluster.set_status(status, message):
                    self._on_status_change(self.cluster)
                if isinstance(exc, RateLimited):
                    slow_until = time.monotonic() + RATE_LIMITED_COOLDOWN
            delay = self.interval
            if failures:
                delay = min(self.interval * 2**failures, MAX_BACKOFF_SECONDS)
            if time.monotonic() < slow_until:
                # The scheduler refills a user's calls slowly (sites: 4 a minute): one success
                # must not bring back fast polling, and wake-ups (a submit, a click) wait too.
                await asyncio.sleep(max(delay, RATE_LIMITED_INTERVAL))
            else:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._wake.clear()
            await asyncio.sleep(MIN_GAP_SECONDS)

    async def poll_once(self) -> bool:
        """One round; False when there was nothing to ask the scheduler about."""
        live = self.store.live_rows(self.cluster.id)
        measuring = self.store.usage_wanted(self.cluster.id) if self._measures else []
        if not live and not measuring:
            return False
        submitting = [self.store.get(row.id) for row in live if row.native_id is None]
        await self._reconcile([job for job in submitting if job is not None])
        await self.refresh([row for row in live if row.native_id is not None])
        await self.measure(measuring)
        return True

    @property
    def _measures(self) -> bool:
        return self.cluster.backend.measures_usage

    async def measure(self, jobs: list[Job]) -> None:
        """What the jobs that just ended used: one batched accounting query per interval."""
        by_native = {j.native_id: j for j in jobs if j.native_id is not None}
        if not by_native:
            return
        records = await asyncio.wait_for(
            self.cluster.backend.usage(list(by_native)), timeout=self.timeout
        )
        for native_id, record in records.items():
            job = by_native.pop(native_id, None)
            if job is not None:
                self._record_usage(job, record)
        # Accounting may lag a job's end: ask again next interval, a few times.
        self.store.usage_not_found(j.id for j in by_native.values())

    def _record_usage(self, job: Job, record: UsageRecord) -> None:
        changed = self.store.set_usage(job.id, build_usage(record, job.resources))
        if changed is not None:
            self._on_job_change(changed)

    async def refresh(self, jobs: Sequence[Union[Job, LiveRow]]) -> None:
        """Ask the backend about ``jobs`` in one query and apply what changed.

        Unchanged jobs cost a comparison, not a store read; the loop gives the server's other
        requests a turn every ``YIELD_EVERY`` jobs, so a poll of 10,000 jobs never stalls it."""
        by_native = {j.native_id: j for j in jobs if j.native_id is not None}
        if not by_native:
            return
        self.polls += 1
        statuses = await asyncio.wait_for(
            self.cluster.backend.poll(list(by_native)), timeout=self.timeout
        )
        for count, (native_id, status) in enumerate(statuses.items(), 1):
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            status = storable_answer(status)
            job: Optional[Union[Job, LiveRow]] = by_native.get(native_id)
            if job is None:
                parent = by_native.get(status.parent_native_id or "")
                parent_job = self.store.get(parent.id) if parent is not None else None
                if parent_job is None:
                    continue
                # A task we track already (maybe ended, so not in this round's list) or a new one.
                job = self.store.find_native(self.cluster.id, native_id) or self._add_array_task(
                    parent_job, native_id, status.array_task
                )
            elif isinstance(job, LiveRow) and not _differs(job, status):
                continue
            previous_estimate = job.estimated_start
            if isinstance(previous_estimate, str):
                previous_estimate = datetime.fromisoformat(previous_estimate)
            paths = {}
            if status.stdout_path:
                paths["stdout_path"] = status.stdout_path
            if status.stderr_path:
                paths["stderr_path"] = status.stderr_path
            changed = self.store.update(
                job.id,
                state=status.state,
                raw_state=status.raw_state,
                reason=status.reason,
                exit_code=status.exit_code,
                started_at=status.started_at,
                ended_at=status.ended_at,
                estimated_start=_steady(previous_estimate, status.estimated_start),
                **paths,
            )
            if changed is not None and changed.terminal and not job.terminal:
                if status.usage is not None:
                    self._record_usage(changed, status.usage)
                    continue
                if self._measures:
                    self.store.want_usage(changed.id)
            if changed is not None:
                self._on_job_change(changed)

    def _add_array_task(self, parent: Job, native_id: str, task: str | None) -> Job:
        """An array task seen for the first time becomes a job of its own, under its parent."""
        job = self.store.insert(
            job_id=uuid.uuid4().hex[:12],
            cluster=parent.cluster,
            name=f"{parent.name}[{task}]",
            resources=parent.resources.model_copy(update={"array": None}),
            submit_token=uuid.uuid4().hex,
            request={"array_task_of": parent.id},
            working_dir=parent.working_dir,
            native_id=native_id,
            parent_id=parent.id,
            array_task=task,
        )
        assert parent.native_id is not None
        stdout, stderr = self.cluster.backend.array_task_paths(
            parent.native_id, task or "", parent.working_dir, parent.id
        )
        if stdout or stderr:
            job = self.store.update(job.id, stdout_path=stdout, stderr_path=stderr) or job
        return job

    async def _reconcile(self, submitting: list[Job]) -> None:
        """Jobs stuck in SUBMITTING after a crash: find them on the scheduler by their token."""
        for job in submitting:
            if self._is_submitting(job.id):
                continue  # a submit is in flight right now
            token = self.store.submit_token(job.id)
            if token is None:
                continue
            found = await self.cluster.backend.find_by_token(token)
            if found is not None:
                found = storable_answer(found)
                changed = self.store.update(
                    job.id,
                    native_id=found.native_id,
                    state=found.state,
                    stdout_path=found.stdout_path,
                    stderr_path=found.stderr_path,
                    working_dir=found.working_dir,
                )
            else:
                changed = self.store.update(
                    job.id,
                    state=JobState.FAILED,
                    reason="SubmitLost: the submission never reached the scheduler",
                )
            if changed is not None:
                self._on_job_change(changed)


def _differs(row: LiveRow, status: JobStatus) -> bool:
    """Whether the scheduler's answer may change the stored row (a cheap, exact-text check;
    the store's update decides the close cases, e.g. times within a millisecond)."""
    if (
        row.state != status.state.value
        or row.raw_state != status.raw_state
        or row.reason != status.reason
        or row.exit_code != status.exit_code
        or row.started_at != iso(status.started_at)
        or row.ended_at != iso(status.ended_at)
        or (status.stdout_path and row.stdout_path != status.stdout_path)
        or (status.stderr_path and row.stderr_path != status.stderr_path)
    ):
        return True
    if (row.estimated_start is None) != (status.estimated_start is None):
        return True
    if row.estimated_start is not None and status.estimated_start is not None:
        old = datetime.fromisoformat(row.estimated_start)
        return _steady(old, status.estimated_start) is not old
    return False


def _steady(old: Optional[datetime], new: Optional[datetime]) -> Optional[datetime]:
    """A start estimate that moved by less than a minute is not news (no write, no event):
    the backfill scheduler revises its estimates every few seconds."""
    if old is not None and new is not None and abs((new - old).total_seconds()) < ESTIMATE_SLACK:
        return old
    return new
