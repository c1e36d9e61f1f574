"""Pydantic models: the request and response shapes of the REST API and the backend protocol.

The JSON Schema of :class:`ResourceRequest` (narrowed per cluster by the backend) is what the
sidebar form and the notebook widgets are generated from.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from .guidance.models import PartitionLoad, Provenance, ReasonExplanation, Usage
from .states import JobState
from .textcheck import not_utf8_problem, shown

# Job ids are ours (hex); keeping them strict means a path segment can never smuggle anything.
JOB_ID_PATTERN = r"^[0-9a-f]{12}$"
CLUSTER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# Slurm-style array specs: "1-10", "1,3,5", "0-15:2", "1-100%10".
ARRAY_PATTERN = r"^\d+(-\d+(:\d+)?)?(,\d+(-\d+(:\d+)?)?)*(%\d+)?$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# Partition, account and QOS names: what schedulers accept, and nothing a shell or an option
# parser could read as more than a word.
SCHEDULER_NAME_PATTERN = r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*$"
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")

MAX_SCRIPT_BYTES = 1_000_000
# All of env as NAME=VALUE bytes. One exec() string may be at most 128 KiB on Linux, and a job
# whose environment the OS refuses could not start at all: refuse it here instead.
MAX_ENV_BYTES = 100_000


class StrictModel(BaseModel):
    """A request model: unknown fields are refused, and so is text no scheduler could take."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _text_is_utf8(cls, value: Any) -> Any:
        # Every string a request carries ends up in a file, an environment or a command line,
        # all of which need bytes: a lone surrogate ("\ud800", valid JSON) cannot be encoded.
        # Checking every field of every request model here makes that class of input impossible
        # rather than patching the one field where it was found.
        problem = not_utf8_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class ResourceRequest(StrictModel):
    """What the user asks the scheduler for. Backends check it against partition limits."""

    # Numbers are strict: JSON integers only (true is not 1, "3" is not 3, 3.0 is not 3).

    partition: Optional[str] = Field(
        default=None,
        max_length=64,
        pattern=SCHEDULER_NAME_PATTERN,
        description="Partition (queue); the cluster's default when omitted.",
    )
    nodes: StrictInt = Field(default=1, ge=1, le=100_000, description="Number of nodes.")
    ntasks: StrictInt = Field(default=1, ge=1, le=1_000_000, description="Number of tasks.")
    cpus_per_task: StrictInt = Field(default=1, ge=1, le=4096, description="CPUs per task.")
    gpus: StrictInt = Field(default=0, ge=0, le=1024, description="GPUs (total for the job).")
    memory_mb: Optional[StrictInt] = Field(
        default=None, ge=1, le=1 << 40, description="Memory per node in MiB."
    )
    time_limit_minutes: Optional[StrictInt] = Field(
        default=None, ge=1, le=525_600, description="Walltime limit in minutes."
    )
    array: Optional[str] = Field(
        default=None,
        max_length=256,
        pattern=ARRAY_PATTERN,
        description="Array index spec, e.g. 1-10 or 1,3,5 or 1-100%10.",
    )
    account: Optional[str] = Field(
        default=None,
        max_length=64,
        pattern=SCHEDULER_NAME_PATTERN,
        description="Account (project) the job is charged to; the scheduler's default when "
        "omitted.",
    )
    qos: Optional[str] = Field(
        default=None,
        max_length=64,
        pattern=SCHEDULER_NAME_PATTERN,
        description="Quality of service; the scheduler's default when omitted.",
    )

    @property
    def cpus(self) -> int:
        return self.ntasks * self.cpus_per_task


class JobSource(StrictModel):
    """Where a submission came from (the frontends say; the server adds git, modules, user)."""

    notebook_path: Optional[str] = Field(default=None, max_length=4096)
    cell_id: Optional[str] = Field(default=None, max_length=256)

    @field_validator("notebook_path", "cell_id")
    @classmethod
    def _one_line(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and _CONTROL_CHARS.search(value):
            raise ValueError("must not contain control characters")
        return value


class JobSubmit(StrictModel):
    """The body of ``POST /jobs``."""

    cluster: str = Field(pattern=CLUSTER_ID_PATTERN)
    script: Optional[str] = Field(default=None, description="A batch script (bash).")
    command: Optional[str] = Field(default=None, description="A command line run by bash.")
    name: Optional[str] = Field(default=None, min_length=1, max_length=128)
    resources: ResourceRequest = Field(default_factory=ResourceRequest)
    working_dir: Optional[str] = Field(default=None, min_length=1, max_length=4096)
    env: dict[str, str] = Field(default_factory=dict)
    after: list[str] = Field(
        default_factory=list, description="Job ids that must complete successfully first."
    )
    source: Optional[JobSource] = Field(
        default=None, description="Where the submission came from (notebook and cell)."
    )
    redacted_env: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="In `GET /jobs/{id}/submission`: secret-named env variables (*TOKEN*, "
        "*SECRET*, *PASSWORD*, *KEY*) whose values are not kept after submission, blank in "
        "`env`. Sent back with a name still blank, the submission is refused: re-enter it.",
    )

    @field_validator("script", "command")
    @classmethod
    def _not_too_big(cls, value: Optional[str]) -> Optional[str]:
        if value is not None:
            if not value.strip():
                raise ValueError("must not be empty")
            if len(value.encode()) > MAX_SCRIPT_BYTES:
                raise ValueError(f"is larger than {MAX_SCRIPT_BYTES} bytes")
            if "\x00" in value:
                raise ValueError("must not contain NUL characters")
        return value

    @field_validator("name")
    @classmethod
    def _name_is_one_line(cls, value: Optional[str]) -> Optional[str]:
        if value is not None:
            if _CONTROL_CHARS.search(value):
                raise ValueError("must be one line without control characters")
            if value.startswith("-"):
                raise ValueError("must not start with '-'")
        return value

    @field_validator("working_dir")
    @classmethod
    def _workdir_is_a_path(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and _CONTROL_CHARS.search(value):
            raise ValueError("must not contain control characters")
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key, val in value.items():
            if not re.match(ENV_NAME_PATTERN, key):
                raise ValueError(f"'{shown(key)}' is not a valid environment variable name")
            if "\x00" in val:
                raise ValueError(f"value of '{key}' must not contain NUL characters")
        size = sum(len(k.encode()) + len(v.encode()) + 2 for k, v in value.items())
        if size > MAX_ENV_BYTES:
            raise ValueError(f"is larger than {MAX_ENV_BYTES} bytes (as NAME=VALUE lines)")
        return value

    @field_validator("after")
    @classmethod
    def _after_ids(cls, value: list[str]) -> list[str]:
        for job_id in value:
            if not re.match(JOB_ID_PATTERN, job_id):
                raise ValueError(f"'{shown(job_id)}' is not a job id")
        return value

    @model_validator(mode="after")
    def _script_or_command(self) -> JobSubmit:
        if (self.script is None) == (self.command is None):
            raise ValueError("give exactly one of 'script' or 'command'")
        return self

    def batch_script(self) -> str:
        """The script to run; one without a ``#!`` line runs with bash (sbatch demands one)."""
        if self.script is not None:
            return self.script if self.script.startswith("#!") else f"#!/bin/bash\n{self.script}"
        assert self.command is not None
        return f"#!/bin/bash\n{self.command}\n"


class Job(BaseModel):
    """A job as the API shows it."""

    id: str
    cluster: str
    native_id: Optional[str] = None
    name: str
    state: JobState
    raw_state: Optional[str] = None
    reason: Optional[str] = None
    exit_code: Optional[int] = None
    terminal: bool = False
    submitted_at: datetime
    started_at: Optional[datetime] = None
    ended_at: Optional[datetime] = None
    updated_at: datetime
    resources: ResourceRequest
    working_dir: Optional[str] = None
    stdout_path: Optional[str] = None
    stderr_path: Optional[str] = None
    parent_id: Optional[str] = Field(
        default=None, description="For an array task: the id of its array job."
    )
    array_task: Optional[str] = Field(default=None, description="The array task index.")
    reason_explained: Optional[ReasonExplanation] = Field(
        default=None, description="The reason in plain words, with what the user can do."
    )
    estimated_start: Optional[datetime] = Field(
        default=None, description="When the scheduler expects a queued job to start."
    )
    partition_load: Optional[PartitionLoad] = Field(
        default=None, description="How busy the partition is (GET /jobs/{id}, queued jobs)."
    )
    usage: Optional[Usage] = Field(
        default=None, description="What a finished job used, beside what it asked for."
    )
    provenance: Optional[Provenance] = None


class JobList(BaseModel):
    jobs: list[Job]
    next_cursor: Optional[str] = None


class LogChunk(BaseModel):
    data: str
    offset: int
    eof: bool


class ClusterSummary(BaseModel):
    id: str
    name: str
    kind: str
    status: str = Field(
        description="ok, unreachable, auth_rejected (credentials refused), rate_limited (the "
        "scheduler refuses calls for a while: the extension slows down) or error; clusters "
        "from a provider (ACTIVATE) also off, starting, stopping and degraded (no SSH)"
    )
    status_message: Optional[str] = None
    description: str = ""
    outputs_readable_by: str = Field(
        default="only you",
        description="Who can read the output files of jobs submitted here (from the cluster's "
        "output_umask): 'only you', 'you and your group' or 'every account on the machine'.",
    )
    output_umask: str = Field(default="077", description="The umask jobs are submitted with.")
    python: str = Field(
        default="python3", description="Interpreter that runs Python cells/notebooks as jobs."
    )


class Partition(BaseModel):
    name: str
    default: bool = False
    max_time_minutes: Optional[int] = None
    max_nodes: Optional[int] = None
    nodes_total: int = 0
    nodes_idle: int = 0
    cpus_per_node: int = 0
    cpus_idle: Optional[int] = None
    memory_mb_per_node: int = 0
    gpus_per_node: int = 0
    gpu_types: list[str] = Field(default_factory=list)
    state: str = "up"
    accounts: list[str] = Field(
        default_factory=list, description="Accounts allowed on this partition; empty: any."
    )
    deny_accounts: list[str] = Field(
        default_factory=list, description="Accounts refused on this partition."
    )
    qos: list[str] = Field(
        default_factory=list, description="QOS allowed on this partition; empty: any."
    )
    deny_qos: list[str] = Field(default_factory=list, description="QOS refused on this partition.")


class ClusterDetail(ClusterSummary):
    partitions: list[Partition]
    options_schema: dict[str, Any]
    polls: int = Field(default=0, description="Batched status queries made since start.")
    scheduler_commands: int = Field(
        default=0, description="Scheduler commands run since start (all kinds)."
    )


class ClusterList(BaseModel):
    clusters: list[ClusterSummary]


class ErrorItem(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    message: str
    errors: list[ErrorItem] = Field(default_factory=list)
