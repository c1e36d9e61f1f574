"""The built-in ``local`` cluster: a small FIFO scheduler running jobs on this machine.

Each job lives in a folder of its own under the backend's state dir. Everything the scheduler
needs to know survives in those files (the request, the process identity, the exit status written
by ``local_job.sh``, the final state when we cancel or time out a job), so a restarted server
finds running jobs again and learns how the ones that ended meanwhile went.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Optional

import psutil
from pydantic import Field

from ..errors import Conflict, FieldError, NotFound
from ..guidance.provenance import current_user
from ..models import Partition, ResourceRequest
from ..privacy import (
    PRIVATE_DIR,
    private_dir,
    write_private,
)
from ..states import JobState
from ..transports.local import read_range
from . import local_usage
from .base import (
    Backend,
    BackendSettings,
    JobStatus,
    SubmitRequest,
    SubmitResult,
    UsageRecord,
)
from .local_jobs import LocalJob, forget_secrets, read_json, write_json
from .local_process import signal_group, start_job_process


class LocalSettings(BackendSettings):
    slots: Optional[int] = Field(
        default=None, ge=1, description="CPU slots shared by running jobs (default: all cores)."
    )
    max_time_minutes: Optional[int] = Field(default=None, ge=1, description="Walltime limit.")
    memory_mb: Optional[int] = Field(default=None, ge=1, description="Memory to advertise.")
    kill_grace_seconds: float = Field(
        default=10.0, ge=0, description="Time between SIGTERM and SIGKILL on cancel/timeout."
    )
    partition: str = Field(default="local", pattern=r"^[A-Za-z0-9_.-]+$")


def _now() -> float:
    return time.time()


def _ts(value: Optional[float]) -> Optional[datetime]:
    return None if value is None else datetime.fromtimestamp(value, tz=timezone.utc)


class LocalBackend(Backend):
    kind: ClassVar[str] = "local"
    settings_class = LocalSettings
    # This machine has no accounts or QOS to charge; arrays are a scheduler's.
    unsupported_fields = frozenset({"array", "account", "qos"})
    cheap_discovery = True

    settings: LocalSettings

    def __init__(self, settings: BackendSettings, context: Any) -> None:
        super().__init__(settings, context)
        self.jobs_dir = self.context.state_dir / "jobs"
        self._active: dict[str, LocalJob] = {}
        self._lock = asyncio.Lock()
        self._next_id = 1
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending_tick: Optional[asyncio.Task[None]] = None
        self._sampler: Optional[asyncio.Task[None]] = None
        self._peaks: dict[str, local_usage.Peak] = {}
        self._estimates: dict[str, float] = {}

    @property
    def slots(self) -> int:
        return self.settings.slots or os.cpu_count() or 1

    @property
    def memory_mb(self) -> int:
        return self.settings.memory_mb or psutil.virtual_memory().total // (1024 * 1024)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        private_dir(self.jobs_dir)
        highest = 0
        for entry in self.jobs_dir.iterdir():
            if not entry.name.isdigit():
                continue
            highest = max(highest, int(entry.name))
            job = self._load(entry.name)
            if job is None:
                continue
            if job.started is not None:
                # Started while a crash stopped us from dropping its secrets: drop them now.
                forget_secrets(job)
            if not job.finished():
                self._active[job.native_id] = job
            elif job.final is not None:
                # Cancelled or timed out while the server was down mid-grace: finish the kill.
                self._kill_if_overdue(job, None)
        self._next_id = highest + 1
        await self._tick()
        self._sampler = asyncio.create_task(self._sample_forever(), name="pwlab-local-usage")

    async def close(self) -> None:
        for task in [*self._tasks, self._pending_tick, self._sampler]:
            if task is not None:
                task.cancel()
        # Jobs keep running: a server restart must not touch them.

    def _load(self, native_id: str) -> Optional[LocalJob]:
        return LocalJob.load(self.jobs_dir / native_id)

    def _job(self, native_id: str) -> LocalJob:
        job = self._active.get(native_id) or (
            self._load(native_id) if native_id.isdigit() else None
        )
        if job is None:
            raise NotFound(f"local job {native_id} does not exist")
        return job

    # -- discovery and validation ------------------------------------------------------------

    def _used_slots(self) -> int:
        return sum(j.cpus for j in self._active.values() if j.started and not j.finished())

    async def discover(self) -> list[Partition]:
        used = self._used_slots()
        return [
            Partition(
                name=self.settings.partition,
                default=True,
                max_time_minutes=self.settings.max_time_minutes,
                max_nodes=1,
                nodes_total=1,
                nodes_idle=0 if used else 1,
                cpus_per_node=self.slots,
                cpus_idle=self.slots - used,
                memory_mb_per_node=self.memory_mb,
                gpus_per_node=0,
                state="up",
            )
        ]

    def local_path(self, working_dir: Optional[str]) -> Optional[Path]:
        return self.resolve_working_dir(working_dir)

    @property
    def submitting_user(self) -> Optional[str]:
        return current_user()

    def resolve_working_dir(self, working_dir: Optional[str]) -> Path:
        if not working_dir:
            return self.context.root_dir
        path = Path(os.path.expanduser(working_dir))
        return path if path.is_absolute() else self.context.root_dir / path

    def check_working_dir(self, working_dir: Optional[str]) -> list[FieldError]:
        path = self.resolve_working_dir(working_dir)
        try:
            exists = path.is_dir()
        except OSError as exc:  # e.g. a name longer than the filesystem allows
            return [FieldError("working_dir", f"'{path}' cannot be used: {exc.strerror}")]
        if not exists:
            return [FieldError("working_dir", f"'{path}' is not an existing directory")]
        return []

    def check_resources(self, resources: ResourceRequest, partition: Partition) -> list[FieldError]:
        return []

    # -- submit and control ------------------------------------------------------------------

    def _allocate_dir(self) -> tuple[str, Path]:
        while True:
            native_id = str(self._next_id)
            self._next_id += 1
            job_dir = self.jobs_dir / native_id
            try:
                job_dir.mkdir(mode=PRIVATE_DIR)
            except FileExistsError:
                continue
            return native_id, job_dir

    async def submit(self, request: SubmitRequest) -> SubmitResult:
        native_id, job_dir = self._allocate_dir()
        working_dir = self.resolve_working_dir(request.working_dir)
        stdout_path = job_dir / "stdout"
        stderr_path = job_dir / "stderr"
        write_private(job_dir / "script.sh", request.script)
        meta = {
            "native_id": native_id,
            "token": request.submit_token,
            "name": request.name,
            "cpus": request.resources.cpus,
            "ntasks": request.resources.ntasks,
            "cpus_per_task": request.resources.cpus_per_task,
            "time_limit_minutes": request.resources.time_limit_minutes,
            "memory_mb": request.resources.memory_mb,
            "after": request.after_native_ids,
            "working_dir": str(working_dir),
            "env": request.env,
            "stdout": str(stdout_path),
            "stderr": str(stderr_path),
            "submitted_at": _now(),
        }
        # meta.json last: a folder without it is an aborted submit and is ignored.
        write_json(job_dir / "meta.json", meta)
        job = LocalJob(native_id, job_dir, meta)
        self._active[native_id] = job
        # Like sbatch, answer at once; starting processes happens off the request path, and a
        # burst of submits is scheduled in one pass.
        self._schedule_soon()
        status = self._status(job)
        return SubmitResult(
            native_id=native_id,
            stdout_path=str(stdout_path),
            stderr_path=str(stderr_path),
            working_dir=str(working_dir),
            state=status.state,
            raw_state=status.raw_state,
            reason=status.reason,
        )

    def _schedule_soon(self) -> None:
        if self._pending_tick is None or self._pending_tick.done():
            self._pending_tick = asyncio.create_task(self._scheduled_tick())

    async def _scheduled_tick(self) -> None:
        await asyncio.sleep(0)  # let the other submits of a burst land first
        try:
            await self._tick()
        finally:
            self.context.request_poll()

    async def find_by_token(self, submit_token: str) -> Optional[SubmitResult]:
        for entry in self.jobs_dir.iterdir():
            meta = read_json(entry / "meta.json")
            if meta and meta.get("token") == submit_token:
                return SubmitResult(
                    native_id=entry.name,
                    stdout_path=meta["stdout"],
                    stderr_path=meta["stderr"],
                    working_dir=meta["working_dir"],
                )
        return None

    async def cancel(self, native_id: str) -> None:
        job = self._job(native_id)
        async with self._lock:
            if job.finished():
                return
            self._finish(job, JobState.CANCELLED, "cancelled by user")
        self.context.request_poll()

    async def hold(self, native_id: str) -> None:
        job = self._job(native_id)
        if job.started or job.finished():
            raise Conflict(f"local job {native_id} is no longer queued and cannot be held")
        job.set_held(True)

    async def release(self, native_id: str) -> None:
        job = self._job(native_id)
        if not job.held:
            raise Conflict(f"local job {native_id} is not held")
        job.set_held(False)
        self._schedule_soon()

    async def read_log(self, path: str, offset: int, limit: int) -> bytes:
        return await asyncio.to_thread(read_range, path, offset, limit)

    # -- polling -----------------------------------------------------------------------------

    async def poll(self, native_ids: list[str]) -> dict[str, JobStatus]:
        await self._tick()
        self._estimates = self._estimate_starts()
        statuses: dict[str, JobStatus] = {}
        for native_id in native_ids:
            job = self._active.get(native_id) or (
                self._load(native_id) if native_id.isdigit() else None
            )
            if job is not None:
                statuses[native_id] = self._status(job)
        return statuses

    def _usage(self, job: LocalJob, ended_at: float) -> Optional[UsageRecord]:
        started = job.started
        if not started:
            return None  # it never ran: nothing was used
        meta = job.meta
        return local_usage.usage_record(
            job.dir,
            elapsed_seconds=ended_at - float(started["started_at"]),
            cpus=job.cpus,
            memory_mb=meta.get("memory_mb"),
            time_limit_minutes=meta.get("time_limit_minutes"),
        )

    def _status(self, job: LocalJob) -> JobStatus:
        started = job.started
        started_at = _ts(started["started_at"]) if started else None
        exited = job.refresh_exit()
        final = job.final
        if final is not None:
            return JobStatus(
                state=JobState(final["state"]),
                raw_state=final["state"].lower(),
                reason=final.get("reason"),
                exit_code=exited[0] if exited else None,
                started_at=started_at,
                ended_at=_ts(final["at"]),
                usage=self._usage(job, float(final["at"])),
            )
        if exited is not None:
            code, at = exited
            return JobStatus(
                state=JobState.COMPLETED if code == 0 else JobState.FAILED,
                raw_state="exited",
                reason=None if code == 0 else "NonZeroExitCode",
                exit_code=code,
                started_at=started_at,
                ended_at=_ts(at),
                usage=self._usage(job, at),
            )
        if started:
            return JobStatus(JobState.RUNNING, "running", None, None, started_at)
        if job.held:
            return JobStatus(JobState.HELD, "held", "JobHeldUser")
        waiting_on = [d for d in job.meta.get("after", []) if self._outcome(d) == "pending"]
        if waiting_on:
            return JobStatus(JobState.QUEUED, "queued", "Dependency")
        if job.cpus > self.slots - self._used_slots():
            status = JobStatus(JobState.QUEUED, "queued", "Resources")
            status.estimated_start = _ts(self._estimates.get(job.native_id))
            return status
        return JobStatus(JobState.QUEUED, "queued", None)  # starts on the next pass

    def _estimate_starts(self) -> dict[str, float]:
        """Start estimates for the queue (see local_usage.estimate_starts)."""
        running: list[local_usage.Running] = []
        waiting: list[local_usage.Waiting] = []
        for job in sorted(self._active.values(), key=lambda j: int(j.native_id)):
            limit = job.meta.get("time_limit_minutes")
            if job.started and not job.finished():
                started_at = float(job.started["started_at"])
                ends_at = started_at + limit * 60 if limit else None
                running.append(local_usage.Running(job.cpus, ends_at))
            elif not job.started and not job.held:
                waiting.append(local_usage.Waiting(job.native_id, job.cpus, limit))
        return local_usage.estimate_starts(self.slots, _now(), running, waiting)

    async def _sample_forever(self) -> None:
        while True:
            await asyncio.sleep(local_usage.SAMPLE_SECONDS)
            try:
                self._sample()
            except Exception:
                logging.getLogger("parallelworks_lab").exception("sampling local jobs failed")

    def _sample(self) -> None:
        """One measurement of every running job's processes (peak memory, CPU time)."""
        for job in list(self._active.values()):
            proc = job.process() if job.started else None
            if proc is None:
                continue
            memory_mb, cpu_seconds = local_usage.sample_tree(proc)
            peak = self._peaks.get(job.native_id) or local_usage.read_peak(job.dir)
            self._peaks[job.native_id] = local_usage.record_sample(
                job.dir, peak, memory_mb, cpu_seconds
            )
        for native_id in [n for n in self._peaks if n not in self._active]:
            del self._peaks[native_id]

    def _outcome(self, native_id: str) -> str:
        """How a dependency went: 'ok', 'failed' or 'pending'."""
        job = self._active.get(native_id) or self._load(native_id)
        if job is None:
            return "failed"
        if job.final is not None:
            return "failed"
        exited = job.refresh_exit()
        if exited is None:
            return "pending"
        return "ok" if exited[0] == 0 else "failed"

    async def _tick(self) -> None:
        """Reap finished jobs, enforce time limits and start what fits, in submit order."""
        async with self._lock:
            now = _now()
            for job in list(self._active.values()):
                if job.finished():
                    self._active.pop(job.native_id, None)
                    self._kill_if_overdue(job, now)
                    continue
                if not job.started:
                    continue
                if job.proc is None or job.proc.returncode is not None:
                    # Not our running child: the wrapper's record says which process runs it.
                    job.reload_started()
                    if job.process() is None:
                        if job.refresh_exit() is None:
                            self._finish(
                                job, JobState.FAILED, "the job's process ended without status"
                            )
                        self._active.pop(job.native_id, None)
                        continue
                started = job.started
                limit = job.meta.get("time_limit_minutes")
                if limit and now - float(started["started_at"]) > limit * 60:
                    self._finish(job, JobState.TIMEOUT, f"time limit of {limit} min reached")

            free = self.slots - self._used_slots()
            queued = sorted(
                (j for j in self._active.values() if not j.started),
                key=lambda j: int(j.native_id),
            )
            for job in queued:
                if job.held:
                    continue
                outcomes = [self._outcome(d) for d in job.meta.get("after", [])]
                if "failed" in outcomes:
                    self._finish(job, JobState.CANCELLED, "DependencyNeverSatisfied")
                    continue
                if "pending" in outcomes:
                    continue
                if job.cpus > free:
                    # Strict FIFO: a big job at the head is not starved by smaller ones behind it.
                    break
                try:
                    await self._spawn(job)
                except Exception as exc:
                    # A job that cannot start fails alone; raising here would fail every pass
                    # (the cluster would look unreachable) and block every job behind it.
                    self._finish(job, JobState.FAILED, f"StartFailed: {exc}")
                    continue
                free -= job.cpus

    def _finish(self, job: LocalJob, state: JobState, reason: str) -> None:
        """Record a final state we decided (cancel, timeout), then stop the process group."""
        job.set_final({"state": state.value, "reason": reason, "at": _now()})
        self._active.pop(job.native_id, None)
        proc = job.process()
        if proc is not None:
            signal_group(proc.pid, signal.SIGTERM)
            loop = asyncio.get_running_loop()
            loop.call_later(self.settings.kill_grace_seconds, self._kill_if_overdue, job, None)

    def _kill_if_overdue(self, job: LocalJob, now: Optional[float]) -> None:
        final = job.final
        if final is None:
            return
        if now is not None and now - float(final["at"]) < self.settings.kill_grace_seconds:
            return
        proc = job.process()
        if proc is not None:
            signal_group(proc.pid, signal.SIGKILL)

    async def _spawn(self, job: LocalJob) -> None:
        proc = await start_job_process(job, self.context.cluster_id, self.settings.output_umask)
        task = asyncio.create_task(self._reap(proc))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reap(self, proc: asyncio.subprocess.Process) -> None:
        # Waiting reaps the child (no zombies) and lets the poller notice the end at once.
        await proc.wait()
        self.context.request_poll()
