"""Partition limits: checking a ResourceRequest against them, and the per-cluster form schema.

Both the server-side check and the JSON Schema the forms use come from the same partition data,
so the form never offers what the server would refuse.
"""

from __future__ import annotations

from typing import Any, Optional

from .errors import FieldError, InvalidRequest
from .models import Partition, ResourceRequest


def pick_partition(resources: ResourceRequest, partitions: list[Partition]) -> Partition:
    """The partition the request targets (the default one when none is named)."""
    names = ", ".join(p.name for p in partitions) or "none"
    if resources.partition is None:
        for partition in partitions:
            if partition.default:
                return partition
        if partitions:
            return partitions[0]
        raise InvalidRequest.for_field("resources.partition", "the cluster has no partitions")
    for partition in partitions:
        if partition.name == resources.partition:
            return partition
    raise InvalidRequest.for_field(
        "resources.partition",
        f"unknown partition '{resources.partition}'; available: {names}",
    )


def check_limits(resources: ResourceRequest, partition: Partition) -> list[FieldError]:
    """Every way the request exceeds what the partition can give, one error per field."""
    errors: list[FieldError] = []
    where = f"partition '{partition.name}'"

    def over(field: str, value: int, limit: int, what: str) -> None:
        errors.append(
            FieldError(
                f"resources.{field}", f"{value} exceeds the limit of {limit} {what} on {where}"
            )
        )

    max_nodes = partition.max_nodes or partition.nodes_total or None
    if max_nodes is not None and resources.nodes > max_nodes:
        over("nodes", resources.nodes, max_nodes, "nodes")
    if partition.cpus_per_node and resources.cpus_per_task > partition.cpus_per_node:
        over("cpus_per_task", resources.cpus_per_task, partition.cpus_per_node, "CPUs per node")
    if partition.cpus_per_node:
        total = resources.nodes * partition.cpus_per_node
        if resources.cpus > total:
            errors.append(
                FieldError(
                    "resources.ntasks",
                    f"{resources.ntasks} tasks x {resources.cpus_per_task} CPUs = {resources.cpus} "
                    f"CPUs exceeds the {total} CPUs of {resources.nodes} node(s) on {where}",
                )
            )
    if resources.gpus:
        if partition.gpus_per_node == 0:
            errors.append(FieldError("resources.gpus", f"{where} has no GPUs"))
        elif resources.gpus > partition.gpus_per_node * resources.nodes:
            over("gpus", resources.gpus, partition.gpus_per_node * resources.nodes, "GPUs")
    if (
        resources.memory_mb is not None
        and partition.memory_mb_per_node
        and resources.memory_mb > partition.memory_mb_per_node
    ):
        over("memory_mb", resources.memory_mb, partition.memory_mb_per_node, "MiB per node")
    if (
        resources.time_limit_minutes is not None
        and partition.max_time_minutes is not None
        and resources.time_limit_minutes > partition.max_time_minutes
    ):
        over(
            "time_limit_minutes",
            resources.time_limit_minutes,
            partition.max_time_minutes,
            "minutes",
        )
    for field, what, allow, deny in (
        ("account", "account", partition.accounts, partition.deny_accounts),
        ("qos", "QOS", partition.qos, partition.deny_qos),
    ):
        problem = _check_name(getattr(resources, field), what, allow, deny, where)
        if problem:
            errors.append(FieldError(f"resources.{field}", problem))
    return errors


def _check_name(
    value: Optional[str], what: str, allow: list[str], deny: list[str], where: str
) -> Optional[str]:
    """An account or QOS against a partition's allow/deny lists. An omitted one is left to the
    scheduler: it knows the user's default, we do not."""
    if value is None:
        return None
    if value in deny:
        return f"{what} '{value}' is denied on {where}"
    if allow and value not in allow:
        return f"{what} '{value}' cannot be used on {where}; allowed: {', '.join(allow)}"
    return None


def _partition_bounds(partition: Partition) -> dict[str, Any]:
    props: dict[str, Any] = {}
    max_nodes = partition.max_nodes or partition.nodes_total or None
    if max_nodes:
        props["nodes"] = {"maximum": max_nodes}
    if partition.cpus_per_node:
        props["cpus_per_task"] = {"maximum": partition.cpus_per_node}
        props["ntasks"] = {"maximum": partition.cpus_per_node * (max_nodes or 1)}
    props["gpus"] = {"maximum": partition.gpus_per_node * (max_nodes or 1)}
    if partition.memory_mb_per_node:
        props["memory_mb"] = {"maximum": partition.memory_mb_per_node}
    if partition.max_time_minutes is not None:
        props["time_limit_minutes"] = {"maximum": partition.max_time_minutes}
    # Only allow-lists become choices; a deny list is checked by the server.
    accounts = [a for a in partition.accounts if a not in partition.deny_accounts]
    if accounts:
        props["account"] = {"enum": [*accounts, None]}
    qos = [q for q in partition.qos if q not in partition.deny_qos]
    if qos:
        props["qos"] = {"enum": [*qos, None]}
    return props


def options_schema(
    partitions: list[Partition], unsupported_fields: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """JSON Schema for a ResourceRequest on this cluster.

    The partition is an enum; each partition's limits are an ``if``/``then`` branch so any JSON
    Schema validator (the forms, the widgets) enforces the same limits as :func:`check_limits`.
    """
    schema = ResourceRequest.model_json_schema()
    props: dict[str, Any] = schema["properties"]
    for name in unsupported_fields:
        props.pop(name, None)
    default: Optional[Partition] = next((p for p in partitions if p.default), None)
    if default is None and partitions:
        default = partitions[0]
    props["partition"] = {
        "title": "Partition",
        "type": "string",
        "enum": [p.name for p in partitions],
        "default": default.name if default else None,
        "description": props.get("partition", {}).get("description", ""),
    }
    branches = []
    for partition in partitions:
        bounds = _partition_bounds(partition)
        for name in unsupported_fields:
            bounds.pop(name, None)
        branches.append(
            {
                "if": {
                    "properties": {"partition": {"const": partition.name}},
                    **({"required": ["partition"]} if partition is not default else {}),
                },
                "then": {"properties": bounds},
            }
        )
    if branches:
        schema["allOf"] = branches
    schema["additionalProperties"] = False
    schema["x-partitions"] = [p.model_dump() for p in partitions]
    return schema
