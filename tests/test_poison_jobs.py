"""A job a backend cannot start, or a scheduler answer that cannot be stored, fails alone: the
cluster stays ok and every other job goes on."""

from __future__ import annotations

from typing import Any

import pytest

from parallelworks_lab.backends.base import JobStatus, SubmitResult, storable_answer
from parallelworks_lab.backends.local import LocalBackend
from parallelworks_lab.models import JobSubmit
from parallelworks_lab.states import JobState

from .support.service import wait_state

TERMINAL = {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED}


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"A": "x\ud800"}, "surrogates not allowed"),  # the OS environment needs bytes
        ({"BIG": "x" * 300_000}, "Argument list too long"),  # one exec() string is <= 128 KiB
    ],
    ids=["unencodable-env", "env-too-big-for-exec"],
)
async def test_local_job_that_cannot_start_fails_alone(tmp_path, env, reason, job_service):
    service = await job_service([{"id": "local", "kind": "local", "slots": 1}], poll_interval=0.1)
    # What the API now refuses, handed to the service as an older server stored it.
    bad = await service.submit(
        JobSubmit.model_construct(
            cluster="local",
            script=None,
            command="echo never",
            name=None,
            resources=JobSubmit.model_fields["resources"].get_default(call_default_factory=True),
            working_dir=None,
            env=env,
            after=[],
        )
    )
    good = await service.submit(JobSubmit(cluster="local", command="echo fine"))
    failed = await wait_state(service, bad.id, TERMINAL)
    assert failed.state is JobState.FAILED
    assert failed.reason and failed.reason.startswith("StartFailed")
    assert reason in failed.reason
    done = await wait_state(service, good.id, TERMINAL)
    assert done.state is JobState.COMPLETED
    assert service.clusters["local"].status == "ok"


class OddScheduler(LocalBackend):
    """The local backend whose answers carry what a scheduler's JSON may: lone surrogates and
    numbers past 64 bits (slurmrestd passes job text through; ACTIVATE's platform too)."""

    async def poll(self, native_ids: list[str]) -> dict[str, JobStatus]:
        statuses = await super().poll(native_ids)
        for status in statuses.values():
            status.reason = "odd \udcff reason"
            status.raw_state = f"{status.raw_state}\ud800"
            if status.exit_code is not None:
                status.exit_code = 2**70
        return statuses


async def test_unstorable_scheduler_answers_do_not_stop_the_cluster(tmp_path, job_service):
    service = await job_service(
        [{"id": "odd", "kind": "odd", "slots": 2}],
        backend_classes={"odd": OddScheduler},
        poll_interval=0.1,
    )
    job = await service.submit(JobSubmit(cluster="odd", command="exit 3"))
    done = await wait_state(service, job.id, TERMINAL)
    assert done.state is JobState.FAILED
    assert done.reason == "odd \ufffd reason"
    assert done.exit_code is None  # past any exit code: unknown rather than wrong
    assert service.clusters["odd"].status == "ok"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            JobStatus(JobState.RUNNING, raw_state="R\ud800", reason=None, exit_code=None),
            {"raw_state": "R\ufffd"},
        ),
        (JobStatus(JobState.FAILED, exit_code=-(2**63)), {"exit_code": None}),
        (JobStatus(JobState.FAILED, exit_code=255, reason="fine"), {}),
        (
            SubmitResult(native_id="1", stdout_path="/o\udc80", working_dir="/w"),
            {"stdout_path": "/o\ufffd"},
        ),
    ],
)
def test_storable_answer(answer: Any, expected: dict[str, Any]):
    clean = storable_answer(answer)
    for key, value in expected.items():
        assert getattr(clean, key) == value
    if not expected:
        assert clean is answer
