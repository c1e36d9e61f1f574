"""Grid Engine specifics against the real test cluster: parallel environments, error states."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from parallelworks_lab.backends.sge_parsing import expand_tasks, parse_hms, parse_qacct, sge_state
from parallelworks_lab.models import JobSubmit
from parallelworks_lab.service import JobService
from parallelworks_lab.states import JobState

from .support.service import wait_for_job
from .support.sge_cluster import sge_cluster_entry


async def start_sge_service(job_service, info: dict[str, Any], cluster_id: str) -> JobService:
    return await job_service(
        [sge_cluster_entry(cluster_id, info)],
        root_dir=Path(info["scratch_dir"]),
        poll_interval=0.5,
    )


async def output(service: JobService, job_id: str) -> str:
    chunk = await service.read_log(job_id, "stdout", 0)
    return chunk.data


@pytest.mark.parametrize("cluster_id", ["sge", "sge-ssh"])
async def test_two_slot_job_gets_a_parallel_environment(sge_cluster, cluster_id, job_service):
    service = await start_sge_service(job_service, sge_cluster, cluster_id)
    job = await service.submit(
        JobSubmit(cluster=cluster_id, command="echo NSLOTS=$NSLOTS", resources={"cpus_per_task": 2})
    )
    done = await wait_for_job(service, job.id, lambda j: j.terminal)
    assert done.state is JobState.COMPLETED, done
    assert await output(service, job.id) == "NSLOTS=2\n"


@pytest.mark.parametrize("cluster_id", ["sge", "sge-ssh"])
async def test_error_state_is_shown_with_its_reason_and_can_be_cancelled(
    sge_cluster, cluster_id, job_service
):
    service = await start_sge_service(job_service, sge_cluster, cluster_id)
    # /proc exists but nobody can create the output file there: Grid Engine puts the job
    # in Eqw. We must show that, with the reason, instead of a silent "queued".
    job = await service.submit(JobSubmit(cluster=cluster_id, command="true", working_dir="/proc"))
    held = await wait_for_job(service, job.id, lambda j: j.state is JobState.HELD)
    assert held.raw_state and "E" in held.raw_state
    assert held.reason and held.reason.startswith("Error:"), held.reason
    cancelled = await service.cancel(job.id)
    done = await wait_for_job(service, cancelled.id, lambda j: j.terminal)
    assert done.state is JobState.CANCELLED


def test_every_state_letter_combination_maps_to_one_state():
    expected = {
        "qw": JobState.QUEUED,
        "hqw": JobState.HELD,
        "hRwq": JobState.HELD,
        "r": JobState.RUNNING,
        "t": JobState.RUNNING,
        "Rr": JobState.RUNNING,
        "Rt": JobState.RUNNING,
        "s": JobState.SUSPENDED,
        "S": JobState.SUSPENDED,
        "T": JobState.SUSPENDED,
        "ts": JobState.SUSPENDED,
        "dr": JobState.COMPLETING,
        "dt": JobState.COMPLETING,
        "dRr": JobState.COMPLETING,
        "Eqw": JobState.HELD,
        "Ehqw": JobState.HELD,
        "EhRqw": JobState.HELD,
    }
    for code, state in expected.items():
        assert sge_state(code) is state, code
    assert sge_state("") is JobState.UNKNOWN


def test_parsers():
    assert parse_hms("01:00:00") == 60
    assert parse_hms("90") == 2
    assert parse_hms("INFINITY") is None
    assert expand_tasks("1-5:2") == ["1", "3", "5"]
    assert expand_tasks("4") == ["4"]
    records = parse_qacct(
        "==============================================================\n"
        "jobnumber    12\ntaskid       1\nfailed       0    \nexit_status  3\n"
        "==============================================================\n"
        "jobnumber    12\ntaskid       2\nfailed       100 : assumedly after job\n"
        "exit_status  137\n"
    )
    assert [(r["taskid"], r["exit_status"]) for r in records] == [("1", "3"), ("2", "137")]
    assert records[1]["failed"] == "100 : assumedly after job"
