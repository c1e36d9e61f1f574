"""A server restart loses no job: jobs keep running and are found again with their true end."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import pytest

from .support.server_process import Server
from .support.sge_cluster import sge_cluster_entry
from .support.slurm_cluster import slurm_cluster_entry


@pytest.mark.parametrize(
    ("sig", "cluster"),
    [
        (signal.SIGTERM, "local"),
        (signal.SIGKILL, "local"),
        (signal.SIGKILL, "slurm"),
        (signal.SIGKILL, "sge"),
    ],
    ids=["stop-local", "crash-local", "crash-slurm", "crash-sge"],
)
def test_restart_mid_job_keeps_job_and_its_final_state(tmp_path, sig, cluster, request):
    config = {}
    gate_dir = tmp_path
    if cluster != "local":
        info = request.getfixturevalue(f"{cluster}_cluster")
        build = sge_cluster_entry if cluster == "sge" else slurm_cluster_entry
        config = {"clusters": [build(cluster, info)]}
        gate_dir = Path(info["scratch_dir"]) / f"restart-{uuid.uuid4().hex[:8]}"
        gate_dir.mkdir()
    first = Server(tmp_path, config)
    first.start()
    # The job waits for a file we create only after the restart, so it surely spans it.
    gate = gate_dir / "go"
    script = f"echo before; while [ ! -e {gate} ]; do sleep 0.1; done; echo after; exit 7"
    job = {"cluster": cluster, "script": script, "working_dir": str(gate_dir)}
    failing = first.request("POST", "jobs", json=job).json()
    assert "id" in failing, failing
    second_job = {
        "cluster": cluster,
        "command": "echo second",
        "after": [failing["id"]],
        "working_dir": str(gate_dir),
    }
    queued = first.request("POST", "jobs", json=second_job).json()
    first.wait(failing["id"], {"RUNNING"})
    first.stop(sig)

    second = Server(tmp_path, config)
    second.start()
    try:
        listed = {j["id"]: j for j in second.get("jobs").json()["jobs"]}
        assert listed[failing["id"]]["state"] == "RUNNING"
        assert listed[queued["id"]]["state"] == "QUEUED"
        gate.touch()
        done = second.wait(failing["id"], {"COMPLETED", "FAILED", "CANCELLED"})
        assert (done["state"], done["exit_code"]) == ("FAILED", 7)
        assert done["native_id"] == failing["native_id"]
        # Its dependant learns the outcome too (Slurm keeps it pending, `local` cancels it).
        # (Grid Engine's -hold_jid waits for the end, success or not: there it runs.)
        deadline = time.monotonic() + 30
        while True:
            dependant = second.get(f"jobs/{queued['id']}").json()
            if dependant["reason"] == "DependencyNeverSatisfied" or (
                cluster == "sge" and dependant["terminal"]
            ):
                break
            assert time.monotonic() < deadline, dependant
            time.sleep(0.2)
        expected = {"local": "CANCELLED", "slurm": "QUEUED", "sge": "COMPLETED"}[cluster]
        assert dependant["state"] == expected
        if not dependant["terminal"]:
            assert second.request("DELETE", f"jobs/{queued['id']}").status_code == 200
        log = second.get(f"jobs/{failing['id']}/logs?stream=stdout").json()
        assert log == {"data": "before\nafter\n", "offset": 13, "eof": True}
    finally:
        second.stop()
