"""Benchmarks against the real Slurm test cluster (run with `make bench`; needs `make slurm-up`).

1. Scheduler load: 200 tracked jobs, with 1, 10 and 50 concurrent watchers (event-bus
   subscribers and REST polling clients): Slurm commands per poll interval, read from the
   server's own counter. Target: the same for every N, and <= 2 per cluster per interval.
2. Submit overhead over SSH: REST submit (server -> persistent SSH -> sbatch) vs a bare sbatch on
   the login node, vs `ssh host sbatch` with a new connection each time.
   Target: <= 1.3x the bare sbatch; several times faster than a new ssh per submit.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.server_process import TOKEN, Server  # noqa: E402
from tests.slurm_cluster import slurm_cluster_entry, start_slurm  # noqa: E402

HEADERS = {"Authorization": f"token {TOKEN}"}
INTERVAL = 1.0
WINDOW = 10.0
JOBS = 200


def scheduler_commands(server: Server, cluster: str) -> int:
    return int(server.get(f"clusters/{cluster}").json()["scheduler_commands"])


async def watchers(server: Server, count: int, seconds: float) -> int:
    """Half listen on the event bus, half poll GET /jobs every 0.5 s. Returns requests made."""
    stop = time.monotonic() + seconds
    requests = 0

    async def subscriber() -> None:
        url = f"ws://127.0.0.1:{server.port}/api/events/subscribe?token={TOKEN}"
        async with websockets.connect(url) as ws:
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

    async with httpx.AsyncClient(headers=HEADERS, timeout=30) as client:
        tasks = [subscriber() for _ in range(count // 2)]
        tasks += [poller(client) for _ in range(count - count // 2)]
        await asyncio.gather(*tasks)
    return requests


def bench_load(info: dict[str, Any]) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix="pwlab-bench-slurm-"))
    entry = slurm_cluster_entry("slurm", info) | {"poll_interval": INTERVAL}
    server = Server(tmp, {"clusters": [entry], "poll_interval": INTERVAL})
    server.start()
    ok = True
    try:
        with httpx.Client(headers=HEADERS, timeout=30) as client:
            for _ in range(JOBS):
                r = client.post(
                    f"{server.url}/jobs",
                    json={
                        "cluster": "slurm",
                        "name": "pwlab-bench",
                        "command": "sleep 300",
                        "working_dir": info["scratch_dir"],
                        "resources": {"time_limit_minutes": 10},
                    },
                )
                assert r.status_code == 201, r.text
        time.sleep(2 * INTERVAL)
        print(f"Slurm commands per {INTERVAL:.0f} s poll interval, {JOBS} tracked jobs")
        rates = []
        for count in (1, 10, 50):
            before = scheduler_commands(server, "slurm")
            t0 = time.monotonic()
            made = asyncio.run(watchers(server, count, WINDOW))
            elapsed = time.monotonic() - t0
            per_interval = (scheduler_commands(server, "slurm") - before) / (elapsed / INTERVAL)
            rates.append(per_interval)
            print(f"  {count:3d} watchers ({made:4d} REST reads): {per_interval:.2f} commands")
        print(f"  ratio 50 watchers / 1 watcher: {rates[-1] / rates[0]:.2f}x")
        ok = max(rates) <= 2.0 and rates[-1] / rates[0] <= 1.2
        print(f"  target: <= 2 per interval, flat in N -> {'PASS' if ok else 'MISS'}")
    finally:
        subprocess.run(
            ["scancel", "--name=pwlab-bench"], env={**os.environ, **entry["env"]}, check=False
        )
        server.stop()
    return ok


def median_ms(fn, n: int = 15) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench_submit(info: dict[str, Any]) -> bool:
    ssh = info["ssh"]
    env = {**os.environ, "SLURM_CONF": info["slurm_conf"]}
    scratch = info["scratch_dir"]
    sbatch = [
        "sbatch",
        "--parsable",
        "--hold",
        f"--chdir={scratch}",
        "-o",
        "/dev/null",
        "--job-name=pwlab-bench",
        "--wrap=true",
    ]

    def bare() -> None:
        subprocess.run(sbatch, env=env, check=True, capture_output=True)

    ssh_cmd = [
        "ssh",
        "-i",
        ssh["key_file"],
        "-p",
        str(ssh["port"]),
        "-o",
        "BatchMode=yes",
        "-o",
        f"UserKnownHostsFile={ssh['known_hosts']}",
        "-o",
        "StrictHostKeyChecking=yes",
        f"{ssh['username']}@{ssh['host']}",
        "env",
        f"SLURM_CONF={info['slurm_conf']}",
        *[f"'{a}'" for a in sbatch],
    ]

    def new_ssh() -> None:
        subprocess.run(ssh_cmd, check=True, capture_output=True)

    tmp = Path(tempfile.mkdtemp(prefix="pwlab-bench-submit-"))
    entry = slurm_cluster_entry("slurm-ssh", info)
    server = Server(tmp, {"clusters": [entry]})
    server.start()
    try:
        with httpx.Client(headers=HEADERS, timeout=30) as client:

            def rest() -> None:
                r = client.post(
                    f"{server.url}/jobs",
                    json={
                        "cluster": "slurm-ssh",
                        "name": "pwlab-bench",
                        "command": "true",
                        "working_dir": scratch,
                    },
                )
                assert r.status_code == 201, r.text

            rest()  # connect once
            # Alternate so machine noise hits all three alike.
            rest_ms, bare_ms, ssh_ms = [], [], []
            for _ in range(5):
                rest_ms.append(median_ms(rest, 5))
                bare_ms.append(median_ms(bare, 5))
                ssh_ms.append(median_ms(new_ssh, 3))
    finally:
        subprocess.run(["scancel", "--name=pwlab-bench"], env=env, check=False)
        server.stop()
    r, b, s = statistics.median(rest_ms), statistics.median(bare_ms), statistics.median(ssh_ms)
    print("Submit over SSH, median ms")
    print(f"  bare sbatch on the login node   {b:8.1f}")
    print(f"  REST submit (persistent SSH)    {r:8.1f}   {r / b:.2f}x bare")
    print(f"  ssh host sbatch (new conn.)     {s:8.1f}   {s / r:.2f}x the REST submit")
    print(
        f"  fixed overhead of a REST submit over SSH: {r - b:.1f} ms (HTTP, one SFTP stat, "
        "one SSH exec channel)"
    )
    ok = r / b <= 1.3 and s / r >= 2
    verdict = "PASS" if ok else "MISS"
    print(f"  target: <= 1.3x bare, several times faster than new ssh -> {verdict}")
    return ok


def main() -> int:
    info = start_slurm()
    ok = bench_load(info)
    ok = bench_submit(info) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
