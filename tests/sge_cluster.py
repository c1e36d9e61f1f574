"""The real Grid Engine test cluster (dev/sge/up.sh), as a pytest fixture helper."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def start_sge() -> dict[str, Any]:
    result = subprocess.run(
        ["bash", str(REPO / "dev" / "sge" / "up.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        why = (result.stderr or result.stdout).strip().splitlines()[-5:]
        message = (
            f"the Grid Engine test cluster could not be started (exit {result.returncode}): "
            + " | ".join(why)
            + " -- run `make sge-up` as root on Debian to run these tests"
        )
        if result.returncode == 77 and os.environ.get("CI") != "true":
            pytest.skip(message)
        pytest.fail(message)
    path = Path(result.stdout.strip().splitlines()[-1])
    info: dict[str, Any] = json.loads(path.read_text())
    return info


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
