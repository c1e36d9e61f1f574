"""Slurm partitions as we report them: node tallies from ``sinfo``/REST node lists, durations,
GPUs in gres strings, and who may use a partition (accounts, QOS) from ``scontrol``'s lists.
Shared by the Slurm CLI, slurmrestd and ACTIVATE backends."""

from __future__ import annotations

from typing import Any, Optional

SINFO_FIELDS = ["%P", "%N", "%c", "%m", "%G", "%t", "%l", "%s", "%a", "%C"]


def parse_minutes(value: str) -> Optional[int]:
    """Slurm durations (``30:00``, ``1:00:00``, ``2-00:00:00``, ``90``) in minutes."""
    value = value.strip()
    if not value or value.lower() in ("infinite", "unlimited", "n/a"):
        return None
    days = 0
    if "-" in value:
        day_part, value = value.split("-", 1)
        days = int(day_part)
    parts = [int(p) for p in value.split(":")] if value else [0]
    if len(parts) == 1:
        minutes = parts[0] if days == 0 else parts[0] * 60  # "D-HH" means hours
        seconds = 0
    elif len(parts) == 2:
        minutes, seconds = (parts[0], parts[1]) if days == 0 else (parts[0] * 60 + parts[1], 0)
    else:
        minutes, seconds = parts[0] * 60 + parts[1], parts[2]
    return days * 1440 + minutes + (1 if seconds else 0)


def parse_gpus(gres: str) -> tuple[int, list[str]]:
    """``gpu:tesla:2(S:0),shard:4`` -> (2, ["tesla"])."""
    count, types = 0, []
    for item in gres.split(","):
        item = item.split("(", 1)[0]
        fields = item.split(":")
        if fields[0] != "gpu":
            continue
        if fields[-1].isdigit():
            count += int(fields[-1])
        if len(fields) == 3:
            types.append(fields[1])
    return count, types


def new_partition(
    name: str,
    default: bool,
    max_time_minutes: Optional[int],
    max_nodes: Optional[int],
    state: str,
) -> dict[str, Any]:
    """An empty partition tally; :func:`count_node` adds each of its nodes."""
    return {
        "name": name,
        "default": default,
        "max_time_minutes": max_time_minutes,
        "max_nodes": max_nodes,
        "nodes_total": 0,
        "nodes_idle": 0,
        "cpus_per_node": 0,
        "cpus_idle": 0,
        "memory_mb_per_node": 0,
        "gpus_per_node": 0,
        "gpu_types": [],
        "state": state,
    }


def count_node(
    part: dict[str, Any],
    *,
    idle: bool,
    cpus: int,
    cpus_idle: int,
    memory_mb: int,
    gres: str,
) -> None:
    """Add one node to a partition tally (sizes are the largest node's: what a job can get)."""
    gpus, gpu_types = parse_gpus(gres)
    part["nodes_total"] += 1
    part["nodes_idle"] += int(idle)
    part["cpus_idle"] += cpus_idle
    part["cpus_per_node"] = max(part["cpus_per_node"], cpus)
    part["memory_mb_per_node"] = max(part["memory_mb_per_node"], memory_mb)
    part["gpus_per_node"] = max(part["gpus_per_node"], gpus)
    part["gpu_types"] = sorted(set(part["gpu_types"]) | set(gpu_types))


def scontrol_fields(line: str) -> dict[str, str]:
    """``Key=Value Key2=Value2`` of one ``scontrol --oneliner`` line (values have no spaces for
    the keys we read)."""
    fields = {}
    for word in line.split():
        key, sep, value = word.partition("=")
        if sep:
            fields[key] = value
    return fields


def parse_partition_access(listing: str) -> dict[str, dict[str, list[str]]]:
    """Per partition, its account/QOS lists from ``scontrol show partition --oneliner``."""
    return {
        fields["PartitionName"]: partition_access(
            fields.get("AllowAccounts", ""),
            fields.get("DenyAccounts", ""),
            fields.get("AllowQos", ""),
            fields.get("DenyQos", ""),
        )
        for fields in map(scontrol_fields, listing.splitlines())
        if "PartitionName" in fields
    }


def partition_access(
    allow_accounts: str, deny_accounts: str, allow_qos: str, deny_qos: str
) -> dict[str, list[str]]:
    """A partition's account/QOS fields from Slurm's comma-separated lists."""
    return {
        "accounts": name_list(allow_accounts),
        "deny_accounts": name_list(deny_accounts),
        "qos": name_list(allow_qos),
        "deny_qos": name_list(deny_qos),
    }


def usable(allowed: list[str], denied: list[str], mine: list[str]) -> list[str]:
    """What a user may choose on a partition: their own names that the partition allows. When
    none of theirs is allowed, the partition's list stands (Slurm will say why it refuses)."""
    if not mine:
        return allowed
    choices = [name for name in (allowed or mine) if name in mine and name not in denied]
    return choices or allowed


def name_list(value: str) -> list[str]:
    """Slurm's comma-separated AllowAccounts-style list; ``ALL`` or nothing: no restriction."""
    if value.upper() in ("ALL", "", "(NULL)", "N/A"):
        return []
    return [name for name in value.split(",") if name]


def max_nodes(size: str) -> Optional[int]:
    upper = size.split("-")[-1]
    return int(upper) if upper.isdigit() else None
