"""Does a poll of many waiting jobs stall the server? (run with `make bench`)

GET /jobs?limit=100 latency (p50 and p95) on a server tracking 1,000 and 10,000 waiting Slurm
jobs, while its poller asks about all of them every second, beside the same server with polling
switched off (one poll at start, then none), in one run.

The scheduler's answer is synthesized: ``ReplayedSqueue`` hands the real Slurm backend's parsing
the rows `squeue` prints for that many pending jobs (a real test cluster holds far fewer jobs
than this), so everything from the parsing onwards is the real code path.
Target: p95 while polling at most 3x the p95 without (before: 230-335 ms at 10,000).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from parallelworks_lab.backends.slurm import SlurmBackend
from parallelworks_lab.backends.slurm_cli import SQUEUE_FIELDS
from parallelworks_lab.models import Partition, ResourceRequest
from parallelworks_lab.states import JobState
from parallelworks_lab.store import JobStore
from tests.support.server_process import TOKEN, Server

HEADERS = {"Authorization": f"token {TOKEN}"}


class ReplayedSqueue(SlurmBackend):
    """The Slurm CLI backend, with `squeue` answering for ``jobs`` pending jobs 1..N."""

    kind = "squeue-replay"

    async def discover(self) -> list[Partition]:
        return [Partition(name="debug", default=True, nodes_total=8, cpus_per_node=8)]

    async def _squeue(self) -> list[dict[str, str]]:
        count = int((self.context.state_dir.parent.parent / "jobs.count").read_text())
        row = dict.fromkeys(SQUEUE_FIELDS, "N/A")
        rows = []
        for n in range(1, count + 1):
            rows.append(
                {
                    **row,
                    "JobArrayID": str(n),
                    "JobID": str(n),
                    "State": "PENDING",
                    "Reason": "Priority",
                    "exit_code": "0",
                    "StartTime": "N/A",
                    "Comment": f"pwlab:{n}",
                }
            )
        return rows


def fill_store(db: Path, count: int) -> None:
    store = JobStore(db)
    store._db.execute("BEGIN")
    for i in range(count):
        job_id = uuid.uuid4().hex[:12]
        store.insert(
            job_id=job_id,
            cluster="sim",
            name=f"job-{i}",
            resources=ResourceRequest(),
            submit_token=uuid.uuid4().hex,
            request={"cluster": "sim", "command": "true"},
            native_id=str(i + 1),
        )
        store.update(job_id, state=JobState.QUEUED, raw_state="PENDING", reason="Priority")
    store._db.execute("COMMIT")
    store.close()
    (db.parent / "jobs.count").write_text(str(count))


def latencies(server: Server, seconds: float = 12.0) -> list[float]:
    times = []
    with httpx.Client(headers=HEADERS, timeout=30) as client:
        for _ in range(10):
            client.get(f"{server.url}/jobs", params={"limit": 100})
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            response = client.get(f"{server.url}/jobs", params={"limit": 100})
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
            time.sleep(0.01)
    return times


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def run(count: int, polling: bool) -> tuple[float, float, int]:
    tmp = Path(tempfile.mkdtemp(prefix=f"pwlab-bench-poll-{count}-"))
    fill_store(tmp / "db" / "jobs.sqlite", count)
    cluster: dict[str, Any] = {"id": "sim", "kind": "squeue-replay"}
    server = Server(
        tmp,
        {
            "clusters": [cluster],
            "poll_interval": 1.0 if polling else 3600.0,
            "backend_classes": {"squeue-replay": "bench.bench_poll.ReplayedSqueue"},
        },
    )
    server.start()
    try:
        time.sleep(2)  # the first poll at start
        times = latencies(server)
        polls = server.get("clusters/sim").json()["polls"]
        return statistics.median(times), p95(times), polls
    finally:
        server.stop()


def main() -> int:
    ok = True
    print("GET /jobs?limit=100 while the poller asks about N waiting jobs every second")
    print("  jobs     polling   p50 ms   p95 ms   polls  |  idle p50   p95 ms   p95 ratio")
    for count in (1_000, 10_000):
        p50_on, p95_on, polls = run(count, polling=True)
        p50_off, p95_off, _ = run(count, polling=False)
        ratio = p95_on / p95_off
        ok = ok and ratio <= 3.0
        print(
            f"  {count:6,d}   1/s     {p50_on:7.1f}  {p95_on:7.1f}  {polls:6d}  |  "
            f"{p50_off:8.1f}  {p95_off:7.1f}   {ratio:6.2f}x"
        )
    print(f"  target: p95 while polling <= 3x idle p95 -> {'PASS' if ok else 'MISS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
