"""Start one of the repo's real test clusters (dev/<name>/up.sh) for the tests."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def start_dev_cluster(name: str, title: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run dev/<name>/up.sh (idempotent) and return its cluster.json.

    A machine that cannot run it (exit 77: not root, not Debian) skips the tests with the reason;
    under CI=true, or on any other failure, the tests fail instead of silently not running.
    """
    result = subprocess.run(
        ["bash", str(REPO / "dev" / name / "up.sh")],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        why = (result.stderr or result.stdout).strip().splitlines()[-5:]
        message = (
            f"the {title} test cluster could not be started (exit {result.returncode}): "
            + " | ".join(why)
            + f" -- run `make {name}-up` as root on Debian to run these tests"
        )
        if result.returncode == 77 and os.environ.get("CI") != "true":
            pytest.skip(message)
        pytest.fail(message)
    path = Path(result.stdout.strip().splitlines()[-1])
    info: dict[str, Any] = json.loads(path.read_text())
    return info


def transport_entry(cluster_id: str, info: dict[str, Any]) -> dict[str, Any]:
    """Our transport settings for a test cluster: its SSH login node for ids ending in "ssh"."""
    if not cluster_id.endswith("ssh"):
        return {"type": "local"}
    ssh = info["ssh"]
    return {
        "type": "ssh",
        "host": ssh["host"],
        "port": ssh["port"],
        "username": ssh["username"],
        "key_file": ssh["key_file"],
        "known_hosts": ssh["known_hosts"],
    }
