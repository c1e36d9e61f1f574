"""The real Grid Engine test cluster (dev/sge/up.sh), as a pytest fixture helper."""

from __future__ import annotations

from typing import Any

from .dev_cluster import start_dev_cluster, transport_entry


def start_sge() -> dict[str, Any]:
    return start_dev_cluster("sge", "Grid Engine")


def sge_cluster_entry(cluster_id: str, info: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": cluster_id,
        "kind": "sge",
        "env": {k: v for k, v in info["env"].items()},
        "poll_interval": 0.5,
        "default_queue": info["default_queue"],
    }
    entry["transport"] = transport_entry(cluster_id, info)
    return entry
