"""A server restart loses no job: jobs keep running and are found again with their true end."""

from __future__ import annotations

import signal

import pytest

from .server_process import Server


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["stop", "crash"])
def test_restart_mid_job_keeps_job_and_its_final_state(tmp_path, sig):
    first = Server(tmp_path)
    first.start()
    # The job waits for a file we create only after the restart, so it surely spans it.
    gate = tmp_path / "go"
    script = f"echo before; while [ ! -e {gate} ]; do sleep 0.1; done; echo after; exit 7"
    failing = first.request("POST", "jobs", json={"cluster": "local", "script": script}).json()
    queued = first.request(
        "POST",
        "jobs",
        json={"cluster": "local", "command": "echo second", "after": [failing["id"]]},
    ).json()
    first.wait(failing["id"], {"RUNNING"})
    first.stop(sig)

    second = Server(tmp_path)
    second.start()
    try:
        listed = {j["id"]: j for j in second.get("jobs").json()["jobs"]}
        assert listed[failing["id"]]["state"] == "RUNNING"
        assert listed[queued["id"]]["state"] == "QUEUED"
        gate.touch()
        done = second.wait(failing["id"], {"COMPLETED", "FAILED", "CANCELLED"})
        assert (done["state"], done["exit_code"]) == ("FAILED", 7)
        assert done["native_id"] == failing["native_id"]
        # Its dependant learns the outcome too.
        dependant = second.wait(queued["id"], {"COMPLETED", "FAILED", "CANCELLED"})
        assert (dependant["state"], dependant["reason"]) == (
            "CANCELLED",
            "DependencyNeverSatisfied",
        )
        log = second.get(f"jobs/{failing['id']}/logs?stream=stdout").json()
        assert log == {"data": "before\nafter\n", "offset": 13, "eof": True}
    finally:
        second.stop()
