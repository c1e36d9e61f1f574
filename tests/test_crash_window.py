"""A server killed right after forking a `local` job, before recording anything: the restarted
server adopts the job instead of starting it a second time.

Deterministic: the backend's test hook (PWLAB_TEST_CRASH_AT=after-spawn) makes the server
process die with os._exit at exactly that point.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from parallelworks_lab.backends.local_process import CRASH_AT_ENV
from parallelworks_lab.models import JobSubmit
from parallelworks_lab.states import JobState

from .support.server_process import Server
from .support.service import wait_state
from .support.waiting import wait_until

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}


def test_crash_between_fork_and_record_runs_the_job_once(tmp_path):
    runs = tmp_path / "runs.txt"
    first = Server(tmp_path, env={CRASH_AT_ENV: "after-spawn"})
    first.start()
    job = {"cluster": "local", "command": "echo ran >> runs.txt", "working_dir": str(tmp_path)}
    try:
        first.request("POST", "jobs", json=job)
    except httpx.TransportError:
        pass  # the server may die before its answer is out
    assert first.proc is not None
    assert first.proc.wait(timeout=30) == 70, "the server did not die at the hook"
    # The job's process outlived the server: wait until it has surely run.
    wait_until(runs.exists, what="the job's run", timeout=20, interval=0.1)

    second = Server(tmp_path)
    second.start()
    try:
        [listed] = second.get("jobs").json()["jobs"]
        done = second.wait(listed["id"], TERMINAL)
        assert (done["state"], done["exit_code"]) == ("COMPLETED", 0), done
        time.sleep(1.0)  # a second start, if any, would have run by now
        assert runs.read_text() == "ran\n"
    finally:
        second.stop()


async def test_a_second_start_of_a_job_is_refused_and_the_first_adopted(tmp_path, job_service):
    """The race itself: two wrappers for one job (a restart forking again before the first
    wrapper wrote its record). Exactly one runs the job; the backend follows that one."""
    service = await job_service([{"id": "local", "kind": "local", "slots": 2}], poll_interval=0.1)
    gate = tmp_path / "go"
    command = f"echo ran >> runs.txt; while [ ! -e {gate} ]; do sleep 0.05; done; exit 4"
    job = await service.submit(JobSubmit(cluster="local", command=command))
    await wait_state(service, job.id, {JobState.RUNNING})
    backend = service.clusters["local"].backend
    local_job = backend._active[job.native_id]
    while not (local_job.dir / "started").exists():
        await asyncio.sleep(0.05)
    first_pid = local_job.started["pid"]
    await backend._spawn(local_job)  # what a restarted server did before the fix
    assert await local_job.proc.wait() == 75  # refused: the job is claimed
    await asyncio.sleep(0.5)  # a few scheduler passes with the refused start's end
    assert service.get_job(job.id).state is JobState.RUNNING
    assert local_job.started["pid"] == first_pid
    gate.touch()
    done = await wait_state(service, job.id, {JobState.COMPLETED, JobState.FAILED})
    assert (done.state, done.exit_code) == (JobState.FAILED, 4)
    assert (tmp_path / "runs.txt").read_text() == "ran\n"
