"""The Slurm REST API in neutral terms, whatever the version: what we submit
(:class:`JobDescription`), what we read (:class:`JobRecord`, :class:`PartitionRecord`,
:class:`NodeRecord`, errors, warnings), and tolerant readers of the values every version spells
a little differently (numbers, times, exit codes, lists), and which request field an error is
about. The adapters in
:mod:`.slurmrest_versions` translate between these and each version's documents."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from .slurm_common import SBATCH_ERROR_FIELDS

# Numbers Slurm uses for "unset" / "infinite" in the flat (v0.0.38) encoding.
_NO_VAL_FLOOR = 0xFFFFFFFE
# Job state flags, in the order squeue shows them in place of the base state.
STATE_FLAGS = (
    "COMPLETING",
    "STAGE_OUT",
    "CONFIGURING",
    "RESIZING",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
    "REQUEUED",
    "SPECIAL_EXIT",
    "STOPPED",
    "REVOKED",
    "RESV_DEL_HOLD",
    "SIGNALING",
)


@dataclass
class JobDescription:
    """A job, built by the backend from validated fields only."""

    name: str
    script: str
    working_dir: str
    stdout: str
    stderr: str
    comment: str
    environment: dict[str, str]
    partition: Optional[str] = None
    nodes: int = 1
    ntasks: int = 1
    cpus_per_task: int = 1
    gpus: int = 0
    memory_mb: Optional[int] = None
    time_limit_minutes: Optional[int] = None
    array: Optional[str] = None
    dependency: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None


@dataclass
class JobRecord:
    """One record of ``GET /jobs``: a job, an array task, or an array's still-pending tasks."""

    job_id: int
    states: list[str]
    user_name: str = ""
    array_job_id: Optional[int] = None
    array_task_id: Optional[int] = None
    #: Pending tasks this record stands for (``"2-5"``); empty for a single job or task.
    array_task_string: str = ""
    reason: Optional[str] = None
    exit_code: Optional[int] = None
    submit_time: Optional[int] = None
    start_time: Optional[int] = None
    end_time: Optional[int] = None
    comment: str = ""
    stdout: Optional[str] = None
    stderr: Optional[str] = None
    #: True when ``stdout``/``stderr`` already have their ``%`` patterns filled in.
    paths_expanded: bool = False
    working_dir: Optional[str] = None

    @property
    def raw_state(self) -> str:
        return ",".join(self.states)

    @property
    def effective_state(self) -> str:
        """The one word squeue would show: a flag such as COMPLETING wins over the base state."""
        for flag in STATE_FLAGS:
            if flag in self.states:
                return flag
        return self.states[0] if self.states else "UNKNOWN"


@dataclass
class PartitionRecord:
    name: str
    #: None when this API version does not say which partition is the default.
    default: Optional[bool] = None
    max_time_minutes: Optional[int] = None
    max_nodes: Optional[int] = None
    state: str = "up"
    #: Allow/deny lists as Slurm writes them ("physics,chem"; empty or "ALL": anyone).
    accounts: str = ""
    deny_accounts: str = ""
    qos: str = ""
    deny_qos: str = ""


@dataclass
class NodeRecord:
    name: str
    partitions: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    cpus: int = 0
    cpus_idle: int = 0
    memory_mb: int = 0
    gres: str = ""

    @property
    def usable(self) -> bool:
        bad = {"DOWN", "DRAIN", "DRAINED", "DRAINING", "FAIL", "FAILING", "MAINTENANCE"}
        bad |= {"NOT_RESPONDING", "POWERED_DOWN", "POWERING_DOWN", "INVALID", "FUTURE"}
        return not bad.intersection(self.states)

    @property
    def idle(self) -> bool:
        return "IDLE" in self.states and self.usable


@dataclass
class ApiError:
    number: Optional[int]
    text: str
    description: str = ""
    source: str = ""

    def __str__(self) -> str:
        parts = [self.text or "error"]
        if self.description and self.description != self.text:
            parts.append(f"({self.description})")
        return " ".join(parts)


@dataclass
class JobsAnswer:
    records: list[JobRecord]
    #: The scheduler had no change since the ``update_time`` asked for: ``records`` is empty.
    unchanged: bool = False
    #: The scheduler's time of this data (newer versions), for the next ``update_time``.
    last_update: Optional[int] = None


# -- tolerant readers --------------------------------------------------------------------------


def read_number(value: Any) -> Optional[int]:
    """An integer from ``5``, ``"5"`` or ``{"set": true, "infinite": false, "number": 5}``.

    None for unset, infinite, and the flat encoding's NO_VAL / INFINITE / negative sentinels."""
    if isinstance(value, dict):
        if not value.get("set", True) or value.get("infinite", False):
            return None
        value = value.get("number")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value.lstrip("-").isdigit():
            return None
        value = int(value)
    if isinstance(value, float):
        value = int(value)
    if not isinstance(value, int) or value < 0 or value >= _NO_VAL_FLOOR:
        return None
    return value


def read_time(value: Any) -> Optional[int]:
    """A UNIX timestamp; 0 (Slurm's "not yet") is None."""
    number = read_number(value)
    return number if number else None


def read_text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def read_list(value: Any) -> list[str]:
    """A list of strings from a list or a comma-separated string."""
    if isinstance(value, list):
        return [str(v) for v in value if str(v)]
    if isinstance(value, str) and value:
        return [v for v in value.split(",") if v]
    return []


def read_reason(value: Any) -> Optional[str]:
    text = read_text(value)
    return None if text in ("", "None", "(null)") else text


def exit_code_from_wait_status(status: int) -> int:
    """A raw wait status (v0.0.38's ``exit_code``): exit 3 is 768, a signal n is 128+n."""
    signal = status & 0x7F
    return 128 + signal if signal else (status >> 8) & 0xFF


def read_exit_code(value: Any) -> Optional[int]:
    """Exit code as a shell shows it, from a raw wait status or a verbose exit-code object."""
    if isinstance(value, dict):
        signal = read_number((value.get("signal") or {}).get("id"))
        status = [str(s).upper() for s in read_list(value.get("status"))]
        if signal and ("SIGNALED" in status or not status):
            return 128 + signal
        if "PENDING" in status or "INVALID" in status:
            return None
        return read_number(value.get("return_code"))
    number = read_number(value)
    return None if number is None else exit_code_from_wait_status(number)


def read_errors(body: Any) -> list[ApiError]:
    """The ``errors`` list, whichever keys this version uses for the number."""
    items = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return []
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        number = None
        for key in ("error_number", "error_code", "errno"):
            if isinstance(item.get(key), int):
                number = item[key]
                break
        out.append(
            ApiError(
                number=number,
                text=read_text(item.get("error")),
                description=read_text(item.get("description")),
                source=read_text(item.get("source")),
            )
        )
    return out


def read_warnings(body: Any) -> list[str]:
    items = body.get("warnings") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return []
    return [read_text(w.get("description")) for w in items if isinstance(w, dict)]


def expand_array_spec(spec: str, limit: int = 100_000) -> list[int]:
    """Task ids of ``"1-3,7,10-20:5%2"`` -> ``[1, 2, 3, 7, 10, 15, 20]``."""
    spec = spec.split("%", 1)[0].strip()
    ids: list[int] = []
    for part in spec.split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part.strip())
        if not match:
            continue
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        step = int(match.group(3)) if match.group(3) else 1
        ids.extend(range(first, last + 1, max(step, 1)))
        if len(ids) > limit:
            break
    return ids[:limit]


# Request keys (in slurmrestd's "Unable to process key" errors) -> our field names.
KEY_FIELDS = {
    "partition": "resources.partition",
    "nodes": "resources.nodes",
    "minimum_nodes": "resources.nodes",
    "maximum_nodes": "resources.nodes",
    "tasks": "resources.ntasks",
    "cpus_per_task": "resources.cpus_per_task",
    "memory_per_node": "resources.memory_mb",
    "time_limit": "resources.time_limit_minutes",
    "gpus": "resources.gpus",
    "tres_per_job": "resources.gpus",
    "array": "resources.array",
    "dependency": "after",
    "current_working_directory": "working_dir",
    "environment": "env",
    "name": "name",
}


def field_of(error: ApiError) -> Optional[str]:
    """The request field a Slurm error is about, if we can tell."""
    text = f"{error.text} {error.description}"
    key = re.search(r'key "([^"]+)"', text)
    if key and key.group(1) in KEY_FIELDS:
        return KEY_FIELDS[key.group(1)]
    if error.number == 2000:  # ESLURM_INVALID_PARTITION_NAME
        return "resources.partition"
    lowered = text.lower()
    for marker, field_name in SBATCH_ERROR_FIELDS:
        if marker in lowered:
            return field_name
    return None
