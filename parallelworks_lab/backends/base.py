"""The protocol every scheduler backend implements.

A backend knows one kind of scheduler. It never touches the job store: the service hands it a
:class:`SubmitRequest` and the poller asks it for :class:`JobStatus` of many jobs at once.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Optional, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import FieldError
from ..models import Partition, ResourceRequest
from ..privacy import DEFAULT_OUTPUT_UMASK, parse_umask
from ..states import JobState
from ..textcheck import storable


class BackendSettings(BaseModel):
    """Backend-specific cluster settings; each backend subclasses this with its own fields."""

    model_config = ConfigDict(extra="forbid")

    output_umask: str = Field(
        default=DEFAULT_OUTPUT_UMASK,
        description="The umask jobs are submitted with, as an octal string: '077' (default) "
        "makes their output files readable by the user only, '007' by the user's group too, "
        "'022' by every account.",
    )

    @field_validator("output_umask")
    @classmethod
    def _octal_umask(cls, value: str) -> str:
        parse_umask(value)
        return value

    @property
    def umask(self) -> int:
        """``output_umask`` as a number."""
        return parse_umask(self.output_umask)


@dataclass
class BackendContext:
    """What the server gives a backend: where to keep files, and how to ask for a prompt poll."""

    cluster_id: str
    state_dir: Path
    root_dir: Path
    request_poll: Callable[[], None] = lambda: None


@dataclass
class SubmitRequest:
    job_id: str
    submit_token: str
    name: str
    script: str
    resources: ResourceRequest
    working_dir: Optional[str]
    env: dict[str, str] = field(default_factory=dict)
    after_native_ids: list[str] = field(default_factory=list)


@dataclass
class SubmitResult:
    native_id: str
    stdout_path: Optional[str] = None
    stderr_path: Optional[str] = None
    working_dir: Optional[str] = None
    state: JobState = JobState.QUEUED
    raw_state: Optional[str] = None
    reason: Optional[str] = None


@dataclass
class JobStatus:
    state: JobState
    raw_state: Optional[str] = None
    reason: Optional[str] = None
    exit_code: Optional[int] = None
    started_at: Optional[datetime] = None
    ended_at: Optional[datetime] = None
    #: For an array task the backend discovered: its array job's native id and its index.
    parent_native_id: Optional[str] = None
    array_task: Optional[str] = None
    stdout_path: Optional[str] = None
    stderr_path: Optional[str] = None
    #: A queued job's start as the scheduler estimates it (None: it does not say).
    estimated_start: Optional[datetime] = None
    #: What a finished job used, when the status query had it at no extra cost.
    usage: Optional[UsageRecord] = None


@dataclass
class UsageRecord:
    """A finished job's measured usage, as the scheduler's accounting reports it.

    Every figure is optional: schedulers differ in what they record. The service turns it into
    the API's ``Usage`` (ratios, hints) with what the job asked for."""

    source: str  # "sacct", "qacct" or "measured"
    elapsed_seconds: Optional[int] = None
    cpu_seconds: Optional[float] = None
    max_memory_mb: Optional[float] = None
    cpus: Optional[int] = None
    requested_memory_mb: Optional[float] = None
    time_limit_seconds: Optional[int] = None
    gpus: Optional[int] = None


AnswerT = TypeVar("AnswerT", bound=Union[JobStatus, SubmitResult])
EXIT_CODE_RANGE = range(-(2**31), 2**31)


def storable_answer(answer: AnswerT) -> AnswerT:
    """A scheduler's answer made fit for the job store.

    The answer comes from outside (a scheduler's JSON may hold lone surrogates or numbers past
    64 bits): stored as it is, one odd job would make every status update of its cluster fail.
    """
    changes: dict[str, Any] = {}
    for item in dataclasses.fields(answer):
        value = getattr(answer, item.name)
        if isinstance(value, str) and storable(value) != value:
            changes[item.name] = storable(value)
    exit_code = getattr(answer, "exit_code", None)
    if exit_code is not None and exit_code not in EXIT_CODE_RANGE:
        changes["exit_code"] = None
    return dataclasses.replace(answer, **changes) if changes else answer


class Backend(abc.ABC):
    """One cluster's connection to its scheduler."""

    kind: ClassVar[str]
    settings_class: ClassVar[type[BackendSettings]] = BackendSettings
    #: Fields of ResourceRequest this scheduler cannot express; requests using them are rejected
    #: (and left out of the form). A backend may set it per instance from its configuration.
    unsupported_fields: frozenset[str] = frozenset()
    #: Whether :meth:`usage` can say what finished jobs used (the poller asks only then).
    measures_usage: ClassVar[bool] = False
    #: Discovery costs no scheduler command (the local cluster reads its own state): views may
    #: ask for fresh partitions instead of the TTL cache.
    cheap_discovery: ClassVar[bool] = False

    def __init__(self, settings: BackendSettings, context: BackendContext) -> None:
        self.settings = settings
        self.context = context

    @classmethod
    def from_config(cls, options: dict[str, Any], context: BackendContext) -> Backend:
        return cls(cls.settings_class.model_validate(options), context)

    @property
    def commands_run(self) -> int:
        """Scheduler commands run so far (admins and benchmarks watch scheduler load with it)."""
        return 0

    async def start(self) -> None:
        """Connect / recover state. Called once before any other method."""

    async def close(self) -> None:
        """Release connections and tasks."""

    @abc.abstractmethod
    async def discover(self) -> list[Partition]:
        """Partitions with their limits and live availability."""

    def check_resources(self, resources: ResourceRequest, partition: Partition) -> list[FieldError]:
        """Scheduler-specific checks beyond the partition limits (none by default)."""
        return []

    def check_name(self, name: str) -> Optional[str]:
        """Why the scheduler cannot take this job name (None: it can)."""
        return None

    def local_path(self, working_dir: Optional[str]) -> Optional[Path]:
        """A working directory as a path on this machine, when the cluster's jobs run on or
        share files with it (None for a remote cluster). Only read for provenance."""
        return None

    @property
    def submitting_user(self) -> Optional[str]:
        """Who the scheduler sees as the job's owner, when the backend knows."""
        return None

    def check_working_dir(self, working_dir: Optional[str]) -> list[FieldError]:
        """Validate the working directory where the backend can see it (no check by default)."""
        return []

    @abc.abstractmethod
    async def submit(self, request: SubmitRequest) -> SubmitResult:
        """Hand the job to the scheduler. Raise InvalidRequest if the scheduler rejects it."""

    @abc.abstractmethod
    async def poll(self, native_ids: list[str]) -> dict[str, JobStatus]:
        """Status of many jobs in one scheduler query. Ids it knows nothing of are left out.

        For an array job it may also return its tasks under their own native ids (with
        ``parent_native_id`` set); the poller then tracks each task as a job of its own."""

    @abc.abstractmethod
    async def find_by_token(self, submit_token: str) -> Optional[SubmitResult]:
        """Find a job whose submission was interrupted (crash between store and scheduler)."""

    async def usage(self, native_ids: list[str]) -> dict[str, UsageRecord]:
        """What these finished jobs used, in one scheduler query (batched: the poller calls it
        at most once per interval for the jobs that just ended). Jobs the accounting does not
        know yet are left out and asked about again next interval."""
        return {}

    async def wait_details(self, native_id: str) -> list[str]:
        """What the scheduler itself says about why a waiting job has not started, word for
        word, where that costs a command of its own (asked only when someone opens the job,
        and cached by the caller). Empty when the scheduler has nothing more to say."""
        return []

    @abc.abstractmethod
    async def cancel(self, native_id: str) -> None: ...

    @abc.abstractmethod
    async def hold(self, native_id: str) -> None: ...

    @abc.abstractmethod
    async def release(self, native_id: str) -> None: ...

    def array_task_paths(
        self, parent_native_id: str, task: str, working_dir: Optional[str], parent_job_id: str
    ) -> tuple[Optional[str], Optional[str]]:
        """stdout/stderr of an array task, for schedulers whose status query does not say."""
        return None, None

    @abc.abstractmethod
    async def read_log(self, path: str, offset: int, limit: int) -> bytes:
        """Up to ``limit`` bytes of the file at ``path`` from ``offset``; b"" past its end.

        Raise FileNotFoundError when the file does not exist (yet)."""
