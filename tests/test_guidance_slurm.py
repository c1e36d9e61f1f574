"""Why a job waits, when it starts, what it used: against the real Slurm test cluster.

Every pending reason here is produced for real (a dependency, a hold, a full partition, a QOS and
an account limit, a begin time, a time above the partition's limit) and the backend must report
Slurm's own code; a job that holds a known amount of memory and burns a known CPU time must come
back with those figures from sacct. The cluster (dev/slurm/up.sh) has the limits these need: QOS
``onejob`` (MaxJobsPerUser=1), account ``tiny`` (GrpTRES=cpu=2), backfill every 2 s, and
``jobacct_gather/linux`` so MaxRSS is filled.
"""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional, TypeVar

import pytest

from parallelworks_lab.backends.base import JobStatus, SubmitRequest
from parallelworks_lab.backends.slurm import SlurmBackend
from parallelworks_lab.backends.slurm_accounting import (
    SACCT_USAGE_FIELDS,
    parse_cpu_time,
    parse_memory_mb,
    sacct_jobs,
    tres_count,
    usage_record,
)
from parallelworks_lab.backends.slurm_common import parse_estimate
from parallelworks_lab.backends.slurmrest import _estimate
from parallelworks_lab.backends.slurmrest_versions import ADAPTERS
from parallelworks_lab.models import JobSubmit, ResourceRequest
from parallelworks_lab.states import TERMINAL_STATES, JobState

from .support.slurm_cluster import slurm_cluster_entry
from .support.waiting import wait_until_async
from .test_slurm import backend_for

T = TypeVar("T")

# Holds 300 MiB (touched, so it is resident) and burns 3 s of CPU time however loaded the
# machine is (process time, not wall time), then idles a moment so the sampler sees the peak.
KNOWN_USAGE = """#!/bin/bash
python3 - <<'PY'
import time
block = bytearray(300 * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
start = time.process_time()
while time.process_time() - start < 3:
    pass
time.sleep(1.5)
PY
"""


# Generous timeouts: the shared test machine may be loaded, and sacct catches up late.
eventually = functools.partial(wait_until_async, timeout=90.0, interval=0.5)


class Jobs:
    """Submit through the backend and cancel whatever is left at the end."""

    def __init__(self, backend: SlurmBackend, workdir: Path) -> None:
        self.backend = backend
        self.workdir = workdir
        self.ids: list[str] = []

    async def submit(
        self,
        script: str = "#!/bin/bash\nsleep 60\n",
        after: Optional[list[str]] = None,
        **resources: Any,
    ) -> str:
        resources.setdefault("time_limit_minutes", 2)
        request = SubmitRequest(
            job_id=uuid.uuid4().hex[:12],
            submit_token=uuid.uuid4().hex,
            name="pwlab-guidance",
            script=script,
            resources=ResourceRequest(**resources),
            working_dir=str(self.workdir),
            after_native_ids=after or [],
        )
        native = (await self.backend.submit(request)).native_id
        self.ids.append(native)
        return native

    async def status(self, native: str) -> Optional[JobStatus]:
        return (await self.backend.poll([native])).get(native)

    async def until_state(self, native: str, *states: JobState) -> JobStatus:
        status = await eventually(
            lambda: self.status(native),
            lambda s: s is not None and s.state in states,
            f"job {native} in {[s.value for s in states]}",
        )
        assert status is not None
        return status

    async def until_reason(self, native: str, *reasons: str) -> JobStatus:
        status = await eventually(
            lambda: self.status(native),
            lambda s: s is not None and s.reason in reasons,
            f"job {native} pending with reason {reasons}",
        )
        assert status is not None
        return status

    async def cancel_all(self) -> None:
        for native in self.ids:
            with contextlib.suppress(Exception):  # already ended: nothing to cancel
                await self.backend.cancel(native)


@contextlib.asynccontextmanager
async def slurm_jobs(info: dict[str, Any], tmp: Path) -> AsyncIterator[Jobs]:
    backend = backend_for(info, "slurm", tmp)
    jobs = Jobs(backend, Path(info["scratch_dir"]))
    try:
        yield jobs
    finally:
        await jobs.cancel_all()
        await backend.close()


# -- why it waits ----------------------------------------------------------------------------


async def test_dependency_hold_begin_time_and_partition_time_limit(slurm_cluster, tmp_path):
    async with slurm_jobs(slurm_cluster, tmp_path) as jobs:
        max_time = slurm_cluster["partitions"]["debug"]["max_time_minutes"]
        running = await jobs.submit(partition="debug")
        await jobs.until_state(running, JobState.RUNNING)
        waiting = await jobs.submit("#!/bin/bash\ntrue\n", after=[running], partition="debug")
        held = await jobs.submit("#!/bin/bash\n#SBATCH --hold\ntrue\n", partition="debug")
        later = await jobs.submit(
            "#!/bin/bash\n#SBATCH --begin=now+1hour\ntrue\n", partition="debug"
        )
        # The time is in the script's own #SBATCH line: the form's validation never sees it.
        too_long = await jobs.submit(
            f"#!/bin/bash\n#SBATCH --time={max_time + 15}\ntrue\n",
            partition="debug",
            time_limit_minutes=None,
        )
        expected = {
            waiting: ("Dependency", JobState.QUEUED),
            held: ("JobHeldUser", JobState.HELD),
            later: ("BeginTime", JobState.QUEUED),
            too_long: ("PartitionTimeLimit", JobState.QUEUED),
        }
        backend = jobs.backend

        async def all_four() -> dict[str, JobStatus]:
            return await backend.poll(list(expected))

        before = backend.commands_run
        statuses = await eventually(
            all_four,
            lambda got: all(
                n in got and (got[n].reason, got[n].state) == want for n, want in expected.items()
            ),
            "the four reasons",
        )
        polls = backend.commands_run - before
        assert polls >= 1
        # One squeue per poll, whatever the reasons and estimates: nothing extra for the guidance.
        await backend.poll(list(expected))
        assert backend.commands_run - before == polls + 1
        # The begin time is the scheduler's expected start; the others have none.
        soon = datetime.now(timezone.utc)
        estimate = statuses[later].estimated_start
        assert estimate is not None
        assert timedelta(minutes=50) < estimate - soon < timedelta(minutes=61), estimate
        for native in (waiting, held, too_long):
            assert statuses[native].estimated_start is None, statuses[native]


async def test_full_partition_gives_a_start_estimate_near_the_running_jobs_end(
    slurm_cluster, tmp_path
):
    async with slurm_jobs(slurm_cluster, tmp_path) as jobs:
        cpus = slurm_cluster["nodes"]["n0"]["cpus"]
        filler = await jobs.submit(
            "#!/bin/bash\nsleep 120\n", partition="debug", cpus_per_task=cpus, time_limit_minutes=2
        )
        running = await jobs.until_state(filler, JobState.RUNNING)
        assert running.started_at is not None
        ends = running.started_at + timedelta(minutes=2)
        behind = await jobs.submit("#!/bin/bash\ntrue\n", partition="debug")
        # Backfill runs every 2 s here: the estimate appears in the regular poll's squeue. The
        # reason comes with the main scheduler's next pass, which may be a poll later (until
        # then squeue says "None").
        status = await eventually(
            lambda: jobs.status(behind),
            lambda s: s is not None and s.estimated_start is not None and s.reason is not None,
            "a start estimate and a reason",
            timeout=60,
        )
        assert status is not None and status.estimated_start is not None
        assert status.state is JobState.QUEUED
        assert status.reason in ("Resources", "Priority"), status
        assert abs((status.estimated_start - ends).total_seconds()) <= 15, (status, ends)
        assert status.started_at is None


async def test_qos_job_limit(slurm_cluster, tmp_path):
    async with slurm_jobs(slurm_cluster, tmp_path) as jobs:
        [qos] = slurm_cluster["accounting"]["limited_qos"]
        first = await jobs.submit(partition="multi", qos=qos)
        await jobs.until_state(first, JobState.RUNNING)
        second = await jobs.submit("#!/bin/bash\ntrue\n", partition="multi", qos=qos)
        status = await jobs.until_reason(second, "QOSMaxJobsPerUserLimit")
        assert status.state is JobState.QUEUED


async def test_account_cpu_limit(slurm_cluster, tmp_path):
    async with slurm_jobs(slurm_cluster, tmp_path) as jobs:
        [account] = slurm_cluster["accounting"]["limited_accounts"]
        assert slurm_cluster["accounting"]["limited_accounts"][account]["grp_cpus"] == 2
        first = await jobs.submit(partition="multi", account=account, cpus_per_task=2)
        await jobs.until_state(first, JobState.RUNNING)
        second = await jobs.submit("#!/bin/bash\ntrue\n", partition="multi", account=account)
        status = await jobs.until_reason(second, "AssocGrpCpuLimit")
        assert status.state is JobState.QUEUED


# -- what it used ----------------------------------------------------------------------------


async def test_usage_of_a_job_with_known_memory_and_cpu_time(slurm_cluster, tmp_path):
    async with slurm_jobs(slurm_cluster, tmp_path) as jobs:
        backend = jobs.backend
        assert backend.measures_usage
        known = await jobs.submit(KNOWN_USAGE, memory_mb=600, time_limit_minutes=3)
        gpu = await jobs.submit("#!/bin/bash\ntrue\n", partition="gpu", gpus=1)
        array = await jobs.submit("#!/bin/bash\ntrue\n", array="1-2")
        for native in (known, gpu, array):
            await jobs.until_state(native, *TERMINAL_STATES)
        ids = [known, gpu, array, f"{array}_1", f"{array}_2"]

        async def ask() -> dict[str, Any]:
            return dict(await backend.usage(ids))

        found = await eventually(ask, lambda got: set(got) == set(ids), "usage of all five")
        before = backend.commands_run
        assert await backend.usage(ids) == found
        assert backend.commands_run - before == 1  # one sacct for all of them
        record = found[known]
        assert record.source == "sacct"
        assert 290 <= (record.max_memory_mb or 0) <= 400, record  # 300 MiB + the interpreter
        assert 2.8 <= (record.cpu_seconds or 0) <= 6, record
        assert record.elapsed_seconds is not None and record.elapsed_seconds >= 4, record
        assert (record.cpus, record.requested_memory_mb) == (1, 600), record
        assert record.time_limit_seconds == 180
        assert record.gpus in (None, 0)
        assert found[gpu].gpus == 1
        assert found[f"{array}_1"].cpus == 1 and found[array].time_limit_seconds == 120
        # Once the job has left squeue, the history query brings the same figures for free.
        await eventually(
            lambda: backend._squeue(),
            lambda rows: known not in {row["JobArrayID"] for row in rows},
            "the job leaving squeue",
        )
        status = (await backend.poll([known]))[known]
        assert status.state is JobState.COMPLETED
        assert status.usage == record


async def test_a_running_or_unknown_job_has_no_usage_yet(slurm_cluster, tmp_path):
    async with slurm_jobs(slurm_cluster, tmp_path) as jobs:
        running = await jobs.submit("#!/bin/bash\nsleep 60\n")
        await jobs.until_state(running, JobState.RUNNING)
        assert await jobs.backend.usage([running, "999999"]) == {}


async def test_no_usage_where_history_is_the_job_completion_file(slurm_cluster, tmp_path):
    backend = backend_for(slurm_cluster, "slurm", tmp_path, history="sacct-c")
    try:
        assert not backend.measures_usage
        assert await backend.usage(["1"]) == {}
        assert backend.commands_run == 0
    finally:
        await backend.close()


# -- through the service ---------------------------------------------------------------------


async def test_reasons_estimates_and_usage_reach_the_job(slurm_cluster, tmp_path, job_service):
    """The same through JobService: reasons (and, where the job model has them, the start
    estimate and the efficiency card) are what the user sees."""
    scratch = Path(slurm_cluster["scratch_dir"])
    service = await job_service(
        [slurm_cluster_entry("slurm", slurm_cluster)], root_dir=scratch, poll_interval=0.5
    )
    submitted: list[str] = []

    async def submit(**body: Any) -> str:
        job = await service.submit(JobSubmit(cluster="slurm", working_dir=str(scratch), **body))
        submitted.append(job.id)
        return job.id

    async def until(job_id: str, check: Callable[[Any], bool], what: str) -> Any:
        async def probe() -> Any:
            return service.get_job(job_id)

        return await eventually(probe, check, what)

    try:
        runs = await submit(command="sleep 60", resources={"time_limit_minutes": 2})
        await until(runs, lambda j: j.state is JobState.RUNNING, "RUNNING")
        waits = await submit(command="true", after=[runs], resources={"time_limit_minutes": 1})
        job = await until(waits, lambda j: j.reason == "Dependency", "reason Dependency")
        assert job.state is JobState.QUEUED
        await service.hold(waits)
        job = await until(waits, lambda j: j.reason == "JobHeldUser", "reason JobHeldUser")
        assert job.state is JobState.HELD
        later = await submit(
            script="#!/bin/bash\n#SBATCH --begin=now+1hour\ntrue\n",
            resources={"time_limit_minutes": 1},
        )
        job = await until(later, lambda j: j.reason == "BeginTime", "reason BeginTime")
        job = await until(later, lambda j: j.estimated_start is not None, "an estimate")
        assert job.estimated_start > datetime.now(timezone.utc) + timedelta(minutes=50)
        assert job.reason_explained is not None and job.reason_explained.known
        used = await submit(
            script=KNOWN_USAGE, resources={"memory_mb": 600, "time_limit_minutes": 3}
        )
        job = await until(used, lambda j: j.terminal, "the end")
        assert job.state is JobState.COMPLETED, job
        job = await until(used, lambda j: j.usage is not None, "the efficiency card")
        assert job.usage is not None
        assert 290 <= (job.usage.max_memory_mb or 0) <= 400, job.usage
        assert 2.8 <= (job.usage.cpu_seconds or 0) <= 6, job.usage
        assert job.usage.requested_memory_mb == 600 and job.usage.source == "sacct"
    finally:
        for job_id in submitted:
            if not service.get_job(job_id).terminal:
                with contextlib.suppress(Exception):  # ended meanwhile
                    await service.cancel(job_id)


# -- parsing what sacct, squeue and slurmrestd print (seen on the test cluster) -------------

# sacct -P -n -j 4,5,7,10,12,23 -o <SACCT_USAGE_FIELDS> on Slurm 22.05, with jobacct_gather/linux:
# MaxRSS only on step rows, ReqMem the job's total (400M = 2 CPUs x --mem-per-cpu=200M), the
# default request the node's whole memory (8000M), a cancelled pending array as 12_[1-3].
SACCT_SEEN = """\
4|6|00:03.393||500M|1|3|billing=1,cpu=1,node=1|COMPLETED
4.batch|6|00:03.393|323836K||1||cpu=1,mem=0,node=1|COMPLETED
5|2|00:00.043||400M|2|2|billing=2,cpu=2,node=1|COMPLETED
5.batch|2|00:00.036|10980K||2||cpu=2,mem=0,node=1|COMPLETED
5.0|1|00:00.003|1648K||2||cpu=2,mem=0,node=1|COMPLETED
7_1|1|00:00.004||8000M|1|2|billing=1,cpu=1,node=1|COMPLETED
7_1.batch|1|00:00.004|3120K||1||cpu=1,mem=0,node=1|COMPLETED
10|8|00:00:00||8000M|1|1|billing=1,cpu=1,node=1|RUNNING
10.batch|8|00:00:00|||1||cpu=1,mem=0,node=1|RUNNING
12_[1-3]|0|00:00:00||8000M|1|1||CANCELLED by 0
23|1|00:00.004||8000M|1|2|billing=1,cpu=1,gres/gpu=2,node=1|COMPLETED
23.batch|1|00:00.004|3008K||1||cpu=1,gres/gpu=2,mem=0,node=1|COMPLETED
"""


def test_sacct_usage_parsing():
    jobs = sacct_jobs(SACCT_SEEN, SACCT_USAGE_FIELDS, ["4", "5", "7_1", "10", "23", "99"])
    assert set(jobs) == {"4", "5", "7_1", "10", "23"}
    four = usage_record(*jobs["4"])
    assert four is not None
    assert (four.elapsed_seconds, four.cpu_seconds, four.cpus) == (6, 3.393, 1)
    assert four.max_memory_mb == round(323836 / 1024, 1)
    assert (four.requested_memory_mb, four.time_limit_seconds, four.gpus) == (500, 180, None)
    five = usage_record(*jobs["5"])
    assert five is not None and five.max_memory_mb == round(10980 / 1024, 1)
    assert (five.requested_memory_mb, five.cpus) == (400, 2)
    assert usage_record(*jobs["10"]) is None  # still running
    gpus = usage_record(*jobs["23"])
    assert gpus is not None and gpus.gpus == 2


def test_sacct_units():
    assert parse_cpu_time("00:03.393") == pytest.approx(3.393)
    assert parse_cpu_time("01:02:03") == 3723
    assert parse_cpu_time("2-01:00:00") == 2 * 86400 + 3600
    assert parse_cpu_time("") is None
    assert parse_memory_mb("323836K", 1 / 2**20) == (323836 / 1024, "")
    assert parse_memory_mb("2G", 1.0) == (2048, "")
    assert parse_memory_mb("331608064", 1 / 2**20)[0] == pytest.approx(316.24, abs=0.01)
    assert parse_memory_mb("", 1.0) == (None, "")
    # Slurm before 21.08: per CPU (c) or per node (n) requests
    assert parse_memory_mb("200Mc", 1.0) == (200, "c")
    row = dict(zip(SACCT_USAGE_FIELDS, "9|10|00:10|1G|200Mc|4|5|cpu=4,node=2|COMPLETED".split("|")))
    record = usage_record(row, [])
    assert record is not None and record.requested_memory_mb == 800
    row["ReqMem"] = "1000Mn"
    record = usage_record(row, [])
    assert record is not None and record.requested_memory_mb == 2000
    assert tres_count("billing=1,cpu=1,gres/gpu:tesla=1,node=1", "gres/gpu") == 1
    assert tres_count("billing=1,cpu=1,gres/gpu=2,gres/gpu:tesla=2", "gres/gpu") == 2
    assert tres_count("billing=1,cpu=1", "gres/gpu") is None


def test_start_estimates_only_ahead():
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert parse_estimate("N/A", now) is None
    assert parse_estimate("Unknown", now) is None
    assert parse_estimate("1970-01-01T00:00:00", now) is None
    assert parse_estimate("2025-12-31T23:00:00", now) is None
    ahead = parse_estimate("2026-01-01T00:07:07", now)
    assert ahead is not None and ahead > now
    # slurmrestd: start_time of a pending job, flat (v0.0.38) or {set, infinite, number}
    future = int(time.time()) + 600
    flat = ADAPTERS["v0.0.38"]().parse_job(
        {"job_id": 5, "job_state": "PENDING", "start_time": future}
    )
    assert _estimate(flat.start_time) == datetime.fromtimestamp(future, tz=timezone.utc)
    for version in ("v0.0.40", "v0.0.42", "v0.0.44"):
        newer = ADAPTERS[version]()
        record = newer.parse_job(
            {
                "job_id": 5,
                "job_state": ["PENDING"],
                "start_time": {"set": True, "infinite": False, "number": future},
            }
        )
        assert _estimate(record.start_time) == datetime.fromtimestamp(future, tz=timezone.utc)
        unset = newer.parse_job(
            {"job_id": 5, "job_state": ["PENDING"], "start_time": {"set": False, "number": 0}}
        )
        assert _estimate(unset.start_time) is None
    assert _estimate(int(time.time()) - 5) is None
