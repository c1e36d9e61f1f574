"""What the service shows without changing anything: a cluster by id, a job and its detail view
(partition load, the scheduler's words on a waiting job), a job's stored submission, pages of
the job list, and log chunks cut at whole UTF-8 characters."""

from __future__ import annotations

import asyncio
import time
from typing import Optional

from .clusters import Cluster
from .errors import FieldError, InvalidRequest, NotFound, PWLabError
from .guidance.models import PartitionLoad, ReasonExplanation
from .guidance.reasons import explain_details
from .models import Job, JobList, JobSubmit, LogChunk, Partition
from .privacy import redact_env, secret_names
from .states import JobState
from .store import JobStore

LOG_CHUNK_LIMIT = 1 << 20  # bytes per log request
DETAILS_TTL = 60.0  # seconds a scheduler's words on a waiting job are reused
MAX_LIST_LIMIT = 1000
# A cursor is a row number of the store: SQLite integers are signed 64-bit.
MAX_CURSOR = (1 << 63) - 1
# Log offsets stay exact in a JavaScript number (the sidebar echoes them back), and are far past
# any log file; an offset past the end of a file reads nothing.
MAX_LOG_OFFSET = (1 << 53) - 1


def partition_load(job: Job, partitions: Optional[list[Partition]]) -> Optional[PartitionLoad]:
    """How busy a queued job's partition was at the last discovery (no scheduler call)."""
    if job.terminal or job.state not in (JobState.QUEUED, JobState.HELD) or not partitions:
        return None
    part = next((p for p in partitions if p.name == job.resources.partition), None)
    if part is None or not part.nodes_total:
        return None
    text = f"{part.nodes_idle} of {part.nodes_total} nodes idle in {part.name}"
    if part.cpus_idle is not None:
        text += f" ({part.cpus_idle} CPUs free)"
    return PartitionLoad(
        partition=part.name,
        nodes_idle=part.nodes_idle,
        nodes_total=part.nodes_total,
        cpus_idle=part.cpus_idle,
        text=text,
    )


class JobViews:
    """The read side of :class:`~.service.JobService` (which sets these attributes up)."""

    store: JobStore
    clusters: dict[str, Cluster]
    _details_cache: dict[tuple[str, str], tuple[float, list[str]]]

    def cluster(self, cluster_id: str) -> Cluster:
        try:
            return self.clusters[cluster_id]
        except KeyError:
            raise NotFound(f"unknown cluster '{cluster_id}'") from None

    def get_job(self, job_id: str) -> Job:
        job = self.store.get(job_id)
        if job is None:
            raise NotFound(f"unknown job '{job_id}'")
        return job

    async def job_detail(self, job_id: str) -> Job:
        """A job with what only its detail view shows: how busy its partition is, from the
        cluster's discovery cache (refreshed at most once per ``discovery_ttl``, and only
        when someone looks at a waiting job: never part of the regular poll)."""
        job = self.get_job(job_id)
        cluster = self.clusters.get(job.cluster)
        if cluster is None or job.terminal or job.state not in (JobState.QUEUED, JobState.HELD):
            return job
        try:
            partitions: Optional[list[Partition]] = await cluster.partitions(
                fresh=cluster.backend.cheap_discovery
            )
        except PWLabError:
            partitions = cluster.cached_partitions()  # unreachable: the last known, if any
        job.partition_load = partition_load(job, partitions)
        details = await self._wait_details(cluster, job)
        if details:
            explained = job.reason_explained or ReasonExplanation(
                code="scheduling info",
                summary="The scheduler has not started it yet; what it says is below.",
                known=True,
            )
            job.reason_explained = explained.model_copy(update={"details": details})
        return job

    async def _wait_details(self, cluster: Cluster, job: Job) -> list[str]:
        """The scheduler's own words on a waiting job, at most one command per job a minute."""
        if job.native_id is None:
            return []
        key = (cluster.id, job.native_id)
        cached = self._details_cache.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < DETAILS_TTL:
            return cached[1]
        try:
            lines = await asyncio.wait_for(cluster.backend.wait_details(job.native_id), 10)
        except (PWLabError, OSError, asyncio.TimeoutError):
            lines = []
        details = explain_details(lines)
        if len(self._details_cache) > 1000:
            self._details_cache.clear()
        self._details_cache[key] = (now, details)
        return details

    def get_submission(self, job_id: str) -> JobSubmit:
        """What was submitted for this job (for an array task: its array job's submission).

        Secret-named env values are not kept: they come back blank, named in ``redacted_env``
        (the user re-enters them to resubmit)."""
        self.get_job(job_id)  # 404 for unknown ids
        request = self.store.request(job_id) or {}
        parent = request.get("array_task_of")
        if isinstance(parent, str):
            return self.get_submission(parent)
        try:
            submission = JobSubmit.model_validate(request)
        except ValueError:
            raise NotFound(f"job '{job_id}' has no stored submission") from None
        return submission.model_copy(
            update={
                "env": redact_env(submission.env),
                "redacted_env": secret_names(submission.env),
            }
        )

    def list_jobs(
        self,
        *,
        cluster: Optional[str] = None,
        states: Optional[list[str]] = None,
        limit: int = 100,
        cursor: Optional[str] = None,
    ) -> JobList:
        errors: list[FieldError] = []
        parsed_states: list[JobState] = []
        for value in states or []:
            try:
                parsed_states.append(JobState(value.upper()))
            except ValueError:
                errors.append(FieldError("state", f"unknown state '{value}'"))
        if not 1 <= limit <= MAX_LIST_LIMIT:
            errors.append(FieldError("limit", f"must be between 1 and {MAX_LIST_LIMIT}"))
        parsed_cursor: Optional[int] = None
        if cursor:
            # isascii: str.isdigit() also takes digits of other scripts ("١٢") and superscripts.
            digits = cursor.isascii() and cursor.isdigit() and len(cursor) <= len(str(MAX_CURSOR))
            if not digits or int(cursor) > MAX_CURSOR:
                errors.append(FieldError("cursor", "is not a cursor returned by this API"))
            else:
                parsed_cursor = int(cursor)
        if cluster is not None and cluster not in self.clusters:
            errors.append(FieldError("cluster", f"unknown cluster '{cluster}'"))
        if errors:
            raise InvalidRequest("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
        jobs, next_cursor = self.store.page(
            cluster=cluster, states=parsed_states, limit=limit, cursor=parsed_cursor
        )
        return JobList(jobs=jobs, next_cursor=None if next_cursor is None else str(next_cursor))

    async def read_log(self, job_id: str, stream: str = "stdout", offset: int = 0) -> LogChunk:
        if stream not in ("stdout", "stderr"):
            raise InvalidRequest.for_field("stream", "must be 'stdout' or 'stderr'")
        if not 0 <= offset <= MAX_LOG_OFFSET:
            raise InvalidRequest.for_field("offset", f"must be between 0 and {MAX_LOG_OFFSET}")
        job = self.get_job(job_id)
        path = job.stdout_path if stream == "stdout" else job.stderr_path
        if path is None:
            return LogChunk(data="", offset=offset, eof=job.terminal)
        backend = self.cluster(job.cluster).backend
        try:
            raw = await backend.read_log(path, offset, LOG_CHUNK_LIMIT)
        except FileNotFoundError:
            return LogChunk(data="", offset=offset, eof=job.terminal)
        complete = job.terminal and len(raw) < LOG_CHUNK_LIMIT
        if complete:
            # The job writes no more: this is the end of the file, odd bytes and all.
            text, used = raw.decode("utf-8", errors="replace"), len(raw)
        else:
            text, used = decode_complete(raw)
        return LogChunk(data=text, offset=offset + used, eof=complete)


def decode_complete(raw: bytes) -> tuple[str, int]:
    """Decode UTF-8 without splitting a character at the end of a chunk.

    Returns the text and how many bytes it used; an incomplete trailing character is left for
    the next request (its offset points at it). Invalid bytes elsewhere become U+FFFD.
    """
    cut = len(raw)
    # A UTF-8 sequence is at most 4 bytes: look back at most 3 for an unfinished lead byte.
    for back in range(1, min(4, len(raw)) + 1):
        byte = raw[-back]
        if byte & 0xC0 == 0x80:
            continue  # continuation byte: keep looking for the lead
        if byte >= 0xC0:
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            if needed > back:
                cut = len(raw) - back
        break
    return raw[:cut].decode("utf-8", errors="replace"), cut
