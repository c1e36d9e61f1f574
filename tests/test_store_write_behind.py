"""A submit answers before its second store write (the native id) is committed: the write comes
on the event loop's next turn, and any use of the store before that applies it first. What
must hold: nobody ever reads the row without it, the answer is exactly the row as written, and
a process that dies in between leaves the row as the submit's first write made it (SUBMITTING,
with the token a restart looks up on the scheduler)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from parallelworks_lab.models import Job, ResourceRequest
from parallelworks_lab.states import JobState
from parallelworks_lab.store import JobStore


def submitting(store: JobStore) -> Job:
    return store.insert(
        job_id=uuid.uuid4().hex[:12],
        cluster="c",
        name="fit",
        resources=ResourceRequest(),
        submit_token=uuid.uuid4().hex,
        request={"cluster": "c", "command": "true"},
        working_dir="/tmp",
    )


async def test_the_answer_is_the_row_and_every_read_sees_it(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    other = JobStore(tmp_path / "jobs.sqlite")  # another connection: nothing flushes for it
    inserted = submitting(store)
    answer = store.update_soon(
        inserted,
        native_id="4242",
        state=JobState.QUEUED,
        raw_state="PENDING",
        reason="Priority",
        stdout_path="/tmp/fit-4242.out",
    )
    assert answer.native_id == "4242" and answer.state is JobState.QUEUED
    assert answer.reason_explained is not None  # derived like a stored row's
    # Not written yet: the answer went first ...
    unwritten = other.get(inserted.id)
    assert unwritten is not None and unwritten.native_id is None
    assert unwritten.state is JobState.SUBMITTING
    # ... but any read through this store applies it, and reads exactly the answer.
    assert store.get(inserted.id) == answer
    assert other.get(inserted.id) == answer
    listed, _ = store.page()
    assert listed == [answer]
    store.close()
    other.close()


async def test_the_event_loop_writes_it_on_its_next_turn(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    other = JobStore(tmp_path / "jobs.sqlite")
    inserted = submitting(store)
    answer = store.update_soon(inserted, native_id="7", state=JobState.FAILED, reason="launch")
    await asyncio.sleep(0)
    written = other.get(inserted.id)
    assert written == answer and written.terminal and written.estimated_start is None
    store.close()
    other.close()


def test_without_an_event_loop_it_is_written_at_once(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    other = JobStore(tmp_path / "jobs.sqlite")
    inserted = submitting(store)
    answer = store.update_soon(inserted, native_id="8", state=JobState.QUEUED)
    assert other.get(inserted.id) == answer
    # Nothing changed: no write at all, the job as it was.
    assert store.update_soon(answer, native_id="8", state=JobState.QUEUED) is answer


def test_times_are_not_written_behind(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    inserted = submitting(store)
    with pytest.raises(ValueError, match="times"):
        store.update_soon(inserted, started_at=datetime.now(timezone.utc))


def test_a_process_that_dies_before_the_write_leaves_the_submitting_row(tmp_path: Path) -> None:
    """Killed between the answer and the write: the row is the first write's (SUBMITTING with
    its token), which is what a restart reconciles on the scheduler (tests/test_crash_window.py,
    tests/test_restart.py)."""
    db = tmp_path / "jobs.sqlite"
    script = textwrap.dedent(
        f"""
        import asyncio, os, uuid
        from parallelworks_lab.models import ResourceRequest
        from parallelworks_lab.states import JobState
        from parallelworks_lab.store import JobStore

        async def main():
            store = JobStore({str(db)!r})
            job = store.insert(job_id="dies", cluster="c", name="fit",
                resources=ResourceRequest(), submit_token="tok-1",
                request={{"cluster": "c", "command": "true"}})
            store.update_soon(job, native_id="99", state=JobState.QUEUED)
            os._exit(0)  # as a kill -9 would: no further turn of the loop

        asyncio.run(main())
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    store = JobStore(db)
    job = store.get("dies")
    assert job is not None and job.state is JobState.SUBMITTING and job.native_id is None
    assert store.submit_token("dies") == "tok-1"
