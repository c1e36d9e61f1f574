"""GET /jobs pages come from the store's listing, which keeps converted jobs between reads:
what it lists must always be what the rows hold."""

from __future__ import annotations

import uuid
from pathlib import Path

from parallelworks_lab.guidance.models import Usage
from parallelworks_lab.models import ResourceRequest
from parallelworks_lab.states import JobState
from parallelworks_lab.store import JobStore


def add(store: JobStore, name: str) -> str:
    job_id = uuid.uuid4().hex[:12]
    store.insert(
        job_id=job_id,
        cluster="c",
        name=name,
        resources=ResourceRequest(),
        submit_token=uuid.uuid4().hex,
        request={"cluster": "c", "command": "true"},
    )
    return job_id


def listed(store: JobStore, **kwargs: object) -> dict[str, tuple[str, str | None]]:
    jobs, _ = store.page(**kwargs)  # type: ignore[arg-type]
    return {job.id: (job.state.value, job.reason) for job in jobs}


def test_a_listed_job_shows_every_change_of_its_row(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    ids = [add(store, f"job-{i}") for i in range(5)]
    assert set(listed(store)) == set(ids)
    for _ in range(3):  # each change right after a read that cached the job
        store.update(ids[0], state=JobState.QUEUED, reason="Priority")
        assert listed(store)[ids[0]] == ("QUEUED", "Priority")
        store.update(ids[0], state=JobState.RUNNING, reason=None)
        assert listed(store)[ids[0]] == ("RUNNING", None)
        store.update(ids[0], state=JobState.QUEUED, reason="Priority")
    store.update(ids[1], state=JobState.COMPLETED)
    store.set_usage(ids[1], Usage(source="sacct", elapsed_seconds=5))
    jobs, _ = store.page()
    done = next(job for job in jobs if job.id == ids[1])
    assert done.terminal and done.usage is not None and done.usage.elapsed_seconds == 5
    store.delete(ids[2])
    assert ids[2] not in listed(store)
    # Filters and the cursor still apply to what is listed.
    assert set(listed(store, states=[JobState.QUEUED])) == {ids[0]}
    first, cursor = store.page(limit=2)
    rest, end = store.page(limit=10, cursor=cursor)
    assert [j.id for j in first + rest] == [ids[4], ids[3], ids[1], ids[0]] and end is None


def test_a_second_store_on_the_same_file_sees_the_first_ones_writes(tmp_path: Path) -> None:
    """Changes made by another connection (no cache to drop there) show up too."""
    reader = JobStore(tmp_path / "jobs.sqlite")
    writer = JobStore(tmp_path / "jobs.sqlite")
    job_id = add(writer, "a")
    assert listed(reader)[job_id] == ("SUBMITTING", None)
    writer.update(job_id, state=JobState.QUEUED, reason="Resources")
    assert listed(reader)[job_id] == ("QUEUED", "Resources")
