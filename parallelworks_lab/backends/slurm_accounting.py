"""What a finished Slurm job used, read from ``sacct``: the fields we ask for, CPU time, memory
and TRES strings, and one ``UsageRecord`` from a job's allocation and step rows."""

from __future__ import annotations

import re
from typing import Optional

from ..states import TERMINAL_STATES
from .base import UsageRecord
from .slurm_states import normalize

# sacct fields for a finished job's usage. Without -X: MaxRSS is only on the step rows.
SACCT_USAGE_FIELDS = [
    "JobID",
    "ElapsedRaw",
    "TotalCPU",
    "MaxRSS",
    "ReqMem",
    "AllocCPUS",
    "TimelimitRaw",
    "AllocTRES",
    "State",
]


# The history query: final state and usage in one command (the first five as with -X before).
SACCT_HISTORY_FIELDS = ["JobID", "State", "ExitCode", "Start", "End", *SACCT_USAGE_FIELDS[1:-1]]


def parse_cpu_time(value: str) -> Optional[float]:
    """sacct's TotalCPU (``MM:SS.mmm``, ``HH:MM:SS``, ``D-HH:MM:SS``) in seconds."""
    value = value.strip()
    if not value:
        return None
    days = 0
    try:
        if "-" in value:
            day_part, value = value.split("-", 1)
            days = int(day_part)
        seconds = 0.0
        for part in value.split(":"):
            seconds = seconds * 60 + float(part)
    except ValueError:
        return None
    return days * 86400 + seconds


MEMORY_UNITS_MB = {"K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2, "P": 1024.0**3}


def parse_memory_mb(value: str, bare_unit_mb: float) -> tuple[Optional[float], str]:
    """sacct memory (``323836K``, ``500M``, ``2G``; older Slurm ``4000Mc``/``4000Mn``) in MiB
    and its scope: "" (the whole job), "c" (per CPU) or "n" (per node). A number without a
    unit is in ``bare_unit_mb`` MiB (bytes for MaxRSS, MiB for ReqMem)."""
    match = re.fullmatch(r"([\d.]+)([KMGTP]?)([nc]?)", value.strip())
    if not match:
        return None, ""
    number, unit, scope = match.groups()
    scale = MEMORY_UNITS_MB[unit] if unit else bare_unit_mb
    try:
        return float(number) * scale, scope
    except ValueError:
        return None, ""


def tres_count(tres: str, name: str) -> Optional[int]:
    """``billing=2,cpu=2,gres/gpu=1,node=1`` -> the count of ``name`` (None: not listed).
    For ``gres/gpu`` the untyped total wins over typed entries (``gres/gpu:tesla=1``)."""
    total: Optional[int] = None
    typed = 0
    for item in tres.split(","):
        key, _, count = item.partition("=")
        if not count.isdigit():
            continue
        if key == name:
            total = int(count)
        elif key.startswith(f"{name}:"):
            typed += int(count)
    if total is None and typed:
        return typed
    return total


def sacct_jobs(
    listing: str, fields: list[str], native_ids: list[str]
) -> dict[str, tuple[dict[str, str], list[dict[str, str]]]]:
    """``sacct -P`` rows (steps included) grouped per asked job: (allocation row, step rows).
    An array parent asked as ``123`` gets no entry here: its tasks come as ``123_4``."""
    wanted = set(native_ids)
    jobs: dict[str, tuple[dict[str, str], list[dict[str, str]]]] = {}
    steps: dict[str, list[dict[str, str]]] = {}
    for line in listing.splitlines():
        values = line.split("|")
        if len(values) < len(fields):
            continue
        row = dict(zip(fields, values))
        job, dot, _step = row["JobID"].partition(".")
        if job not in wanted:
            continue
        if dot:
            steps.setdefault(job, []).append(row)
        else:
            jobs[job] = (row, [])
    for job, (row, _) in list(jobs.items()):
        jobs[job] = (row, steps.get(job, []))
    return jobs


def usage_record(allocation: dict[str, str], steps: list[dict[str, str]]) -> Optional[UsageRecord]:
    """What a finished job used, from its sacct allocation row and step rows; None while it (or
    one of its steps) still runs, or when sacct's record cannot be read."""
    if normalize(allocation["State"]) not in TERMINAL_STATES:
        return None
    if any(normalize(step["State"]) not in TERMINAL_STATES for step in steps):
        return None  # a step not yet recorded as ended: its MaxRSS may still grow
    tres = allocation.get("AllocTRES", "")
    cpus = int(allocation["AllocCPUS"]) if allocation.get("AllocCPUS", "").isdigit() else None
    nodes = tres_count(tres, "node") or 1
    requested, scope = parse_memory_mb(allocation.get("ReqMem", ""), 1.0)
    if requested is not None and scope == "c":
        requested *= cpus or 1
    elif requested is not None and scope == "n":
        requested *= nodes
    peaks = [parse_memory_mb(step.get("MaxRSS", ""), 1 / 2**20)[0] for step in steps]
    measured = [peak for peak in peaks if peak is not None]
    elapsed = allocation.get("ElapsedRaw", "")
    limit = allocation.get("TimelimitRaw", "")
    return UsageRecord(
        source="sacct",
        elapsed_seconds=int(elapsed) if elapsed.isdigit() else None,
        cpu_seconds=parse_cpu_time(allocation.get("TotalCPU", "")),
        max_memory_mb=round(max(measured), 1) if measured else None,
        cpus=cpus,
        requested_memory_mb=requested or None,
        time_limit_seconds=int(limit) * 60 if limit.isdigit() else None,
        # None when the accounting does not track gres/gpu (AccountingStorageTRES): not 0.
        gpus=tres_count(tres, "gres/gpu"),
    )
