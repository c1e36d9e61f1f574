"""The ``slurmrest`` backend: Slurm through its REST API (``slurmrestd``) over httpx, with JWT.

* The HTTP exchange (pooled client, retries, the JWT on every request, the API version picked
  once) is :class:`.slurmrest_http.SlurmRestClient`; tokens are :mod:`.slurmrest_token`'s;
  what each API version's documents look like is :mod:`.slurmrest_versions`'. This module
  builds job descriptions from requests and statuses from job records.
* A submit is retried only when it never left; the submit token in the job comment settles every
  other doubt.
* Watching costs one ``GET /jobs`` per interval for all jobs, with ``update_time`` so an
  unchanged queue costs the controller next to nothing.
* Job output is read through the cluster's transport when one is configured; without one the
  job's reason says so and reading the log answers 409 with where the file is.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from datetime import datetime, timezone
from typing import Any, ClassVar, Optional

import httpx

from ..errors import ClusterUnreachable, Conflict, InvalidRequest
from ..models import Partition
from ..states import TERMINAL_STATES, JobState
from ..transports import (
    LocalTransport,
    Transport,
    TransportError,
    make_transport,
)
from .arrays import wanted_statuses
from .base import Backend, BackendContext, BackendSettings, JobStatus, SubmitRequest, SubmitResult
from .cli import resolve_working_dir
from .slurm_common import TOKEN_PREFIX, UNREACHABLE_MARKERS, expand_pattern, submitted
from .slurm_partitions import count_node, new_partition, partition_access
from .slurm_states import normalize
from .slurmrest_http import RETRY_STATUSES, SlurmRestClient, describe
from .slurmrest_records import JobDescription, JobRecord, expand_array_spec, field_of, read_errors
from .slurmrest_settings import DEFAULT_PATH, SlurmRestSettings
from .slurmrest_token import TokenRejected, TokenSource
from .slurmrest_versions import Adapter

log = logging.getLogger("parallelworks_lab.slurmrest")

# How long terminal statuses are remembered after their job left the queue.
ENDED_MEMORY_SECONDS = 3600.0
# At most this many history (slurmdbd) lookups per poll.
HISTORY_LOOKUPS = 20
NO_TRANSPORT_NOTE = (
    "output not readable from JupyterLab: cluster has no 'transport' configured "
    "(the files stay on the cluster at stdout_path/stderr_path)"
)


def _ts(value: Optional[int]) -> Optional[datetime]:
    return None if value is None else datetime.fromtimestamp(value, tz=timezone.utc)


def _estimate(value: Optional[int]) -> Optional[datetime]:
    """A pending job's ``start_time`` is the backfill scheduler's estimate (every API version
    has it in the job record): only a time still ahead counts as one."""
    return _ts(value) if value is not None and value > time.time() else None


class SlurmRestBackend(SlurmRestClient, Backend):
    kind: ClassVar[str] = "slurmrest"
    settings_class = SlurmRestSettings
    settings: SlurmRestSettings
    #: What finished jobs used (MaxRSS, TotalCPU of their steps) is served only by slurmdbd's
    #: ``/slurmdb/`` endpoints; the controller's job records do not carry it (docs/slurmrest.md).
    measures_usage: ClassVar[bool] = False

    def __init__(self, settings: BackendSettings, context: BackendContext) -> None:
        super().__init__(settings, context)
        self.transport: Optional[Transport] = None
        if self.settings.transport is not None:
            self.transport = make_transport(self.settings.transport)
            if isinstance(self.transport, LocalTransport):
                # On the login node itself, relative paths mean the Jupyter root directory.
                self.transport.set_home(self.context.root_dir)
        self._command_runner: Optional[Transport] = None
        self.tokens = TokenSource(self.settings.token, self.settings.user, self._token_from_command)
        if self.settings.token.value is not None:
            # Jupyter prints its whole configuration with --debug: an inline token is in it.
            log.warning(
                "cluster %s: token.value is given inline in the configuration, which "
                "`jupyter lab --debug` prints; use token.file or token.command instead",
                self.context.cluster_id,
            )
        self._client: Optional[httpx.AsyncClient] = None
        self._adapter: Optional[Adapter] = None
        self._paths: set[str] = set()
        self._ready_lock = asyncio.Lock()
        self._jobs_lock = asyncio.Lock()
        self.requests = 0  # HTTP requests sent to slurmrestd
        self.token_commands = 0
        self._records: Optional[list[JobRecord]] = None
        self._since: Optional[int] = None
        self._full_at = 0.0
        self._ended: dict[str, tuple[float, JobStatus]] = {}
        self._cached_answer = False  # the last job list was "no change since" (ours, kept)
        self._gone_ids: set[str] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def commands_run(self) -> int:
        return self.requests + self.token_commands

    @property
    def api_version(self) -> Optional[str]:
        return self._adapter.version if self._adapter else None

    async def start(self) -> None:
        """Pick the API version and check the token once, so a bad one shows at start-up."""
        await self._get("ping", retry=False)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        for transport in (self.transport, self._command_runner):
            if transport is not None:
                await transport.close()

    # -- discovery ---------------------------------------------------------------------------

    async def discover(self) -> list[Partition]:
        adapter = await self._ready()
        partitions = adapter.parse_partitions(await self._get("partitions"))
        nodes = adapter.parse_nodes(await self._get("nodes"))
        default_name = self.settings.default_partition
        out: dict[str, dict[str, Any]] = {}
        for record in partitions:
            if not record.name:
                continue
            default = record.name == default_name if default_name else bool(record.default)
            out[record.name] = new_partition(
                record.name, default, record.max_time_minutes, record.max_nodes, record.state
            )
            out[record.name].update(
                partition_access(record.accounts, record.deny_accounts, record.qos, record.deny_qos)
            )
        for node in nodes:
            for name in node.partitions:
                if name in out:
                    count_node(
                        out[name],
                        idle=bool(node.idle),
                        cpus=node.cpus,
                        cpus_idle=node.cpus_idle,
                        memory_mb=node.memory_mb,
                        gres=node.gres,
                    )
        return [Partition(**p) for p in out.values()]

    # -- submit ------------------------------------------------------------------------------

    async def _home(self) -> Optional[str]:
        if self.settings.working_dir:
            return self.settings.working_dir
        if self.transport is not None:
            try:
                return await self.transport.home()
            except TransportError as exc:
                raise ClusterUnreachable(self.context.cluster_id, str(exc)) from exc
        return None

    async def _working_dir(self, working_dir: Optional[str]) -> str:
        if working_dir and working_dir.startswith("/"):
            return working_dir
        home = await self._home()
        if home is None:
            raise InvalidRequest.for_field(
                "working_dir",
                "must be an absolute path on this cluster (it has no 'working_dir' setting "
                "and no transport to find a home directory with)",
            )
        return resolve_working_dir(home, working_dir)

    def job_description(self, request: SubmitRequest, working_dir: str) -> JobDescription:
        """The job from validated fields only; the script is the batch script, untouched."""
        res = request.resources
        # '%' in a path would be read as a filename pattern: '%%' is a literal '%'.
        base = working_dir.replace("%", "%%").rstrip("/")
        # Our id too: two clusters sharing a home directory can hand out the same job number.
        stem = f"pwlab-%A_%a-{request.job_id}" if res.array else f"pwlab-%j-{request.job_id}"
        dependency = None
        if request.after_native_ids:
            dependency = "afterok:" + ":".join(request.after_native_ids)
        return JobDescription(
            name=request.name,
            script=request.script,
            working_dir=working_dir,
            stdout=f"{base}/{stem}.out",
            stderr=f"{base}/{stem}.err",
            comment=f"{TOKEN_PREFIX}{request.submit_token}",
            environment={**self.settings.job_env, **request.env} or {"PATH": DEFAULT_PATH},
            partition=res.partition,
            nodes=res.nodes,
            ntasks=res.ntasks,
            cpus_per_task=res.cpus_per_task,
            gpus=res.gpus,
            memory_mb=res.memory_mb,
            time_limit_minutes=res.time_limit_minutes,
            array=res.array,
            dependency=dependency,
            account=res.account,
            qos=res.qos,
        )

    async def submit(self, request: SubmitRequest) -> SubmitResult:
        adapter = await self._ready()
        working_dir = await self._working_dir(request.working_dir)
        if self.transport is not None:
            try:
                exists = await self.transport.is_dir(working_dir)
            except TransportError as exc:
                raise ClusterUnreachable(self.context.cluster_id, str(exc)) from exc
            if not exists:
                raise InvalidRequest.for_field(
                    "working_dir", f"'{working_dir}' is not an existing directory on the cluster"
                )
        job = self.job_description(request, working_dir)
        body = adapter.submit_body(job)
        path = adapter.path("submit")
        try:
            status, data = await self._call("POST", path, body=body, idempotent=False)
        except TokenRejected as exc:
            # Rejected before anything was queued; with a new token, make sure the first try
            # did not get through after all, then send it once more.
            if not await self._refresh_token(exc.generation):
                raise
            found = await self.find_by_token(request.submit_token)
            if found is not None:
                return found
            status, data = await self._call("POST", path, body=body, idempotent=False)
        job_id = adapter.parse_submit(data)
        if status != 200 or job_id is None:
            raise self._submit_error(status, data, request)
        native_id = str(job_id)
        self._since = None  # a change we know of: the next poll asks for the full list
        return submitted(native_id, job.stdout, job.stderr, working_dir, request.resources)

    def _submit_error(self, status: int, data: Any, request: SubmitRequest) -> Exception:
        errors = read_errors(data)
        texts = [str(e) for e in errors] or [f"HTTP {status}"]
        joined = "; ".join(texts)
        if status in RETRY_STATUSES or any(m in joined for m in UNREACHABLE_MARKERS):
            return ClusterUnreachable(self.context.cluster_id, f"submit failed: {joined}")
        if not errors:
            return ClusterUnreachable(
                self.context.cluster_id, f"submit failed: {describe(status, data)}"
            )
        for error in errors:
            field = field_of(error)
            if field is None:
                continue
            message = f"Slurm refused the job: {error}"
            if field == "resources.partition" and request.resources.partition:
                message += f" (partition '{request.resources.partition}')"
            return InvalidRequest.for_field(field, message)
        return InvalidRequest.for_field("script", f"Slurm refused the job: {joined}")

    # -- watching ----------------------------------------------------------------------------

    async def _job_records(self, full: bool = False) -> list[JobRecord]:
        """This user's job records: one ``GET /jobs``, with ``update_time`` when we have data."""
        adapter = await self._ready()
        async with self._jobs_lock:
            now = time.time()
            incremental = (
                not full
                and self._records is not None
                and self._since is not None
                and now - self._full_at < self.settings.full_refresh_seconds
            )
            params = {"update_time": self._since} if incremental else None
            status, data = await self._call("GET", adapter.path("jobs"), params=params)
            if status not in (200, 304):
                raise ClusterUnreachable(
                    self.context.cluster_id, f"GET jobs: {describe(status, data)}"
                )
            answer = adapter.parse_jobs(status, data)
            self._cached_answer = answer.unchanged and self._records is not None
            if self._cached_answer and self._records is not None:
                return self._records
            if not incremental:
                self._full_at = now
            self._records = [
                r for r in answer.records if not r.user_name or r.user_name == self.settings.user
            ]
            if answer.last_update is not None:
                self._since = answer.last_update
            else:
                self._since = int(now - self.settings.update_time_margin)
            return self._records

    def _status(self, record: JobRecord, task: Optional[int]) -> JobStatus:
        reason = record.reason
        state = normalize(record.effective_state, reason)
        terminal = state in TERMINAL_STATES
        waiting = state in (JobState.QUEUED, JobState.HELD, JobState.UNKNOWN)
        if reason is None and self.transport is None:
            reason = NO_TRANSPORT_NOTE
        status = JobStatus(
            state=state,
            raw_state=record.raw_state,
            reason=reason,
            exit_code=record.exit_code if terminal else None,
            started_at=None if waiting else _ts(record.start_time),
            ended_at=_ts(record.end_time) if terminal else None,
            estimated_start=_estimate(record.start_time) if state is JobState.QUEUED else None,
        )
        if record.array_job_id is not None and task is not None:
            array_job = str(record.array_job_id)
            status.parent_native_id = array_job
            status.array_task = str(task)
            job_id = str(record.job_id) if record.array_task_id is not None else array_job
            for path, attr in ((record.stdout, "stdout_path"), (record.stderr, "stderr_path")):
                if path:
                    if not record.paths_expanded:
                        path = expand_pattern(path, job_id, array_job, str(task))
                    setattr(status, attr, path)
        return status

    def _current(self, records: list[JobRecord]) -> dict[str, JobStatus]:
        """Statuses by native id: jobs, array tasks (``A_i``), and pending tasks expanded."""
        statuses: dict[str, JobStatus] = {}
        for record in records:
            if record.array_job_id is None:
                statuses[str(record.job_id)] = self._status(record, None)
            elif record.array_task_id is not None:
                key = f"{record.array_job_id}_{record.array_task_id}"
                statuses[key] = self._status(record, record.array_task_id)
            elif record.array_task_string:
                for task in expand_array_spec(record.array_task_string):
                    statuses[f"{record.array_job_id}_{task}"] = self._status(record, task)
            else:
                statuses[str(record.job_id)] = self._status(record, None)
        return statuses

    def _collect(self, wanted: set[str], records: list[JobRecord]) -> dict[str, JobStatus]:
        """The statuses of ``wanted`` (and of the tasks of wanted array jobs) in ``records``,
        with the ends of jobs seen earlier that have left the list since."""
        current = self._current(records)
        now = time.time()
        for key, status in current.items():
            if status.state in TERMINAL_STATES:
                self._ended[key] = (now, status)
        for key in [k for k, (t, _) in self._ended.items() if now - t > ENDED_MEMORY_SECONDS]:
            del self._ended[key]
        known = {key: status for key, (_, status) in self._ended.items()}
        known.update(current)
        return wanted_statuses(known.items(), wanted)

    async def poll(self, native_ids: list[str]) -> dict[str, JobStatus]:
        if not native_ids:
            return {}
        wanted = set(native_ids)
        statuses = self._collect(wanted, await self._job_records())
        missing = [n for n in native_ids if n not in statuses]
        if missing and self._cached_answer and not self._gone_ids.issuperset(missing):
            # Before calling a job gone on the word of "no change since": the full list.
            statuses = self._collect(wanted, await self._job_records(full=True))
            missing = [n for n in native_ids if n not in statuses]
        if missing:
            statuses.update(await self._gone(missing))
        return statuses

    async def _gone(self, native_ids: list[str]) -> dict[str, JobStatus]:
        """Jobs no longer in the controller's list: their end from slurmdbd, where it is served.

        Without it their end is unknowable: they become UNKNOWN with a reason (never FAILED)."""
        adapter = await self._ready()
        found: dict[str, JobStatus] = {}
        history = adapter.path("history", "{job_id}") in self._paths
        for native_id in native_ids[:HISTORY_LOOKUPS] if history else []:
            status, data = await self._call("GET", adapter.path("history", native_id))
            record = adapter.parse_history(data) if status == 200 else None
            if record is not None and record.states:
                job_status = self._status(record, None)
                if job_status.state is not JobState.UNKNOWN:
                    found[native_id] = job_status
                    if job_status.state in TERMINAL_STATES:
                        self._ended[native_id] = (time.time(), job_status)
        for native_id in native_ids:
            if native_id not in found:
                self._gone_ids.add(native_id)
                found[native_id] = JobStatus(
                    state=JobState.UNKNOWN,
                    raw_state="UNKNOWN",
                    reason="LeftQueue: the job left the controller's list before its end was "
                    "seen, and no job history (slurmdbd) is available to ask",
                )
        return found

    async def find_by_token(self, submit_token: str) -> Optional[SubmitResult]:
        comment = f"{TOKEN_PREFIX}{submit_token}"
        for record in await self._job_records(full=True):
            if record.comment != comment:
                continue
            if record.array_job_id is not None:
                return SubmitResult(
                    native_id=str(record.array_job_id), working_dir=record.working_dir
                )
            native = str(record.job_id)
            paths = [
                p if not p or record.paths_expanded else expand_pattern(p, native, native, None)
                for p in (record.stdout, record.stderr)
            ]
            return SubmitResult(
                native_id=native,
                stdout_path=paths[0],
                stderr_path=paths[1],
                working_dir=record.working_dir,
            )
        return None

    # -- control -----------------------------------------------------------------------------

    async def _control(self, method: str, native_id: str, body: Any, action: str) -> None:
        adapter = await self._ready()
        if not re.fullmatch(r"\d+(_\d+)?", native_id):
            raise Conflict(f"{action}: '{native_id}' is not a Slurm job id")
        status, data = await self._call(method, adapter.path("job", native_id), body=body)
        failures = adapter.update_failures(data) if status == 200 else []
        if status == 200 and not failures:
            self._since = None
            return
        detail = "; ".join(failures) or describe(status, data)
        if status in RETRY_STATUSES or any(m in detail for m in UNREACHABLE_MARKERS):
            raise ClusterUnreachable(self.context.cluster_id, f"{action} failed: {detail}")
        raise Conflict(f"{action} refused by Slurm: {detail}")

    async def cancel(self, native_id: str) -> None:
        await self._control("DELETE", native_id, None, "cancel")

    async def hold(self, native_id: str) -> None:
        adapter = await self._ready()
        await self._control("POST", native_id, adapter.hold_body(True), "hold")

    async def release(self, native_id: str) -> None:
        adapter = await self._ready()
        await self._control("POST", native_id, adapter.hold_body(False), "release")

    async def read_log(self, path: str, offset: int, limit: int) -> bytes:
        if self.transport is None:
            raise Conflict(
                f"cannot read '{path}': cluster '{self.context.cluster_id}' has no transport "
                "configured (slurmrestd does not serve files); add a 'transport' to read job "
                "output from JupyterLab"
            )
        try:
            return await self.transport.read_file(path, offset, limit)
        except TransportError as exc:
            raise ClusterUnreachable(self.context.cluster_id, str(exc)) from exc
