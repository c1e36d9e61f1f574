"""Reading Grid Engine's answers: which error texts mean "not answered", which request field a
qsub error is about, state letters, qstat's XML rows and task ranges, ``qacct -j``
records (times, CPU seconds, memory), ``qconf`` listings of queues and hosts, a job's scheduling
info, and Grid Engine's ``h:m:s`` durations."""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Optional

from ..errors import InvalidRequest
from ..states import JobState
from .cli import last_line


def sge_state(code: str) -> JobState:
    """One Grid Engine state-letter combination (``qw``, ``hqw``, ``Eqw``, ``dr``...)."""
    if "E" in code:
        return JobState.HELD  # error state: waits for the user to clear or delete it
    if "d" in code:
        return JobState.COMPLETING  # being deleted
    if "h" in code and ("q" in code or "w" in code):
        return JobState.HELD
    if any(c in code for c in "sST"):
        return JobState.SUSPENDED
    if "r" in code or "t" in code:
        return JobState.RUNNING
    if "q" in code or "w" in code:
        return JobState.QUEUED
    return JobState.UNKNOWN


def hms(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d}:00"


def parse_hms(value: str) -> Optional[int]:
    """``h_rt`` values: ``INFINITY``, ``3600`` (seconds) or ``1:00:00``."""
    value = value.strip()
    if not value or value.upper() == "INFINITY":
        return None
    parts = [int(p) for p in value.split(":")]
    seconds = parts[0] if len(parts) == 1 else sum(p * 60**i for i, p in enumerate(reversed(parts)))
    return math.ceil(seconds / 60)


def sge_seconds(value: str) -> Optional[int]:
    """``h_rt`` as seconds (``120``, ``0:2:0``); None for INFINITY."""
    value = value.strip()
    if not value or value.upper() == "INFINITY":
        return None
    try:
        parts = [int(p) for p in value.split(":")]
    except ValueError:
        return None
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def parse_qacct(text: str) -> list[dict[str, str]]:
    """qacct -j output: one dict per record (an array job has one per task)."""
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("====="):
            if current:
                records.append(current)
            current = {}
            continue
        key, _, value = line.partition(" ")
        if key:
            current[key] = value.strip()
    if current:
        records.append(current)
    return records


def qacct_seconds(value: str) -> Optional[float]:
    """qacct durations: ``6s``, ``3.762s`` (8.1.9) or a bare ``6`` / ``3.762`` (older)."""
    match = re.fullmatch(r"([\d.]+)\s*s?", value.strip())
    try:
        return float(match.group(1)) if match else None
    except ValueError:
        return None


def qacct_memory_mb(value: str) -> Optional[float]:
    """qacct memory (``maxvmem``): ``316.715MB``, ``1.703MB``, ``2.1GB``, ``0.000B`` (8.1.9;
    binary units: MB is MiB) or ``316.715M`` / a bare byte count (older)."""
    match = re.fullmatch(r"([\d.]+)\s*([KMGT]?)B?", value.strip())
    if not match:
        return None
    scale = {"": 1 / 2**20, "K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2}
    try:
        return float(match.group(1)) * scale[match.group(2)]
    except ValueError:
        return None


def request_memory_mb(value: str) -> Optional[float]:
    """A Grid Engine memory request (``200M``, ``1G``; ``k/m/g`` are powers of 1000, ``K/M/G``
    of 1024, a bare number is bytes) in MiB."""
    match = re.fullmatch(r"([\d.]+)([kKmMgGtT]?)", value.strip())
    if not match:
        return None
    number, unit = match.groups()
    base = 1000 if unit.islower() else 1024  # k/m/g: decimal, K/M/G: binary
    factor = base ** ("kmgt".index(unit.lower()) + 1) if unit else 1
    try:
        return float(number) * factor / 2**20
    except ValueError:
        return None


def category_requests(category: str) -> dict[str, str]:
    """The ``-l`` resource requests in a qacct ``category`` (``-l h_rt=120,h_vmem=200M -pe smp
    2``): {"h_rt": "120", "h_vmem": "200M"}."""
    words = category.split()
    requests: dict[str, str] = {}
    for flag, value in zip(words, words[1:]):
        if flag == "-l":
            for item in value.split(","):
                name, _, amount = item.partition("=")
                requests[name] = amount
    return requests


def qacct_time(value: str) -> Optional[datetime]:
    for fmt in ("%a %b %d %H:%M:%S %Y", "%m/%d/%Y %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(value.strip(), fmt).astimezone(timezone.utc)
        except ValueError:
            continue
    return None


def iso_time(value: Optional[str]) -> Optional[datetime]:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.strip()).astimezone(timezone.utc)
    except ValueError:
        return None


def expand_tasks(spec: str) -> list[str]:
    """``1-3:1`` or ``2`` or ``1,4`` (qstat's <tasks>) -> ["1", "2", "3"]."""
    out: list[str] = []
    for part in spec.split(","):
        match = re.match(r"^(\d+)(?:-(\d+)(?::(\d+))?)?$", part.strip())
        if not match:
            continue
        start = int(match.group(1))
        end = int(match.group(2) or start)
        step = int(match.group(3) or 1)
        out.extend(str(i) for i in range(start, end + 1, step))
    return out


def qconf_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line.startswith((" ", "\t")) and key:
            fields[key] += " " + line.strip().rstrip("\\").strip()
            continue
        key, _, value = line.partition(" ")
        fields[key] = value.strip().rstrip("\\").strip()
    return fields


def cluster_queue_usage(text: str) -> dict[str, tuple[int, int, int]]:
    """qstat -g c: queue -> (used, available, total) slots."""
    usage = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[0] not in ("CLUSTER", "") and not parts[0].startswith("-"):
            try:
                usage[parts[0]] = (int(parts[2]), int(parts[4]), int(parts[5]))
            except ValueError:
                continue
    return usage


def host_memory(text: str) -> dict[str, int]:
    """qhost: host -> memory in MiB."""
    hosts = {}
    for line in text.splitlines()[3:]:
        parts = line.split()
        if len(parts) >= 8 and parts[0] != "global":
            hosts[parts[0]] = _mem_mb(parts[7])
    return hosts


def _mem_mb(value: str) -> int:
    match = re.match(r"([\d.]+)([KMGT]?)", value)
    if not match:
        return 0
    scale = {"": 1 / 2**20, "K": 1 / 1024, "M": 1, "G": 1024, "T": 2**20}[match.group(2)]
    return int(float(match.group(1)) * scale)


def parse_scheduling_info(text: str) -> list[str]:
    """The lines of ``qstat -j``'s "scheduling info:" field (continued on indented lines)."""
    lines: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("scheduling info:"):
            inside = True
            line = line.split(":", 1)[1]
        elif inside and (not line[:1].isspace() or not line.strip()):
            break
        if inside and line.strip():
            lines.append(line.strip())
    # qstat glues its "Following jobs do not exist" notice on; it is not about this job.
    return [ln.split("Following jobs do not exist")[0].strip() for ln in lines if ln.strip()]


UNREACHABLE_MARKERS = (
    "unable to contact qmaster",
    "can't unpack",
    "commlib error",
    "unable to send message to qmaster",
    "error: failed receiving gdi request",
)


def qsub_error(message: str) -> InvalidRequest:
    text = last_line(message)
    lowered = text.lower()
    if "queue" in lowered:
        return InvalidRequest.for_field("resources.partition", f"Grid Engine refused: {text}")
    if "parallel environment" in lowered or "pe " in lowered:
        return InvalidRequest.for_field("resources.cpus_per_task", f"Grid Engine refused: {text}")
    if "hold_jid" in lowered or "job dependency" in lowered:
        return InvalidRequest.for_field("after", f"Grid Engine refused: {text}")
    return InvalidRequest.for_field("resources", f"Grid Engine refused: {text}")
