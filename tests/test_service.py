"""JobService and its parts without a web server: polling failures, decoding, the store."""

from __future__ import annotations

import asyncio

from parallelworks_lab.backends.local import LocalBackend
from parallelworks_lab.errors import ClusterUnreachable
from parallelworks_lab.models import JobSubmit, ResourceRequest
from parallelworks_lab.service import JobService
from parallelworks_lab.service_views import decode_complete
from parallelworks_lab.states import JobState
from parallelworks_lab.store import JobStore

from .support.service import build_service, wait_state


class FlakyLocal(LocalBackend):
    """The local backend with a scheduler that can be switched off (for failure paths)."""

    down = False

    async def poll(self, native_ids):
        if FlakyLocal.down:
            raise ClusterUnreachable(self.context.cluster_id, "connection refused")
        return await super().poll(native_ids)


async def start_flaky(job_service) -> JobService:
    FlakyLocal.down = False
    return await job_service(
        [{"id": "flaky", "kind": "flaky", "slots": 2}],
        backend_classes={"flaky": FlakyLocal},
        poll_interval=0.1,
    )


async def test_unreachable_scheduler_never_fails_jobs(job_service):
    await unreachable_scenario(await start_flaky(job_service))


async def unreachable_scenario(service: JobService):
    events: list[tuple[str, dict]] = []
    service.subscribe(lambda kind, payload: events.append((kind, payload)))
    job = await service.submit(JobSubmit(cluster="flaky", command="sleep 1; exit 0"))
    FlakyLocal.down = True
    await asyncio.sleep(2.0)  # the job ends meanwhile, but nobody can ask the scheduler
    assert service.get_job(job.id).state in {JobState.QUEUED, JobState.RUNNING}
    [summary] = service.list_clusters()
    assert summary.status == "unreachable" and "connection refused" in (
        summary.status_message or ""
    )
    assert (
        "cluster",
        {"cluster": "flaky", "status": "unreachable", "message": summary.status_message},
    ) in events
    FlakyLocal.down = False
    service.pollers["flaky"].wake()
    done = await wait_state(service, job.id, {JobState.COMPLETED}, timeout=70)
    assert done.exit_code == 0
    assert service.list_clusters()[0].status == "ok"


async def test_interrupted_submit_is_reconciled_by_token(job_service, tmp_path):
    await reconcile_scenario(await start_flaky(job_service), tmp_path)


async def reconcile_scenario(service: JobService, tmp_path):
    # Simulate a crash after the backend queued the job but before the store learned its id.
    backend = service.clusters["flaky"].backend
    service.store.insert(
        job_id="aaaaaaaaaaaa",
        cluster="flaky",
        name="lost",
        resources=ResourceRequest(),
        submit_token="tok-1",
        request={},
    )
    service.store.insert(
        job_id="bbbbbbbbbbbb",
        cluster="flaky",
        name="never",
        resources=ResourceRequest(),
        submit_token="tok-2",
        request={},
    )
    from parallelworks_lab.backends.base import SubmitRequest

    await backend.submit(
        SubmitRequest("aaaaaaaaaaaa", "tok-1", "lost", "echo found\n", ResourceRequest(), None)
    )
    found = await wait_state(service, "aaaaaaaaaaaa", {JobState.COMPLETED})
    assert found.native_id is not None
    never = await wait_state(service, "bbbbbbbbbbbb", {JobState.FAILED})
    assert never.reason and never.reason.startswith("SubmitLost")
    # Exactly one job exists on the backend for the found token: nothing submitted twice.
    metas = list((tmp_path / "clusters" / "flaky" / "jobs").glob("*/meta.json"))
    assert len(metas) == 1


def test_decode_never_splits_a_character():
    text = "héllo ✓ 𝄞"
    raw = text.encode()
    for cut in range(len(raw) + 1):
        head, used = decode_complete(raw[:cut])
        tail, _ = decode_complete(raw[used:])
        assert head + tail == text
        assert "\ufffd" not in head


def test_store_pages_are_stable_and_complete(tmp_path):
    store = JobStore(tmp_path / "s.sqlite")
    for i in range(25):
        store.insert(
            job_id=f"{i:012x}",
            cluster="c",
            name=f"j{i}",
            resources=ResourceRequest(),
            submit_token=f"t{i}",
            request={},
        )
    seen, cursor = [], None
    while True:
        page, cursor = store.page(limit=10, cursor=cursor)
        seen += [j.id for j in page]
        if cursor is None:
            break
    assert seen == [f"{i:012x}" for i in reversed(range(25))]
    # An update that changes nothing reports nothing (no spurious events).
    assert store.update(seen[0], state=JobState.SUBMITTING) is None
    changed = store.update(seen[0], state=JobState.COMPLETED, exit_code=0)
    assert changed is not None and changed.terminal
    assert seen[0] not in {j.id for j in store.live("c")}


class ArrayOnce(LocalBackend):
    """A scheduler answer where an array task has already ended when first seen."""

    async def poll(self, native_ids):
        from parallelworks_lab.backends.base import JobStatus

        return {
            "5": JobStatus(JobState.RUNNING, "RUNNING"),
            "5_1": JobStatus(
                JobState.COMPLETED, "COMPLETED", exit_code=0, parent_native_id="5", array_task="1"
            ),
        }


async def test_an_ended_array_task_is_recorded_once(tmp_path):
    svc = build_service(
        tmp_path, [{"id": "arr", "kind": "arr"}], backend_classes={"arr": ArrayOnce}
    )
    parent = svc.store.insert(
        job_id="aaaaaaaaaaaa",
        cluster="arr",
        name="p",
        resources=ResourceRequest(),
        submit_token="t",
        request={},
        native_id="5",
    )
    poller = svc.pollers["arr"]
    for _ in range(3):
        await poller.poll_once()
    tasks = [j for j in svc.store.page(limit=10)[0] if j.parent_id == parent.id]
    assert [(t.native_id, t.state, t.array_task) for t in tasks] == [
        ("5_1", JobState.COMPLETED, "1")
    ]
