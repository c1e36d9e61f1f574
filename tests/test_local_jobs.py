"""Jobs on the built-in `local` cluster, through the real server extension's REST API."""

from __future__ import annotations

import asyncio
import os
import time

import psutil

from parallelworks_lab.backends import local

from .support.api import MAX_TIME, SLOTS

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}


async def test_submit_runs_to_completed_with_output(api, jp_root_dir):
    job = await api.submit(
        name="hello", script="#!/bin/bash\necho hello from $PWLAB_CLUSTER\npwd\necho oops >&2\n"
    )
    assert job["state"] in {"QUEUED", "RUNNING"}
    assert job["native_id"] and job["cluster"] == "local" and job["name"] == "hello"
    assert job["resources"]["partition"] == "local"
    done = await api.wait(job["id"], TERMINAL)
    assert done["state"] == "COMPLETED" and done["exit_code"] == 0 and done["terminal"]
    assert done["started_at"] and done["ended_at"]
    out = await api.read_all(job["id"])
    assert out == f"hello from local\n{jp_root_dir}\n"
    assert await api.read_all(job["id"], "stderr") == "oops\n"


async def test_nonzero_exit_is_failed_with_code(api):
    job = await api.submit(command="exit 3")
    done = await api.wait(job["id"], TERMINAL)
    assert (done["state"], done["exit_code"]) == ("FAILED", 3)
    assert done["raw_state"] == "exited"


async def test_working_dir_and_env(api, jp_root_dir):
    (jp_root_dir / "sub").mkdir()
    job = await api.submit(
        command='pwd; echo "$GREETING"', working_dir="sub", env={"GREETING": "hi there"}
    )
    await api.wait(job["id"], TERMINAL)
    assert await api.read_all(job["id"]) == f"{jp_root_dir / 'sub'}\nhi there\n"


async def test_logs_are_incremental_while_running(api):
    job = await api.submit(script="#!/bin/bash\nfor i in 1 2 3; do echo line $i; sleep 0.7; done\n")
    await api.wait(job["id"], {"RUNNING"})
    offset, seen, partial_reads = 0, "", 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        chunk = await api.get(f"jobs/{job['id']}/logs", stream="stdout", offset=offset)
        assert chunk["offset"] == offset + len(chunk["data"].encode())
        if chunk["data"] and not chunk["eof"]:
            partial_reads += 1
        seen += chunk["data"]
        offset = chunk["offset"]
        if chunk["eof"]:
            break
        await asyncio.sleep(0.2)
    assert seen == "line 1\nline 2\nline 3\n"
    # Output arrived in more than one piece while the job was still running.
    assert partial_reads >= 2
    # Reading again from the end gives nothing new.
    tail = await api.get(f"jobs/{job['id']}/logs", offset=offset)
    assert tail == {"data": "", "offset": offset, "eof": True}


def job_processes(native_id: str) -> list[psutil.Process]:
    """The processes of a local job (its wrapper's session carries its id)."""
    return [
        p
        for p in psutil.process_iter(["cmdline", "environ"])
        if (p.info.get("environ") or {}).get("PWLAB_JOB_ID") == native_id
    ]


async def test_cancel_running_job_kills_its_process_group(api):
    job = await api.submit(script="#!/bin/bash\nsleep 300 &\nsleep 300\n")
    await api.wait(job["id"], {"RUNNING"})
    # Find the job's processes: its session is led by the wrapper.
    await asyncio.sleep(0.3)
    members = job_processes(job["native_id"])
    assert len(members) >= 3  # wrapper, script, two sleeps
    pgids = {os.getpgid(p.pid) for p in members}
    assert len(pgids) == 1
    status, cancelled = await api.call("DELETE", f"jobs/{job['id']}")
    assert status == 200 and cancelled["state"] == "CANCELLED"
    _gone, alive = psutil.wait_procs(members, timeout=5)
    assert not alive, f"still alive: {alive}"
    # Cancelling again is a conflict: the job has ended.
    status, body = await api.call("DELETE", f"jobs/{job['id']}")
    assert status == 409 and "CANCELLED" in body["message"]


async def test_cancel_queued_job(api):
    blocker = await api.submit(command="sleep 30", resources={"cpus_per_task": SLOTS})
    await api.wait(blocker["id"], {"RUNNING"})
    waiting = await api.submit(command="echo never")
    assert waiting["state"] == "QUEUED"
    status, body = await api.call("DELETE", f"jobs/{waiting['id']}")
    assert status == 200 and body["state"] == "CANCELLED"
    await api.call("DELETE", f"jobs/{blocker['id']}")
    assert await api.read_all(waiting["id"]) == ""


async def test_job_waits_for_free_slots_then_runs(api):
    first = await api.submit(command="sleep 1.5", resources={"ntasks": 2, "cpus_per_task": 1})
    await api.wait(first["id"], {"RUNNING"})
    second = await api.submit(command="echo second")
    assert (second["state"], second["reason"]) == ("QUEUED", "Resources")
    listed = await api.get(f"jobs/{second['id']}")
    assert listed["state"] == "QUEUED"
    done = await api.wait(second["id"], TERMINAL)
    assert done["state"] == "COMPLETED"
    first_done = await api.get(f"jobs/{first['id']}")
    assert first_done["state"] == "COMPLETED"
    # The second only started once the first had ended.
    assert done["started_at"] >= first_done["ended_at"]


async def test_hold_and_release(api):
    blocker = await api.submit(command="sleep 30", resources={"cpus_per_task": SLOTS})
    await api.wait(blocker["id"], {"RUNNING"})
    job = await api.submit(command="echo released")
    status, held = await api.call("POST", f"jobs/{job['id']}/hold")
    assert status == 200 and (held["state"], held["reason"]) == ("HELD", "JobHeldUser")
    # Free the slots: a held job must not start.
    await api.call("DELETE", f"jobs/{blocker['id']}")
    await asyncio.sleep(1.0)
    assert (await api.get(f"jobs/{job['id']}"))["state"] == "HELD"
    status, released = await api.call("POST", f"jobs/{job['id']}/release")
    assert status == 200 and released["state"] in {"QUEUED", "RUNNING", "COMPLETED"}
    done = await api.wait(job["id"], TERMINAL)
    assert done["state"] == "COMPLETED"
    assert await api.read_all(job["id"]) == "released\n"
    # Holding a finished job, or releasing a job that is not held, is a conflict.
    assert (await api.call("POST", f"jobs/{job['id']}/hold"))[0] == 409
    assert (await api.call("POST", f"jobs/{job['id']}/release"))[0] == 409


async def test_dependency_waits_for_success(api):
    first = await api.submit(command="sleep 1; echo first")
    second = await api.submit(command="echo second", after=[first["id"]])
    assert (second["state"], second["reason"]) == ("QUEUED", "Dependency")
    done = await api.wait(second["id"], TERMINAL)
    assert done["state"] == "COMPLETED"
    first_done = await api.get(f"jobs/{first['id']}")
    assert done["started_at"] >= first_done["ended_at"]
    failing = await api.submit(command="exit 1")
    never = await api.submit(command="echo no", after=[failing["id"]])
    cancelled = await api.wait(never["id"], TERMINAL)
    assert (cancelled["state"], cancelled["reason"]) == ("CANCELLED", "DependencyNeverSatisfied")


async def test_time_limit_ends_in_timeout(api, monkeypatch):
    job = await api.submit(command="sleep 600", resources={"time_limit_minutes": 1})
    await api.wait(job["id"], {"RUNNING"}, timeout=30)
    await asyncio.sleep(0.3)
    members = job_processes(job["native_id"])
    assert members
    # A minute on: the server's clock jumps instead of the test waiting it out (limits are
    # whole minutes); the job's real process is still what gets ended.
    later = time.time() + 61
    monkeypatch.setattr(local, "_now", lambda: later)
    done = await api.wait(job["id"], TERMINAL, timeout=30)
    assert done["state"] == "TIMEOUT"
    assert "time limit of 1 min" in done["reason"]
    _gone, alive = psutil.wait_procs(members, timeout=15)
    assert not alive, f"still running after its time limit: {alive}"
    assert MAX_TIME >= 1


async def test_list_filters_and_pages(api):
    ids = [(await api.submit(command=f"echo {i}", name=f"job{i}"))["id"] for i in range(5)]
    for job_id in ids:
        await api.wait(job_id, TERMINAL)
    page1 = await api.get("jobs", limit=3)
    assert [j["id"] for j in page1["jobs"]] == ids[::-1][:3]
    page2 = await api.get("jobs", limit=3, cursor=page1["next_cursor"])
    assert [j["id"] for j in page2["jobs"]] == ids[::-1][3:]
    assert page2["next_cursor"] is None
    completed = await api.get("jobs", state="COMPLETED", cluster="local")
    assert {j["id"] for j in completed["jobs"]} == set(ids)
    assert (await api.get("jobs", state="RUNNING,QUEUED"))["jobs"] == []
