"""The real Grid Engine test cluster (dev/sge/up.sh), as a pytest fixture helper."""

from __future__ import annotations

from typing import Any

from .dev_cluster import start_dev_cluster


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
    if cluster_id.endswith("ssh"):
        ssh = info["ssh"]
        entry["transport"] = {
            "type": "ssh",
            "host": ssh["host"],
            "port": ssh["port"],
            "username": ssh["username"],
            "key_file": ssh["key_file"],
            "known_hosts": ssh["known_hosts"],
        }
    else:
        entry["transport"] = {"type": "local"}
    return entry
