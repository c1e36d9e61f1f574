"""A server restart loses no job: jobs keep running and are found again with their true end."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import pytest

from .server_process import Server
from .slurm_cluster import slurm_cluster_entry


@pytest.mark.parametrize(
    ("sig", "cluster"),
    [(signal.SIGTERM, "local"), (signal.SIGKILL, "local"), (signal.SIGKILL, "slurm")],
    ids=["stop-local", "crash-local", "crash-slurm"],
)
def test_restart_mid_job_keeps_job_and_its_final_state(tmp_path, sig, cluster, request):
    config = {}
    gate_dir = tmp_path
    if cluster == "slurm":
        info = request.getfixturevalue("slurm_cluster")
        config = {"clusters": [slurm_cluster_entry("slurm", info)]}
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
        deadline = time.monotonic() + 30
        while True:
            dependant = second.get(f"jobs/{queued['id']}").json()
            if dependant["reason"] == "DependencyNeverSatisfied":
                break
            assert time.monotonic() < deadline, dependant
            time.sleep(0.2)
        assert dependant["state"] == ("CANCELLED" if cluster == "local" else "QUEUED")
        if not dependant["terminal"]:
            assert second.request("DELETE", f"jobs/{queued['id']}").status_code == 200
        log = second.get(f"jobs/{failing['id']}/logs?stream=stdout").json()
        assert log == {"data": "before\nafter\n", "offset": 13, "eof": True}
    finally:
        second.stop()
