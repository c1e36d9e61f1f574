"""One Poller per cluster: one batched backend query per interval for all of its live jobs.

The number of browser tabs, widgets or kernels watching has no effect on scheduler load: they all
read the store and listen to events; only this loop talks to the scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

from .backends.base import storable_answer
from .clusters import Cluster
from .errors import ClusterUnreachable, PWLabError
from .models import Job
from .states import JobState
from .store import JobStore

MAX_BACKOFF_SECONDS = 60.0
# Wake-ups closer together than this are merged into one poll (e.g. a burst of job ends).
MIN_GAP_SECONDS = 0.2


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
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        failures = 0
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
            delay = self.interval
            if failures:
                delay = min(self.interval * 2**failures, MAX_BACKOFF_SECONDS)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._wake.clear()
            await asyncio.sleep(MIN_GAP_SECONDS)

    async def poll_once(self) -> bool:
        """One round; False when there was nothing to ask the scheduler about."""
        live = self.store.live(self.cluster.id)
        if not live:
            return False
        await self._reconcile([j for j in live if j.native_id is None])
        await self.refresh([j for j in live if j.native_id is not None])
        return True

    async def refresh(self, jobs: list[Job]) -> None:
        """Ask the backend about ``jobs`` in one query and apply what changed."""
        by_native = {j.native_id: j for j in jobs if j.native_id is not None}
        if not by_native:
            return
        self.polls += 1
        statuses = await asyncio.wait_for(
            self.cluster.backend.poll(list(by_native)), timeout=self.timeout
        )
        for native_id, status in statuses.items():
            status = storable_answer(status)
            job = by_native.get(native_id)
            if job is None:
                parent = by_native.get(status.parent_native_id or "")
                if parent is None:
                    continue
                # A task we track already (maybe ended, so not in this round's list) or a new one.
                job = self.store.find_native(self.cluster.id, native_id) or self._add_array_task(
                    parent, native_id, status.array_task
                )
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
                **paths,
            )
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
