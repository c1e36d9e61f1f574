"""The sidebar form's tests read a resource schema the server really writes (not a hand-made copy),
so a change to the models or to `limits.options_schema` that the form does not understand shows
up in jest. This test keeps that file current: it fails when the file is stale, and rewrites it
with PWLAB_UPDATE_FIXTURES=1."""

from __future__ import annotations

import json
import os
from pathlib import Path

from parallelworks_lab.limits import options_schema
from parallelworks_lab.models import Partition

FIXTURE = Path(__file__).parent.parent / "src" / "__tests__" / "data" / "options_schema.json"

PARTITIONS = [
    Partition(
        name="cpu",
        default=True,
        max_time_minutes=60,
        max_nodes=4,
        nodes_total=4,
        cpus_per_node=8,
        memory_mb_per_node=16384,
    ),
    Partition(
        name="gpu",
        max_time_minutes=2880,
        nodes_total=2,
        cpus_per_node=32,
        memory_mb_per_node=262144,
        gpus_per_node=4,
        gpu_types=["a100"],
    ),
    Partition(
        name="proj",
        max_time_minutes=30,
        nodes_total=3,
        cpus_per_node=2,
        memory_mb_per_node=2000,
        accounts=["physics", "chem"],
        qos=["normal", "high"],
        deny_qos=["high"],
    ),
]


def test_frontend_schema_fixture_is_what_the_server_writes():
    text = json.dumps(options_schema(PARTITIONS), indent=1) + "\n"
    if os.environ.get("PWLAB_UPDATE_FIXTURES") == "1":
        FIXTURE.write_text(text)
    assert FIXTURE.exists() and FIXTURE.read_text() == text, (
        f"{FIXTURE} is stale: rerun this test with PWLAB_UPDATE_FIXTURES=1 and commit it"
    )
