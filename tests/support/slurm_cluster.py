"""The real Slurm test cluster (dev/slurm/up.sh), as a pytest fixture."""

from __future__ import annotations

from typing import Any

from .dev_cluster import start_dev_cluster, transport_entry

# Finished jobs leave squeue after MinJobAge: short, so tests also exercise the history path.
MIN_JOB_AGE = "5"
SLURM_ENV = {"PWLAB_SLURM_MIN_JOB_AGE": MIN_JOB_AGE, "PWLAB_SLURM_SMOKE": "0"}


def start_slurm() -> dict[str, Any]:
    return start_dev_cluster("slurm", "Slurm", SLURM_ENV)


def slurm_cluster_entry(cluster_id: str, info: dict[str, Any]) -> dict[str, Any]:
    """Our cluster configuration for the test cluster, over local exec, SSH or slurmrestd."""
    if cluster_id.startswith("slurmrest"):
        rest = info["rest"]
        return {
            "id": cluster_id,
            "kind": "slurmrest",
            "url": rest["url"],
            "user": info["user"],
            # Minted by root on this machine; the transport also reads the job output.
            "token": {"command": rest["token_command"]},
            "env": rest["token_command_env"],
            "transport": {"type": "local"},
            "poll_interval": 0.5,
            "timeout": 30,
        }
    entry: dict[str, Any] = {
        "id": cluster_id,
        "kind": "slurm",
        "env": {"SLURM_CONF": info["slurm_conf"]},
        "poll_interval": 0.5,
        "command_timeout": 30,
    }
    entry["transport"] = transport_entry(cluster_id, info)
    return entry
