"""JobService: the domain logic behind every frontend. No Tornado here.

It owns the store, one cluster object (with its backend) and one poller per cluster, and fans job
changes out to listeners (the server's event bus, tests, the in-process kernel client).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, Union

from .backends.base import Backend, BackendContext, SubmitRequest, storable_answer
from .clusters import DEFAULT_CLUSTERS, Cluster, ClusterConfig
from .errors import (
    ClusterUnreachable,
    Conflict,
    FieldError,
    InvalidRequest,
    NotFound,
    PWLabError,
    RateLimited,
)
from .guidance import provenance
from .guidance.models import PartitionLoad, Provenance, ReasonExplanation, Suggestion
from .guidance.reasons import explain_details
from .guidance.suggest import RUNS_LOOKED_AT, suggest
from .guidance.templates import Template, TemplateIn, TemplateStore
from .limits import check_limits, pick_partition
from .models import (
    ClusterDetail,
    ClusterSummary,
    Job,
    JobList,
    JobSubmit,
    LogChunk,
    Partition,
    ResourceRequest,
)
from .poller import Poller
from .privacy import redact_env, secret_names
from .providers import PROVIDERS, ClusterProvider, load_provider_class
from .states import JobState
from .store import JobStore

DEFAULT_BACKENDS = {
    "local": "parallelworks_lab.backends.local.LocalBackend",
    "slurm": "parallelworks_lab.backends.slurm.SlurmBackend",
    "sge": "parallelworks_lab.backends.sge.SGEBackend",
    "slurmrest": "parallelworks_lab.backends.slurmrest.SlurmRestBackend",
}
LOG_CHUNK_LIMIT = 1 << 20  # bytes per log request
DETAILS_TTL = 60.0  # seconds a scheduler's words on a waiting job are reused
MAX_LIST_LIMIT = 1000
# A cursor is a row number of the store: SQLite integers are signed 64-bit.
MAX_CURSOR = (1 << 63) - 1
# Log offsets stay exact in a JavaScript number (the sidebar echoes them back), and are far past
# any log file; an offset past the end of a file reads nothing.
MAX_LOG_OFFSET = (1 << 53) - 1

JobListener = Callable[[str, dict[str, Any]], None]
JOB_EVENT = "job"
CLUSTER_EVENT = "cluster"


def load_backend_class(path: Union[str, type[Backend]]) -> type[Backend]:
    if isinstance(path, type):
        return path
    module_name, _, attr = path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise TypeError(f"{path} is not a Backend class")
    return cls


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


def job_event(job: Job) -> dict[str, Any]:
    """The event payload for one job: enough for a client to update its row."""
    return job.model_dump(
        mode="json",
        include={
            "id",
            "cluster",
            "native_id",
            "name",
            "state",
            "raw_state",
            "reason",
            "exit_code",
            "terminal",
            "submitted_at",
            "started_at",
            "ended_at",
            "updated_at",
            "parent_id",
            "array_task",
            "reason_explained",
            "estimated_start",
            "usage",
        },
    )


def script_hash(request: JobSubmit) -> str:
    """What identifies "the same script" across submissions (for resource suggestions)."""
    return hashlib.sha256(request.batch_script().encode("utf-8", "surrogatepass")).hexdigest()[:32]


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


class JobService:
    def __init__(
        self,
        store: JobStore,
        *,
        clusters: Optional[list[dict[str, Any]]] = None,
        backend_classes: Optional[dict[str, Union[str, type[Backend]]]] = None,
        state_dir: Path,
        root_dir: Path,
        poll_interval: float = 5.0,
        log: Optional[logging.Logger] = None,
        templates_dir: Optional[Path] = None,
    ) -> None:
        self.store = store
        self.log = log or logging.getLogger("parallelworks_lab")
        self.poll_interval = poll_interval
        self._listeners: list[JobListener] = []
        self.templates = TemplateStore(templates_dir, state_dir / "templates", self.log)
        self._details_cache: dict[tuple[str, str], tuple[float, list[str]]] = {}
        self._submitting: set[str] = set()
        self._started = False
        self._start_lock = asyncio.Lock()
        self.clusters: dict[str, Cluster] = {}
        self.pollers: dict[str, Poller] = {}
        #: Sources of clusters known only at run time (e.g. a Parallel Works ACTIVATE account).
        self.providers: dict[str, ClusterProvider] = {}
        classes = {**DEFAULT_BACKENDS, **(backend_classes or {})}
        for entry in clusters or DEFAULT_CLUSTERS:
            config, options = ClusterConfig.split(entry)
            if config.id in self.clusters or config.id in self.providers:
                raise ValueError(f"cluster id '{config.id}' is configured twice")
            context = BackendContext(
                cluster_id=config.id,
                state_dir=state_dir / "clusters" / config.id,
                root_dir=root_dir,
            )
            if config.kind in PROVIDERS and config.kind not in classes:
                provider_class = load_provider_class(PROVIDERS[config.kind])
                self.providers[config.id] = provider_class.from_config(
                    config, options, self, context
                )
                continue
            if config.kind not in classes:
                raise ValueError(
                    f"cluster '{config.id}': unknown kind '{config.kind}'; known: "
                    + ", ".join(sorted({*classes, *PROVIDERS}))
                )
            backend = load_backend_class(classes[config.kind]).from_config(options, context)
            self._attach(Cluster(config, backend))

    def _attach(self, cluster: Cluster) -> Poller:
        """Register a cluster and its poller (not started)."""
        poller = Poller(
            cluster,
            self.store,
            cluster.config.poll_interval or self.poll_interval,
            on_job_change=self._job_changed,
            on_status_change=self._cluster_changed,
            is_submitting=self._submitting.__contains__,
            log=self.log,
        )
        cluster.backend.context.request_poll = poller.wake
        self.clusters[cluster.id] = cluster
        self.pollers[cluster.id] = poller
        return poller

    async def _start_cluster(self, cluster: Cluster) -> None:
        try:
            await cluster.backend.start()
        except Exception as exc:
            self.log.warning("cluster %s did not start: %s", cluster.id, exc)
            cluster.set_status("unreachable", str(exc))
        self.pollers[cluster.id].start()

    async def add_cluster(self, cluster: Cluster) -> None:
        """Add a cluster at run time (from a provider); its poller runs once the service has."""
        if cluster.id in self.clusters:
            raise ValueError(f"cluster id '{cluster.id}' is already in use")
        self._attach(cluster)
        if self._started:
            await self._start_cluster(cluster)
        self._cluster_changed(cluster)

    async def remove_cluster(self, cluster_id: str) -> None:
        """Stop watching a cluster and forget it; its jobs stay in the store."""
        cluster = self.clusters.pop(cluster_id, None)
        poller = self.pollers.pop(cluster_id, None)
        if poller is not None:
            await poller.stop()
        if cluster is not None:
            await cluster.backend.close()
            self._emit(
                CLUSTER_EVENT,
                {"cluster": cluster_id, "status": "removed", "message": "no longer available"},
            )

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        async with self._start_lock:
            if self._started:
                return
            for cluster in list(self.clusters.values()):
                await self._start_cluster(cluster)
            self._started = True
            for provider in self.providers.values():
                await provider.start()

    async def stop(self) -> None:
        for provider in self.providers.values():
            await provider.stop()
        for poller in self.pollers.values():
            await poller.stop()
        for cluster in self.clusters.values():
            await cluster.backend.close()
        self._started = False

    # -- events ------------------------------------------------------------------------------

    def subscribe(self, listener: JobListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _emit(self, kind: str, payload: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(kind, payload)
            except Exception:
                self.log.exception("event listener failed")

    def _job_changed(self, job: Job) -> None:
        self._emit(JOB_EVENT, job_event(job))

    def _cluster_changed(self, cluster: Cluster) -> None:
        self._emit(
            CLUSTER_EVENT,
            {"cluster": cluster.id, "status": cluster.status, "message": cluster.status_message},
        )

    # -- clusters ----------------------------------------------------------------------------

    def cluster(self, cluster_id: str) -> Cluster:
        try:
            return self.clusters[cluster_id]
        except KeyError:
            raise NotFound(f"unknown cluster '{cluster_id}'") from None

    def list_clusters(self) -> list[ClusterSummary]:
        return [c.summary() for c in self.clusters.values()]

    async def cluster_detail(self, cluster_id: str) -> ClusterDetail:
        return await self.cluster(cluster_id).detail(polls=self.pollers[cluster_id].polls)

    def cluster_changed(self, cluster: Cluster) -> None:
        """Tell listeners about a status a provider set on one of its clusters."""
        self._cluster_changed(cluster)

    async def start_cluster(self, cluster_id: str) -> ClusterSummary:
        """Switch on a cluster that is off (only clusters whose backend can do it)."""
        cluster = self.cluster(cluster_id)
        power_on = getattr(cluster.backend, "power_on", None)
        if power_on is None:
            raise Conflict(
                f"cluster '{cluster_id}' ({cluster.config.kind}) cannot be started from here"
            )
        await power_on()
        return cluster.summary()

    # -- jobs --------------------------------------------------------------------------------

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

    async def submit(self, request: JobSubmit) -> Job:
        if request.cluster not in self.clusters:
            known = ", ".join(self.clusters)
            raise InvalidRequest.for_field(
                "cluster", f"unknown cluster '{request.cluster}'; configured: {known}"
            )
        cluster = self.clusters[request.cluster]
        backend = cluster.backend
        resources = request.resources
        partition, errors = await self.check_resources(cluster, resources)
        errors += backend.check_working_dir(request.working_dir)
        if request.name is not None and (problem := backend.check_name(request.name)):
            errors.append(FieldError("name", problem))
        after_native: list[str] = []
        for dep_id in request.after:
            dep = self.store.get(dep_id)
            if dep is None:
                errors.append(FieldError("after", f"unknown job '{dep_id}'"))
            elif dep.cluster != cluster.id:
                errors.append(FieldError("after", f"job '{dep_id}' is on another cluster"))
            elif dep.native_id is None:
                errors.append(FieldError("after", f"job '{dep_id}' has not reached the scheduler"))
            else:
                after_native.append(dep.native_id)
        for var in request.redacted_env:
            if request.env.get(var) == "":
                errors.append(
                    FieldError(
                        f"env.{var}",
                        "re-enter its value: secret values are not kept after a job is submitted",
                    )
                )
        if errors:
            raise InvalidRequest("; ".join(f"{e.field}: {e.message}" for e in errors), errors)

        name = request.name or self._default_name(request)
        resources = resources.model_copy(update={"partition": partition.name})
        job_id = new_job_id()
        token = uuid.uuid4().hex
        self.store.insert(
            job_id=job_id,
            cluster=cluster.id,
            name=name,
            resources=resources,
            submit_token=token,
            # Secret-named env values go to the scheduler only, never into the store.
            request=request.model_dump(mode="json", exclude={"redacted_env"})
            | {"env": redact_env(request.env)},
            working_dir=request.working_dir,
            provenance=self._provenance(cluster, request),
            script_hash=script_hash(request),
        )
        self._submitting.add(job_id)
        try:
            result = await backend.submit(
                SubmitRequest(
                    job_id=job_id,
                    submit_token=token,
                    name=name,
                    script=request.batch_script(),
                    resources=resources,
                    working_dir=request.working_dir,
                    env=request.env,
                    after_native_ids=after_native,
                )
            )
        except (InvalidRequest, RateLimited):
            # The scheduler refused it (bad request, or too many calls): nothing was queued.
            self.store.delete(job_id)
            raise
        except Exception as exc:
            # It may or may not have reached the scheduler: keep it SUBMITTING, the poller
            # looks the token up when the cluster answers again.
            self.log.warning("submit of %s to %s failed: %s", job_id, cluster.id, exc)
            if isinstance(exc, PWLabError):
                raise
            raise ClusterUnreachable(cluster.id, str(exc)) from exc
        finally:
            self._submitting.discard(job_id)
        result = storable_answer(result)
        job = self.store.update(
            job_id,
            native_id=result.native_id,
            state=result.state,
            raw_state=result.raw_state,
            reason=result.reason,
            working_dir=result.working_dir,
            stdout_path=result.stdout_path,
            stderr_path=result.stderr_path,
        )
        job = job or self.get_job(job_id)
        self._job_changed(job)
        return job

    async def check_resources(
        self, cluster: Cluster, resources: ResourceRequest
    ) -> tuple[Partition, list[FieldError]]:
        """The partition a request goes to, and what is wrong with the request there."""
        backend = cluster.backend
        errors: list[FieldError] = []
        for field_name in sorted(backend.unsupported_fields):
            if getattr(resources, field_name) != type(resources).model_fields[field_name].default:
                errors.append(
                    FieldError(
                        f"resources.{field_name}",
                        f"is not supported on cluster '{cluster.id}' ({cluster.config.kind})",
                    )
                )
        partition = pick_partition(resources, await cluster.partitions())
        errors += check_limits(resources, partition)
        errors += backend.check_resources(resources, partition)
        return partition, errors

    def _provenance(self, cluster: Cluster, request: JobSubmit) -> Provenance:
        backend = cluster.backend
        source = request.source
        return provenance.collect(
            notebook_path=source.notebook_path if source else None,
            cell_id=source.cell_id if source else None,
            working_dir=backend.local_path(request.working_dir),
            user=backend.submitting_user,
            modules=backend.local_path(None) is not None,
        )

    @staticmethod
    def _default_name(request: JobSubmit) -> str:
        if request.command:
            first = request.command.strip().split()[0]
            return first.rsplit("/", 1)[-1][:64] or "command"
        return "script"

    # -- guidance ----------------------------------------------------------------------------

    def suggest(self, request: JobSubmit) -> Suggestion:
        """What earlier runs of the same script (else the same job name) really used."""
        if request.cluster not in self.clusters:
            raise InvalidRequest.for_field("cluster", f"unknown cluster '{request.cluster}'")
        runs, matched_by = self.store.history(
            request.cluster,
            script_hash=script_hash(request),
            name=request.name,
            limit=RUNS_LOOKED_AT,
        )
        return suggest(runs, matched_by, request.resources)

    def list_templates(self) -> list[Template]:
        return self.templates.list()

    async def save_template(self, template: TemplateIn) -> Template:
        """Save a user template, checked like a submission where it names a cluster."""
        existing = self.templates.get(template.name)
        if existing is not None and existing.read_only:
            raise Conflict(
                f"'{template.name}' is a site template and cannot be changed; "
                "save yours under another name"
            )
        if template.script is not None and template.command is not None:
            raise InvalidRequest.for_field("script", "give at most one of 'script' or 'command'")
        if template.cluster is not None:
            if template.cluster not in self.clusters:
                raise InvalidRequest.for_field("cluster", f"unknown cluster '{template.cluster}'")
            _, errors = await self.check_resources(
                self.clusters[template.cluster], template.resources
            )
            if errors:
                raise InvalidRequest("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
        return self.templates.save(template)

    def delete_template(self, name: str) -> None:
        existing = self.templates.get(name)
        if existing is None:
            raise NotFound(f"unknown template '{name}'")
        if existing.read_only:
            raise Conflict(f"'{name}' is a site template; only its administrator can remove it")
        self.templates.delete(name)

    async def _control(self, job_id: str, action: str) -> Job:
        job = self.get_job(job_id)
        if job.terminal:
            raise Conflict(f"job '{job_id}' has already ended ({job.state.value}); cannot {action}")
        if job.native_id is None:
            raise Conflict(f"job '{job_id}' is still being submitted; try again in a moment")
        if action == "hold" and job.state is not JobState.QUEUED:
            raise Conflict(f"job '{job_id}' is {job.state.value}; only QUEUED jobs can be held")
        if action == "release" and job.state is not JobState.HELD:
            raise Conflict(f"job '{job_id}' is {job.state.value}; only HELD jobs can be released")
        cluster = self.cluster(job.cluster)
        operation = getattr(cluster.backend, action)
        try:
            await operation(job.native_id)
        except PWLabError:
            raise
        except OSError as exc:
            raise ClusterUnreachable(cluster.id, str(exc)) from exc
        await self.pollers[cluster.id].refresh([job])
        return self.get_job(job_id)

    async def cancel(self, job_id: str) -> Job:
        return await self._control(job_id, "cancel")

    async def hold(self, job_id: str) -> Job:
        return await self._control(job_id, "hold")

    async def release(self, job_id: str) -> Job:
        return await self._control(job_id, "release")

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
