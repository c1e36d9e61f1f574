"""Scheduler load at scale, on the Slurm test cluster (part of `make bench`).

1. Commands per poll interval with 1, 10, 50 and 200 watchers (half on the event bus, half
   polling GET /jobs every 0.5 s) while the server tracks about 1,000 and then 10,000 REAL jobs:
   job arrays of 1,000 tasks each, queued behind a dependency on a job that sleeps, so every
   task stays pending. `squeue -r` lists each task and the poller tracks each as a job of its
   own (array tasks included). Counted by the server itself (`scheduler_commands` in
   GET /clusters/{name}). Target: <= 1 command per interval per cluster, for every N.
   GET /jobs?limit=100 latency (p50, p95) is measured at each size with no other watcher.
2. Under the rate-limit wrapper (dev/slurm/rate_limit.py, Slurm 23.02+'s token bucket): a burst
   of 10 and 6 calls a minute, so a 1 s poll runs out within the window; 50 watchers for 40 s,
   the calls made and refused, the cluster's status, and the job (never failed for it).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.support.server_process import TOKEN, Server
from tests.support.slurm_cluster import slurm_cluster_entry, start_slurm

REPO = Path(__file__).resolve().parents[1]

HEADERS = {"Authorization": f"token {TOKEN}"}
INTERVAL = 1.0
WINDOW = 10.0
ARRAY = 1000
MAX_JOBS = 10_000  # the test cluster's MaxJobCount
BURST, PER_MIN = 10, 6  # the rate-limit wrapper's bucket
NAME = "pwlab-bench-scale"
WRAPPER = REPO / "dev" / "slurm" / "rate_limit.py"
RATE_LIMITED = ("squeue", "sbatch", "sinfo", "scontrol", "scancel", "sacct", "sacctmgr")


def scheduler_commands(server: Server, cluster: str) -> int:
    return int(server.get(f"clusters/{cluster}").json()["scheduler_commands"])


async def watchers(server: Server, count: int, seconds: float) -> int:
    """Half listen on the event bus, half poll GET /jobs every 0.5 s. Returns requests made."""
    stop = time.monotonic() + seconds
    requests = 0

    async def subscriber() -> None:
        url = f"ws://127.0.0.1:{server.port}/api/events/subscribe?token={TOKEN}"
        async with websockets.connect(url, max_size=None) as ws:
            while time.monotonic() < stop:
                try:
                    await asyncio.wait_for(ws.recv(), timeout=max(0.1, stop - time.monotonic()))
                except asyncio.TimeoutError:
                    pass

    async def poller(client: httpx.AsyncClient) -> None:
        nonlocal requests
        while time.monotonic() < stop:
            r = await client.get(f"{server.url}/jobs", params={"limit": 200})
            assert r.status_code == 200
            requests += 1
            await asyncio.sleep(0.5)

    limits = httpx.Limits(max_connections=count + 1)
    async with httpx.AsyncClient(headers=HEADERS, timeout=60, limits=limits) as client:
        tasks = [subscriber() for _ in range(count // 2)]
        tasks += [poller(client) for _ in range(count - count // 2)]
        await asyncio.gather(*tasks)
    return requests


def cluster_jobs(info: dict[str, Any]) -> int:
    """Job records on the cluster (each pending array task is one)."""
    listing = subprocess.run(
        ["squeue", "-h", "-r", "-t", "all", "-o", "%i"],
        env={**os.environ, "SLURM_CONF": info["slurm_conf"]},
        capture_output=True,
        text=True,
        check=True,
    )
    return len(listing.stdout.splitlines())


def expected_rows(info: dict[str, Any], arrays: int) -> int:
    """What the store will hold once the poller has seen every task: our jobs, with each
    array's tasks and the array itself."""
    listing = subprocess.run(
        ["squeue", "-h", "-r", "-t", "all", "-n", NAME, "-o", "%i"],
        env={**os.environ, "SLURM_CONF": info["slurm_conf"]},
        capture_output=True,
        text=True,
        check=True,
    )
    return len(listing.stdout.splitlines()) + arrays


def tracked(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        return int(con.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])


def list_latency(server: Server, seconds: float = 8.0) -> tuple[float, float]:
    times = []
    with httpx.Client(headers=HEADERS, timeout=30) as client:
        for _ in range(5):
            client.get(f"{server.url}/jobs", params={"limit": 100})
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            assert client.get(f"{server.url}/jobs", params={"limit": 100}).status_code == 200
            times.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.01)
    return statistics.median(times), statistics.quantiles(times, n=20)[-1]


def bench_scale(info: dict[str, Any], sizes: tuple[int, ...] = (1_000, 10_000)) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix="pwlab-bench-scale-"))
    entry = slurm_cluster_entry("slurm", info) | {"poll_interval": INTERVAL, "discovery_ttl": 3600}
    server = Server(tmp, {"clusters": [entry], "poll_interval": INTERVAL})
    server.start()
    db = tmp / "db" / "jobs.sqlite"
    ok = True
    rows = []
    try:
        with httpx.Client(headers=HEADERS, timeout=60) as client:

            def submit(**fields: Any) -> str:
                body = {"cluster": "slurm", "name": NAME, "working_dir": info["scratch_dir"]}
                r = client.post(f"{server.url}/jobs", json=body | fields)
                assert r.status_code == 201, r.text
                return str(r.json()["id"])

            blocker = submit(command="sleep 900", resources={"time_limit_minutes": 10})
            arrays = 0
            for size in sizes:
                # Slurm counts every pending task towards MaxJobCount (10,000 on the test
                # cluster): the last array is cut to what it still accepts.
                while (planned := arrays * (ARRAY + 1) + 1) < size:
                    tasks = min(ARRAY, size - planned - 1, MAX_JOBS - cluster_jobs(info) - 5)
                    if tasks < 1:
                        break
                    submit(
                        command="true",
                        after=[blocker],
                        resources={"array": f"0-{tasks - 1}", "time_limit_minutes": 1},
                    )
                    arrays += 1
                expected = expected_rows(info, arrays)
                deadline = time.monotonic() + 600
                while tracked(db) < expected:
                    assert time.monotonic() < deadline, f"only {tracked(db)} jobs tracked"
                    time.sleep(1)
                time.sleep(2 * INTERVAL)
                count = tracked(db)
                p50, p95 = list_latency(server)
                for n in (1, 10, 50, 200):
                    before = scheduler_commands(server, "slurm")
                    t0 = time.monotonic()
                    made = asyncio.run(watchers(server, n, WINDOW))
                    elapsed = time.monotonic() - t0
                    rate = (scheduler_commands(server, "slurm") - before) / (elapsed / INTERVAL)
                    rows.append((count, n, made, rate))
                    ok = ok and rate <= 1.0
                print(
                    f"  {count:6,d} tracked jobs: GET /jobs?limit=100 p50 {p50:.1f} ms,"
                    f" p95 {p95:.1f} ms"
                )
                if size >= 10_000:
                    ok = ok and p50 <= 10.0
    finally:
        subprocess.run(["scancel", "-n", NAME], env={**os.environ, **entry["env"]}, check=False)
        server.stop()
    print(
        f"Slurm commands per {INTERVAL:.0f} s poll interval"
        " (real pending array tasks, counted by the server)"
    )
    print("  tracked jobs   watchers   REST reads   commands/interval")
    for count, n, made, rate in rows:
        print(f"  {count:12,d}   {n:8d}   {made:10d}   {rate:17.2f}")
    print(
        "  target: <= 1 per interval for every N and size; GET /jobs p50 <= 10 ms at 10k -> "
        + ("PASS" if ok else "MISS")
    )
    return ok


def sample_status(server: Server, seen: list[tuple[str, str]], stop: threading.Event) -> None:
    """Every change of the cluster's status (and its message) until ``stop``."""
    with httpx.Client(headers=HEADERS, timeout=30) as client:
        while not stop.wait(0.25):
            cluster = client.get(f"{server.url}/clusters").json()["clusters"][0]
            now = (cluster["status"], cluster.get("status_message") or "")
            if not seen or seen[-1] != now:
                seen.append(now)


def bench_rate_limited(info: dict[str, Any], seconds: float = 40.0) -> bool:
    """50 watchers on a cluster whose Slurm refuses calls beyond a burst of 10, 6 a minute."""
    tmp = Path(tempfile.mkdtemp(prefix="pwlab-bench-rl-"))
    folder = tmp / "bin"
    folder.mkdir()
    for name in RATE_LIMITED:
        (folder / name).symlink_to(WRAPPER)
    state = tmp / "bucket.json"
    entry = slurm_cluster_entry("slurm", info)
    entry["env"] = {
        **entry["env"],
        "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}",
        "PWLAB_RL_STATE": str(state),
        "PWLAB_RL_BURST": str(BURST),
        "PWLAB_RL_PER_MIN": str(PER_MIN),
    }
    server = Server(
        tmp, {"clusters": [entry | {"poll_interval": INTERVAL}], "poll_interval": INTERVAL}
    )
    server.start()
    try:
        with httpx.Client(headers=HEADERS, timeout=60) as client:
            r = client.post(
                f"{server.url}/jobs",
                json={
                    "cluster": "slurm",
                    "name": NAME,
                    "command": "sleep 120",
                    "working_dir": info["scratch_dir"],
                },
            )
            assert r.status_code == 201, r.text
            job_id = r.json()["id"]
            seen: list[tuple[str, str]] = []  # the cluster's status as a user sees it, in turn
            stop = threading.Event()
            sampler = threading.Thread(target=sample_status, args=(server, seen, stop))
            sampler.start()
            t0 = time.monotonic()
            try:
                made = asyncio.run(watchers(server, 50, seconds))
            finally:
                stop.set()
                sampler.join()
            elapsed = time.monotonic() - t0
            status = client.get(f"{server.url}/clusters").json()["clusters"][0]["status"]
            job = client.get(f"{server.url}/jobs/{job_id}").json()
    finally:
        subprocess.run(
            ["scancel", "-n", NAME],
            env={**os.environ, "SLURM_CONF": info["slurm_conf"]},
            check=False,
        )
        server.stop()
    bucket = json.loads(state.read_text())
    ok_calls, refused = int(bucket.get("ok", 0)), int(bucket.get("refused", 0))
    print(
        f"Under Slurm rate limiting (burst {BURST}, {PER_MIN} calls/min):"
        f" 50 watchers for {elapsed:.0f} s, {made} REST reads"
    )
    print(
        f"  scheduler calls answered {ok_calls}, refused {refused}; cluster status now '{status}'"
    )
    print("  the cluster's status as the sidebar showed it: " + " -> ".join(s for s, _ in seen))
    for shown, message in seen:
        if shown == "rate_limited":
            print(f"    '{message}'")
    print(f"  the job: {job['state']} (never failed for a refused call)")
    # Nothing lost, no more calls answered than the bucket holds, and backing off: far fewer
    # calls (answered or refused) than one per interval.
    shown = {state for state, _ in seen}
    ok = (
        job["state"] not in ("FAILED", "UNKNOWN")
        and (refused == 0 or "rate_limited" in shown)
        and ok_calls <= BURST + PER_MIN * elapsed / 60 + 1
        and ok_calls + refused <= elapsed / INTERVAL / 2
    )
    print(
        "  target: calls stay near the bucket's rate, refusals shown as rate_limited, nothing"
        f" lost -> {'PASS' if ok else 'MISS'}"
    )
    return ok


def main() -> int:
    info = start_slurm()
    ok = bench_scale(info)
    ok = bench_rate_limited(info) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
