"""Why a job waits and what it used, against the real Grid Engine test cluster.

Grid Engine's poll (``qstat -xml``) says held or waiting on a dependency; what a finished job used
comes from the ``qacct -j`` record the poll already reads (wall clock, CPU time, peak virtual
memory, slots), so the efficiency card costs no extra command.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Optional

from parallelworks_lab.backends.base import BackendContext, JobStatus, SubmitRequest
from parallelworks_lab.backends.sge import SGEBackend
from parallelworks_lab.backends.sge_parsing import (
    category_requests,
    parse_qacct,
    parse_scheduling_info,
    qacct_memory_mb,
    qacct_seconds,
    request_memory_mb,
)
from parallelworks_lab.guidance.reasons import explain_details
from parallelworks_lab.models import JobSubmit, ResourceRequest
from parallelworks_lab.states import TERMINAL_STATES, JobState

from .support.service import wait_for_job
from .support.sge_cluster import sge_cluster_entry
from .test_guidance_slurm import KNOWN_USAGE, eventually
from .test_sge import start_sge_service


def sge_backend(info: dict[str, Any], tmp: Path) -> SGEBackend:
    entry = sge_cluster_entry("sge", info)
    options = {k: v for k, v in entry.items() if k not in ("id", "kind", "poll_interval")}
    # h_vmem: a per-slot memory request Grid Engine knows out of the box.
    options["memory_resource"] = "h_vmem"
    backend = SGEBackend.from_config(
        options, BackendContext(cluster_id="sge", state_dir=tmp, root_dir=tmp)
    )
    assert isinstance(backend, SGEBackend)
    return backend


@contextlib.asynccontextmanager
async def sge_jobs(info: dict[str, Any], tmp: Path) -> AsyncIterator[tuple[SGEBackend, Any]]:
    backend = sge_backend(info, tmp)
    await backend.start()
    submitted: list[str] = []

    async def submit(
        script: str = "#!/bin/bash\nsleep 60\n", after: Optional[list[str]] = None, **res: Any
    ) -> str:
        res.setdefault("time_limit_minutes", 2)
        request = SubmitRequest(
            job_id=uuid.uuid4().hex[:12],
            submit_token=uuid.uuid4().hex,
            name="pwlab-guidance",
            script=script,
            resources=ResourceRequest(**res),
            working_dir=info["scratch_dir"],
            after_native_ids=after or [],
        )
        native = (await backend.submit(request)).native_id
        submitted.append(native)
        return native

    try:
        yield backend, submit
    finally:
        for native in submitted:
            with contextlib.suppress(Exception):  # already ended
                await backend.cancel(native)
        await backend.close()


async def status_of(backend: SGEBackend, native: str, check: Any, what: str) -> JobStatus:
    async def probe() -> Optional[JobStatus]:
        return (await backend.poll([native])).get(native)

    status = await eventually(probe, lambda s: s is not None and check(s), what)
    assert status is not None
    return status


async def test_dependency_and_hold_reasons(sge_cluster, tmp_path):
    async with sge_jobs(sge_cluster, tmp_path) as (backend, submit):
        running = await submit()
        await status_of(backend, running, lambda s: s.state is JobState.RUNNING, "RUNNING")
        waiting = await submit("#!/bin/bash\ntrue\n", after=[running])
        status = await status_of(backend, waiting, lambda s: s.reason == "Dependency", "reason")
        assert status.state is JobState.QUEUED and status.estimated_start is None
        await backend.hold(waiting)
        status = await status_of(backend, waiting, lambda s: s.reason == "JobHeldUser", "held")
        assert status.state is JobState.HELD


async def test_usage_of_a_job_with_known_memory_and_cpu_time(sge_cluster, tmp_path):
    async with sge_jobs(sge_cluster, tmp_path) as (backend, submit):
        assert backend.measures_usage
        known = await submit(KNOWN_USAGE, memory_mb=600, time_limit_minutes=2)
        array = await submit("#!/bin/bash\ntrue\n", array="1-2", cpus_per_task=2)
        final = await status_of(backend, known, lambda s: s.state in TERMINAL_STATES, "the end")
        assert final.state is JobState.COMPLETED, final
        # The poll's own qacct brought it.
        record = final.usage
        assert record is not None and record.source == "qacct"
        # maxvmem: peak *virtual* memory, a little above the resident 300 MiB.
        assert 290 <= (record.max_memory_mb or 0) <= 450, record
        assert 2.8 <= (record.cpu_seconds or 0) <= 6, record
        assert record.elapsed_seconds is not None and record.elapsed_seconds >= 4, record
        assert (record.cpus, record.requested_memory_mb) == (1, 600), record
        assert record.time_limit_seconds == 120
        before = backend.commands_run
        assert await backend.usage([known]) == {known: record}
        assert backend.commands_run - before == 1
        done = await status_of(
            backend, array, lambda s: s.state in TERMINAL_STATES, "the array's end"
        )
        assert done.usage is not None and done.usage.cpus == 2, done
        tasks = await backend.usage([array, f"{array}.1", f"{array}.2"])
        assert set(tasks) == {array, f"{array}.1", f"{array}.2"}
        assert tasks[f"{array}.1"].cpus == 2 and tasks[f"{array}.1"].cpu_seconds is not None


async def test_unknown_job_has_no_usage(sge_cluster, tmp_path):
    async with sge_jobs(sge_cluster, tmp_path) as (backend, _submit):
        assert await backend.usage(["9999999"]) == {}


async def test_reason_and_usage_reach_the_job(sge_cluster, job_service):
    service = await start_sge_service(job_service, sge_cluster, "sge")
    runs = await service.submit(JobSubmit(cluster="sge", command="sleep 30"))
    await wait_for_job(service, runs.id, lambda j: j.state is JobState.RUNNING)
    waits = await service.submit(JobSubmit(cluster="sge", command="true", after=[runs.id]))
    job = await wait_for_job(service, waits.id, lambda j: j.reason == "Dependency")
    assert job.state is JobState.QUEUED
    await service.cancel(waits.id)
    await service.cancel(runs.id)
    used = await service.submit(JobSubmit(cluster="sge", script=KNOWN_USAGE))
    job = await wait_for_job(service, used.id, lambda j: j.terminal, timeout=90)
    assert job.state is JobState.COMPLETED, job
    job = await wait_for_job(service, used.id, lambda j: j.usage is not None)
    assert job.usage is not None and job.usage.source == "qacct"
    assert 290 <= (job.usage.max_memory_mb or 0) <= 450, job.usage
    assert 2.8 <= (job.usage.cpu_seconds or 0) <= 6, job.usage


# What qacct -j printed on the test cluster (Son of Grid Engine 8.1.9) for the job above.
QACCT_SEEN = """\
==============================================================
qname        all.q
jobnumber    2
taskid       undefined
slots        2
failed       0
exit_status  0
ru_wallclock 6s
ru_utime     1.705s
ru_stime     2.057s
ru_maxrss    313.145KB
cpu          3.762s
mem          985.276MBs
maxvmem      316.715MB
category     -l h_rt=120,h_vmem=200M -pe smp 2
"""


def test_qacct_usage_parsing(tmp_path):
    [record] = parse_qacct(QACCT_SEEN)
    context = BackendContext(cluster_id="s", state_dir=tmp_path, root_dir=tmp_path)
    backend = SGEBackend.from_config({"memory_resource": "h_vmem"}, context)
    assert isinstance(backend, SGEBackend)
    usage = backend._usage(record)
    assert (usage.elapsed_seconds, usage.cpu_seconds, usage.max_memory_mb) == (6, 3.762, 316.715)
    assert (usage.cpus, usage.requested_memory_mb, usage.time_limit_seconds) == (2, 400, 120)
    plain = SGEBackend.from_config({}, context)
    assert isinstance(plain, SGEBackend)
    assert plain._usage(record).requested_memory_mb is None  # no memory complex configured
    assert qacct_seconds("6") == 6 and qacct_seconds("0.231s") == 0.231
    assert qacct_memory_mb("2.1GB") == 2.1 * 1024 and qacct_memory_mb("0.000B") == 0
    assert qacct_memory_mb("316.715M") == 316.715 and qacct_memory_mb("") is None
    assert request_memory_mb("1G") == 1024 and request_memory_mb("1000m") == 1e9 / 2**20
    assert category_requests("-U x -l h_rt=60,gpu=1 -pe smp 2") == {"h_rt": "60", "gpu": "1"}


async def test_scheduling_info_in_plain_words_when_someone_looks(sge_cluster, job_service):
    service = await start_sge_service(job_service, sge_cluster, "sge")
    # More slots than the cluster has: Grid Engine keeps it waiting and says why.
    job = await service.submit(
        JobSubmit(cluster="sge", script="#!/bin/bash\n#$ -pe smp 99\ntrue\n")
    )
    try:
        await wait_for_job(service, job.id, lambda j: j.state is JobState.QUEUED)

        async def explained() -> list[str]:
            detail = await service.job_detail(job.id)
            return detail.reason_explained.details if detail.reason_explained else []

        lines = await eventually(explained, bool, "Grid Engine's scheduling info", timeout=60)
        assert any("parallel environment 'smp' has only" in line for line in lines), lines
        commands = service.clusters["sge"].backend.commands_run
        await service.job_detail(job.id)  # within a minute: the same words, no command
        assert service.clusters["sge"].backend.commands_run == commands
    finally:
        await service.cancel(job.id)


def test_scheduling_info_parsing():
    text = (
        "job_type:                   NONE\n"
        'scheduling info:            cannot run in PE "smp" because it only offers 0 slots'
        "Following jobs do not exist: \n"
        '                            queue instance "all.q@h1" dropped because it is full\n'
        '                            queue instance "all.q@h1" dropped because it is full\n'
        "                            something new the scheduler says\n"
    )
    lines = parse_scheduling_info(text)
    assert lines[0] == 'cannot run in PE "smp" because it only offers 0 slots'
    assert explain_details(lines) == [
        "The parallel environment 'smp' has only 0 free slots now, fewer than the job asks "
        "for: it waits for slots, or never starts if it asks for more than the cluster has.",
        "Queue all.q@h1 is full.",
        "something new the scheduler says",
    ]
    assert parse_scheduling_info("job_number: 1\n") == []
